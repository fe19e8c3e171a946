"""The booklet's preview in the console: a rendered PDF's pages as PNGs, made once per PDF (by its digest), a
new render a new address; a rasteriser that fails is a clear page; the pages on both engines and in every
language."""

from __future__ import annotations

import pytest

from console_booklet_helpers import IMAGE, assert_a_page_image, new_edition, place, printed_vouchers
from console_fixtures import ConsoleClient, unchanged
from server_stub.console import booklet_preview

pytestmark = pytest.mark.slow


def test_the_preview_is_made_once_per_pdf_and_a_new_render_is_a_new_address(console, monkeypatch):
    api = console.api
    console.sign_in_operator()
    eid = api.demo["booklet"]["edition_id"]
    page = f"/console/booklets/{eid}"
    assert 'id="preview"' in console.get(page).text and "/preview/" not in console.get(page).text
    assert console.post(f"{page}/render", {}, token_from=page).status_code == 303
    found = IMAGE.search(console.get(page).text)
    assert found, "no preview image on the page"
    first_url, digest = found.groups()
    runs = []
    real_run = booklet_preview.subprocess.run
    monkeypatch.setattr(booklet_preview.subprocess, "run", lambda *a, **k: runs.append(a) or real_run(*a, **k))
    image = console.get(first_url)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert "immutable" in image.headers["cache-control"]
    assert_a_page_image(image.content)
    pages = api.ok(api.client.get(f"/booklets/{eid}", headers=api.admin))["layout"]["pages"]
    for n in range(1, pages + 1):
        assert console.get(first_url.replace("/1.png", f"/{n}.png")).status_code == 200
    assert console.get(first_url.replace("/1.png", f"/{pages + 1}.png")).status_code == 404
    assert console.get(first_url.replace("/1.png", "/0.png")).status_code == 404
    assert len(runs) == 1, "rasterised once, then read from the cache"
    assert booklet_preview.cached_pages(api.backend.data.path, digest) == pages
    # a new render of other pages (the title, changed behind the backend's back, prints on every page): new
    # bytes, a new address; the old address is gone, and the new one is made once more
    api.execute(f"UPDATE booklet_editions SET title = 'Otra tapa' WHERE id = '{eid}'")
    assert console.post(f"{page}/render", {"force": "1"}, token_from=page).status_code == 303
    second_url, new_digest = IMAGE.search(console.get(page).text).groups()
    assert new_digest == api.ok(api.client.get(f"/booklets/{eid}", headers=api.admin))["pdf"]["sha256"] != digest
    assert console.get(first_url).status_code == 404
    second = console.get(second_url)
    assert second.status_code == 200 and second.content != image.content and len(runs) == 2


def test_a_failed_rasterisation_is_a_clear_page_and_the_pdf_still_downloads(console, monkeypatch):
    api = console.api
    console.sign_in_operator()
    eid = api.demo["booklet"]["edition_id"]
    page = f"/console/booklets/{eid}"
    assert console.post(f"{page}/render", {}, token_from=page).status_code == 303
    url = IMAGE.search(console.get(page).text).group(1)
    monkeypatch.setattr(booklet_preview, "PDFTOPPM", "/nonexistent/pdftoppm")
    failed = console.get(url)
    assert failed.status_code == 503 and "preview_failed" in failed.text
    assert not list(booklet_preview.folder(api.backend.data.path).glob(".making-*")), "no half-made folder left"
    assert console.get(f"{page}/edition.pdf").content.startswith(b"%PDF-")


def test_the_pages_hold_on_both_engines(api):
    """The editions' list (placements counted, PDFs' digests) and a second cover refused as the API documents
    (422 cover_taken, not the unique index's 500), on SQLite and PostgreSQL."""
    console = ConsoleClient(api)
    try:
        console.sign_in_operator()
        edition_id = new_edition(console)
        printed = printed_vouchers(api)
        assert place(console, edition_id, printed[0], "back").status_code == 303
        assert place(console, edition_id, printed[1], "quarter").status_code == 303
        taken = unchanged(api, lambda: place(console, edition_id, printed[2], "back"))
        assert taken.status_code == 422 and 'data-code="cover_taken"' in taken.text
        again = api.client.post(f"/booklets/{edition_id}/placements", headers=api.admin,
                                json={"size": "full", "cover": "back", "content": "voucher", "voucher_id": printed[2]})
        assert again.status_code == 422 and again.json()["error"]["code"] == "cover_taken"
        listed = console.get("/console/booklets").text
        row = listed[listed.index(f'data-edition="{edition_id}"'):].split("</tr>")[0]
        assert 'data-rendered="no"' in row and '<td class="num">2</td>' in row
        page = f"/console/booklets/{edition_id}"
        assert console.post(f"{page}/render", {}, token_from=page).status_code == 303
        listed = console.get("/console/booklets").text
        assert 'data-rendered="yes"' in listed[listed.index(f'data-edition="{edition_id}"'):].split("</tr>")[0]
        image = console.get(IMAGE.search(console.get(page).text).group(1))
        assert image.status_code == 200
        assert_a_page_image(image.content)
    finally:
        console.close()


@pytest.mark.parametrize("language", ["es", "gn", "en", "pt"])
def test_the_pages_read_in_every_language(console, language):
    api = console.api
    console.sign_in_operator()
    assert console.post("/console/language", {"language": language}, token_from="/console/").status_code == 303
    eid = api.demo["booklet"]["edition_id"]
    before = console.get(f"/console/booklets/{eid}")
    assert before.status_code == 200 and f'lang="{language}"' in before.text and 'id="render-for-preview"' in before.text
    assert console.post(f"/console/booklets/{eid}/render", {}, token_from=f"/console/booklets/{eid}").status_code == 303
    for path in ("/console/booklets", f"/console/booklets/{eid}"):
        shown = console.get(path)
        assert shown.status_code == 200 and f'lang="{language}"' in shown.text, path
    listed = console.get("/console/booklets").text
    month = api.demo["booklet"]["month"]
    assert month in listed
    if language == "gn":  # the booklet's own Guaraní month names
        from server_stub.booklet.months import month_gn

        assert month_gn(month) in listed
