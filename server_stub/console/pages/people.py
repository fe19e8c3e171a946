"""Staff at the console: the retailer's members listed, added, changed, disabled and enabled, given a new PIN.

The operator sees every retailer's staff, a retailer's admin their own
(area chain). A PIN is typed twice and never shown back, put in a URL or
kept in the page after a refusal; its rule is the backend's (pins.min_digits
by role), said beside the field. An admin cannot disable themselves or take
away their own admin role here: the console would lock them out mid-change,
and another admin or the operator can do it.
"""

from __future__ import annotations

from pos_app.core import pins
from pos_app.words import i18n
from pos_app.words.i18n import N_

from ...errors import Invalid
from ...operations.admin import ROLES
from ...operations.staff_admin import NAME_MAX
from .chain import plain_text  # one rule for names: no markup's brackets

ROLE_NAMES = {"cashier": N_("Cashier"), "manager": N_("Manager"), "admin": N_("Admin")}
EVERY_STORE = ""  # the store select's value for head office: every store of the retailer
HEAD_OFFICE = N_("Every store (head office)")


def pin_rules() -> dict[str, int]:
    """The fewest digits by role, as the backend checks them."""
    return {role: pins.min_digits(role) for role in ROLES}


def role_options() -> list[tuple[str, str]]:
    """The role select's choices, in the page's language (called while the template renders)."""
    return [(role, i18n._(ROLE_NAMES[role])) for role in ROLES]


def store_options(stores: list[dict], retailers: dict[str, str] | None = None):
    """Head office first, then each store (named with its retailer's name for the operator, who sees many)."""
    def made() -> list[tuple[str, str]]:
        return [(EVERY_STORE, i18n._(HEAD_OFFICE))] + [
            (s["id"], f"{retailers[s['retailer_id']]} — {s['name']}" if retailers else s["name"]) for s in stores]
    return made


def _stores_by_id(view) -> dict[str, dict]:
    return {s["id"]: s for s in view.stores()}


def staff_list(view):
    stores = _stores_by_id(view)
    chosen = view.query("store")
    store_id = view.own_store(chosen)["id"] if chosen else None
    members = view.backend.list_staff(view.retailer_filter(), store_id, include_disabled=True)
    retailers = {r["id"]: r["name"] for r in view.retailers()}
    return view.page("people_list.html", members=members, stores=stores, chosen=store_id, retailers=retailers,
                     role_names=ROLE_NAMES)


def new_page(view):
    _forget_pins(view)
    retailers = view.retailers()
    names = None if view.retailer_filter() else {r["id"]: r["name"] for r in retailers}
    return view.page("people_new.html", retailer_options=[(r["id"], r["name"]) for r in retailers],
                     role_options=role_options, store_options=store_options(view.stores(), names),
                     rules=pin_rules())


def _read_pin(form, role: str | None) -> str | None:
    """The PIN typed twice, checked by the role's rule; None (and the fields' messages) when wrong."""
    pin, again = form.values.get("pin", ""), form.values.get("pin_again", "")
    if not pin:
        form.fail("pin", N_("This field is required."))
        return None
    if not (pin.isascii() and pin.isdigit()) or not pins.MIN_DIGITS <= len(pin) <= pins.MAX_DIGITS:
        form.fail("pin", N_("A PIN is {low} to {high} digits."), low=pins.MIN_DIGITS, high=pins.MAX_DIGITS)
        return None
    if role in ROLES and len(pin) < pins.min_digits(role):
        form.fail("pin", N_("This role's PIN has {low} digits at least."), low=pins.min_digits(role))
        return None
    if again != pin:
        form.fail("pin_again", N_("The two PINs are not the same."))
        return None
    return pin


def _read_store(view, form, retailer_id: str | None) -> tuple[bool, str | None]:
    """(valid, the store id or None for every store); a store of another retailer is this form's error."""
    stores = _stores_by_id(view)
    value = form.choice("store_id", (EVERY_STORE, *stores))
    if value is None:
        return False, None
    if value and retailer_id is not None and stores[value]["retailer_id"] != retailer_id:
        form.fail("store_id", N_("This store belongs to another retailer."))
        return False, None
    return True, value or None


def create(view):
    form = view.form
    retailers = {r["id"]: r for r in view.retailers()}
    retailer_id = view.retailer_filter() or form.choice("retailer_id", retailers)
    name = plain_text(form, "name", NAME_MAX)
    role = form.choice("role", ROLES)
    _, store_id = _read_store(view, form, retailer_id)
    pin = _read_pin(form, role)
    form.done()
    member = view.backend.create_staff(retailer_id, name, role, pin, store_id)
    return view.redirect(f"/console/staff/{member['id']}?ok=created")


def member_page(view):
    _forget_pins(view)
    member = view.own_staff(view.request.params["id"])
    stores = [s for s in view.stores() if s["retailer_id"] == member["retailer_id"]]
    return view.page("people_member.html", member=member, stores={s["id"]: s for s in stores},
                     role_names=ROLE_NAMES, role_options=role_options, store_options=store_options(stores),
                     rules=pin_rules(), own=_is_self(view, member))


def _is_self(view, member: dict) -> bool:
    return view.who.kind == "staff" and view.who.staff_id == member["id"]


def change(view):
    member = view.own_staff(view.request.params["id"])
    form = view.form
    name = plain_text(form, "name", NAME_MAX)
    role = form.choice("role", ROLES)
    _, store_id = _read_store(view, form, member["retailer_id"])
    if _is_self(view, member) and role is not None and role != member["role"]:
        form.fail("role", N_("You cannot change your own role: ask another admin."))
    form.done()
    changes = {k: v for k, v in (("name", name), ("role", role), ("store_id", store_id))
               if v != member[k]}
    if changes:
        view.backend.change_staff(member["id"], changes)
    return view.redirect(f"/console/staff/{member['id']}?ok=saved")


def disable(view):
    member = view.own_staff(view.request.params["id"])
    if _is_self(view, member):
        raise Invalid("self_disable", "you cannot disable yourself")
    view.backend.disable_staff(member["id"], True)
    return view.redirect(f"/console/staff/{member['id']}?ok=disabled")


def enable(view):
    member = view.own_staff(view.request.params["id"])
    view.backend.disable_staff(member["id"], False)
    return view.redirect(f"/console/staff/{member['id']}?ok=enabled")


def set_pin(view):
    member = view.own_staff(view.request.params["id"])
    pin = _read_pin(view.form, member["role"])
    view.form.done()
    view.backend.set_staff_pin(member["id"], pin)
    return view.redirect(f"/console/staff/{member['id']}?ok=pin_set")


def _forget_pins(view) -> None:
    """A form shown again never carries the PINs typed."""
    if view.form is not None:
        view.form.values.pop("pin", None)
        view.form.values.pop("pin_again", None)


def routes():
    return [
        ("GET", "/staff", staff_list, "chain"),
        ("GET", "/staff/new", new_page, "chain"),
        ("POST", "/staff/new", create, "chain", new_page),
        ("GET", "/staff/{id}", member_page, "chain"),
        ("POST", "/staff/{id}", change, "chain", member_page),
        ("POST", "/staff/{id}/disable", disable, "chain", member_page),
        ("POST", "/staff/{id}/enable", enable, "chain", member_page),
        ("POST", "/staff/{id}/pin", set_pin, "chain", member_page),
    ]
