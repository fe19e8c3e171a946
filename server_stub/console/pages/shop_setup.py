"""Web tills made and put into a shop's browser: the managers' page /console/tills/web and the shop's
/console/shop/setup.

A web till is a device of its own kind (operations/web_tills.py). Its token
reaches a browser only as the `pika_webtill` cookie: HttpOnly (no script
reads it), SameSite=Strict, Secure under HTTPS, on /console/shop alone, and
kept for a long time (a shop's browser stays its web till). Two ways in:
"use this browser" sets it in the manager's own browser now; a shop code,
shown as text, as a link and as a QR, sets it in the shop's own browser
once, within a day.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from pos_app.core.codes import looks_like_short_code
from pos_app.words.i18n import N_

from ...errors import NotFound
from ...http import client_address
from ...operations.web_tills import NAME_MAX
from .. import web

WEBTILL_COOKIE = "pika_webtill"
WEBTILL_PATH = "/console/shop"
WEBTILL_MAX_AGE_S = 400 * 86400  # the longest a browser keeps a cookie


def webtill_cookie(view, token: str) -> str:
    return web.cookie(WEBTILL_COOKIE, token, secure=view.secure, max_age=WEBTILL_MAX_AGE_S, same_site="Strict",
                      path=WEBTILL_PATH)


# --- the managers' page -------------------------------------------------------------------------


def tills_page(view):
    stores = view.stores()
    tills = view.backend.list_web_tills(view.retailer_filter(), view.store_filter())
    return view.page("shop_tills.html", store_options=[(s["id"], s["name"]) for s in stores], tills=tills,
                     name_max=NAME_MAX)


def create(view):
    form = view.form
    store_id = form.text("store_id", 64)
    name = form.text("name", NAME_MAX)
    how = form.choice("how", ("here", "code"))
    form.done()
    store = view.own_store(store_id)  # 403 not_yours for another store's or retailer's
    made = view.backend.create_web_till(store["id"], name)
    if how == "here":
        return _hand_over(view, made["token"])
    return _shop_code_page(view, made["device_id"], name, store["name"])


def _own_web_till(view) -> dict:
    device = view.own_device(view.request.params["id"])
    if not view.backend.is_web_till(device["id"]):
        raise NotFound("not_found", "no such web till")  # a till program's token never goes into a browser
    return device


def use_here(view):
    device = _own_web_till(view)
    view.form.done()
    made = view.backend.web_till_token(device["id"])
    return _hand_over(view, made["token"])


def _hand_over(view, token: str):
    """This browser becomes the shop's: the web till's cookie set, and the manager signed out of it, so whoever
    stands at the counter next cannot open the manager's pages."""
    view.set_cookies.append(webtill_cookie(view, token))
    view.sign_out()
    return view.redirect("/console/shop?ok=webtill_here")


def new_code(view):
    device = _own_web_till(view)
    view.form.done()
    store = view.own_store(device["store_id"])
    return _shop_code_page(view, device["id"], device["name"], store["name"])


def revoke(view):
    device = _own_web_till(view)
    view.form.done()
    view.backend.revoke_device(device["id"], "withdrawn on the console's web tills page")
    return view.redirect("/console/tills/web?ok=revoked")


def _shop_code_page(view, device_id: str, name: str, store_name: str):
    code = view.backend.web_till_shop_code(device_id)
    link = f"{_origin(view)}/console/shop/setup?code={quote(code['code'])}"
    return view.page("shop_code.html", code=code, link=link, qr=_qr_data_url(link), till_name=name,
                     store_name=store_name)


def _origin(view) -> str:
    """This console's address as the manager reached it, for the link the shop opens."""
    environ = view.request.environ
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '')}"
    host = "".join(c for c in host[:255] if c.isalnum() or c in ".-:[]")  # a Host header is the client's
    return f"{'https' if view.secure else 'http'}://{host}"


def _qr_data_url(text: str) -> str:
    """The link as a QR the shop's phone can scan: an SVG, as an image the page's policy allows (data:)."""
    import qrcode
    import qrcode.image.svg

    svg = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2).to_string()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


# --- the shop's own browser -------------------------------------------------------------------------


def setup_page(view):
    code = view.query("code", 64)
    return view.page("shop_setup.html", code=code, has_till=bool(view.cookies.get(WEBTILL_COOKIE)))


def set_up(view):
    form = view.form
    code = form.text("code", 64)
    if code is not None and not looks_like_short_code(code):  # no guess at all: said here, nothing counted
        form.fail("code", N_("A shop code has 9 letters and digits, as K7QF-3M2X-T."))
    form.done()
    address = client_address(view.request.environ, view.backend.limiter.trusted_proxies)
    made = view.backend.set_up_web_till(code, address)
    view.set_cookies.append(webtill_cookie(view, made["token"]))
    return view.redirect("/console/shop?ok=webtill_ready")


def routes():
    return [
        ("GET", "/tills/web", tills_page, "webtills"),
        ("POST", "/tills/web", create, "webtills", tills_page),
        ("POST", "/tills/web/{id}/here", use_here, "webtills", tills_page),
        ("POST", "/tills/web/{id}/code", new_code, "webtills", tills_page),
        ("POST", "/tills/web/{id}/revoke", revoke, "webtills", tills_page),
        ("GET", "/shop/setup", setup_page, "open"),
        ("POST", "/shop/setup", set_up, "open", setup_page),
    ]
