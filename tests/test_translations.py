"""The gettext catalogs: complete, well-formed, compiled, and in step with the source."""

from __future__ import annotations

import re
import string
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel import dates as babel_dates
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from pos_app.words import i18n
from pos_app.core.domain import Discount

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "translations"
TRANSLATED = ("es", "gn", "pt")


def po(lang):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "pika.po", "rb") as f:
        return read_po(f, locale=lang)


def fields(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def msgid(message) -> str:
    """A message's id: its text, or the singular of a plural message (whose id is both forms)."""
    return message.id if isinstance(message.id, str) else message.id[0]


def forms(message) -> list[tuple[str, str]]:
    """(msgid, translation) for each form: one for a plain message, singular then plurals for ngettext."""
    if isinstance(message.id, str):
        return [(message.id, message.string)]
    ids = list(message.id)
    return [(ids[min(i, len(ids) - 1)], text) for i, text in enumerate(message.string)]


def source_messages() -> set[str]:
    keywords = {"_": None, "N_": None, "ngettext": (1, 2)}
    found = set()
    # The till's texts, and the web console's (its Python and its Jinja2 templates): one catalog for both.
    for folder, method_map in ((ROOT / "pos_app", [("**.py", "python")]),
                               (ROOT / "server_stub" / "console", [("**.py", "python"),
                                                                  ("templates/**.html", "jinja2")])):
        for _file, _line, message, _comments, _context in extract_from_dir(folder, method_map=method_map,
                                                                           keywords=keywords):
            found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_is_translated_with_the_same_fields(lang):
    catalog = po(lang)
    problems = []
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
            continue
        for source, text in forms(message):
            if not text:
                problems.append(f"missing: {source!r}")
            elif fields(source) != fields(text):
                problems.append(f"fields differ: {source!r} -> {text!r}")
            else:
                try:
                    text.format(**{name: "x" for name in fields(source)})
                except (ValueError, IndexError, KeyError) as exc:
                    problems.append(f"broken: {text!r}: {exc}")
    assert not problems, "\n".join(problems)


def test_the_template_holds_exactly_the_texts_of_the_source():
    with open(TRANSLATIONS / "pika.pot", "rb") as f:
        template = {msgid(m) for m in read_po(f) if m.id}
    source = source_messages()
    assert source - template == set(), "run pybabel extract (see translations/README.md)"
    assert template - source == set(), "texts no longer in the source: run pybabel extract"
    for lang in TRANSLATED + ("en",):
        assert {msgid(m) for m in po(lang) if m.id} == template, f"run pybabel update for {lang}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_compiled_catalogs_match_their_sources(lang):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "pika.mo", "rb") as f:
        compiled = {msgid(m): tuple(forms(m)) for m in read_mo(f) if m.id}
    assert compiled == {msgid(m): tuple(forms(m)) for m in po(lang) if m.id}, "run pybabel compile"


def test_no_text_is_built_inside_the_translation_call():
    bad = []
    for path in (ROOT / "pos_app").rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\b_\(\s*f[\"']", line) or re.search(r"\b_\([^)]*%\s*\(", line):
                bad.append(f"{path.name}:{number}: {line.strip()}")
    assert not bad, bad


def test_languages_switch_and_fall_back_for_formatting():
    try:
        i18n.set_language("es")
        assert i18n._("Redeem") == "Canjear"
        assert i18n.format_money(1234567) == "Gs.\xa01.234.567"
        i18n.set_language("gn")
        assert i18n._("Redeem") == "Epuru"
        # Guaraní texts, es_PY numbers: babel's gn would write ₲ and commas.
        assert i18n.format_money(1234567) == "Gs.\xa01.234.567"
        assert i18n.format_discount(Discount("percent", 20)) == "20%"
        i18n.set_language("en")
        assert i18n._("Redeem") == "Redeem"
        i18n.set_language("pt")
        assert i18n._("Redeem") == "Resgatar"
        with pytest.raises(ValueError):
            i18n.set_language("xx")
        assert i18n.language() == "pt"
        with i18n.using("gn"):
            assert i18n._("Lock") == "Emboty"
        assert i18n._("Lock") == "Bloquear"
    finally:
        i18n.set_language(i18n.DEFAULT_LANGUAGE)


def test_a_guarani_ui_formats_times_like_paraguay():
    with i18n.using("gn"):
        # 2026-11-21 15:04 in Asunción (UTC−3); the exact words are babel's (CLDR's) for es_PY, not gn's
        moment = datetime(2026, 11, 21, 15, 4, tzinfo=ZoneInfo("America/Asuncion"))
        assert moment.timestamp() == 1795284240.0
        assert i18n.format_time(1795284240.0, "America/Asuncion") == babel_dates.format_time(
            moment, "short", locale="es_PY")
        assert ":04" in i18n.format_time(1795284240.0, "America/Asuncion")
