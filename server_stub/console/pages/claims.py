"""Test claims: a claim for a published personal voucher, made at the console so a till can be tried.

The page shows what a customer's phone would: the claim's token as a QR (the
token exactly, as the till's camera reads it — the customer app shows no
more) and its short code, grouped as the till's typed entry takes it
(codes.parse_short_code), with when it ends. The token is never stored, so it
is shown once, on the answer to the form; the list below keeps the short
code, the expiry and a revoke button. Customer ids start with `test-`, so a
test claim is told apart from a customer's (operations/test_claims.py).
"""

from __future__ import annotations

import secrets

from pos_app.core import codes
from pos_app.core.domain import Voucher, VoucherStatus
from pos_app.words import i18n
from pos_app.words.i18n import N_

from ...operations.test_claims import CUSTOMER_MAX, PREFIX
from .. import qr
from .chain import plain_text  # one rule for names: no markup's brackets


def title_of(voucher: dict) -> str:
    """A voucher's title in the page's language, along the till's fallback (called while rendering)."""
    return Voucher.from_json(voucher).text("title", i18n.language()) or voucher["id"]


def _claimable(view) -> list[dict]:
    return [v for v in view.backend.list_vouchers(view.retailer_filter())
            if v["kind"] == "personal" and v["status"] == VoucherStatus.PUBLISHED]


def zone_of(view) -> str:
    """The calendar a claim's end is said in: the person's first store's (the chains are in one zone)."""
    stores = view.stores()
    return stores[0]["timezone"] if stores else "America/Asuncion"


def claims_page(view):
    vouchers = _claimable(view)
    claims = view.backend.test_claims(view.retailer_filter())
    titles = {v["id"]: v for v in view.backend.list_vouchers(view.retailer_filter())}
    return view.page("claims_list.html", vouchers=vouchers, claims=claims, titles=titles, title_of=title_of,
                     customer=f"{PREFIX}{secrets.token_hex(3)}", now=view.ctx.clock(),
                     grouped=codes.format_short_code, tz=zone_of(view))


def issue(view):
    form = view.form
    voucher_id = form.text("voucher_id", 64)
    customer_id = plain_text(form, "customer_id", CUSTOMER_MAX)
    if customer_id is not None and (not customer_id.startswith(PREFIX) or len(customer_id) == len(PREFIX)):
        form.fail("customer_id", N_("A test claim's customer id starts with {prefix} and goes on."), prefix=PREFIX)
    form.done()
    voucher = view.own_voucher(voucher_id)  # another retailer's: 403 not_yours
    claim = view.backend.issue_test_claim(voucher["id"], customer_id)
    return view.page("claims_issued.html", claim=claim, voucher=voucher, title=title_of(voucher),
                     qr=qr.data_uri(claim["token"]), customer_id=customer_id, tz=zone_of(view))


def revoke(view):
    claim = view.backend.get_test_claim(view.request.params["id"])
    view.own_retailer(claim["retailer_id"])  # another retailer's: 403 not_yours
    view.backend.revoke_claim(claim["jti"])
    return view.redirect("/console/claims?ok=revoked")


def routes():
    return [
        ("GET", "/claims", claims_page, "claims"),
        ("POST", "/claims", issue, "claims", claims_page),
        ("POST", "/claims/{id}/revoke", revoke, "claims", claims_page),
    ]
