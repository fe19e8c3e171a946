"""A demo booklet edition that uses every size, tier and content kind, with Guaraní
texts holding every nasal letter (ẽ ĩ ũ ỹ g̃, and the capital G̃) so the fonts are proven."""

from __future__ import annotations

import datetime
import io
from zoneinfo import ZoneInfo

from .editions import Booklets
from .placements import edition as edition_body
from .schedule import coming_month

EXTRA_PRINTED = (
    ("CHIPA20", {"kind": "percent", "value": 20},
     {"es": {"title": "Chipa caliente 20 % menos", "terms": "De 7 a 10 h. Hasta 6 chipas por cupón."},
      "gn": {"title": "Chipa haku 20 % sa'ive", "terms": "7 guive 10 peve. Peteĩ kupõme 6 chipa."}}),
    ("MBEJU", {"kind": "amount", "value": 5000, "currency": "PYG"},
     {"es": {"title": "Mbejú con cocido", "terms": "Gs. 5.000 menos en el combo de la tarde."},
      "gn": {"title": "Mbeju ha kosído", "terms": "Ñemboguejy ka'arúpe. Ẽ, ỹ: ñande rembi'u."}}),
    ("TERERE", {"kind": "percent", "value": 15},
     {"es": {"title": "Tereré frío 2x1", "terms": "Válido los fines de semana."},
      "gn": {"title": "Tereré ro'ysã mokõi peteĩ repyme", "terms": "Arapokõindy pahápe. G̃uahẽ ha eguata."}}),
)


def _image() -> bytes:
    """A small generated PNG (a sunrise of stripes): the image placement without shipping a file."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (480, 300), (250, 236, 200))
    draw = ImageDraw.Draw(img)
    for i in range(12):
        draw.rectangle((0, 300 - 25 * i - 25, 480, 300 - 25 * i), fill=(240 - 8 * i, 150 + 6 * i, 60 + 12 * i))
    draw.ellipse((170, 90, 310, 230), fill=(255, 214, 90))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def add_demo_booklet(backend, retailer_id: str, printed_voucher_id: str) -> dict:
    """Three more printed vouchers and next month's demo edition (draft); what was made.

    "Next month" is by the backend's clock (injected in tests) in the booklet's time zone: the
    machine's own zone would put 23:30 of the 30th in Asunción into the next month."""
    import base64

    codes = []
    voucher_ids = [printed_voucher_id]
    for code, discount, texts in EXTRA_PRINTED:
        voucher = backend.create_voucher({"retailer_id": retailer_id, "kind": "printed", "texts": texts,
                                          "discount": discount, "store_day_limit": 200, "total_limit": 5000})
        backend.change_voucher(voucher["id"], "publish")
        backend.create_printed_code(voucher["id"], code)
        voucher_ids.append(voucher["id"])
        codes.append(code)
    zone = ZoneInfo(backend.config.get("booklet", {}).get("timezone", "America/Asuncion"))
    month = coming_month(datetime.datetime.fromtimestamp(backend.clock(), zone), 1)
    ad = lambda es, gn, body_es, body_gn: {"es": {"title": es, "body": body_es}, "gn": {"title": gn, "body": body_gn}}
    v = voucher_ids
    placements = [
        {"size": "full", "content": "ad", "cover": "front", "premium": True, "advertiser": "Yerba Ñandutí",
         "texts": ad("La yerba de todos los días", "Ka'a ára ha ára g̃uarã",
                     "Compartí un tereré bien frío con los tuyos.", "Emboja'o tereré ro'ysã ne rogayguakuéra ndive.")},
        {"size": "full", "content": "image", "cover": "inside_front", "advertiser": "Panadería Kuarahy",
         "image_base64": base64.b64encode(_image()).decode()},
        {"size": "full", "content": "sponsored", "cover": "inside_back", "advertiser": "Banco Tape Porã",
         "texts": ad("Tu cuenta sin costo", "Nde kuenta hepy'ỹ",
                     "Abrila desde el celular en cinco minutos.", "Eipe'a nde pumbyrýgui po minútope. Ĩ, ũ, ỹ.")},
        {"size": "full", "content": "ad", "cover": "back", "advertiser": "Supermercado Guasu",
         "texts": ad("Ofertas de toda la semana", "Ñemboguejy arapokõindy pukukue",
                     "Carne, frutas y verduras frescas.", "So'o, yva ha ka'avo pyahu.")},
        {"size": "full", "content": "voucher", "voucher_id": v[1], "premium": True},
        {"size": "half", "content": "voucher", "voucher_id": v[2], "premium": True},
        {"size": "half", "content": "ad", "advertiser": "Farmacia Tesãi",
         "texts": ad("Cuidamos tu salud", "Roñangareko nde resãi rehe", "Abierto las 24 horas.",
                     "Ojepe'a ára ha pyhare. G̃uahẽ porãite!")},
        {"size": "quarter", "content": "voucher", "voucher_id": v[3], "premium": True},
        {"size": "quarter", "content": "sponsored", "advertiser": "Radio Ñe'ẽ",
         "texts": ad("Música paraguaya todo el día", "Purahéi paraguái ára pukukue", "FM 101.5", "FM 101.5")},
        {"size": "quarter", "content": "voucher", "voucher_id": v[0]},
    ] + [{"size": "single", "content": "voucher", "voucher_id": v[i % 4], "premium": i == 0} for i in range(6)]
    body = edition_body({"month": month, "title": "Cupones Pika — edición demo", "placements": placements})
    edition = Booklets(backend).create(body)
    return {"edition_id": edition["id"], "month": month, "codes": codes}
