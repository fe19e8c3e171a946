"""What a console answer is over HTTP: an HTML page, a redirect, a cookie, the headers every page carries.

The pages' security policy is strict: scripts, styles and the decoder only
from the backend itself, no frames, forms posting only here, nothing kept
in caches (pages show people's data). A cookie is HttpOnly and SameSite=Lax,
and Secure when the browser reached us over HTTPS (directly, or through a
trusted front that says so in X-Forwarded-Proto).
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from urllib.parse import quote, urlsplit

from ..http import Download, Request

HTML = "text/html; charset=utf-8"
POLICY = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; "
          "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
          "object-src 'none'")
PAGE_HEADERS = (
    ("Content-Security-Policy", POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
    # The shop page asks for the camera; nothing else may.
    ("Permissions-Policy", "camera=(self), microphone=(), geolocation=()"),
)
MAX_COOKIE_HEADER = 4096


def page(body: bytes, cookies: tuple[str, ...] = ()) -> Download:
    return Download(body, HTML, (*PAGE_HEADERS, *(("Set-Cookie", c) for c in cookies)))


def _plain(text: str) -> bool:
    """No control character, space or DEL: nothing that could end a header line (CR, LF) or bend a URL."""
    return all(0x20 < ord(c) != 0x7f for c in text)


def redirect(location: str, cookies: tuple[str, ...] = ()) -> tuple[int, Download]:
    """303 See Other to a path of this console (never another site: `location` is always ours)."""
    if not location.startswith("/") or location.startswith("//") or not _plain(location):
        location = "/console/"
    return 303, Download(b"", "text/plain; charset=utf-8",
                         (("Location", location), ("Cache-Control", "no-store"),
                          *(("Set-Cookie", c) for c in cookies)))


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (an open redirect otherwise)."""
    if not target or len(target) > 512 or not _plain(target):
        return "/console/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/") or "\\" in target:
        return "/console/"
    return target


def next_of(request: Request) -> str:
    query = request.environ.get("QUERY_STRING", "")
    return quote(request.path + (f"?{query}" if query else ""), safe="")


def cookies_of(request: Request) -> dict[str, str]:
    raw = request.headers.get("cookie", "")
    if not raw or len(raw) > MAX_COOKIE_HEADER:
        return {}
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def is_https(request: Request, trusted_front: bool) -> bool:
    if request.environ.get("wsgi.url_scheme") == "https":
        return True
    return trusted_front and request.headers.get("x-forwarded-proto", "").lower() == "https"


def cookie(name: str, value: str, *, secure: bool, max_age: int | None = None, same_site: str = "Lax",
           path: str = "/") -> str:
    """A Set-Cookie value; `max_age` 0 deletes it, None makes it last as long as the browser's session."""
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", f"SameSite={same_site}"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
