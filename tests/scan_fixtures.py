"""What the scanning tests share: the real-photo corpus, fresh personal
tokens, an enrolled till store that accepts them, and QR pictures.

Imported by name from the test modules (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import zxingcpp

from pos_app.core import tokens
from pos_app.store import TillStore

# Inside the repository: a fresh clone has everything its tests read.
CORPUS = Path(__file__).resolve().parent / "data" / "qr-photos"
RETAILER, STORE = "ret-scan", "store-scan"


def corpus_images() -> list[tuple[Path, str]]:
    """(image, expected text) for every corpus picture with a .txt beside it."""
    assert CORPUS.is_dir(), f"the real-photo corpus is missing: expected it at {CORPUS}"
    pairs = []
    for image in sorted(CORPUS.rglob("*")):
        if image.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") and image.with_suffix(".txt").exists():
            # Bytes, not read_text: some expected texts hold \r\n, which text mode would fold.
            pairs.append((image, image.with_suffix(".txt").read_bytes().decode("utf-8")))
    return pairs


def personal_tokens(key, n: int, *, now: float | None = None) -> list[str]:
    now = int(time.time() if now is None else now)
    return [tokens.issue_personal(key, iss="pika", aud=RETAILER, sub=f"cust-{i}", vid="v-app",
                                  jti=uuid.uuid4().hex, iat=now - 5, exp=now + 3600) for i in range(n)]


def catalog(key, *, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    voucher = {"id": "v-app", "retailer_id": RETAILER, "kind": "personal", "status": "published",
               "discount": {"kind": "percent", "value": 10, "currency": "PYG"},
               "texts": {"es": {"title": "Escaneo"}}, "valid_from": None, "valid_until": None,
               "total_limit": None, "store_day_limit": None, "retailer_name": "Pika Scan"}
    return {"retailer": {"id": RETAILER, "name": "Pika Scan"},
            "store": {"id": STORE, "name": "Centro", "timezone": "America/Asuncion"},
            "keys": [{"kid": tokens.key_id(key.public_key()), "pem": tokens.public_pem(key.public_key())}],
            "vouchers": [voucher], "printed_codes": [], "claims": [], "staff": [], "revoked": [],
            "server_time": now}


def enrolled_store(path: Path, key) -> TillStore:
    """A real till store file, enrolled (backend unreachable) with `key` trusted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store = TillStore(path)
    store.save_enrollment({"device_id": "dev-scan", "name": "Caja scan", "device_token": "t",
                           "retailer_id": RETAILER, "store_id": STORE, "keys": []}, "http://127.0.0.1:9")
    store.apply_catalog(catalog(key))
    return store


def qr_picture(text: str, *, scale: int = 4, ec_level: str = "M") -> np.ndarray:
    """A clean QR code (gray, with quiet zone), as a phone screenshot shows it."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level=ec_level)
    return np.ascontiguousarray(np.asarray(barcode.to_image(scale=scale)))


def barcode_picture(text: str, fmt) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(zxingcpp.create_barcode(text, fmt).to_image(scale=3)))


def on_frame(picture: np.ndarray, size=(1280, 720), at=(200, 100)) -> np.ndarray:
    """A BGR camera-sized frame of a grey counter with the picture on it."""
    w, h = size
    frame = np.full((h, w, 3), 128, np.uint8)
    x, y = at
    ph, pw = picture.shape[:2]
    frame[y:y + ph, x:x + pw] = picture[..., None] if picture.ndim == 2 else picture
    return frame
