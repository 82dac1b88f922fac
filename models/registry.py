"""A registry of named pretrained weights, as torchvision keeps its weights enums."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    """How an image must be prepared for the weights (the preprocessing that travels with them)."""

    size: int
    size_rule: str
    value_range: tuple[float, float]
    layout: str
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    architecture: str
    filename: str
    url: str
    licence: str
    inputs: InputSpec
    git_blob_sha1: str | None = None
    """None where upstream publishes no hash: the file is then checked by a strict load only."""


class Registry:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, WeightsEntry] = {}

    def add(self, entry: WeightsEntry) -> None:
        if entry.name in self._entries:
            raise ValueError(f"duplicate {self.kind} {entry.name!r}")
        self._entries[entry.name] = entry

    def get(self, name: str) -> WeightsEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[WeightsEntry]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries
