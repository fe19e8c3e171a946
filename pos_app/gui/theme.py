"""The till's look: touch-sized controls, large type, verdict colours readable in glare.

Colours pair with a symbol and a headline (never colour alone); green and red
are dark enough for white text at a 4.5:1 contrast.
"""

from __future__ import annotations

ACCEPTED = "#1b7a34"
REFUSED = "#b3261e"
CAUTION = "#b26a00"
READY = "#28313b"

STYLE_SHEET = f"""
QWidget {{ font-size: 18px; }}
QPushButton, QToolButton, QComboBox, QLineEdit {{ min-height: 48px; }}
QPushButton, QToolButton {{ padding: 4px 18px; border-radius: 8px; background: #e6e9ee;
    border: 1px solid #b8bfc8; }}
QPushButton:focus, QToolButton:focus, QLineEdit:focus, QComboBox:focus {{ border: 3px solid #1565c0; }}
QPushButton:pressed {{ background: #c9d0d8; }}
QPushButton#primary {{ background: #1565c0; color: white; border: none; font-weight: bold; }}
QPushButton#primary:disabled {{ background: #9fb7d6; }}
QPushButton#keypad {{ font-size: 28px; min-width: 88px; min-height: 64px; }}
QLineEdit {{ padding: 4px 12px; border: 1px solid #8a94a0; border-radius: 8px; background: white; }}
QLineEdit#codeEntry {{ font-size: 22px; font-family: "DejaVu Sans Mono", monospace; }}
QLabel#screenTitle {{ font-size: 32px; font-weight: bold; }}
QLabel#loginError {{ color: {REFUSED}; font-weight: bold; }}
QLabel#cameraView {{ background: #11161c; color: #e8edf2; border-radius: 10px; padding: 12px; }}
QStatusBar QLabel {{ padding: 0 14px 0 4px; border-right: 1px solid #c4cad2; }}
QFrame#topBar {{ background: #f2f4f7; border-bottom: 1px solid #d0d5dc; }}
QLabel#tillName {{ font-weight: bold; }}
QLabel#onlineBadge[online="true"] {{ color: {ACCEPTED}; font-weight: bold; }}
QLabel#onlineBadge[online="false"] {{ color: {CAUTION}; font-weight: bold; }}
QLabel#skewBadge {{ color: {REFUSED}; font-weight: bold; }}

QFrame#verdictPanel {{ border-radius: 14px; background: {READY}; }}
QFrame#verdictPanel[state="accepted"] {{ background: {ACCEPTED}; }}
QFrame#verdictPanel[state="refused"] {{ background: {REFUSED}; }}
QFrame#verdictPanel[state="caution"] {{ background: {CAUTION}; }}
QFrame#verdictPanel QLabel {{ color: white; }}
QLabel#verdictSymbol {{ font-size: 96px; font-weight: bold; }}
QLabel#verdictHeadline {{ font-size: 40px; font-weight: bold; }}
QLabel#verdictDiscount {{ font-size: 64px; font-weight: bold; }}
QLabel#verdictTitle {{ font-size: 28px; }}
QLabel#verdictDetails {{ font-size: 22px; }}
QLabel#verdictHint {{ font-size: 22px; background: rgba(255, 255, 255, 0.18); border-radius: 8px; padding: 8px; }}
"""
