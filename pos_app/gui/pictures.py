"""A picture of a voucher (a customer's screenshot), opened or dropped on the window.

Decoded off the GUI thread by the window's task pool, then redeemed like any
other input through `TillWindow.submit`; a picture with no code or several
is told to the cashier instead.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog

from ..core.domain import Method
from ..store.settings import value
from ..words.i18n import _

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class Pictures:
    """Pictures for `window`, the TillWindow that redeems what they hold."""

    def __init__(self, window):
        self.window = window

    def accepts(self, paths: list[str]) -> bool:
        """Whether a drop of `paths` is a picture to scan: one file, of a picture's kind."""
        return len(paths) == 1 and paths[0].lower().endswith(IMAGE_SUFFIXES)

    def choose(self) -> None:
        """Ask the cashier for a picture, then scan it."""
        path, _filter = QFileDialog.getOpenFileName(
            self.window, _("Open a picture of a voucher"), "", _("Images ({patterns})").format(
                patterns=" ".join("*" + s for s in IMAGE_SUFFIXES)))
        if path:
            self.scan(path)

    def scan(self, path: str) -> None:
        """Decode a picture off the GUI thread, then redeem what it holds."""
        from ..scan.decoders import make_decoder
        from ..scan.pipeline import ImageUnreadable, scan_image_file

        window = self.window
        decoder_name = value(window.settings, "decoder")
        window.panel.show_working()
        window.tasks.run(lambda: scan_image_file(path, make_decoder(decoder_name)), self._read,
                         lambda exc: window.show_message("caution", _("Picture not readable"), str(exc)),
                         told=(ImageUnreadable,))

    def _read(self, texts: list[str]) -> None:
        if not texts:
            self.window.show_message("caution", _("No code in the picture"),
                                     _("No QR code was found. Ask for a sharper picture, or type the code."))
        elif len(texts) > 1:
            self.window.show_message("caution", _("Several codes in the picture"),
                                     _("Ask the customer to show one voucher at a time."))
        else:
            self.window.submit(texts[0], Method.IMAGE)
