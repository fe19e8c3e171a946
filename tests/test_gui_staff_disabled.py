"""A member the operator disables while logged in at the window: once the till has heard (the sync engine's
round applies the feed through its own connection), the window locks and the login refuses them. Real
widgets offscreen, the real store, the real backend in process, the member disabled by its own operation."""

from __future__ import annotations

import httpx
import pytest

from pos_app.store import TillStore
from pos_app.sync.client import BackendClient
from pos_app.sync.round import sync_once

pytestmark = pytest.mark.allow_log_warnings(r"^staff member \S+ is no longer one of this till's staff")


def engine_round(till_env) -> None:
    """What the window's sync engine does: a round on a connection of its own."""
    with TillStore(till_env.store_path) as store:
        with BackendClient("http://till-test", store.get("device_token"),
                           transport=httpx.WSGITransport(app=till_env.api.app)) as client:
            assert sync_once(store, client).error is None


def test_a_member_disabled_while_logged_in_is_locked_out_once_the_till_has_heard(qtbot, make_window, till_env):
    window = make_window(role="cashier", language="en", background_sync=False)
    cashier = till_env.staff["cashier"]
    assert window.staff["id"] == cashier["id"]
    window.refresh_status()
    qtbot.wait(300)
    assert window.staff is not None  # still one of the staff: nothing happens

    till_env.api.backend.disable_staff(cashier["id"])
    engine_round(till_env)
    window.refresh_status()
    qtbot.waitUntil(lambda: window.staff is None, timeout=5000)
    assert window.pages.currentWidget() is window.login
    # And the login refuses them now, offline, as anyone unknown here.
    window._log_in(cashier["id"], cashier["pin"])
    qtbot.wait(500)
    assert window.staff is None
