"""The wheel carries the project's own files: compiled catalogs, sounds, fonts, bundled keys, the front's templates.

They are kept at the repository's top (translations/, assets/), not inside
the package, so building copies them into the build tree as
`pos_app/_data/<name>` (the folders pos_app/resources.py names), and
compiles each translations/*/LC_MESSAGES/pika.po there with babel, so a wheel
never ships a catalog older than its texts. An editable install reads the
checkout itself and skips this. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Which files of each resource folder go in; the catalogs are compiled instead of copied.
SHIPPED = {"sounds": "*.wav", "fonts": "*", "keys": "*.pem", "front": "*.template"}


class build_py_with_data(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        layout = runpy.run_path(str(ROOT / "pos_app" / "resources.py"))
        target = Path(self.build_lib) / "pos_app" / layout["PACKED"]
        if target.exists():
            shutil.rmtree(target)  # a catalog or sound removed since the last build must not linger
        self._compile_catalogs(ROOT / layout["CHECKOUT"]["translations"], target / "translations")
        for name, pattern in SHIPPED.items():
            source = ROOT / layout["CHECKOUT"][name]
            for file in sorted(source.glob(pattern)) if source.is_dir() else ():
                if file.is_file():
                    (target / name).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, target / name / file.name)
        for needed in ("sounds", "fonts"):
            if not (target / needed).is_dir():
                raise SystemExit(f"setup.py: no {needed} in {ROOT / layout['CHECKOUT'][needed]}: not a full checkout")

    @staticmethod
    def _compile_catalogs(source: Path, target: Path) -> None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        catalogs = sorted(source.glob("*/LC_MESSAGES/pika.po"))
        if not catalogs:
            raise SystemExit(f"setup.py: no catalogs in {source}: not a full checkout")
        for po in catalogs:
            with po.open("rb") as f:
                catalog = read_po(f, locale=po.parts[-3])
            mo = target / po.relative_to(source).with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with mo.open("wb") as f:
                write_mo(f, catalog)


setup(cmdclass={"build_py": build_py_with_data})
