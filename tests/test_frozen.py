"""What a frozen till (the PyInstaller bundle, packaging/bundle.sh) does differently.

Its sys.executable is the till itself, not a python: the booklet's QR helper,
started as `sys.executable -I -c …`, would start another till instead."""

from __future__ import annotations

import sys

from server_stub.booklet import qr, qr_helper


def test_a_frozen_till_never_starts_itself_as_the_qr_helper(tmp_path, monkeypatch):
    till = tmp_path / "pika-till"
    till.write_text("#!/bin/sh\nexit 2\n")  # what the till's argument parser does with `-I -c`
    till.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(till))
    texts = [f"PIKA-{i:04d}" for i in range(qr_helper.MIN_CODES)]
    with qr_helper.Codes(texts) as codes:
        assert codes._process is None, "started the till as the helper"
        assert all(codes(t) == qr.encode(t) for t in texts)  # the render encodes every code itself
