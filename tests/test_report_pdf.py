"""The day report's PDF read back with poppler: the figures, money and Guaraní text in it, the labels of the
language asked, fonts embedded, the hour chart's bars on the rasterised page, at most two pages however many
vouchers and cashiers, hostile typed texts kept inside the page; the CLI and the backend's format=pdf."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from babel import dates as babel_dates
from PIL import Image
from report_fixtures import World, local

from pos_app.cli.commands import EXIT_OK, EXIT_USAGE, main
from pos_app.core import report
from pos_app.core.domain import Discount, Method, Voucher
from pos_app.pdf import chart
from pos_app.pdf.blocks import MARGIN
from pos_app.pdf.day_report import render
from pos_app.store.report import day_report
from pos_app.words import labels
from pos_app.words.i18n import using

D = date(2025, 3, 14)
A4_PT = (595.28, 841.89)
GUARANI_TITLE = "Ka'ay g̃uarã: ẽ ĩ ũ ỹ"


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


def _save(tmp_path: Path, pdf: bytes, name: str = "report.pdf") -> Path:
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / name
    path.write_bytes(pdf)
    return path


def _text(pdf: Path, *options: str) -> str:
    """The PDF's text, with babel's no-break spaces as plain ones."""
    text = _run("pdftotext", *options, "-enc", "UTF-8", str(pdf), "-")
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def _babel(style: str, day: date, hh: int, mm: int = 0) -> str:
    """A wall-clock moment at the store as babel writes it for es_PY, with plain spaces as `_text`
    gives them: the exact words of times are babel's (CLDR's), not ours, and move with its version."""
    moment = datetime.combine(day, dtime(hh, mm), ZoneInfo("America/Asuncion"))
    format_ = babel_dates.format_time if style == "short time" else babel_dates.format_datetime
    text = format_(moment, style.split()[0], locale="es_PY")
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def _pages(pdf: Path) -> list[tuple[float, float]]:
    sizes = []
    for line in _run("pdfinfo", "-f", "1", "-l", "99", str(pdf)).splitlines():
        if line.startswith("Page") and "size:" in line:
            parts = line.split("size:")[1].split()
            sizes.append((float(parts[0]), float(parts[2])))
    return sizes


def _tiles(pdf: Path) -> dict[str, str]:
    """The headline figures: each tile's label and the big number under it (pdftotext -layout keeps columns)."""
    lines = [line for line in _text(pdf, "-layout", "-l", "1").splitlines() if line.strip()]
    found = {}
    for i, line in enumerate(lines[:-1]):
        labels = re.split(r"\s{2,}", line.strip())
        values = re.split(r"\s{2,}", lines[i + 1].strip())
        if len(labels) == 4 and len(values) == 4 and i < 12:
            found.update(zip(labels, values))
    return found


def _raster(pdf: Path, tmp_path: Path, dpi: int = 60) -> list[np.ndarray]:
    prefix = tmp_path / f"page{dpi}"
    _run("pdftoppm", "-r", str(dpi), "-png", str(pdf), str(prefix))
    return [np.asarray(Image.open(png).convert("RGB")).astype(int) for png in sorted(tmp_path.glob(f"page{dpi}-*.png"))]


def _bar_pixels(page: np.ndarray) -> np.ndarray:
    target = np.array([round(255 * v) for v in chart.BAR])
    return (np.abs(page - target) <= 12).all(axis=2)


def _bars(page: np.ndarray) -> list[int]:
    """The chart's bars left to right, as their heights in pixels."""
    mask = _bar_pixels(page)
    columns = mask.sum(axis=0)
    bars, current = [], 0
    for height in list(columns) + [0]:
        if height:
            current = max(current, int(height))
        elif current:
            bars.append(current)
            current = 0
    return bars


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """Two tills of the demo store through one day: 9 redemptions, Gs. 71.000 off, one refused, one conflict."""
    world = World(tmp_path_factory.mktemp("report-pdf"), local(D, 7))
    ana = world.staff("cashier")["id"]
    kaay = world.backend.create_voucher({
        "retailer_id": world.info["retailer_id"], "kind": "printed",
        "texts": {"es": {"title": "Cocido de la tarde"}, "gn": {"title": GUARANI_TITLE}},
        "discount": {"kind": "amount", "value": 7000, "currency": "PYG"}, "store_day_limit": 50})
    world.backend.change_voucher(kaay["id"], "publish")
    world.backend.create_printed_code(kaay["id"], "KAAY")
    one, two = world.till("Caja 1"), world.till("Caja 2")

    def ok(outcome):
        assert outcome.verdict.accepted, outcome.to_json()

    ok(one.redeem(local(D, 9), world.claim(world.coffee, "c1")["token"], Method.CAMERA, staff=ana))
    ok(one.redeem(local(D, 12), world.claim(world.chipa, "c2")["short_code"], Method.TYPED, staff=ana))
    assert one.redeem(local(D, 12, 5), "no es un código", Method.TYPED, staff=ana).verdict.reason == "malformed"
    x = world.claim(world.coffee, "cx")
    ok(one.redeem(local(D, 14), x["token"], Method.CAMERA, staff=ana))
    for minute in range(5):
        ok(one.redeem(local(D, 18, minute), "KAAY", Method.PRINTED, staff=ana))
    ok(two.redeem(local(D, 15), x["token"], Method.CAMERA, online=False))  # Caja 2 has not heard of it
    ok(two.redeem(local(D, 19, 30), world.claim(world.coffee, "c3")["token"], Method.SCANNER, online=False))
    world.clock.t = local(D, 21)
    one.sync()
    two.sync()
    yield world, one, two
    world.close()


def _backend_json(world, till, **params) -> dict:
    response = world.http.get("/reports/daily", headers=world.manager_headers(till),
                              params={"date": D.isoformat(), **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_spanish_pdf_has_the_day_figures_and_fonts(day, tmp_path):
    world, one, _ = day
    r = _backend_json(world, one)
    assert (r["count"], r["discount_total"]["amount"], r["conflicts"]["count"]) == (9, 71000, 1)
    pdf = _save(tmp_path, render(r))
    sizes = _pages(pdf)
    assert 1 <= len(sizes) <= 2
    assert all(abs(w - A4_PT[0]) < 0.1 and abs(h - A4_PT[1]) < 0.1 for w, h in sizes)
    fonts = _run("pdffonts", str(pdf)).splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), "every font embedded"
    assert all("DejaVu" in line for line in fonts), "no base-14 font that lacks ẽ ĩ ũ ỹ"
    tiles = _tiles(pdf)
    assert tiles["Canjes"] == "9" and tiles["Descuento otorgado"] == "Gs. 71.000"
    assert tiles["Intentos"] == "11" and tiles["Rechazos"] == "1" and tiles["Conflictos"] == "1"
    text = _text(pdf)
    for words in ("INFORME DEL DÍA", "Café Pika — Asunción Centro", "viernes, 14 de marzo de 2025",
                  "Todas las cajas de la sucursal", "Zona horaria: America/Asuncion", "Canjes por hora",
                  "Cupones personales", "Cafe gratis con tu desayuno".replace("Cafe", "Café"), "Gs. 12.000",
                  "Cocido de la tarde", "KAAY × 5", "Gs. 35.000", "Ana Benítez", "Sin cajero identificado",
                  "No es un código de cupón", "Cámara", "Código impreso", "Lector de códigos",
                  "Conflictos: canjeado antes en otra caja", f"Caja 1, {_babel('short time', D, 14)}", "Canjes anulados",
                  "No se anuló ningún canje.", "Señales de fraude"):
        assert words in text, words
    pages = [p for p in text.split("\f") if p.strip()]
    assert [f"{i}/{len(pages)}" in p for i, p in enumerate(pages, 1)] == [True] * len(pages), "page numbers"


@pytest.mark.parametrize("lang, words", [
    ("gn", ("ÁRA MARANDU", "Jepuru aravo ha aravo", GUARANI_TITLE, "Opaite caja ko sucursal-pegua",
            "Código kuatiapegua", "Gs. 71.000")),
    ("en", ("DAY REPORT", "Redemptions by hour", "Printed vouchers (booklet codes)", "Friday, March 14, 2025",
            "All tills of the store")),
    ("pt", ("RELATÓRIO DO DIA", "Resgates por hora", "Cupons impressos (códigos do livreto)",
            "sexta-feira, 14 de março de 2025", "Todos os caixas da loja")),
])
def test_the_language_asked(day, tmp_path, lang, words):
    world, one, _ = day
    pdf = _save(tmp_path, render(_backend_json(world, one, lang=lang), language=lang))
    text = _text(pdf)
    for word in words:
        assert word in text, word
    assert "Canjes por hora" not in text


def test_the_hour_chart_has_its_bars(day, tmp_path):
    world, one, _ = day
    [page, *_] = _raster(_save(tmp_path, render(_backend_json(world, one))), tmp_path)
    mask = _bar_pixels(page)
    rows = np.nonzero(mask.any(axis=1))[0]
    assert rows.size and rows.max() < page.shape[0] * 0.6, "bars in the upper part of page 1"
    bars = _bars(page)
    # Hours 9, 12, 14, 18 and 19 redeemed 1, 1, 1, 5 and 1: five bars, the one at 18 five times as high.
    assert len(bars) == 5, bars
    assert bars.index(max(bars)) == 3
    assert abs(bars[3] / bars[0] - 5) < 0.35
    empty = _backend_json(world, one, date=(D + timedelta(days=10)).isoformat())
    (tmp_path / "empty").mkdir()
    pdf = _save(tmp_path / "empty", render(empty))
    [blank, *_] = _raster(pdf, tmp_path / "empty")
    assert not _bar_pixels(blank).any(), "no bars on a day without redemptions"
    assert "Sin canjes" in _text(pdf)


def _crowded(first: date, last: date, *, hostile: str = "") -> dict:
    """A report over many vouchers, cashiers, tills, refusals, conflicts and fraud signals (the real build)."""
    rng = random.Random(7)
    vouchers = {}
    for i in range(300):
        printed = i % 3 == 0
        vouchers[f"v{i}"] = Voucher(
            f"v{i}", "r", "printed" if printed else "personal", "published",
            Discount("amount", 1000 * (1 + i % 20)) if i % 4 else Discount("percent", 10),
            {"es": {"title": f"{hostile}Cupón número {i} con un título bastante largo para una celda"}},
            store_day_limit=5 if printed else None)
    staff = {f"s{i}": f"{hostile}Cajera {i} Benítez" for i in range(200)}
    tills = [f"{hostile}Caja {i}" for i in range(60)]
    reasons = ["malformed", "mistyped", "bad_signature", "unknown_key", "wrong_retailer", "not_yet_valid",
               "expired", "already_redeemed", "revoked", "unpublished", "unknown_code", "limit_reached",
               "rate_limited"]
    days = (last - first).days + 1
    rows = []
    for i in range(6000):
        day = first + timedelta(days=i % days)
        at = local(day, 7 + i % 14, rng.randrange(60), rng.randrange(60))
        voucher = vouchers[f"v{i % 300}"]
        status = "refused" if i % 11 == 0 else "conflict" if i % 97 == 5 else "accepted"
        disputed = i % 53 == 7 and status == "refused"  # given at the till, refused by the backend
        rows.append(report.Row(
            key=f"k{i}", at=at, status=status, decided="offline" if i % 5 == 0 else "online",
            method=Method.PRINTED if voucher.kind == "printed" else rng.choice(Method.ALL),
            till=tills[i % 60], staff_id=f"s{i % 200}", reason=reasons[i % 13] if status == "refused" else None,
            kind=voucher.kind, voucher_id=voucher.id, code=f"{hostile}CODE{i % 40}" if voucher.kind == "printed"
            else None, jti=None if voucher.kind == "printed" else f"j{i % 70:031d}",
            winner={"till": tills[0], "at": at - 60} if status == "conflict" else None,
            voided=i % 89 == 1 and status == "accepted",
            void_proof=("verified", "unverified", "at_backend", "before_proofs", "pending")[i % 5],
            dispute="till_accepted" if disputed else None, till_at=at if disputed else None,
            till_said={"accepted": True, "code": f"{hostile}DISPUTED{i}", "voucher_id": voucher.id} if disputed
            else None, time_flag="future" if i % 211 == 3 else None))
    for s in range(30):  # one till scanning a stack of codes: a velocity flag
        rows.append(report.Row(key=f"fast{s}", at=local(first, 18, 0, s), status="accepted", decided="online",
                               method=Method.CAMERA, till=tills[1], kind="personal", voucher_id="v1", jti=f"f{s}"))  # no cashier
    built = report.build(rows, first=first, last=last, tz_name="America/Asuncion", vouchers=vouchers, staff=staff,
                         scope={"source": "backend", "store_id": "s", "store_name": f"{hostile}Café Pika", "till": None})
    for i, item in enumerate(built["voids"]["items"]):  # what a void carries (pos_app.core.voids)
        item.update(void_reason=f"{hostile}El cliente devolvió el producto {i}", void_staff_id=f"s{i}",
                    void_at=item["at"] + 300)
    return built


@pytest.mark.parametrize("last", [D, D + timedelta(days=91)], ids=["day", "92-days"])
def test_at_most_two_pages_however_many_vouchers_and_cashiers(tmp_path, last):
    r = _crowded(D, last)
    assert len(r["by_voucher"]["personal"]) == 200 and len(r["by_voucher"]["printed"]) == 100
    assert len(r["by_cashier"]) == 201 and len(r["refused"]["by_reason"]) == 13
    assert r["voids"]["count"] > 20 and r["conflicts"]["count"] > 20 and r["fraud"]["flagged"] > 5
    assert len(r["disputes"]) > 20 and {v["proof"] for v in r["voids"]["items"]} == set(report.VOID_PROOFS)
    pdf = _save(tmp_path, render(r))
    assert 1 <= len(_pages(pdf)) <= 2
    text = _text(pdf)
    assert "DISPUTE" in text  # the disputes table (a code, clipped), whatever the catalog says of its title
    assert "… y 190 más" in text and "… y 92 más" in text  # 200 personal vouchers, 10 shown; 100 printed, 8
    assert "… y 191 más" in text and "… y 50 más" in text  # 201 cashiers, 60 tills, 10 shown
    for section in ("Cupones personales", "Cupones impresos", "Por cajero", "Por caja", "Rechazos por motivo",
                    "Señales de fraude", "Canjes anulados", "Conflictos: canjeado antes en otra caja"):
        assert section in text, section
    assert "El cliente devolvió" in text and "Cajera 101 Benítez" in text  # a void's reason; a cashier
    assert "Canjes muy rápidos" in text and "Código intentado una y otra vez" in text
    if last == D:  # 20 uses of each printed voucher in one day, 5 allowed
        assert "Impreso, pasó su límite diario" in text
    else:
        assert "INFORME DE VARIOS DÍAS" in text and "Canjes por día" in text and "(92 días)" in text


def test_a_retailer_report_lists_its_stores_first(tmp_path):
    """Three stores, one with nothing that day: the table comes before the rest, in the language asked."""
    vouchers = {"v1": Voucher(id="v1", retailer_id="r", kind="personal", status="published",
                              discount=Discount(kind="amount", value=5000, currency="PYG"),
                              texts={"es": {"title": "Café"}})}
    stores = [{"id": "s1", "name": "Asunción Centro", "timezone": "America/Asuncion"},
              {"id": "s2", "name": "Encarnación", "timezone": "America/Asuncion"},
              {"id": "s3", "name": "Ciudad del Este", "timezone": "America/Asuncion"}]
    rows = [report.Row(key=f"k{i}", at=local(D, 9 + i), status="accepted", decided="offline" if i == 3 else "online",
                       method=Method.CAMERA, till=f"{name} / Caja 1", kind="personal", voucher_id="v1", jti=f"j{i}",
                       store_id=store)
            for i, (store, name) in enumerate([("s1", "Asunción Centro")] * 3 + [("s2", "Encarnación")])]
    rows.append(report.Row(key="r1", at=local(D, 16), status="refused", decided="online", method=Method.TYPED,
                           till="Encarnación / Caja 1", reason="malformed", store_id="s2"))
    built = report.build(rows, first=D, last=D, tz_name="America/Asuncion", vouchers=vouchers, staff={},
                         scope={"source": "backend", "store_id": None, "store_name": None, "till": None,
                                "retailer_id": "r", "retailer_name": "Café Pika", "stores": stores})
    assert [(e["name"], e["count"], e["discount"], e["refused"], e["offline"]) for e in built["by_store"]] == [
        ("Asunción Centro", 3, 15000, 0, 0), ("Encarnación", 1, 5000, 1, 1), ("Ciudad del Este", 0, 0, 0, 0)]
    pdf = _save(tmp_path, render(built, language="pt"))
    text = _text(pdf, "-layout", "-l", "1")
    assert "Por loja" in text and "Todas as lojas e caixas do varejista" in text
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines()
             if line.strip().startswith(("Asunción", "Encarnación", "Ciudad"))}
    # Store, redemptions, discount, refusals, conflicts, voided, offline.
    assert lines["Asunción"] == ["Centro", "3", "PYG", "15.000", "0", "0", "0", "0"]
    assert lines["Encarnación"] == ["1", "PYG", "5.000", "1", "0", "0", "1"]
    assert lines["Ciudad"] == ["del", "Este", "0", "PYG", "0", "0", "0", "0", "0"]
    assert text.index("Por loja") < text.index("Por caixa")  # stores first, then the tills


def test_a_printed_voucher_past_its_total_limit_is_in_the_pdf(tmp_path):
    vouchers = {"vp": Voucher(id="vp", retailer_id="r", kind="printed", status="published",
                              discount=Discount(kind="amount", value=5000, currency="PYG"),
                              texts={"es": {"title": "Tres nada más"}}, total_limit=3)}
    rows = [report.Row(key=f"k{i}", at=local(D, 9, i), status="accepted", decided="offline", method=Method.PRINTED,
                       till=f"Caja {1 + i % 2}", kind="printed", voucher_id="vp", code="TRES",
                       over_limit=report.TOTAL_LIMIT if i >= 3 else None) for i in range(5)]
    built = report.build(rows, first=D, last=D, tz_name="America/Asuncion", vouchers=vouchers, staff={},
                         scope={"source": "backend", "store_id": "s", "store_name": "Café Pika", "till": None})
    text = " ".join(_text(_save(tmp_path, render(built))).split())
    assert "Impreso, pasó su límite total" in text and "Tres nada más" in text
    assert "2 por encima de su límite total de 3, en Caja 1, Caja 2" in text


HOSTILE = ("\u202e\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea 🎉🧉\x00\x07\x1b[31m"
           "\ud800\r\n\t" + "W" * 10_000 + " ")


@pytest.mark.parametrize("lang", ["es", "gn", "en", "pt"])
def test_the_pdf_names_methods_as_the_screen_does(tmp_path, lang):
    """One vocabulary: each row of "By method" starts with words/labels.py's name for it, then its count."""
    vouchers = {"v1": Voucher(id="v1", retailer_id="r", kind="personal", status="published",
                              discount=Discount(kind="amount", value=5000, currency="PYG"),
                              texts={"es": {"title": "Café"}})}
    counts = {method: n for n, method in enumerate(Method.ALL, 1)}  # each method its own count, to tell rows apart
    rows = [report.Row(key=f"{method}{i}", at=local(D, 9, i), status="accepted", decided="online", method=method,
                       till="Caja 1", kind="personal", voucher_id="v1", jti=f"{method}{i}")
            for method, n in counts.items() for i in range(n)]
    built = report.build(rows, first=D, last=D, tz_name="America/Asuncion", vouchers=vouchers, staff={},
                         scope={"source": "backend", "store_id": "s", "store_name": "Café Pika", "till": None})
    text = _text(_save(tmp_path, render(built, language=lang)), "-layout", "-l", "1")
    with using(lang):
        names = {method: labels.method_name(method) for method in Method.ALL}
    assert len(set(names.values())) == len(names)
    for method, n in counts.items():
        assert re.search(rf"^\s*{re.escape(names[method])}\s{{2,}}{n}\s", text, re.M), (method, names[method])


def test_hostile_texts_stay_inside_the_page(tmp_path):
    r = _crowded(D, D, hostile=HOSTILE)
    r["by_voucher"]["personal"][0]["title"] = "M" * 10_000  # one word wider than any page
    r["scope"]["till"] = HOSTILE
    pdf = _save(tmp_path, render(r, language="gn"))
    assert 1 <= len(_pages(pdf)) <= 2
    text = _text(pdf)
    assert "\x07" not in text and "\x1b" not in text and "Cajera 0" not in text  # clipped away: W… is first
    assert "WWW" in text and "…" in text
    margin = int(MARGIN / 72 * 60) - 2  # in pixels at 60 dpi, with a little room for anti-aliasing
    for page in _raster(pdf, tmp_path):
        ink = (page < 245).any(axis=2)
        assert not ink[:, :margin].any() and not ink[:, -margin:].any(), "nothing drawn into the side margins"


def test_cli_writes_a_pdf_and_refuses_a_terminal(day, tmp_path, capsysbinary, monkeypatch):
    _, one, _ = day
    out = tmp_path / "informe.pdf"
    assert main(["report", "--data", str(one.data), "--date", D.isoformat(), "--format", "pdf", "--lang", "gn",
                 "--out", str(out)]) == EXIT_OK
    text = _text(out)
    assert "Caja: Caja 1" in text and GUARANI_TITLE in text and "ÁRA MARANDU" in text
    assert _tiles(out)["Jepuru"] == "8"  # this till's own: all but Caja 2's coffee
    capsysbinary.readouterr()
    assert main(["report", "--data", str(one.data), "--date", D.isoformat(), "--format", "pdf"]) == EXIT_OK
    piped = capsysbinary.readouterr().out
    assert piped.startswith(b"%PDF-") and piped.rstrip().endswith(b"%%EOF")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["report", "--data", str(one.data), "--date", D.isoformat(), "--format", "pdf"]) == EXIT_USAGE
    captured = capsysbinary.readouterr()
    assert captured.out == b"" and b"--out" in captured.err


def test_backend_answers_format_pdf_to_staff(day, tmp_path):
    world, one, two = day
    response = world.http.get("/reports/daily", headers=world.manager_headers(two),
                              params={"date": D.isoformat(), "format": "pdf", "lang": "pt"})
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/pdf"
    pdf = _save(tmp_path, response.content)
    assert 1 <= len(_pages(pdf)) <= 2
    assert _tiles(pdf)["Resgates"] == "9"
    assert "Café Pika — Asunción Centro" in _text(pdf)
    cashier = world.manager_headers(one, role="cashier")
    refused = world.http.get("/reports/daily", headers=cashier, params={"date": D.isoformat(), "format": "pdf"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


def test_the_till_report_renders_as_it_is_built(day, tmp_path):
    _, one, _ = day
    r = day_report(one.store, D, language="es")
    pdf = _save(tmp_path, render(r, generated_at=local(D, 22)))
    text = _text(pdf)
    assert f"Generado el {_babel('medium datetime', D, 22)}" in text
    assert "Del escaneo al veredicto, mediana" in text and "Sincronizaciones correctas" in text
