"""Names looked up by the user: an unknown one is answered with the ones that are known."""

from __future__ import annotations

from collections.abc import Iterable


class UnknownName(KeyError):
    """The one message for a name nobody registered: it lists the names that are."""

    def __init__(self, kind: str, name: object, known: Iterable[str]) -> None:
        self.message = f"unknown {kind} {name!r}; known: {', '.join(known) or 'none'}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message
