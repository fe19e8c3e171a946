"""Reading voucher codes from pictures: decoders, the scan pipeline, frame sources.

Qt-free, so the window, the headless commands and the benchmarks share it.
"""

# Here rather than in decoders.py, so command-line parsing names the choices
# without loading OpenCV.
DECODERS = ("zxing", "zbar")
