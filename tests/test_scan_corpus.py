"""Real photographs of QR codes (phones, print, screens, tilt, blur) through
the till's own pipeline: the share that decodes to exactly the expected text."""

from __future__ import annotations

import pytest

from pos_app.scan.decoders import make_decoder
from pos_app.scan.pipeline import scan_image_file
from scan_fixtures import corpus_images

# Measured: the pipeline reads 127 with zxing-cpp and 102 with pyzbar; the
# issue asks for 123, and pyzbar alone (no pipeline) reads 95.
EXPECTED_AT_LEAST = {"zxing": 123, "zbar": 95}


@pytest.fixture(scope="module")
def corpus():
    pairs = corpus_images()
    assert len(pairs) == 137, f"the corpus changed: {len(pairs)} pictures with a .txt"
    return pairs


@pytest.mark.parametrize("name", ["zxing", "zbar"])
def test_corpus_decodes_to_the_expected_texts(corpus, name):
    decoder = make_decoder(name)
    exact, wrong, missed = 0, [], []
    for image, expected in corpus:
        texts = scan_image_file(image, decoder)
        if expected in texts:
            exact += 1
        elif texts:
            wrong.append((image.name, texts))
        else:
            missed.append(f"{image.parent.name}/{image.name}")
    assert exact >= EXPECTED_AT_LEAST[name], f"{name}: {exact}/{len(corpus)} exact; missed {missed}"
    if name == "zxing":
        # A misread would reach the verdict as a code nobody showed. (zbar
        # guesses other charsets for some Shift-JIS codes, and reads the outer
        # code of a nested "double QR": texts the corpus does not state, so
        # not counted, and no voucher token is Shift-JIS.)
        assert wrong == [], f"zxing read other texts than expected: {wrong}"
