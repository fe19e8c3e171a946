"""Reading voucher codes from pictures: decoders, the scan pipeline, frame sources.

Qt-free, so the window, the headless commands and the benchmarks share it.
"""
