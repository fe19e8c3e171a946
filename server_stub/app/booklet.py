"""The booklet's routes: the platform operator makes editions; a till's admin reads finished ones."""

from __future__ import annotations

from ..booklet import placements as booklet_bodies
from ..errors import Forbidden
from ..http import Download
from ..validation import check
from .callers import Callers


class BookletRoutes(Callers):
    """The booklet's handlers (self.booklets: booklet.editions.Booklets)."""

    def _booklet_admin(self, request) -> None:
        """The platform operator only: a till's admin in person is known (so told 403), not allowed."""
        if not self._booklet_reader(request):
            raise Forbidden("forbidden", "the booklet is made by the platform operator")

    def _booklet_reader(self, request) -> bool:
        """True for the operator; False for a till's admin in person, who sees finished editions only."""
        return self._admin_or_staff(request, ("admin",)).kind == "admin"

    def create_booklet(self, request):
        self._booklet_admin(request)
        return 201, self.booklets.create(booklet_bodies.edition(request.json(), check))

    def list_booklets(self, request):
        operator = self._booklet_reader(request)
        editions = self.booklets.list()
        if not operator:
            editions = [e for e in editions if e["status"] == "done"]
        return 200, {"editions": editions}

    def get_booklet(self, request):
        self._booklet_admin(request)
        return 200, self.booklets.get(request.params["edition_id"])

    def add_booklet_placement(self, request):
        self._booklet_admin(request)
        return 201, self.booklets.add_placement(request.params["edition_id"],
                                                booklet_bodies.placement(request.json(), check=check))

    def lock_booklet_placement(self, request):
        self._booklet_admin(request)
        page, position = booklet_bodies.lock(request.json(), check)
        return 200, self.booklets.lock(request.params["edition_id"], request.params["placement_id"], page, position)

    def render_booklet(self, request):
        self._booklet_admin(request)
        body = check(request.json(), booklet_bodies.RENDER_SPEC)
        return 200, self.booklets.render(request.params["edition_id"], bool(body.get("force", False)))

    def booklet_pdf(self, request):
        finished_only = not self._booklet_reader(request)
        return 200, Download(self.booklets.pdf(request.params["edition_id"], finished_only=finished_only),
                             "application/pdf")

    def booklet_billing(self, request):
        self._booklet_admin(request)
        csv_text = self.booklets.billing_csv(request.params["edition_id"])
        return 200, Download(csv_text.encode("utf-8"), "text/csv; charset=utf-8")
