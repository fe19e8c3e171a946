"""The words for what the backend found of a till's word: a dispute (the till and the backend judged a
redemption differently, or the backend doubted its time) and whether a void proved its manager.

One vocabulary for the till's report view, the PDF and the CSV's reader (docs/sync.md, Entries are proofs).
"""

from __future__ import annotations

from typing import Mapping

from . import reasons
from .i18n import N_, _

VOID_PROOFS = {
    "verified": N_("proven by the manager's PIN"),
    "unverified": N_("not proven: no PIN proof from the till"),
    "at_backend": N_("made at the backend, in person"),
    "before_proofs": N_("made before voids carried proofs"),
    "pending": N_("not yet checked by the backend"),
}
TIME_FLAGS = {"future": N_("in the future"), "too_old": N_("too long ago")}


def void_proof(proof: object) -> str:
    return _(VOID_PROOFS[proof]) if proof in VOID_PROOFS else "—"


def till_did(item: Mapping) -> str:
    """What the till did with a disputed redemption, in plain words."""
    said = item.get("till_said")
    if not isinstance(said, Mapping):
        return "—"
    if said.get("accepted") is True:
        return _("Gave the discount")
    return _("Refused: {why}").format(why=reasons.headline(said.get("reason") if isinstance(said.get("reason"), str)
                                                           else None))


def backend_says(item: Mapping) -> str:
    """What the backend makes of it, in plain words (its verdict counts, in both reports)."""
    dispute = item.get("dispute")
    if dispute == "till_accepted":
        text = _("Refuses it: {why}").format(why=reasons.headline(item.get("reason")
                                                                 if isinstance(item.get("reason"), str) else None))
    elif dispute == "unproven":
        text = _("Cannot judge it: the till sent nothing it scanned")
    elif dispute == "till_refused":
        text = _("Would have accepted it")
    else:
        text = _("Same verdict")
    flag = item.get("time_flag")
    if flag in TIME_FLAGS:
        text += "; " + _("time not believed: {why}").format(why=_(TIME_FLAGS[flag]))
    return text


def code_of(item: Mapping) -> str:
    """The code the till named (a short or printed code, else the token's id)."""
    said = item.get("till_said") if isinstance(item.get("till_said"), Mapping) else {}
    for text in (said.get("code"), said.get("jti")):
        if isinstance(text, str) and text:
            return text
    return ""
