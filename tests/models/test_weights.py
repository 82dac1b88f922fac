from __future__ import annotations

import functools
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from models.animegan import ANIME_WEIGHTS
from models.registry import Registry, WeightsEntry
from models.u2net import U2NET_WEIGHTS
from models.weights import WeightsLocations, WeightsNotFound, git_blob_sha1, load_weights, resolve, seeded_init
from tests.conftest import TEST_ENTRIES, save_official


@pytest.mark.parametrize("entry", TEST_ENTRIES, ids=lambda e: e.name)
def test_every_entry_loads_strictly_from_weights_dir(entry: WeightsEntry, weights_dir: Path) -> None:
    loaded = load_weights(entry, WeightsLocations(weights_dir=weights_dir, cache_dir=weights_dir / "none"))
    assert loaded.source.origin == "weights_dir"
    assert not loaded.source.verified
    saved = torch.load(weights_dir / entry.filename, weights_only=True)
    for key, value in loaded.module.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    entry = U2NET_WEIGHTS.get("u2net")
    save_official(seeded_init(U2NET_WEIGHTS.get("u2netp").build(), 0), tmp_path / entry.filename)
    with pytest.raises(WeightsNotFound, match="does not load into u2net"):
        load_weights(entry, WeightsLocations(weights_dir=tmp_path))


def test_git_blob_sha1_matches_git(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 1000)
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True).stdout.strip()
    assert git_blob_sha1(path) == expected


def test_cache_is_used_only_when_its_hash_matches(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    path = save_official(seeded_init(ANIME_WEIGHTS.get("paprika").build(), 7), cache / "paprika.pt")
    entry = replace(ANIME_WEIGHTS.get("paprika"), git_blob_sha1=git_blob_sha1(path))
    source = resolve(entry, WeightsLocations(cache_dir=cache))
    assert (source.origin, source.verified) == ("cache", True)
    corrupt = replace(entry, git_blob_sha1="0" * 40)
    with pytest.raises(WeightsNotFound):
        resolve(corrupt, WeightsLocations(cache_dir=cache))


def test_missing_weights_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFound, match=r"weights 'paprika\.pt' for 'paprika' not found"):
        resolve(ANIME_WEIGHTS.get("paprika"), WeightsLocations(weights_dir=tmp_path, cache_dir=tmp_path, download=False))


def test_failed_download_leaves_no_file(tmp_path: Path) -> None:
    unreachable = replace(ANIME_WEIGHTS.get("paprika"), url="http://127.0.0.1:9/paprika.pt")
    with pytest.raises(WeightsNotFound):
        resolve(unreachable, WeightsLocations(cache_dir=tmp_path, download=True))
    assert list(tmp_path.iterdir()) == []


def test_registry_rejects_duplicates_and_lists_known_names() -> None:
    registry: Registry[WeightsEntry] = Registry("thing")
    registry.add(ANIME_WEIGHTS.get("paprika"))
    with pytest.raises(ValueError, match="duplicate"):
        registry.add(ANIME_WEIGHTS.get("paprika"))
    with pytest.raises(KeyError, match="known: paprika"):
        registry.get("nope")


@pytest.mark.parametrize("entry", [*ANIME_WEIGHTS, *U2NET_WEIGHTS], ids=lambda e: e.name)
def test_every_registry_entry_names_its_licence_and_inputs(entry) -> None:
    assert entry.licence
    assert entry.url.startswith("https://")
    assert entry.transforms.side > 0
    if entry.name in ANIME_WEIGHTS:
        assert "non-commercial" in entry.licence
        assert entry.git_blob_sha1 is not None


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a folder: (base url, folder)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}", served
        server.shutdown()


def test_download_checks_the_hash_then_caches(file_server: tuple[str, Path], tmp_path: Path) -> None:
    base_url, served = file_server
    upstream = save_official(seeded_init(ANIME_WEIGHTS.get("paprika").build(), 3), served / "paprika.pt")
    entry = replace(ANIME_WEIGHTS.get("paprika"), url=f"{base_url}/paprika.pt", git_blob_sha1=git_blob_sha1(upstream))
    cache = tmp_path / "cache"
    loaded = load_weights(entry, WeightsLocations(cache_dir=cache, download=True))
    assert (loaded.source.origin, loaded.source.verified) == ("download", True)
    assert [p.name for p in cache.iterdir()] == ["paprika.pt"]
    again = resolve(entry, WeightsLocations(cache_dir=cache, download=False))
    assert (again.origin, again.verified) == ("cache", True)


def test_download_with_a_wrong_hash_lands_nothing(file_server: tuple[str, Path], tmp_path: Path) -> None:
    base_url, served = file_server
    save_official(seeded_init(ANIME_WEIGHTS.get("paprika").build(), 3), served / "paprika.pt")
    entry = replace(ANIME_WEIGHTS.get("paprika"), url=f"{base_url}/paprika.pt", git_blob_sha1="f" * 40)
    cache = tmp_path / "cache"
    with pytest.raises(WeightsNotFound):
        resolve(entry, WeightsLocations(cache_dir=cache, download=True))
    assert list(cache.iterdir()) == []
