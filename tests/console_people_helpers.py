"""Helpers shared by the staff, tills and claims pages' tests: a second chain and store, people signed in
with a role, and a QR read back from a screenshot through the till's own decoder."""

from __future__ import annotations

import cv2
import numpy as np

from console_fixtures import ConsoleClient
from pos_app.scan.decoders import ZxingDecoder

ADMIN_PIN = "739205"
MANAGER_PIN = "482916"


def other_chain(api) -> dict:
    """A second retailer with a store, an admin and a manager, made through the backend facade."""
    backend = api.backend
    retailer = backend.create_retailer("Otra Cadena")
    store = backend.create_store(retailer["id"], "Otra Sucursal")
    admin = backend.create_staff(retailer["id"], "Olga Admin", "admin", ADMIN_PIN, None)
    manager = backend.create_staff(retailer["id"], "Omar Gerente", "manager", MANAGER_PIN, store["id"])
    return {"retailer": retailer, "store": store, "admin": admin, "manager": manager}


def second_store(api) -> dict:
    """Another store of the demo retailer, with its own manager."""
    store = api.backend.create_store(api.retailer_id, "Sucursal Dos")
    manager = api.backend.create_staff(api.retailer_id, "Marta Dos", "manager", MANAGER_PIN, store["id"])
    return {"store": store, "manager": manager}


def signed_in(api, staff_id: str, pin: str) -> ConsoleClient:
    client = ConsoleClient(api)
    response = client.sign_in_staff(staff_id, pin)
    assert response.status_code == 303, response.text[:400]
    return client


def decode_png(png: bytes) -> list[str]:
    """The texts of the QR codes in a PNG, read as the till reads a picture (zxing-cpp)."""
    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_COLOR)
    return ZxingDecoder().decode(image)


def message_of(response) -> str:
    """The page's refusal line (above the form) or its fields' messages, for assertion messages."""
    text = response.text
    start = text.find('class="notice bad"')
    return text[start:start + 300] if start >= 0 else text[text.find("field-error"):][:300]
