"""decide(): one verdict, with one precise reason, for anything a camera,
scanner or cashier produces. The state is an in-memory double of the
RedemptionState protocol; the rules under test are the real ones."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_app.core import codes, tokens
from pos_app.core.domain import Claim, Discount, Reason, UsedToken, Verdict, Voucher, VoucherStatus
from pos_app.core.verdict import Context, RedemptionState, decide, is_timezone


class MemoryState:
    """The RedemptionState protocol over dicts: a test double for the till's
    store, with `redeem` doing what recording would do to it."""

    def __init__(self, vouchers=(), printed=None, claims=()):
        self.vouchers: dict[str, Voucher] = {v.id: v for v in vouchers}
        self.printed_codes: dict[str, str] = dict(printed or {})  # code -> voucher id
        self.claims: dict[str, Claim] = {c.short_code: c for c in claims}
        self.used_jtis: dict[str, UsedToken] = {}
        self.revoked_jtis: set[str] = set()
        self.uses: dict[tuple[str, str, str], int] = {}  # (voucher, store, day) -> count
        self.accepted_at: list[float] = []

    # -- the protocol --
    def voucher(self, voucher_id):
        return self.vouchers.get(voucher_id)

    def printed_voucher(self, code):
        vid = self.printed_codes.get(code)
        return self.vouchers.get(vid) if vid is not None else None

    def claim(self, short_code):
        return self.claims.get(short_code)

    def used(self, jti):
        return self.used_jtis.get(jti)

    def revoked(self, jti):
        return jti in self.revoked_jtis

    def printed_uses(self, voucher_id, store_id, day):
        here = self.uses.get((voucher_id, store_id, day), 0)
        total = sum(n for (vid, _, _), n in self.uses.items() if vid == voucher_id)
        return here, total

    def recent_accepts(self, since):
        return sum(1 for t in self.accepted_at if t >= since)

    # -- what recording an accepted verdict does --
    def redeem(self, verdict: Verdict, ctx: Context, till: str = "till-1") -> None:
        assert verdict.accepted, verdict
        if verdict.kind == "personal":
            self.used_jtis[verdict.jti] = UsedToken(jti=verdict.jti, at=ctx.now, till=till, store_id=ctx.store_id)
        else:
            key = (verdict.voucher.id, ctx.store_id, ctx.day)
            self.uses[key] = self.uses.get(key, 0) + 1
        self.accepted_at.append(ctx.now)


def test_memory_state_satisfies_the_protocol():
    # Every method the protocol names exists on the double with the same arity.
    import inspect

    for name, member in inspect.getmembers(RedemptionState, inspect.isfunction):
        if name.startswith("_"):
            continue
        ours = getattr(MemoryState, name)
        assert len(inspect.signature(ours).parameters) == len(inspect.signature(member).parameters), name


# --- the world the tests decide in --------------------------------------------

APP_BODY = "K7QF0M1X"  # holds 0 and 1, so O and I/L forgiveness shows
APP_CODE = APP_BODY + codes.check_symbol(APP_BODY)
OTHER_BODY = "ABCD2345"
OTHER_CODE = OTHER_BODY + codes.check_symbol(OTHER_BODY)  # a valid code nobody claimed


def _voucher(vid, kind, retailer="ret-1", **kw) -> Voucher:
    return Voucher(
        id=vid, retailer_id=retailer, kind=kind, status=kw.pop("status", VoucherStatus.PUBLISHED),
        discount=Discount("percent", 10), texts={"es": {"title": "Café -10%"}}, **kw,
    )


@pytest.fixture
def ctx(trust, jws) -> Context:
    return Context(trust=trust, retailer_id=jws.retailer, store_id=jws.store, now=jws.now, day="2025-10-09")


def _world(jws) -> MemoryState:
    return MemoryState(
        vouchers=[
            _voucher("v-app", "personal"),
            _voucher("v-print", "printed"),
            _voucher("v-print-limited", "printed", store_day_limit=2, total_limit=5),
        ],
        printed={"COFFEE10": "v-print", "LIMITED5": "v-print-limited"},
        claims=[Claim(short_code=APP_CODE, jti="jti-claimed", voucher_id="v-app", expires_at=jws.now + 600)],
    )


@pytest.fixture
def state(jws) -> MemoryState:
    return _world(jws)


def refused(verdict: Verdict) -> str:
    assert isinstance(verdict, Verdict)
    assert verdict.accepted is False, verdict
    assert verdict.reason in Reason.ALL
    return verdict.reason


# --- personal tokens ---------------------------------------------------------------


def test_personal_token_accepted(state, ctx, jws):
    verdict = decide(jws.personal(jti="jti-a"), state, ctx)
    assert verdict.accepted is True
    assert verdict.reason is None
    assert verdict.kind == "personal"
    assert verdict.source == "token"
    assert verdict.jti == "jti-a"
    assert verdict.voucher.id == "v-app"
    assert verdict.voucher.text("title", "gn") == "Café -10%"


def test_issued_token_accepted_as_bytes(state, ctx, jws, signing_key):
    token = tokens.issue_personal(signing_key, iss="pika", aud=jws.retailer, sub="c", vid="v-app",
                                  jti="jti-bytes", iat=jws.now, exp=jws.now + 300)
    verdict = decide(token.encode(), state, ctx)
    assert verdict.accepted and verdict.jti == "jti-bytes"
    assert decide(f"  {token}\r\n", state, ctx).accepted  # scanners add line ends


def test_used_jti_is_already_redeemed_with_when_and_where(state, ctx, jws):
    token = jws.personal(jti="jti-once")
    first = decide(token, state, ctx)
    state.redeem(first, ctx, till="till-7")
    later = dataclasses.replace(ctx, now=ctx.now + 5)
    again = decide(token, state, later)
    assert refused(again) == "already_redeemed"
    assert again.used == UsedToken(jti="jti-once", at=jws.now, till="till-7", store_id=jws.store)
    assert again.jti == "jti-once"
    # Another token for the same voucher is a different claim: still fine.
    assert decide(jws.personal(jti="jti-other"), state, later).accepted


def test_used_at_another_till_is_already_redeemed(state, ctx, jws):
    # What a till learns from the feed: a jti redeemed elsewhere.
    state.used_jtis["jti-elsewhere"] = UsedToken("jti-elsewhere", at=jws.now - 60, till="till-2", store_id="store-2")
    verdict = decide(jws.personal(jti="jti-elsewhere"), state, ctx)
    assert refused(verdict) == "already_redeemed"
    assert verdict.used.till == "till-2"


def test_twin_signature_of_a_used_token_is_already_redeemed(state, ctx, jws):
    token = jws.personal(jti="jti-twin")
    state.redeem(decide(token, state, ctx), ctx)
    twin = jws.twin(token)
    assert twin != token
    verdict = decide(twin, state, ctx)
    assert refused(verdict) == "already_redeemed"
    assert verdict.used.jti == "jti-twin"


def test_twin_signature_first_then_original_is_already_redeemed(state, ctx, jws):
    token = jws.personal(jti="jti-twin-2")
    state.redeem(decide(jws.twin(token), state, ctx), ctx)
    assert refused(decide(token, state, ctx)) == "already_redeemed"


def test_revoked_jti(state, ctx, jws):
    state.revoked_jtis.add("jti-bad")
    assert refused(decide(jws.personal(jti="jti-bad"), state, ctx)) == "revoked"


def test_revoked_jti_wins_over_used(state, ctx, jws):
    state.revoked_jtis.add("jti-both")
    state.used_jtis["jti-both"] = UsedToken("jti-both", at=jws.now - 5, till="till-1")
    assert refused(decide(jws.personal(jti="jti-both"), state, ctx)) == "revoked"


@pytest.mark.parametrize(
    "status, reason",
    [
        (VoucherStatus.REVOKED, "revoked"),
        (VoucherStatus.UNPUBLISHED, "unpublished"),
        (VoucherStatus.NEW, "unpublished"),
    ],
)
def test_voucher_status(state, ctx, jws, status, reason):
    state.vouchers["v-app"] = dataclasses.replace(state.vouchers["v-app"], status=status)
    assert refused(decide(jws.personal(), state, ctx)) == reason
    assert refused(decide(APP_CODE, state, ctx)) == reason


def test_voucher_window(state, ctx, jws):
    app = state.vouchers["v-app"]
    state.vouchers["v-app"] = dataclasses.replace(app, valid_from=jws.now + 3600)
    assert refused(decide(jws.personal(), state, ctx)) == "not_yet_valid"
    state.vouchers["v-app"] = dataclasses.replace(app, valid_until=jws.now - 3600)
    assert refused(decide(jws.personal(), state, ctx)) == "expired"
    # Inside the window (with the edges in the leeway) it is fine.
    state.vouchers["v-app"] = dataclasses.replace(app, valid_from=jws.now + 30, valid_until=jws.now + 3600)
    assert decide(jws.personal(), state, ctx).accepted


def test_voucher_of_another_retailer(state, ctx, jws):
    state.vouchers["v-app"] = dataclasses.replace(state.vouchers["v-app"], retailer_id="ret-2")
    assert refused(decide(jws.personal(), state, ctx)) == "wrong_retailer"


def test_token_for_another_retailer(state, ctx, jws):
    verdict = decide(jws.personal(aud="ret-2"), state, ctx)
    assert refused(verdict) == "wrong_retailer"
    assert verdict.source == "token"


def test_unknown_voucher_is_unknown_code(state, ctx, jws):
    assert refused(decide(jws.personal(vid="v-nobody-knows"), state, ctx)) == "unknown_code"


def test_personal_token_for_a_printed_voucher_is_unknown_code(state, ctx, jws):
    assert refused(decide(jws.personal(vid="v-print"), state, ctx)) == "unknown_code"


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda jws: jws.personal(exp=jws.now - 3600), "expired"),
        (lambda jws: jws.personal(nbf=jws.now + 3600), "not_yet_valid"),
        (lambda jws: jws.encode(jws.personal_claims(), header={"alg": "none", "kid": jws.kid}), "bad_signature"),
        (lambda jws: jws.encode(jws.personal_claims(), header=jws.header(kid="nope")), "unknown_key"),
        (lambda jws: jws.personal(jti=1), "malformed"),
    ],
)
def test_token_refusals_reach_the_verdict(state, ctx, jws, mutate, reason):
    verdict = decide(mutate(jws), state, ctx)
    assert refused(verdict) == reason
    assert verdict.source == "token"


# --- short codes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        APP_CODE,
        codes.format_short_code(APP_CODE),
        codes.format_short_code(APP_CODE).lower(),
        APP_CODE.replace("0", "O"),
        codes.format_short_code(APP_CODE).lower().replace("0", "o").replace("1", "l"),
        " ".join(codes.format_short_code(APP_CODE).split("-")),
    ],
)
def test_short_code_accepted_via_claim(state, ctx, typed):
    verdict = decide(typed, state, ctx)
    assert verdict.accepted is True, verdict
    assert verdict.kind == "personal"
    assert verdict.source == "short_code"
    assert verdict.code == APP_CODE
    assert verdict.jti == "jti-claimed"
    assert verdict.voucher.id == "v-app"


def test_short_code_and_token_of_one_claim_share_the_one_use(state, ctx, jws):
    state.redeem(decide(codes.format_short_code(APP_CODE), state, ctx), ctx)
    assert refused(decide(APP_CODE, state, ctx)) == "already_redeemed"
    assert refused(decide(jws.personal(jti="jti-claimed"), state, ctx)) == "already_redeemed"


def test_short_code_typo_is_mistyped(state, ctx):
    pos = 5
    wrong = next(ch for ch in "XYZ" if ch != APP_CODE[pos])
    typo = APP_CODE[:pos] + wrong + APP_CODE[pos + 1:]
    verdict = decide(codes.format_short_code(typo), state, ctx)
    assert refused(verdict) == "mistyped"
    swapped = APP_CODE[1] + APP_CODE[0] + APP_CODE[2:]
    assert refused(decide(swapped, state, ctx)) == "mistyped"


def test_unknown_short_code(state, ctx):
    verdict = decide(codes.format_short_code(OTHER_CODE), state, ctx)
    assert refused(verdict) == "unknown_code"
    assert verdict.code == OTHER_CODE


def test_expired_claim(state, ctx, jws):
    state.claims[APP_CODE] = dataclasses.replace(state.claims[APP_CODE], expires_at=jws.now - 3600)
    verdict = decide(APP_CODE, state, ctx)
    assert refused(verdict) == "expired"
    assert verdict.source == "short_code"


def test_claim_within_leeway_is_accepted(state, ctx, jws):
    state.claims[APP_CODE] = dataclasses.replace(state.claims[APP_CODE], expires_at=jws.now - 30)
    assert decide(APP_CODE, state, ctx).accepted


def test_revoked_claim_via_short_code(state, ctx):
    state.revoked_jtis.add("jti-claimed")
    assert refused(decide(APP_CODE, state, ctx)) == "revoked"


# --- printed codes and static tokens ---------------------------------------------------


@pytest.mark.parametrize("typed", ["COFFEE10", "coffee10", "Coffee10", "coffee 10", "COFFEE-10", " coffee10 "])
def test_printed_text_code_accepted(state, ctx, typed):
    verdict = decide(typed, state, ctx)
    assert verdict.accepted is True, verdict
    assert verdict.kind == "printed"
    assert verdict.source == "printed_code"
    assert verdict.code == "COFFEE10"
    assert verdict.jti is None
    assert verdict.voucher.id == "v-print"


def test_printed_code_is_not_one_time(state, ctx):
    for _ in range(3):
        verdict = decide("coffee10", state, ctx)
        assert verdict.accepted
        state.redeem(verdict, ctx)


def test_unknown_printed_code(state, ctx):
    assert refused(decide("TEA20", state, ctx)) == "unknown_code"


def test_static_token_accepted(state, ctx, jws):
    verdict = decide(jws.static(), state, ctx)
    assert verdict.accepted is True, verdict
    assert verdict.kind == "printed"
    assert verdict.source == "static_token"
    assert verdict.code == "COFFEE10"
    assert verdict.jti is None
    # Reusable: scanning the booklet QR twice is two redemptions.
    state.redeem(verdict, ctx)
    assert decide(jws.static(), state, ctx).accepted


def test_issued_static_token_accepted(state, ctx, jws, signing_key):
    token = tokens.issue_static(signing_key, iss="pika", aud=jws.retailer, vid="v-print", code="COFFEE10",
                                iat=jws.now, exp=jws.now + 86_400)
    assert decide(token, state, ctx).accepted


def test_static_token_of_an_unknown_or_personal_voucher(state, ctx, jws):
    assert refused(decide(jws.static(vid="v-gone"), state, ctx)) == "unknown_code"
    assert refused(decide(jws.static(vid="v-app"), state, ctx)) == "unknown_code"


def test_printed_voucher_status_and_window(state, ctx, jws):
    printed = state.vouchers["v-print"]
    state.vouchers["v-print"] = dataclasses.replace(printed, status=VoucherStatus.REVOKED)
    assert refused(decide("COFFEE10", state, ctx)) == "revoked"
    state.vouchers["v-print"] = dataclasses.replace(printed, status=VoucherStatus.UNPUBLISHED)
    assert refused(decide(jws.static(), state, ctx)) == "unpublished"
    state.vouchers["v-print"] = dataclasses.replace(printed, valid_until=jws.now - 86_400)
    assert refused(decide("COFFEE10", state, ctx)) == "expired"
    state.vouchers["v-print"] = dataclasses.replace(printed, valid_from=jws.now + 86_400)
    assert refused(decide("COFFEE10", state, ctx)) == "not_yet_valid"


def test_printed_store_day_limit(state, ctx, jws):
    for _ in range(2):
        verdict = decide("limited5", state, ctx)
        assert verdict.accepted
        state.redeem(verdict, ctx)
    assert refused(decide("limited5", state, ctx)) == "limit_reached"
    # Another store, or the next day, has its own count.
    other_store = dataclasses.replace(ctx, store_id="store-2")
    assert decide("limited5", state, other_store).accepted
    tomorrow = dataclasses.replace(ctx, day="2025-10-10", now=ctx.now + 86_400)
    assert decide("limited5", state, tomorrow).accepted


def test_printed_total_limit(state, ctx):
    state.uses[("v-print-limited", "store-2", "2025-10-09")] = 1
    state.uses[("v-print-limited", "store-3", "2025-10-08")] = 4
    verdict = decide("LIMITED5", state, ctx)  # 0 here today, 5 in all
    assert refused(verdict) == "limit_reached"
    assert verdict.kind == "printed"


def test_static_token_counts_against_limits(state, ctx, jws):
    state.uses[("v-print-limited", ctx.store_id, ctx.day)] = 2
    assert refused(decide(jws.static(vid="v-print-limited", code="LIMITED5"), state, ctx)) == "limit_reached"


# --- the printed-voucher entry -------------------------------------------------------------


def test_printed_only_refuses_app_codes(state, ctx, jws):
    verdict = decide(jws.personal(), state, ctx, printed_only=True)
    assert refused(verdict) == "unknown_code"
    assert refused(decide(APP_CODE, state, ctx, printed_only=True)) == "unknown_code"
    assert refused(decide(codes.format_short_code(APP_CODE), state, ctx, printed_only=True)) == "unknown_code"
    # The jti was not spent by the refusal.
    assert decide(jws.personal(), state, ctx).accepted


def test_printed_only_accepts_printed(state, ctx, jws):
    assert decide("coffee10", state, ctx, printed_only=True).accepted
    assert decide(jws.static(), state, ctx, printed_only=True).accepted


# --- velocity ---------------------------------------------------------------------------------


def test_velocity_is_rate_limited(state, ctx, jws):
    state.accepted_at = [jws.now - 10] * ctx.velocity_limit
    assert refused(decide(jws.personal(), state, ctx)) == "rate_limited"
    assert refused(decide("COFFEE10", state, ctx)) == "rate_limited"
    assert refused(decide(APP_CODE, state, ctx)) == "rate_limited"


def test_velocity_counts_only_the_window(state, ctx, jws):
    state.accepted_at = [jws.now - ctx.velocity_window_s - 1] * 500 + [jws.now - 1] * (ctx.velocity_limit - 1)
    assert decide(jws.personal(), state, ctx).accepted
    assert decide("COFFEE10", state, ctx).accepted


def test_velocity_builds_up_from_real_redemptions(state, jws, trust):
    ctx = Context(trust=trust, retailer_id=jws.retailer, store_id=jws.store, now=jws.now, day="2025-10-09",
                  velocity_limit=3, velocity_window_s=60)
    for _ in range(3):
        verdict = decide("COFFEE10", state, ctx)
        assert verdict.accepted
        state.redeem(verdict, ctx)
    assert refused(decide("COFFEE10", state, ctx)) == "rate_limited"


# --- what a scanner and a keyboard do to input ----------------------------------------------------


def _token_with_dash_and_underscore(jws) -> tuple[str, str]:
    for i in range(500):
        token = jws.personal(jti=f"jti-layout-{i}")
        if "-" in token and "_" in token:
            return token, f"jti-layout-{i}"
    raise AssertionError("no token with both '-' and '_' in 500 tries")  # pragma: no cover


def test_keyboard_layout_repair(state, ctx, jws):
    token, jti = _token_with_dash_and_underscore(jws)
    typed = token.replace("-", "'").replace("_", "?")
    assert "-" not in typed and "_" not in typed
    verdict = decide(typed, state, ctx)
    assert verdict.accepted is True, verdict
    assert verdict.jti == jti


def test_non_utf8_bytes_are_malformed(state, ctx, jws):
    assert refused(decide(b"\xff\xfe\xfd", state, ctx)) == "malformed"
    assert refused(decide(jws.personal().encode() + b"\xff", state, ctx)) == "malformed"
    assert refused(decide(b"COFFEE10\xc3", state, ctx)) == "malformed"


@pytest.mark.parametrize(
    "raw",
    [
        "x" * 100_000,
        b"x" * 100_000,
        "COFFEE10" * 12_500,
        "A" * 50_000 + "." + "A" * 50_000 + ".A",
        "\U0001F600",
        "COFFEE10\U0001F600",
        "coffee\u00a010",  # a no-break space is not ASCII
        "ＣＯＦＦＥＥ１０",  # full-width letters
        "",
        "   ",
        "\x00",
        "COFFEE10\x00",
        "COFFEE\n10",
        "!!!",
        "a.b",
        None,
        12345,
    ],
)
def test_garbage_is_malformed(state, ctx, raw):
    assert refused(decide(raw, state, ctx)) == "malformed"


# --- properties -----------------------------------------------------------------------------


def _mutations(token: str):
    """Strategies that damage a valid token the way a bad scan or a fiddler would."""
    chars = st.sampled_from("AZaz09-_.=+/ '?\x00é\U0001F600")

    @st.composite
    def mutate(draw):
        text = token
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "swap", "dup"]))
            i = draw(st.integers(0, max(len(text) - 1, 0)))
            if op == "replace" and text:
                text = text[:i] + draw(chars) + text[i + 1:]
            elif op == "insert":
                text = text[:i] + draw(chars) + text[i:]
            elif op == "delete" and text:
                text = text[:i] + text[i + 1:]
            elif op == "truncate":
                text = text[:i]
            elif op == "swap" and len(text) > i + 1:
                text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
            elif op == "dup":
                text = text[:i] + text[i:] * 2
        return text

    return mutate()


def _check(verdict):
    assert isinstance(verdict, Verdict)
    assert isinstance(verdict.accepted, bool)
    if verdict.accepted:
        assert verdict.reason is None
    else:
        assert verdict.reason in Reason.ALL


# Session-wide tokens and world: hypothesis forbids function-scoped fixtures.
@pytest.fixture(scope="module")
def world(jws, trust):
    ctx = Context(trust=trust, retailer_id=jws.retailer, store_id=jws.store, now=jws.now, day="2025-10-09")
    return _world(jws), ctx, jws.personal(jti="jti-prop"), jws.static()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decide_never_raises(world, data):
    state, ctx, personal, static = world
    raw = data.draw(
        st.one_of(
            st.text(),
            st.binary(),
            st.text(alphabet="ABCDEFGHJKMNPQRSTVWXYZ0123456789oOiIlL-_ .'?", max_size=30),
            _mutations(personal),
            _mutations(static),
            st.sampled_from([personal, static, APP_CODE, "COFFEE10", OTHER_CODE]).map(str.lower),
        )
    )
    printed_only = data.draw(st.booleans())
    _check(decide(raw, state, ctx, printed_only=printed_only))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_tokens_never_raise(world, data):
    state, ctx, personal, static = world
    raw = data.draw(_mutations(data.draw(st.sampled_from([personal, static]))))
    verdict = decide(raw, state, ctx)
    _check(verdict)
    if verdict.accepted:
        # Only an encoding no-op can keep a token valid: the same claims come back.
        assert verdict.jti in ("jti-prop", None)


@pytest.mark.parametrize("name, ok", [("America/Asuncion", True), ("UTC", True), ("America", False),
                                      ("", False), ("../../etc/passwd", False), ("Mars/Olympus", False),
                                      (None, False), ("x" * 100, False), ("America/Asuncion\x00", False)])
def test_is_timezone(name, ok):
    assert is_timezone(name) is ok


# --- issuer and a token outliving its voucher (issue 14, finding 9) ------------------------------------------


def test_the_context_issuer_refuses_another_issuers_token(state, ctx, jws):
    ours = dataclasses.replace(ctx, issuer=jws.issuer)
    assert decide(jws.personal(jti="jti-ours"), state, ours).accepted
    assert decide(jws.static(), state, ours).accepted
    for token in (jws.personal(jti="jti-theirs", iss="other"), jws.static(iss="other")):
        verdict = decide(token, state, ours)
        assert (refused(verdict), verdict.source) == ("bad_signature", "token")
    # a till that has not heard its backend's issuer yet (an older catalog) checks none
    assert decide(jws.personal(jti="jti-theirs", iss="other"), state, ctx).accepted


@pytest.mark.parametrize("kind", ["personal", "static"])
def test_a_token_ends_with_its_voucher_whatever_its_exp(state, ctx, jws, kind):
    vid = "v-app" if kind == "personal" else "v-print"
    state.vouchers[vid] = dataclasses.replace(state.vouchers[vid], valid_until=jws.now + 600)
    token = jws.personal(jti="jti-long", exp=jws.now + 30 * 86_400) if kind == "personal" \
        else jws.static(exp=jws.now + 30 * 86_400)  # issued by an older backend: exp past the voucher's end
    assert decide(token, state, ctx).accepted
    later = dataclasses.replace(ctx, now=jws.now + 601 + ctx.leeway)
    verdict = decide(token, state, later)
    assert (refused(verdict), verdict.message) == ("expired", "the voucher has ended")
