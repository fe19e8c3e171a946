"""The words for a report's codes — how a code came in, which kind of voucher, where it was decided —
one vocabulary for the till's screen, its PDF and the backend's."""

from __future__ import annotations

from ..core.domain import Method
from .i18n import N_, _

METHODS = {Method.CAMERA: N_("Camera"), Method.SCANNER: N_("Barcode scanner"), Method.TYPED: N_("Typed code"),
           Method.PRINTED: N_("Printed code"), Method.IMAGE: N_("Picture of a code")}
KINDS = {"personal": N_("Personal"), "printed": N_("Printed")}
DECIDED = {"online": N_("Online"), "offline": N_("Offline")}


def method_name(method: str | None) -> str:
    """A method in the current language; an unknown one as it came, none as a dash."""
    return _(METHODS[method]) if method in METHODS else (method or "—")


def kind_name(kind: str | None) -> str:
    return _(KINDS[kind]) if kind in KINDS else (kind or "—")


def decided_name(decided: str | None) -> str:
    return _(DECIDED[decided]) if decided in DECIDED else (decided or "—")
