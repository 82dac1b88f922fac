"""API keys: made at random, stored only as their SHA-256, and each with a request-rate bucket.

A key is 32 random bytes, so a plain SHA-256 of it cannot be searched back (a slow hash guards
guessable passwords, not these). A stored key is a line `name:sha256hex`; `toonserve keys new NAME`
makes one. The name labels the key's rate bucket and its log lines, never the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "tsk_"
"""Every key starts so: a leaked one is recognisable in logs and by secret scanners."""


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def stored_line(name: str, key: str) -> str:
    if not name or ":" in name or any(c.isspace() for c in name):
        raise ValueError(f"a key's name is one word without ':'; got {name!r}")
    return f"{name}:{digest(key)}"


def parse_keys(lines: Iterable[str], where: str) -> dict[str, str]:
    """{sha256hex: name} from `name:sha256hex` lines; blank lines and `#` comments skipped."""
    keys: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, hashed = line.partition(":")
        if not name or len(hashed) != 64 or any(c not in "0123456789abcdef" for c in hashed):
            raise ValueError(
                f"{where}, entry {number}: expected name:sha256hex (64 lowercase hex digits), as `toonserve keys new` prints"
            )
        keys[hashed] = name
    return keys


def load_keys(inline: str | None, path: Path | None) -> dict[str, str]:
    """The keys from the environment's comma-separated entries and from the file, together."""
    keys = parse_keys((inline or "").split(","), "TOONSERVE_API_KEYS")
    if path is not None:
        keys |= parse_keys(path.read_text().splitlines(), str(path))
    return keys


def key_name(keys: dict[str, str], presented: str) -> str | None:
    """The name of the stored key `presented` hashes to; None when it is none of them."""
    hashed = digest(presented)
    # Every stored hash is compared, in constant time each, so timing tells nothing of which came close.
    found = [name for stored, name in keys.items() if hmac.compare_digest(stored, hashed)]
    return found[0] if found else None


@dataclass
class RateLimiter:
    """A token bucket per key: `per_minute` requests a minute, and at most that many at once."""

    per_minute: int
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)

    def take(self, name: str) -> float:
        """0 when `name` may go ahead (one token taken); else the seconds until it may."""
        now = self.clock()
        rate = self.per_minute / 60.0
        tokens, then = self._buckets.get(name, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - then) * rate)
        if tokens >= 1.0:
            self._buckets[name] = (tokens - 1.0, now)
            return 0.0
        self._buckets[name] = (tokens, now)
        return (1.0 - tokens) / rate


def retry_after_s(wait: float) -> int:
    """A Retry-After value: whole seconds, never less than what the wait needs."""
    return max(1, math.ceil(wait))
