"""The console's pages by area: each module's `routes()` lists (method, path, handler, area[, shown_by])."""

from __future__ import annotations

from . import home, signin, static

ROUTE_MODULES = [home, signin, static]
