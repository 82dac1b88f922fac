"""`toonserve convert`: photos and folders through one effect of a running service, kept in their folder tree.

The effect's parameters are the service's own (GET /v1/effects): a flag each, checked by the
service before any photo is sent. Requests go through toonserve.client, which retries what the
service asks to be retried; a photo that still fails is reported by name with the service's words.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from models.names import UnknownName
from toonserve.client import async_toonserve_client, key_headers

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
"""What a folder is searched for; a file named explicitly is sent whatever its name."""
MOST_AT_ONCE = 32
"""A ceiling on requests in flight, whatever the service admits: a cluster admits hundreds."""
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


class ServiceUnavailable(Exception):
    """Nothing answers at the URL, or what answers is not toonserve."""


@dataclass(frozen=True)
class Photo:
    source: Path
    relative: Path
    """Where its results go under the output folder, without a suffix: the tree below the input folder."""


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: dict[Path, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        head = f"done {self.done}, skipped {self.skipped}, failed {len(self.failed)}; {self.rate:.2f} images/s"
        return [head, *(f"  failed {path}: {reason}" for path, reason in sorted(self.failed.items()))]


def collect(inputs: Sequence[Path]) -> list[Photo]:
    """Every photo named or found below a named folder, in order, each with its place in the tree."""
    photos: list[Photo] = []
    for given in inputs:
        if given.is_dir():
            found = sorted(p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
            photos += [Photo(p, p.relative_to(given).with_suffix("")) for p in found]
        else:
            photos.append(Photo(given, Path(given.stem)))
    return photos


def effect_of(effects: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    if name not in effects:
        raise UnknownName("effect", name, effects)
    return effects[name]


def read_effects(url: str, key: str | None = None) -> dict[str, dict[str, Any]]:
    """GET /v1/effects as {name: effect}: a family's members (the filters) listed by their own names."""
    try:
        response = httpx.get(f"{url}/v1/effects", timeout=10.0, headers=key_headers(key))
        if response.status_code == 401:
            raise ServiceUnavailable(
                f"{url} needs an API key: pass --key, or set TOONSERVE_API_KEY ({response.json()['error']['message']})"
            )
        response.raise_for_status()
        described: dict[str, Any] = response.json()
    except httpx.ConnectError:
        raise ServiceUnavailable(
            f"no toonserve answers at {url}: start one with `make run`, or name another with --url"
        ) from None
    except (httpx.HTTPError, ValueError) as error:
        raise ServiceUnavailable(f"{url} answered, but not as toonserve does: {error}") from None
    return {
        name: effect
        for key, value in described.items()
        for name, effect in ([(key, value)] if "path" in value else value.items())
    }


def admitted_at_once(url: str, key: str | None = None) -> int:
    """As many requests in flight as the service holds without refusing any (GET /v1/limits), within MOST_AT_ONCE."""
    told = httpx.get(f"{url}/v1/limits", timeout=10.0, headers=key_headers(key)).json().get("concurrency")
    return max(1, min(MOST_AT_ONCE, told)) if isinstance(told, int) else 4


def existing(photo: Photo, out: Path) -> list[Path]:
    """Results already written for this photo: one file, or a folder of them for an effect that returns several."""
    folder = out / photo.relative
    found = [p for p in (out / photo.relative.parent).glob(f"{photo.relative.name}.*") if p.is_file()]
    return found or (sorted(folder.iterdir()) if folder.is_dir() else [])


async def _convert_one(client: httpx.AsyncClient, path: str, photo: Photo, out: Path, returns: str) -> None:
    response = await client.post(path, content=photo.source.read_bytes())
    if response.status_code != 200:
        try:
            error = response.json()["error"]
            reason = f"{error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            reason = f"HTTP {response.status_code}"
        raise RuntimeError(reason)
    target = out / photo.relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if returns == "image":
        suffix = EXTENSIONS.get(response.headers.get("content-type", ""), ".bin")
        target.with_suffix(suffix).write_bytes(response.content)
        return
    target.mkdir(exist_ok=True)
    for name, uri in response.json()["images"].items():
        media, _, payload = uri.partition(";base64,")
        (target / name).with_suffix(EXTENSIONS.get(media.removeprefix("data:"), ".bin")).write_bytes(base64.b64decode(payload))


async def convert(
    url: str,
    path: str,
    returns: str,
    photos: Iterable[Photo],
    out: Path,
    *,
    force: bool,
    concurrency: int,
    key: str | None = None,
) -> Summary:
    """Sends each photo to `path` (the effect's path and query), `concurrency` at a time, with a progress bar."""
    summary = Summary()
    todo = []
    for photo in photos:
        if not force and existing(photo, out):
            summary.skipped += 1
        else:
            todo.append(photo)
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    queue: asyncio.Queue[Photo] = asyncio.Queue()
    for photo in todo:
        queue.put_nowait(photo)
    with tqdm(total=len(todo), unit="photo", desc="converting", dynamic_ncols=True) as bar:
        async with async_toonserve_client(url, key=key, limits=limits) as client:

            async def worker() -> None:
                while not queue.empty():
                    photo = queue.get_nowait()
                    try:
                        await _convert_one(client, path, photo, out, returns)
                        summary.done += 1
                    except (RuntimeError, httpx.HTTPError, OSError) as error:
                        summary.failed[photo.source] = str(error) or type(error).__name__
                    bar.update()
                    bar.set_postfix(failed=len(summary.failed))

            await asyncio.gather(*(worker() for _ in range(min(concurrency, max(1, len(todo))))))
    summary.seconds = time.perf_counter() - start
    return summary


def check_parameters(url: str, path: str, key: str | None = None) -> None:
    """Asks the service whether the query is right, sending no photo: an empty body is refused as an
    image (400) only once the parameters have passed (422 otherwise)."""
    response = httpx.post(f"{url}{path}", content=b"", timeout=30.0, headers=key_headers(key))
    if response.status_code == 422:
        raise ValueError(response.json()["error"]["message"])
