"""What the console says of a refusal, by its stable code: the texts people meet, marked for translation.

A code not here is shown with the operation's own (English) message and its
code, so nothing is ever hidden; the common ones read in the person's language.
"""

from __future__ import annotations

from pos_app.words.i18n import N_

ERROR_TEXTS = {
    "internal": N_("Something went wrong on our side. Nothing was changed; try again, and tell the operator if it "
                   "happens again."),
    "not_found": N_("There is nothing here: the page or the thing it names does not exist."),
    "method_not_allowed": N_("This page cannot be used that way."),
    "forbidden": N_("Your role cannot open this page."),
    "not_yours": N_("This belongs to another retailer or store: you cannot open it."),
    "unauthorized": N_("The sign-in was not accepted: check what you typed."),
    "token_expired": N_("This admin token has expired: ask for a new one."),
    "staff_disabled": N_("This staff member was disabled."),
    "role_not_allowed": N_("Cashiers use a till or the shop page, not the console."),
    "too_many_attempts": N_("Too many wrong PINs: try again in {seconds} seconds."),
    "rate_limited": N_("Too many requests: wait a moment and try again."),
    "csrf_missing": N_("The form's security token is missing: open the page again and send it from there."),
    "csrf_invalid": N_("The form is from another session or has expired: open the page again. Nothing was changed."),
    "csrf_replayed": N_("This form was already sent. Nothing was changed again."),
    "payload_too_large": N_("What was sent is too large."),
    "unsupported_media_type": N_("The form was sent in a way this page does not take."),
    "invalid_form": N_("Some fields need correcting."),
    "invalid_value": N_("A value is not valid."),
    "storage_full": N_("The backend's disk is full: nothing can be saved until the operator makes room."),
    "busy": N_("The backend is busy: try again in a moment."),
    "device_revoked": N_("This web till was withdrawn: ask your manager."),
    "invalid_enrollment_code": N_("This code is unknown, already used or expired: ask your manager for a new one."),
    "self_disable": N_("You cannot disable yourself: ask another admin or the operator."),
    # the booklet's refusals (booklet/editions.py, layout.py), as its pages meet them
    "outside_month": N_("This voucher is not valid on any day of the edition's month."),
    "voucher_too_small": N_("On this paper a voucher needs a bigger space, so its QR code scans: choose a larger "
                            "tier."),
    "cover_taken": N_("That cover is already sold in this edition."),
    "lock_overlap": N_("Another locked placement already holds that place on the page."),
    "lock_on_cover": N_("That page is a cover: lock the placement onto an interior page."),
    "lock_out_of_range": N_("The edition has fewer pages than that: choose an earlier page."),
    "illegal_position": N_("A placement of this size cannot start at that position."),
    "does_not_fit": N_("The placements no longer fit in the edition's pages."),
    "too_many_full_pages": N_("There are more full-page placements than free pages."),
    "too_many_pages": N_("The placements would need more pages than a booklet can have."),
    "preview_failed": N_("The preview could not be made now; the PDF itself is fine. Try again in a moment."),
    # the findings' (pages/findings.py)
    "already_resolved": N_("Someone resolved this finding already. Nothing was changed."),
    "reconcile_running": N_("A check is running already: its findings are listed here when it is done."),
}

# Said at the top of a page after a change succeeded (`?ok=<code>` on the redirect): codes, never free text.
NOTICES = {
    "saved": N_("Saved."),
    "created": N_("Created."),
    "published": N_("Published: tills take it at their next sync."),
    "unpublished": N_("Unpublished: tills stop accepting it at their next sync."),
    "revoked": N_("Revoked."),
    "disabled": N_("Disabled."),
    "enabled": N_("Enabled again."),
    "pin_set": N_("The PIN was changed."),
    "rolled": N_("A new token was made: enroll the till again with the code shown."),
    "voided": N_("The redemption was voided."),
    "rendered": N_("The booklet was rendered."),
    "locked": N_("The placement was locked."),
    "unlocked": N_("The placement was unlocked: the layout places it."),
    "placed": N_("The voucher was placed in the edition."),
    "webtill_here": N_("This browser is now the web till: a cashier signs in here."),
    "webtill_ready": N_("This browser is now the shop's web till: sign in with your staff id and PIN."),
    "shift_ended": N_("Signed out. The next cashier signs in here."),
    "language": N_("Language changed."),
    "code_cancelled": N_("The enrollment code was cancelled: no till can enroll with it now."),
    "resolved": N_("The finding was resolved, with your note."),
    "checked": N_("The check ran: what it found is listed below."),
}
