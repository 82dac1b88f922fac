"""The web page in a real headless Chromium, against the real local service."""

from __future__ import annotations

import io
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from core.effects import CATALOGUE
from tests.faces.conftest import KEYS, MAX_BYTES, Service
from tests.images import decode, encode, photo

pytestmark = pytest.mark.slow

# Chromium's own calls home are off, so that only the page's requests are seen (and allowed out).
QUIET = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium where it is installed (`make browser`), else Playwright's own; never a skip."""
    with sync_playwright() as playwright:
        executable = shutil.which("chromium")
        launched = playwright.chromium.launch(executable_path=executable, args=QUIET)
        yield launched
        launched.close()


@dataclass
class Seen:
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def page(browser: Browser, service: Service, seen: Seen) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.on("request", lambda request: seen.requests.append(request.url))
    opened.on("console", lambda message: seen.errors.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: seen.errors.append(str(error)))
    opened.goto(service.url + "/")
    expect(opened.get_by_label("Effect", exact=True)).to_be_enabled()
    yield opened
    context.close()


def assert_nothing_left_the_service(seen: Seen, service: Service) -> None:
    assert [url for url in seen.requests if not url.startswith((service.url, "data:", "blob:"))] == []
    assert seen.errors == []


def photo_file(tmp_path: Path, name: str = "photo.png", size: tuple[int, int] = (320, 240)) -> Path:
    path = tmp_path / name
    path.write_bytes(encode(photo(*size, seed=3), "PNG"))
    return path


def test_the_page_is_built_from_the_catalogue(page: Page, service: Service, seen: Seen) -> None:
    choices = page.get_by_label("Effect", exact=True).locator("option").evaluate_all("options => options.map(o => o.value)")
    assert choices == [effect.name for effect in CATALOGUE]
    page.get_by_label("Effect", exact=True).select_option("oil_painting")
    expect(page.get_by_label("size", exact=True)).to_have_value("7")
    expect(page.get_by_label("size", exact=True)).to_have_attribute("max", "15")
    page.get_by_label("Preset", exact=True).select_option("fast")
    expect(page.get_by_label("size", exact=True)).to_have_value("3")
    expect(page.get_by_label("max side", exact=True)).to_have_value("800")
    page.get_by_label("Effect", exact=True).select_option("anime")
    expect(page.get_by_label("style", exact=True)).to_have_value("face_paint_512_v2")
    expect(page.locator("#licence")).to_contain_text("non-commercial")
    assert_nothing_left_the_service(seen, service)


def test_a_filter_and_an_anime_style_convert_and_download(page: Page, service: Service, seen: Seen, tmp_path: Path) -> None:
    page.get_by_label("Photo", exact=True).set_input_files(photo_file(tmp_path))
    page.get_by_label("Effect", exact=True).select_option("watercolor")
    page.get_by_role("button", name="Convert").click()
    result = page.get_by_alt_text("watercolor of photo.png")
    expect(result).to_be_visible(timeout=120_000)
    expect(page.locator(".result .hint").first).to_contain_text("decode")
    with page.expect_download() as downloaded:
        page.get_by_role("link", name="Download").first.click()
    saved = tmp_path / downloaded.value.suggested_filename
    downloaded.value.save_as(saved)
    assert decode(saved.read_bytes()).size == (320, 240)

    page.get_by_label("Effect", exact=True).select_option("anime")  # the same photo, still chosen
    page.get_by_label("style", exact=True).select_option("paprika")
    page.get_by_role("button", name="Convert").click()
    expect(page.get_by_alt_text("anime of photo.png")).to_be_visible(timeout=120_000)
    with page.expect_download() as archive:
        page.get_by_role("button", name="Download all").click()
    with zipfile.ZipFile(io.BytesIO(Path(archive.value.path()).read_bytes())) as bundle:
        names = bundle.namelist()
        assert sorted(names) == ["photo-anime.png", "photo-watercolor.png"]
        assert all(decode(bundle.read(name)).size == (320, 240) for name in names)
    assert_nothing_left_the_service(seen, service)


def test_an_oversized_upload_says_so_with_the_limit(page: Page, service: Service, seen: Seen, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\0" * MAX_BYTES)
    page.get_by_label("Photo", exact=True).set_input_files(big)
    page.get_by_role("button", name="Convert").click()
    message = page.locator(".result .error")
    expect(message).to_contain_text("Too large")
    expect(message).to_contain_text("the limit is 1.0 MB")
    assert_nothing_left_the_service(seen, service)


def test_a_file_it_does_not_take_is_refused_in_words(page: Page, service: Service, seen: Seen, tmp_path: Path) -> None:
    gif = tmp_path / "moving.gif"
    gif.write_bytes(encode(photo(32, 32), "GIF"))
    page.get_by_label("Photo", exact=True).set_input_files(gif)
    page.get_by_label("Effect", exact=True).select_option("pencil_sketch")
    page.get_by_role("button", name="Convert").click()
    expect(page.locator(".result .error")).to_contain_text("Not a type it takes")
    # The service's 415 is the page's own message; the browser logs the failed request, nothing else.
    seen.errors = [e for e in seen.errors if "415" not in e]
    assert_nothing_left_the_service(seen, service)


def test_the_page_fits_a_phone_and_works_by_keyboard(browser: Browser, service: Service, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    phone.goto(service.url + "/")
    expect(phone.get_by_label("Effect", exact=True)).to_be_enabled()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.get_by_label("Photo", exact=True).set_input_files(photo_file(tmp_path, size=(120, 90)))
    phone.get_by_label("Effect", exact=True).focus()
    phone.keyboard.press("End")  # the last effect
    focused = [phone.evaluate("document.activeElement.id")]
    for _ in range(40):
        phone.keyboard.press("Tab")
        focused.append(phone.evaluate("document.activeElement.id"))
        if focused[-1] == "convert":
            break
    assert focused[-1] == "convert", focused
    phone.keyboard.press("Enter")
    expect(phone.get_by_alt_text(f"{CATALOGUE.effects.names()[-1]} of photo.png")).to_be_visible(timeout=120_000)
    context.close()


def test_where_the_service_needs_a_key_the_page_asks_for_it_and_sends_it(
    browser: Browser, service: Service, seen: Seen, tmp_path: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.on("console", lambda message: seen.errors.append(message.text) if message.type == "error" else None)
    page.goto(service.keyed + "/")
    key = page.get_by_label("API key", exact=True)
    expect(key).to_be_focused()
    expect(page.locator("#key-status")).to_contain_text("needs an API key")
    key.fill("tsk_not-a-key")
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#key-status")).to_contain_text("not one this service knows")
    key.fill(KEYS["page"])
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_label("Effect", exact=True)).to_be_enabled()
    expect(page.locator("#key-form")).to_be_hidden()
    page.get_by_label("Photo", exact=True).set_input_files(photo_file(tmp_path))
    page.get_by_label("Effect", exact=True).select_option("watercolor")
    page.get_by_role("button", name="Convert").click()
    expect(page.get_by_alt_text("watercolor of photo.png")).to_be_visible(timeout=120_000)
    context.close()
    # The browser logs each 401 it was answered; nothing else may go wrong.
    assert [error for error in seen.errors if "401" not in error] == []
