"""The till's entry points: the headless commands (JSON on stdout) and the demo; the demo alone may import server_stub."""
