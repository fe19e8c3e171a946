"""Till settings a manager may change: camera, decoder, timeouts, sound.

Only a manager (or admin) opens this; values are validated here and saved
by the window through the store's thread.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ..store.settings import SETTINGS, value
from ..words.i18n import _
from .retranslate import Retranslating

DECODER_NAMES = {"zxing": "zxing-cpp", "zbar": "ZBar (pyzbar)"}
# The backend timeout a manager may pick: inside the setting's bounds but narrower (the dialog's range
# since it was first written), as every scan decided offline first waits this long, one at a time.
TIMEOUT_OFFERED = (max(0.2, SETTINGS["online_timeout_s"].minimum), min(10.0, SETTINGS["online_timeout_s"].maximum))


class SettingsDialog(Retranslating, QDialog):
    def __init__(self, settings: dict, cameras: list[int], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setMinimumWidth(620)
        self.camera = QComboBox(objectName="cameraChoice")
        self.camera.addItem("", "")
        for index in cameras:
            self.camera.addItem("", str(index))
        self.camera_path = QLineEdit(objectName="cameraPath", maxLength=4096)
        current = value(settings, "camera")
        found = self.camera.findData(current)
        if found >= 0:
            self.camera.setCurrentIndex(found)
        elif current:
            self.camera_path.setText(current)
        self.decoder = QComboBox(objectName="decoderChoice")
        for name, shown in DECODER_NAMES.items():
            self.decoder.addItem(shown, name)
        self.decoder.setCurrentIndex(max(0, self.decoder.findData(value(settings, "decoder"))))
        self.timeout = QDoubleSpinBox(objectName="onlineTimeout", minimum=TIMEOUT_OFFERED[0],
                                      maximum=TIMEOUT_OFFERED[1], singleStep=0.1, decimals=1)
        self.timeout.setValue(value(settings, "online_timeout_s"))
        hold = SETTINGS["verdict_hold_s"]
        self.hold = QDoubleSpinBox(objectName="verdictHold", minimum=hold.minimum, maximum=hold.maximum, singleStep=0.5,
                                   decimals=1)
        self.hold.setValue(value(settings, "verdict_hold_s"))
        self.sound = QCheckBox(objectName="soundOn")
        self.sound.setChecked(value(settings, "sound") != "0")
        self.labels = [QLabel(textFormat=Qt.TextFormat.PlainText) for _ in range(6)]
        form = QFormLayout()
        for label, field in zip(self.labels, (self.camera, self.camera_path, self.decoder, self.timeout,
                                              self.hold, self.sound)):
            form.addRow(label, field)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.retranslate()

    def values(self) -> dict:
        path = self.camera_path.text().strip()
        return {
            "camera": path or self.camera.currentData() or "",
            "decoder": self.decoder.currentData(),
            "online_timeout_s": round(self.timeout.value(), 1),
            "verdict_hold_s": round(self.hold.value(), 1),
            "sound": "1" if self.sound.isChecked() else "0",
        }

    def retranslate(self) -> None:
        self.setWindowTitle(_("Settings"))
        for label, text in zip(self.labels, (_("Camera"), _("Or a video file / image sequence"), _("QR decoder"),
                                             _("Backend timeout (s)"), _("Verdict shown for (s)"), _("Sounds"))):
            label.setText(text)
        self.camera.setItemText(0, _("No camera"))
        for i in range(1, self.camera.count()):
            self.camera.setItemText(i, _("Camera {n}").format(n=self.camera.itemData(i)))
        self.camera_path.setPlaceholderText(_("for tests and demos, e.g. feed/%04d.png"))
        self.sound.setText(_("Play a sound for each verdict"))

