"""`make screenshot`: docs/screenshot.png, the web page with results, as a person sees it.

Starts toonserve on a local Ray (the weights in TOONSERVE_WEIGHTS_DIR, else seeded random ones),
opens the page in headless Chromium (Debian's where installed, else Playwright's own), converts
photos (../shared/samples where present, else generated ones) with a filter, whose pictures are
real even without weights, and saves the page.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from bench.photos import SAMPLES, photo_files
from core.settings import Settings
from tests.serving import deploy, local_serve

ROOT = Path(__file__).resolve().parent.parent
SHOT = ROOT / "docs" / "screenshot.png"


def photos(folder: Path, count: int) -> list[Path]:
    found = sorted(SAMPLES.glob("*.jpg"))[:count] if SAMPLES.is_dir() else []
    return found or photo_files(folder, count, 800, 600, step=160)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("--effect", default="watercolor")
    parser.add_argument("--out", type=Path, default=SHOT)
    args = parser.parse_args()
    settings = Settings()
    if settings.weights_dir is None:
        settings = settings.model_copy(update={"random_weights": True, "download_weights": False})
    with tempfile.TemporaryDirectory() as scratch, local_serve() as url, sync_playwright() as playwright:
        deploy(settings, "toonserve", "/")
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page.goto(url + "/")
        expect(page.get_by_label("Effect", exact=True)).to_be_enabled()
        chosen = photos(Path(scratch), 3)
        page.get_by_label("Photo", exact=True).set_input_files(chosen)
        page.get_by_label("Effect", exact=True).select_option(args.effect)
        page.get_by_label("Preset", exact=True).select_option("fast")
        page.get_by_role("button", name="Convert").click()
        for path in chosen:
            expect(page.get_by_alt_text(f"{args.effect} of {path.name}")).to_be_visible(timeout=300_000)
        expect(page.locator("#status")).to_contain_text("done")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
