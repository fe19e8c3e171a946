"""The memory of lately checked PINs: it saves the slow hash, never lets a wrong or changed PIN in."""

from __future__ import annotations

import pytest

from pos_app.core import pins
from server_stub.operations import staff_auth


@pytest.fixture
def counted(monkeypatch):
    """How often the real PBKDF2 check runs (it still runs: this only counts)."""
    calls = []
    real = pins.check_pin

    def check_pin(pin, stored):
        calls.append(pin)
        return real(pin, stored)
    monkeypatch.setattr(staff_auth.pins, "check_pin", check_pin)
    return calls


def test_a_right_pin_is_checked_slowly_once_then_remembered(counted):
    verified = staff_auth._Verified(ttl_s=60)
    stored = pins.hash_pin("4321")
    assert verified.check("dev", "stf", "4321", stored, now=0.0)
    assert verified.check("dev", "stf", "4321", stored, now=30.0)
    assert counted == ["4321"]


def test_wrong_pins_are_never_remembered(counted):
    verified = staff_auth._Verified()
    stored = pins.hash_pin("4321")
    assert not verified.check("dev", "stf", "1111", stored, now=0.0)
    assert not verified.check("dev", "stf", "1111", stored, now=1.0)
    assert counted == ["1111", "1111"]


def test_a_changed_pin_or_another_till_or_member_is_checked_again(counted):
    verified = staff_auth._Verified()
    old, new = pins.hash_pin("4321"), pins.hash_pin("9876")
    assert verified.check("dev", "stf", "4321", old, now=0.0)
    assert not verified.check("dev", "stf", "4321", new, now=1.0)  # the PIN was changed: the old one is out
    assert verified.check("dev", "stf", "9876", new, now=2.0)
    assert verified.check("dev2", "stf", "9876", new, now=3.0)
    assert len(counted) == 4


def test_memory_expires_and_stays_bounded(counted):
    verified = staff_auth._Verified(ttl_s=10, size=3)
    stored = pins.hash_pin("4321")
    assert verified.check("dev", "stf", "4321", stored, now=0.0)
    assert verified.check("dev", "stf", "4321", stored, now=10.5)  # expired: checked again
    assert len(counted) == 2
    for i in range(5):
        verified.check(f"dev{i}", "stf", "4321", stored, now=11.0)
    assert len(verified._until) == 3


@pytest.mark.parametrize("pin", ["", "12", "1" * 10_000, "12\x0034", "١٢٣٤", "\ud800"])
def test_hostile_pins_are_refused_without_error(counted, pin):
    assert not staff_auth._Verified().check("dev", "stf", pin, pins.hash_pin("4321"), now=0.0)
