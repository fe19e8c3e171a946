"""Who is calling, as the routes ask it: the operator's token, a staff member in person at a till."""

from __future__ import annotations

from ..errors import Invalid
from ..operations import credentials
from ..operations.admin import ROLES


class Callers:
    """Credential checks the route mixins share (they need `self.backend`)."""

    def _admin_or_staff(self, request, roles: tuple[str, ...]):
        return self.backend.require_admin_or_staff(request.bearer(), request.headers.get("x-pika-staff"),
                                                   request.headers.get("x-pika-pin", ""), roles)

    def _admin(self, request, scopes: tuple[str, ...] = credentials.OPERATOR) -> None:
        self.backend.require_admin(request.bearer(), scopes)

    def _staff(self, request, roles: tuple[str, ...] = ROLES):
        """A staff member at a till in person: the device token (401 without), X-Pika-Staff and X-Pika-Pin."""
        self.backend.require_device(request.bearer())
        staff_id = request.headers.get("x-pika-staff")
        if staff_id is None:
            raise Invalid("missing_field", "the X-Pika-Staff and X-Pika-Pin headers are required")
        return self.backend.require_staff(request.bearer(), staff_id, request.headers.get("x-pika-pin", ""), roles)
