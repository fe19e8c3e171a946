"""The console's front door: `/` leads here, and the home page shows each person what they may do."""

from __future__ import annotations


def home(view):
    if view.who.kind == "shop":
        return view.redirect("/console/shop")
    return view.page("home.html", retailers=view.retailers(), stores=view.stores())


def routes():
    return [("GET", "/", home, "any")]
