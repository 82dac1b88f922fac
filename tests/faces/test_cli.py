"""The `toonserve` command, as installed into the venv, against the real local service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.art import FILTERS
from core.keys import stored_line
from tests.faces.conftest import KEYS, Service
from tests.images import decode, encode, photo
from tests.serving import free_port

pytestmark = pytest.mark.slow

TOONSERVE = Path(sys.executable).parent / "toonserve"
"""The console script `pip install -e .` puts beside the venv's python ([project.scripts])."""


def toonserve(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOONSERVE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """A folder tree of photos: {relative path: size}, with one file that is no image at all."""
    layout = {"a.jpg": (160, 120), "sub/b.png": (96, 64), "sub/deeper/c.webp": (64, 96)}
    for relative, size in layout.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(photo(*size), {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[path.suffix]))
    (root / "sub" / "unreadable.jpg").write_bytes(b"not a photo at all")
    return layout


def test_a_folder_tree_converts_keeping_its_shape_and_names_what_failed(service: Service, tmp_path: Path) -> None:
    layout = tree(tmp_path / "in")
    out = tmp_path / "out"
    first = toonserve("convert", tmp_path / "in", "--effect", "pencil_sketch", "--out", out, "--url", service.url)
    assert first.returncode == 1, first.stderr
    for relative, size in layout.items():
        assert decode((out / relative).with_suffix(".png").read_bytes()).size == size
    assert "done 3, skipped 0, failed 1" in first.stdout
    (failure,) = [line for line in first.stdout.splitlines() if line.strip().startswith("failed ")]
    assert "unreadable.jpg" in failure
    assert "invalid_image" in failure
    assert "photo/s" in first.stderr  # the progress bar's rate

    (tmp_path / "in" / "sub" / "unreadable.jpg").unlink()
    again = toonserve("convert", tmp_path / "in", "--effect", "pencil_sketch", "--out", out, "--url", service.url)
    assert again.returncode == 0, again.stderr
    assert "done 0, skipped 3, failed 0" in again.stdout


def test_effect_parameters_and_presets_are_flags(service: Service, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(encode(photo(400, 300), "PNG"))
    styled = toonserve(
        "convert",
        source,
        "--effect",
        "anime",
        "--style",
        "paprika",
        "--format",
        "jpeg",
        "--out",
        tmp_path / "anime",
        "--url",
        service.url,
    )
    assert styled.returncode == 0, styled.stderr
    assert decode((tmp_path / "anime" / "photo.jpg").read_bytes()).format == "JPEG"
    fast = toonserve(
        "convert",
        source,
        "--effect",
        "oil_painting",
        "--preset",
        "fast",
        "--max-side",
        "200",
        "--out",
        tmp_path / "oil",
        "--url",
        service.url,
    )
    assert fast.returncode == 0, fast.stderr
    assert decode((tmp_path / "oil" / "photo.png").read_bytes()).size == (200, 150)


def test_bad_parameters_are_refused_before_any_photo_is_sent(service: Service, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(encode(photo(40, 30), "PNG"))
    unknown = toonserve(
        "convert", source, "--effect", "anime", "--style", "hayao", "--out", tmp_path / "out", "--url", service.url
    )
    assert unknown.returncode == 2
    assert "hayao" in unknown.stderr
    out_of_bounds = toonserve(
        "convert", source, "--effect", "oil_painting", "--size", "99", "--out", tmp_path / "out", "--url", service.url
    )
    assert out_of_bounds.returncode == 2
    assert "bad parameters" in out_of_bounds.stderr
    assert "size" in out_of_bounds.stderr
    assert not (tmp_path / "out").exists()


def test_an_effect_of_several_images_writes_a_folder_per_photo(service: Service, tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    source.write_bytes(encode(photo(120, 90), "JPEG"))
    result = toonserve("convert", source, "--effect", "art", "--out", tmp_path / "out", "--url", service.url)
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "out" / "photo").iterdir())
    assert written == sorted(f"{name}.png" for name in FILTERS.names())


def test_nothing_answering_is_said_with_the_command_that_starts_one(tmp_path: Path) -> None:
    result = toonserve(
        "convert", tmp_path, "--effect", "anime", "--out", tmp_path / "out", "--url", f"http://127.0.0.1:{free_port()}"
    )
    assert result.returncode == 2
    assert "no toonserve answers" in result.stderr
    assert "make run" in result.stderr


def test_effects_lists_the_catalogue(service: Service) -> None:
    result = toonserve("effects", "--url", service.url)
    assert result.returncode == 0, result.stderr
    assert "watercolor  /v1/filters/watercolor" in result.stdout
    assert "preset fast" in result.stdout
    assert "--style" in result.stdout


def test_where_the_service_needs_a_key_the_cli_says_so_and_sends_one(service: Service, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(encode(photo(96, 64), "PNG"))
    command = ("convert", source, "--effect", "watercolor", "--out", tmp_path / "out", "--url", service.keyed)
    refused = toonserve(*command)
    assert refused.returncode == 2
    assert "needs an API key: pass --key, or set TOONSERVE_API_KEY" in refused.stderr
    keyed = toonserve(*command, env={"TOONSERVE_API_KEY": KEYS["cli"]})
    assert keyed.returncode == 0, keyed.stderr
    assert decode((tmp_path / "out" / "photo.png").read_bytes()).size == (96, 64)


def test_keys_prints_a_new_key_once_and_the_line_to_store() -> None:
    made = toonserve("keys", "alice")
    assert made.returncode == 0, made.stderr
    key, line = (row.strip() for row in made.stdout.splitlines() if row.startswith("  "))
    assert line == stored_line("alice", key)
