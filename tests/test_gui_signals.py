"""The Qt binding itself: signals between threads must not leak or drop references.

PySide6 6.12.0 dropped a reference to True/False/None on every emission; a
till crashed ("bool_dealloc") after a few thousand camera frames. This runs
in a child process so a binding that crashes fails this test, not the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


CHILD = textwrap.dedent("""
    import sys, threading
    from PySide6.QtCore import QCoreApplication, QObject, Signal

    app = QCoreApplication([])

    class Camera(QObject):
        decoded = Signal(str)
        state = Signal(str, bool)

    class Window(QObject):
        def take(self, text): pass
        def state(self, text, flag): pass

    camera, window, seen = Camera(), Window(), []
    camera.decoded.connect(window.take)
    camera.decoded.connect(seen.append)
    camera.decoded.connect(lambda text: None)
    camera.state.connect(window.state)

    def emit(n):
        for _ in range(n):
            camera.decoded.emit("x")
            camera.state.emit("running", True)

    before = [sys.getrefcount(x) for x in (None, True, False)]
    emit(5000)  # on this thread: direct calls
    worker = threading.Thread(target=emit, args=(5000,))
    worker.start()
    while worker.is_alive():
        app.processEvents()
    app.processEvents()
    after = [sys.getrefcount(x) for x in (None, True, False)]
    print(len(seen), *(a - b for a, b in zip(after, before)))
""")


def test_signals_from_threads_keep_their_references():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"the Qt binding crashed: {result.stderr[-600:]}"
    seen, *drift = map(int, result.stdout.split())
    assert seen == 10000
    assert all(abs(d) < 100 for d in drift), drift
