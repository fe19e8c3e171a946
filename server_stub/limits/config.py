"""The rate limits as the data folder's config.json sets them, checked once when the backend starts.

`"limits": {"enabled": …, "device": {"rate_per_s", "burst"}, "address": {…}}`
and `"trusted_proxies": [addresses or networks]`. Anything the operator
leaves out keeps its default; anything wrong stops the backend with a
message naming the setting (config.json is input from outside too).

Why these defaults (docs/operating.md, "Rate limits"): a till's sync engine
paces itself to 20 requests a second, so a device refilling at 20 a second
is never refused by its own engine, and a burst of 200 holds a whole
unpaced round (`python -m pos_app sync`: up to 50 feed pages, the catalog,
the outbox's batches of 500). An address refills at 200 a second with a
burst of 2,000: ten such tills behind one shop's NAT at once. A flood runs
at hundreds or thousands a second and is refused within seconds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import Invalid

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_LIMITS = {
    "enabled": True,
    "device": {"rate_per_s": 20.0, "burst": 200.0},
    "address": {"rate_per_s": 200.0, "burst": 2000.0},
}
DEFAULT_TRUSTED_PROXIES = ["127.0.0.1", "::1"]
_RATE_BOUNDS = (0.001, 1_000_000.0)
_BURST_BOUNDS = (1.0, 10_000_000.0)
_MAX_PROXIES = 64


@dataclass(frozen=True)
class Rate:
    """A token bucket's shape: refilled at `rate_per_s`, holding at most `burst` (one request costs one)."""

    rate_per_s: float
    burst: float

    @property
    def refill_s(self) -> float:
        """How long an empty bucket takes to fill: a bucket older than this is as good as none."""
        return self.burst / self.rate_per_s


@dataclass(frozen=True)
class Limits:
    enabled: bool
    device: Rate
    address: Rate
    trusted_proxies: tuple[IpNetwork, ...]

    @property
    def refill_s(self) -> float:
        return max(self.device.refill_s, self.address.refill_s)


def _fail(name: str, what: str) -> Invalid:
    return Invalid("invalid_config", f"config.json: {name} {what}")


def _number(value: object, name: str, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not bounds[0] <= value <= bounds[1]:
        raise _fail(name, f"must be a number from {bounds[0]:g} to {bounds[1]:g}")
    return float(value)


def _rate(given: object, name: str) -> Rate:
    default = DEFAULT_LIMITS[name]
    if given is None:
        given = {}
    if not isinstance(given, dict) or set(given) - set(default):
        raise _fail(f"limits.{name}", "is an object of rate_per_s and burst")
    merged = {**default, **given}
    return Rate(_number(merged["rate_per_s"], f"limits.{name}.rate_per_s", _RATE_BOUNDS),
                _number(merged["burst"], f"limits.{name}.burst", _BURST_BOUNDS))


def trusted_networks(given: object) -> tuple[IpNetwork, ...]:
    """The proxies whose X-Real-IP is believed: addresses or networks (`10.0.0.0/8`)."""
    if given is None:
        given = DEFAULT_TRUSTED_PROXIES
    if not isinstance(given, list) or len(given) > _MAX_PROXIES:
        raise _fail("trusted_proxies", f"is a list of at most {_MAX_PROXIES} addresses or networks")
    networks = []
    for item in given:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except (TypeError, ValueError):
            raise _fail("trusted_proxies", f"holds {str(item)[:60]!r}, which is no address or network") from None
    return tuple(networks)


def limits_of(config: dict) -> Limits:
    """The limits a backend's config sets (Invalid `invalid_config` naming what is wrong)."""
    given = config.get("limits")
    if given is None:
        given = {}
    if not isinstance(given, dict) or set(given) - set(DEFAULT_LIMITS):
        raise _fail("limits", "is an object of enabled, device and address")
    enabled = given.get("enabled", DEFAULT_LIMITS["enabled"])
    if not isinstance(enabled, bool):
        raise _fail("limits.enabled", "is true or false")
    return Limits(enabled=enabled, device=_rate(given.get("device"), "device"),
                  address=_rate(given.get("address"), "address"),
                  trusted_proxies=trusted_networks(config.get("trusted_proxies")))
