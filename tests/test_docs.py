"""The docs stay true: generated pages match the code, and every example request is one the service takes."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from core.effects import CATALOGUE
from toonserve import client
from toonserve.docs import ROOT, generated_docs

EXAMPLE = re.compile(r"/v1/[a-z_]+(?:/[a-z_]+)?(?![a-z_/{])(?:\?[^\s'\"`)<>]*)?")
"""A request path in prose or code, with its query: /v1/anime?style=paprika."""
NOT_EFFECTS = {"/v1/effects", "/v1/limits"}
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def examples() -> list[tuple[str, str]]:
    texts = [(path.relative_to(ROOT).as_posix(), path.read_text()) for path in SOURCES]
    texts.append(("toonserve/client.py", client.__doc__ or ""))
    return [(name, found) for name, text in texts for found in dict.fromkeys(EXAMPLE.findall(text))]


@pytest.mark.parametrize("path", list(generated_docs()), ids=lambda p: p.name)
def test_generated_docs_are_current(path: Path) -> None:
    assert path.read_text() == generated_docs()[path], f"{path.relative_to(ROOT)} is stale: run `make docs` and commit it"


def test_the_docs_have_examples() -> None:
    found = {url.partition("?")[0] for _, url in examples()}
    assert {effect.path for effect in CATALOGUE} <= found


@pytest.mark.parametrize(("source", "url"), examples(), ids=lambda value: value)
def test_every_example_request_is_valid(source: str, url: str) -> None:
    path, _, query = url.partition("?")
    if path in NOT_EFFECTS:
        return
    effect = next((e for e in CATALOGUE if e.path == path), None)
    assert effect is not None, f"{source}: {path} is no effect's path"
    effect.resolve(effect.query_model().model_validate(dict(parse_qsl(query))))
