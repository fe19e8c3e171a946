"""The web console: server-rendered pages under /console/, for the operator, retailer staff and web tills.

Served by the same WSGI application as the API (the App hands it every
request under /console/ and `/`), with no web framework: a Router of its own,
page handlers by area in `pages/`, each taking a `View` (view.py) and
answering HTML (render.py, web.py). This module is the dispatch: the
session read and checked, the area's permission, a POST's form and its
one-time token taken before the handler runs, and every refusal shown as a
page in the person's language — a form's wrong fields beside the form, with
nothing written.
"""

from __future__ import annotations

import logging
from typing import Callable

from ..errors import DomainError, Forbidden, Invalid
from ..http import ApiError, Request, Router, respond, status_of
from ..operations import console_sessions
from ..operations.console_signin import who as who_of
from ..storage.base import disk_full
from . import render, web
from .forms import FormInvalid, read_form
from .texts import ERROR_TEXTS
from .view import AREAS, PRE_COOKIE, SESSION_COOKIE, View

log = logging.getLogger(__name__)
PREFIX = "/console"
Page = Callable[[View], tuple[int, object]]


class Console:
    def __init__(self, backend, booklets):
        self.backend = backend
        self.booklets = booklets
        self.metrics = None  # the App's (metrics.py), set by it: the shop page's redemptions are counted too
        self.router = Router()
        from .pages import ROUTE_MODULES

        self.router.add("GET", "/", lambda request: web.redirect(f"{PREFIX}/"))

        for module in ROUTE_MODULES:
            for method, path, handler, area, *shown_by in module.routes():
                self.add(method, path, handler, area, shown_by[0] if shown_by else None)

    def trusted_front(self, request: Request) -> bool:
        """Whether the connection is from the operator's front (X-Forwarded-Proto believed)."""
        from ..http import _trusted  # one rule for trusted proxies, as client_address's

        return _trusted(str(request.environ.get("REMOTE_ADDR") or "")[:64],
                        tuple(self.backend.limiter.trusted_proxies))

    def add(self, method: str, path: str, handler: Page, area: str, shown_by: Page | None = None) -> None:
        """`shown_by`: the GET page a POST's refusal is shown on (the form again, with its messages)."""
        if area not in AREAS:
            raise ValueError(area)
        self.router.add(method, PREFIX + path, self._guarded(handler, area, shown_by))

    def _guarded(self, handler: Page, area: str, shown_by: Page | None):
        def run(request: Request):
            view = View(self, request)
            self._signed_in(view)
            if not AREAS[area](view.who):
                if view.who is None:
                    return view.redirect(f"{PREFIX}/sign-in?next={web.next_of(request)}"
                                         + ("&expired=1" if SESSION_COOKIE in view.cookies else ""))
                raise Forbidden("forbidden", "your role cannot open this page")
            if request.method == "POST":
                view.form = read_form(request)
                if not (view.session is None and getattr(handler, "token_if_signed_in", False)):
                    self._take_token(view)
                try:
                    return handler(view)
                except DomainError as exc:
                    if shown_by is None or exc.code.startswith("csrf_"):
                        raise
                    view.errors = exc.fields if isinstance(exc, FormInvalid) else {}
                    view.message = None if isinstance(exc, FormInvalid) else refusal(exc)
                    view.message_code = exc.code
                    status, body = shown_by(view)
                    return (status_of(exc) if status == 200 else status), body
            return handler(view)
        run.__name__ = getattr(handler, "__name__", "page")
        return run

    def _signed_in(self, view: View) -> None:
        session = console_sessions.load(self.backend.ctx, view.cookies.get(SESSION_COOKIE))
        if session is None:
            return
        who = who_of(self.backend.ctx, session.kind, session.token_hash, session.staff_id, session.device_id)
        if who is None:  # the token, member or till withdrawn since: the session ends now
            console_sessions.end(self.backend.ctx, session)
            return
        view.session, view.who = session, who

    def _take_token(self, view: View) -> None:
        token = view.form.values.get("csrf")
        if view.session is not None:
            console_sessions.use_form(self.backend.ctx, view.session, token)
            return
        pre = view.cookies.get(PRE_COOKIE)
        if not token:
            raise Invalid("csrf_missing", "the form's security token is missing: open the page again")
        if not pre or token != pre:
            raise Invalid("csrf_invalid", "the form's security token is not valid: open the page again")

    def serve(self, router: Router, environ: dict, start_response) -> list[bytes]:
        """As http.serve_request, but every refusal is a page in the person's language."""
        request = None
        try:
            if router.admit is not None:
                router.admit(environ)
            request = Request.from_environ(environ)
            status, body = router.resolve(request)(request)
            return respond(start_response, status, body)
        except ApiError as exc:
            return self._error(start_response, environ, request, exc.status, exc.code, exc.message, exc.headers)
        except DomainError as exc:
            wait = exc.extra.get("retry_after_s")
            headers = [("Retry-After", str(wait))] if isinstance(wait, int) else []
            return self._error(start_response, environ, request, status_of(exc), exc.code, exc.message, headers,
                               exc)
        except Exception as exc:
            if disk_full(exc):
                return self._error(start_response, environ, request, 503, "storage_full", "the disk is full")
            log.exception("unhandled error for %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            return self._error(start_response, environ, request, 500, "internal", "internal error")

    def _error(self, start_response, environ, request, status, code, message, headers=(), exc=None):
        request = request or Request.from_environ(environ)
        view = View(self, request)
        try:
            self._signed_in(view)
        except Exception:  # the database away: the page is still shown, signed out
            view.session = view.who = None
        said = refusal(exc) if exc is not None else (ERROR_TEXTS.get(code, ERROR_TEXTS["internal"]), {})
        body = render.render("error.html", view.lang, view=view, who=view.who, status=status, code=code,
                             said=said, path=request.path, errors={}, values={}, message=None)
        return respond(start_response, status, web.page(body), headers)


def refusal(exc: DomainError) -> tuple[str, dict]:
    """What a page says of a refusal: a translated text for the codes people meet, the code's own otherwise."""
    if exc.code == "too_many_attempts" and "retry_after_s" in exc.extra:
        return ERROR_TEXTS["too_many_attempts"], {"seconds": exc.extra["retry_after_s"]}
    return ERROR_TEXTS.get(exc.code, exc.message), {}

