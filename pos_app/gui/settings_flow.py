"""A manager changes the till's settings: the cameras listed off the GUI thread, the dialog, the values kept.

Apart from the window so the window only says who may open it. The values
take effect at once (the verdict's hold, sounds, the camera and its
decoder) and are saved on the store's thread, where a new backend client
takes the new timeout.
"""

from __future__ import annotations

from ..store.settings import value
from .settings_dialog import SettingsDialog
from .till_info import backend_client


class SettingsFlow:
    """The settings of `window`, the TillWindow they take effect in."""

    def __init__(self, window):
        self.window = window

    def open(self) -> None:
        from ..scan.frames import list_cameras
        self.window.tasks.run(list_cameras, self._with_cameras, lambda exc: self._with_cameras([]))

    def _with_cameras(self, cameras: list[int]) -> None:
        window = self.window
        dialog = SettingsDialog(window.settings, cameras, window)
        if not dialog.exec():
            return
        values = dialog.values()
        camera_changed = (values["camera"], values["decoder"]) != (value(window.settings, "camera"),
                                                                   value(window.settings, "decoder"))
        window.settings.update(values)
        window.panel.hold_s = float(values["verdict_hold_s"])
        window.sounds.enabled = values["sound"] == "1"
        window.sounds.load()
        store_thread = window.store

        def save(store):
            for key, chosen in values.items():
                store.set(key, chosen)
            if store_thread.client is not None:  # the new timeout takes effect with a new client
                store_thread.client.close()
                store_thread.client = backend_client(store)
        store_thread.submit(save)
        if camera_changed:
            window.camera_override = None
            window.start_camera()
