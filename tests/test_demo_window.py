"""The window demo as a newcomer sees it: its sample camera feed, decoded by the real camera pipeline, gives
an acceptance, a booklet's printed code, a refusal of a code already used at the store's other till (with
where and when), and each phone's caption is its voucher's own discount."""

from __future__ import annotations

import shutil

import pytest
from babel import numbers

from pos_app.words import i18n
from pos_app.cli.demo import OTHER_TILL, prepare_demo, voucher_caption, write_demo_feed


@pytest.fixture
def demo(tmp_path):
    demo = prepare_demo(tmp_path / "demo")
    yield demo
    demo.stop()
    shutil.rmtree(demo.root, ignore_errors=True)


def test_a_phones_caption_is_its_vouchers_discount(demo):
    i18n.set_language("es")
    coffee, chipa, printed = (demo.backend.get_voucher(v["id"]) for v in demo.info["vouchers"])
    # The amount is babel's es_PY currency text, whatever babel release is installed.
    assert voucher_caption(coffee) == (f"{numbers.format_currency(12000, 'PYG', locale='es_PY')} de descuento",
                                       "Café gratis con tu desayuno")
    assert voucher_caption(chipa)[0] == f"{numbers.format_percent(0.2, locale='es_PY')} de descuento"
    assert voucher_caption(printed, "gn")[1] == "Kafe michĩ mbytépe hepy"


def test_the_demo_feed_shows_acceptances_a_printed_code_and_a_refusal_from_the_other_till(qtbot, demo):
    from pos_app.gui.app import make_application
    from pos_app.gui.main_window import TillWindow

    i18n.set_language("es")
    feed, items = write_demo_feed(demo, demo.root / "camera")
    make_application()
    window = TillWindow(demo.till_data / "till.sqlite3", camera=feed, sounds=False)
    qtbot.addWidget(window)
    shown, screens = [], []

    def seen(outcome) -> None:  # the panel as the cashier reads it when this verdict is on screen
        if outcome is not None:
            shown.append(outcome)
            screens.append(" ".join(w.text() for w in (window.panel.headline, window.panel.details)))
    window.verdict_shown.connect(seen)
    cashier = next(s for s in demo.info["staff"] if s["role"] == "cashier")
    window.log_in_as({k: cashier[k] for k in ("id", "name", "role")})
    window.show()
    expected = [item.expect for item in items]
    try:
        qtbot.waitUntil(lambda: len(shown) >= len(expected), timeout=60000)
        assert [o.verdict.reason or "accepted" for o in shown[:len(expected)]] == expected
        assert [o.verdict.kind for o in shown[:2]] == ["personal", "printed"]
        elsewhere = shown[2]
        assert elsewhere.verdict.used.till == OTHER_TILL  # online, or from the feed the till already pulled
        # The cashier reads where and when it was used.
        when = i18n.format_time(elsewhere.verdict.used.at, "America/Asuncion")
        assert OTHER_TILL in screens[2] and when in screens[2], screens[2]
    finally:
        window.shutdown()
