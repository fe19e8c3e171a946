"""The till's settings, each named once: its default, its bounds and what it is for.

The store keeps their values (the `settings` table, as JSON); everything that
reads one (the window, the sync, the headless commands, store recovery) reads
it through `value()`, so a setting has one default and one rule for a value
out of bounds or of the wrong type: the default is used. docs/data-folder.md
lists them (tests/test_settings.py checks that it names each one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core import tokens
from ..core.domain import LANGUAGES
from ..core.verdict import DEFAULT_VELOCITY_LIMIT
from ..scan import DECODERS
from ..words.i18n import DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: str  # "number", "integer", "text", "choice" or "flag" (kept as "1" / "0")
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    max_length: int = 4096

    def accepts(self, value: Any) -> bool:
        if self.kind in ("number", "integer"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                return False
            if self.kind == "integer" and value != int(value):
                return False
            return (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)
        if not isinstance(value, str):
            return False
        if self.kind == "choice":
            return value in self.choices
        if self.kind == "flag":
            return value in ("0", "1")
        return len(value) <= self.max_length

    def read(self, value: Any) -> Any:
        """A stored value as the till uses it: the default when it is missing or not acceptable."""
        if value is None or not self.accepts(value):
            return self.default
        if self.kind == "number":
            return float(value)
        if self.kind == "integer":
            return int(value)
        return value


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("language", DEFAULT_LANGUAGE, "the language of the till's screen and paper", "choice",
            choices=LANGUAGES),
    Setting("camera", "", "the camera: its index, or a video file or image sequence (tests, demos); empty: none",
            "text"),
    Setting("decoder", "zxing", "the QR decoder the camera and pictures use", "choice", choices=DECODERS),
    Setting("online_timeout_s", 1.5, "how long a redemption waits for the backend before the till decides "
            "offline (seconds)", "number", minimum=0.05, maximum=30.0),
    Setting("verdict_hold_s", 6.0, "how long a verdict stays on screen (seconds)", "number",
            minimum=1.0, maximum=60.0),
    Setting("sound", "1", "a sound for each verdict (1) or silence (0)", "flag"),
    Setting("velocity_limit", DEFAULT_VELOCITY_LIMIT, "accepted redemptions a minute before this till refuses "
            "as rate_limited; 0: no limit", "integer", minimum=0, maximum=100_000),
    Setting("leeway_s", tokens.DEFAULT_LEEWAY_S, "clock difference forgiven when checking a token's times "
            "(seconds)", "number", minimum=0, maximum=3600),
    Setting("max_clock_skew_s", 120.0, "this till's clock differs from the backend's by more than this: "
            "flagged (seconds)", "number", minimum=0.001, maximum=86_400),
    Setting("retention_days", 30, "how long the till keeps entries the backend confirmed, to send them again "
            "if the backend is restored from an older backup (days)", "integer", minimum=1, maximum=366),
    Setting("ca_file", "", "a PEM file of the certificate authorities this till trusts for its backend, instead "
            "of the system's (a chain's private CA); empty: the system's, or $SSL_CERT_FILE", "text"),
    # Sharing with the store's other tills on the shop's LAN (pos_app/lan, docs/sync.md).
    Setting("lan_enabled", "1", "share redemptions with this store's other tills on the shop's LAN (1) or not (0)",
            "flag"),
    Setting("lan_port", 47311, "the TCP port this till listens on for its store's other tills; 0: any free port",
            "integer", minimum=0, maximum=65535),
    Setting("lan_bind", "0.0.0.0", "the address this till listens on for its store's other tills (0.0.0.0: all)",
            "text", max_length=64),
    Setting("lan_peers", "", "other tills' addresses, \"host:port, …\", asked besides those found on the LAN",
            "text"),
    Setting("lan_discovery", "1", "find the store's other tills on the LAN by mDNS/DNS-SD (1) or only by lan_peers "
            "(0)", "flag"),
)}

# The till's own choices (the settings dialog), carried into a fresh store by recovery.
PREFERENCES = ("language", "camera", "decoder", "online_timeout_s", "verdict_hold_s", "sound")


def value(store, name: str) -> Any:
    """The setting `name` as the till uses it, from anything with `.get(key)` (a TillStore, a dict)."""
    return SETTINGS[name].read(store.get(name))
