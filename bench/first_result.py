"""`python -m bench.first_result`: a person's path from `make run` to a downloaded result, timed.

Runs `make run` (seeded random weights where TOONSERVE_WEIGHTS_DIR names none, so anime answers),
waits for the page at http://127.0.0.1:8000/, then in headless Chromium picks a photo (a sample
from ../shared/samples where present), chooses each effect asked for, converts, and downloads the
result. Times each step from the moment `make run` starts; writes bench/results/first-<timestamp>.json
and a table. Chromium clicks at once: a person adds their own reading and clicking time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright
from rich.console import Console
from rich.table import Table

from bench.photos import SAMPLES, photo_files
from core.settings import Settings
from tests.serving import in_background

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
URL = "http://127.0.0.1:8000"


def a_photo(folder: Path) -> Path:
    sample = SAMPLES / "street.jpg"
    return sample if sample.is_file() else photo_files(folder, 1, 1280, 853, step=0)[0]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.first_result", description=__doc__.splitlines()[0])
    parser.add_argument("--effects", nargs="+", default=["watercolor", "anime"])
    args = parser.parse_args()
    env = {"TOONSERVE_RANDOM_WEIGHTS": "1"} if Settings().weights_dir is None else {}
    steps: dict[str, float] = {}
    started = time.perf_counter()
    with in_background(["make", "run"], URL, env):
        steps["ready"] = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
            page = browser.new_page(accept_downloads=True)
            page.goto(URL + "/")
            expect(page.get_by_label("Effect", exact=True)).to_be_enabled()
            steps["page shown"] = time.perf_counter() - started
            chosen = a_photo(Path(scratch))
            page.get_by_label("Photo", exact=True).set_input_files(chosen)
            for effect in args.effects:
                page.get_by_label("Effect", exact=True).select_option(effect)
                page.get_by_role("button", name="Convert").click()
                expect(page.get_by_alt_text(f"{effect} of {chosen.name}")).to_be_visible(timeout=300_000)
                with page.expect_download() as downloaded:
                    page.get_by_role("link", name="Download").first.click()
                downloaded.value.save_as(Path(scratch) / downloaded.value.suggested_filename)
                steps[f"{effect} downloaded"] = time.perf_counter() - started
            browser.close()
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = RESULTS / f"first-{stamp}.json"
    out.write_text(json.dumps({"photo": chosen.name, "seconds_since_make_run": steps}, indent=2) + "\n")
    table = Table(title=f"From `make run` to a downloaded result ({chosen.name})")
    table.add_column("step")
    table.add_column("s since make run", justify="right")
    for step, seconds in steps.items():
        table.add_row(step, f"{seconds:.1f}")
    Console().print(table)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
