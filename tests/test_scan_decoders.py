"""Both decoders and the pipeline on pictures a till meets: voucher codes on
screens, odd arrays, noise, other barcode types, half a code."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import zxingcpp

from pos_app.core import tokens
from pos_app.scan import DECODERS
from pos_app.scan.decoders import ZbarDecoder, ZxingDecoder, make_decoder, to_gray
from pos_app.scan.pipeline import ScanPipeline
from scan_fixtures import CORPUS, barcode_picture, on_frame, personal_tokens, qr_picture


@pytest.fixture(scope="module")
def token() -> str:
    return personal_tokens(tokens.generate_private_key(), 1)[0]


@pytest.fixture(params=DECODERS)
def pipeline(request) -> ScanPipeline:
    return ScanPipeline(make_decoder(request.param))


def test_make_decoder_by_name():
    assert isinstance(make_decoder("zxing"), ZxingDecoder)
    assert isinstance(make_decoder("zbar"), ZbarDecoder)
    assert [make_decoder(n).name for n in DECODERS] == ["zxing", "zbar"]
    for bad in ("ZXING", "opencv", "", None):
        with pytest.raises(ValueError, match="zxing, zbar"):
            make_decoder(bad)


def test_a_token_on_a_frame_reads_back_exactly(pipeline, token):
    code = qr_picture(token)
    assert pipeline.scan(on_frame(code)) == [token]  # BGR camera frame
    assert pipeline.scan(on_frame(code)[:, :, 0].copy()) == [token]  # gray
    bgra = np.dstack([on_frame(code), np.full((720, 1280), 255, np.uint8)])
    assert pipeline.scan(bgra) == [token]
    assert pipeline.scan(on_frame(code)[::-1, ::-1]) == [token]  # upside down, and a non-contiguous view


def test_transparent_screenshot_is_read_on_white(pipeline, token):
    """A PNG with alpha: dark modules opaque, background transparent black."""
    code = qr_picture(token)
    bgra = np.zeros(code.shape + (4,), np.uint8)
    bgra[..., 3] = np.where(code < 128, 255, 0)
    assert pipeline.scan(bgra) == [token]


def test_zxing_reads_inverted_codes_zbar_does_not(token):
    from pos_app.scan.pipeline import INVERTED_EVERY

    inverted = on_frame(255 - qr_picture(token))
    # Held before the camera, a dark-mode code is read within one round of the inverted look.
    zxing, zbar = ScanPipeline(make_decoder("zxing")), ScanPipeline(make_decoder("zbar"))
    assert [token] in [zxing.scan(inverted) for _ in range(INVERTED_EVERY)]
    assert all(zbar.scan(inverted) == [] for _ in range(INVERTED_EVERY))
    assert ScanPipeline(make_decoder("zxing"), thorough=True).scan(inverted) == [token]  # a picture: at once


def test_two_codes_in_one_picture_are_both_returned(pipeline):
    frame = on_frame(qr_picture("FIRST-CODE"), at=(100, 100))
    second = qr_picture("SECOND-CODE")
    frame[300:300 + second.shape[0], 800:800 + second.shape[1]] = second[..., None]
    assert sorted(pipeline.scan(frame)) == ["FIRST-CODE", "SECOND-CODE"]


@pytest.mark.parametrize("name, photo", [("zxing", "qrcode-2/28.webp"), ("zxing", "qrcode-4/14.webp"),
                                         ("zbar", "qrcode-2/32.png"), ("zbar", "qrcode-5/16.png")])
def test_a_small_picture_gets_a_second_look(name, photo):
    """Real small photos each decoder misses at their size and reads at twice it."""
    image = CORPUS / photo
    expected = image.with_suffix(".txt").read_bytes().decode("utf-8")
    gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    decoder = make_decoder(name)
    assert expected not in decoder.decode(gray)
    assert expected in ScanPipeline(decoder).scan(gray)


@pytest.mark.parametrize("image", [
    np.zeros((0, 0), np.uint8), np.zeros((0, 640, 3), np.uint8), np.zeros((1, 1), np.uint8),
    np.zeros((1, 1, 3), np.uint8), np.zeros((20, 20), np.uint8), np.zeros((64, 64, 1), np.uint8),
    np.zeros((64, 64, 2), np.uint8), np.zeros((64, 64, 5), np.uint8), np.zeros((64, 64), np.float32),
    np.zeros((64, 64, 3), np.uint16), np.zeros((4, 4, 4, 4), np.uint8), np.zeros((64,), np.uint8),
    np.full((720, 1280, 4), 255, np.uint8), "not an image", None, b"\x89PNG",
], ids=lambda x: f"{getattr(x, 'shape', x)}-{getattr(x, 'dtype', type(x).__name__)}")
def test_odd_images_give_no_codes_and_never_raise(pipeline, image):
    assert pipeline.scan(image) == []
    assert pipeline.decoder.decode(image) == []


def test_a_huge_frame_is_scaled_down_and_still_read(token):
    """A 9000×6000 frame (54 Mpx) with a big code: capped to 4096 and read."""
    big = np.full((6000, 9000), 200, np.uint8)
    code = qr_picture(token, scale=24)
    big[1000:1000 + code.shape[0], 2000:2000 + code.shape[1]] = code
    assert ScanPipeline(make_decoder("zxing")).scan(big) == [token]


def test_noise_frames_give_nothing(pipeline):
    rng = np.random.default_rng(3)
    for _ in range(5):
        assert pipeline.scan(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)) == []
    speckle = (rng.random((720, 1280)) > 0.5).astype(np.uint8) * 255  # QR-like black and white
    assert pipeline.scan(speckle) == []


@pytest.mark.parametrize("fmt, text", [
    (zxingcpp.BarcodeFormat.EAN13, "5901234123457"),
    (zxingcpp.BarcodeFormat.Code128, "PIKA-COFFEE10"),
    (zxingcpp.BarcodeFormat.DataMatrix, "eyJhbGciOiJFUzI1NiJ9.e30.sig"),
    (zxingcpp.BarcodeFormat.PDF417, "COFFEE10"),
])
def test_other_barcode_types_are_not_returned(pipeline, fmt, text):
    """The till reads QR codes only: another symbology never becomes an input."""
    frame = on_frame(barcode_picture(text, fmt))
    # The picture is a barcode a reader does see when asked for every format…
    assert text in [b.text for b in zxingcpp.read_barcodes(frame)]
    # …and the till's pipeline does not return it.
    assert pipeline.scan(frame) == []


def test_half_a_code_reads_nothing(pipeline, token):
    code = qr_picture(token)
    h, w = code.shape
    for part in (code[:, : w // 2], code[: h // 2], code[h // 4:, w // 4:]):
        assert pipeline.scan(on_frame(np.ascontiguousarray(part))) == []


def test_to_gray_composites_alpha_and_drops_bit_depth():
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[0, 0] = (0, 0, 0, 255)  # opaque black stays black
    bgra[0, 1] = (0, 0, 0, 0)  # transparent becomes white
    assert to_gray(bgra).tolist() == [[0, 255], [255, 255]]
    assert to_gray(np.full((2, 2), 0xABCD, np.uint16)).tolist() == [[0xAB, 0xAB], [0xAB, 0xAB]]
