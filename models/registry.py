"""Named registries, as torchvision keeps its weights enums: duplicates refused, unknown names answered with the known ones."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from torch import nn

from models.names import UnknownName
from models.transforms import ImageTransforms


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Items by name, in the order added; `default` names the one to use when none is asked for."""

    def __init__(self, kind: str, items: Iterable[T] = (), default: str | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        for item in items:
            self.add(item)
        if default is not None:
            self.get(default)
        self._default = default

    def add(self, item: T) -> None:
        if item.name in self._items:
            raise ValueError(f"duplicate {self.kind} {item.name!r}")
        self._items[item.name] = item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(self.kind, name, self.names()) from None

    @property
    def default(self) -> str:
        if self._default is None:
            raise ValueError(f"no default {self.kind}")
        return self._default

    def names(self) -> list[str]:
        return list(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class WeightsEntry:
    """One pretrained checkpoint: where it comes from, its licence, the module it loads into, how photos are prepared for it."""

    name: str
    architecture: str
    build: Callable[[], nn.Module]
    """A fresh, untrained module whose state_dict has the checkpoint's keys and shapes."""
    transforms: ImageTransforms
    filename: str
    url: str
    licence: str
    git_blob_sha1: str | None = None
    """None where upstream publishes no hash: the file is then checked by a strict load only."""
