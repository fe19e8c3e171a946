"""The console's pages by area: each module's `routes()` lists (method, path, handler, area[, shown_by])."""

from __future__ import annotations

from . import (audit, booklet, chain, claims, findings, home, people, reports, shop, shop_setup, signin, static, tills,
               today, vouchers)

ROUTE_MODULES = [home, signin, static, chain, vouchers, people, tills, claims, audit, today, reports, booklet, shop,
                 shop_setup, findings]
