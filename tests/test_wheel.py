"""The till works installed from its wheel, away from the source checkout (issue 12 §6).

The wheel is built from a copy of the sources (the work tree gets no build/
nor egg-info), installed with --no-deps into a fresh venv in tmp_path, and
run from a folder that is not the checkout: the headless demo, and a day
report as a PDF in Guaraní. The venv borrows the locked dependencies from
this one through a .pth line (no network); a .pth line does not run that
folder's own .pth files, so this checkout's editable finder stays out, and
the test checks that pos_app really is the wheel's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "pos_app", "server_stub", "assets", "translations", "packaging")

# Run inside the new venv: a demo backend with an enrolled till left in a folder, and where everything was found.
_PREPARE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import pos_app, server_stub
    from pos_app.words import i18n
    from pos_app.cli.demo import prepare_demo
    from pos_app.gui import sounds
    from pos_app.pdf import fonts
    from pos_app.store import till_store

    demo = prepare_demo(Path(sys.argv[1]))
    printed = next(v for v in demo.info["vouchers"] if v["kind"] == "printed")
    demo.stop()
    print(json.dumps({
        "pos_app": pos_app.__file__, "server_stub": server_stub.__file__,
        "catalogs": str(i18n.TRANSLATIONS_DIR), "fonts": str(fonts.find_font("DejaVuSans.ttf").parent),
        "sounds": str(sounds.SOUNDS_DIR), "keys": str(till_store.ASSET_KEYS_DIR),
        "printed": printed["code"], "till": str(demo.till_data),
    }))
    """
)


def _run(args: list, cwd: Path, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the new venv's python, its site-packages, an environment, a cwd outside the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(tmp / "home"), QT_QPA_PLATFORM="offscreen", PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", "."],
         cwd=src, env=env, timeout=120)
    (wheel,) = (tmp / "dist").glob("pika_till-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp, env=env)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp, env=env).stdout.strip())
    (site / "locked_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel],
         cwd=tmp, env=env, timeout=120)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return python, site, env, elsewhere, wheel


def test_the_wheel_carries_the_tills_files(installed):
    *_, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for lang in ("es", "gn", "pt", "en"):
        assert f"pos_app/_data/translations/{lang}/LC_MESSAGES/pika.mo" in names
    for name in ("sounds/accepted.wav", "sounds/refused.wav", "fonts/DejaVuSans.ttf", "fonts/DejaVuSans-Bold.ttf",
                 "fonts/DejaVuSansMono-Bold.ttf", "fonts/LICENSE", "front/pika-backend.conf.template",
                 "front/standalone.conf.template"):
        assert f"pos_app/_data/{name}" in names
    assert "server_stub/openapi.json" in names


def test_headless_demo_and_a_guarani_pdf_from_the_installed_wheel(installed):
    python, site, env, elsewhere, _ = installed
    found = json.loads(_run([python, "-c", _PREPARE, elsewhere / "demo"], cwd=elsewhere, env=env).stdout
                       .strip().splitlines()[-1])
    for what in ("pos_app", "server_stub"):
        assert Path(found[what]).is_relative_to(site), (what, found[what], "not the wheel's: the checkout leaked in")

    demo = _run([python, "-m", "pos_app", "--demo", "--headless"], cwd=elsewhere, env=env, timeout=90)
    assert "ACCEPTED" in demo.stdout and "REFUSED: already_redeemed" in demo.stdout
    assert "That was the till's work, end to end." in demo.stdout

    till = found["till"]
    _run([python, "-m", "pos_app", "redeem", "--data", till, "--offline", "--printed", found["printed"]],
         cwd=elsewhere, env=env)
    today = dt.datetime.now(ZoneInfo("America/Asuncion")).date().isoformat()
    pdf = elsewhere / "informe.pdf"
    _run([python, "-m", "pos_app", "report", "--data", till, "--date", today, "--format", "pdf", "--lang", "gn",
          "--out", pdf], cwd=elsewhere, env=env)
    text = _run(["pdftotext", "-enc", "UTF-8", pdf, "-"], cwd=elsewhere, env=env).stdout
    assert "ÁRA MARANDU" in text and "Jepuru aravo ha aravo" in text
    embedded = _run(["pdffonts", pdf], cwd=elsewhere, env=env).stdout
    assert "DejaVuSans" in embedded
    for what in ("catalogs", "fonts", "sounds", "keys"):  # the wheel's own copies, none read from elsewhere
        assert Path(found[what]).is_relative_to(site / "pos_app" / "_data"), (what, found[what])
    assert (Path(found["sounds"]) / "accepted.wav").is_file()
    # The operator's front config, from the installed wheel's own template.
    key, cert = elsewhere / "front.key", elsewhere / "front.crt"
    key.write_text("not read: front-config checks only that the files are there\n")
    cert.write_text("not read\n")
    conf = elsewhere / "front.conf"
    _run([python, "-m", "server_stub", "front-config", "--server-name", "pika.example", "--cert", cert, "--key", key,
          "--out", conf], cwd=elsewhere, env=env)
    assert "proxy_pass" in conf.read_text() and "pika.example" in conf.read_text()
