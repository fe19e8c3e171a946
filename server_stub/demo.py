"""Demo data: a Paraguayan café chain with vouchers in es, gn, en and pt."""

from __future__ import annotations

from .backend import Backend

DEMO_TEXTS = {
    "coffee": {
        "es": {"title": "Café gratis con tu desayuno", "terms": "Un café por desayuno. No acumulable."},
        "gn": {"title": "Kafe rei nde pyharevete rehe", "terms": "Peteĩ kafe pyharevete rehe. Ndojoajúi ambue ndive."},
        "en": {"title": "Free coffee with your breakfast", "terms": "One coffee per breakfast. Not combinable."},
        "pt": {"title": "Café grátis com seu café da manhã", "terms": "Um café por café da manhã. Não cumulativo."},
    },
    "chipa": {
        "es": {"title": "20 % de descuento en chipa", "terms": "Válido de lunes a viernes."},
        "gn": {"title": "20 % ñemboguejy chipápe", "terms": "Oiko arakõi guive arapo peve."},
        "en": {"title": "20 % off chipa", "terms": "Valid Monday to Friday."},
        "pt": {"title": "20 % de desconto em chipa", "terms": "Válido de segunda a sexta."},
    },
    "printed": {
        "es": {"title": "Café chico a mitad de precio", "terms": "Cupón del librito. Descargá la app para más."},
        "gn": {"title": "Kafe michĩ mbytépe hepy", "terms": "Kuatia ñemboguejy. Emboguejy app hetave hag̃ua."},
        "en": {"title": "Small coffee at half price", "terms": "Booklet coupon. Get the app for more deals."},
        "pt": {"title": "Café pequeno pela metade do preço", "terms": "Cupom do livreto. Baixe o app para mais."},
    },
}


def add_demo_data(backend: Backend) -> dict:
    """Create the demo chain and return what a newcomer needs to try it."""
    retailer = backend.create_retailer("Café Pika")
    store = backend.create_store(retailer["id"], "Café Pika — Asunción Centro", "America/Asuncion")
    vouchers = []
    for key, kind, discount in (
        ("coffee", "personal", {"kind": "amount", "value": 12000, "currency": "PYG"}),
        ("chipa", "personal", {"kind": "percent", "value": 20, "currency": "PYG"}),
        ("printed", "printed", {"kind": "percent", "value": 50, "currency": "PYG"}),
    ):
        body = {"retailer_id": retailer["id"], "kind": kind, "texts": DEMO_TEXTS[key], "discount": discount}
        if kind == "printed":
            body.update(store_day_limit=200, total_limit=5000)
        voucher = backend.create_voucher(body)
        backend.change_voucher(voucher["id"], "publish")
        entry = {"id": voucher["id"], "kind": kind}
        if kind == "printed":
            entry["code"] = backend.create_printed_code(voucher["id"], "CAFE50")["code"]
        vouchers.append(entry)
    staff = []
    # Managers and admins have six digits or more (pos_app.core.pins.min_digits).
    for name, role, pin in (("Ana Benítez", "cashier", "1234"), ("Bruno Ayala", "manager", "482916"),
                            ("Carla Giménez", "admin", "739205")):
        member = backend.create_staff(retailer["id"], name, role, pin, store["id"])
        staff.append({"id": member["id"], "name": name, "pin": pin, "role": role})
    enrollment = [backend.create_enrollment_code(store["id"])["code"] for _ in range(3)]
    from .booklet.demo import add_demo_booklet  # the monthly booklet: every size and tier
    booklet = add_demo_booklet(backend, retailer["id"], vouchers[2]["id"])
    return {"retailer_id": retailer["id"], "store_id": store["id"], "vouchers": vouchers,
            "enrollment_codes": enrollment, "staff": staff, "booklet": booklet}
