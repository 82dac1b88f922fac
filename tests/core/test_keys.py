"""API keys: stored as hashes, matched, and rate-limited per key."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.keys import PREFIX, RateLimiter, digest, key_name, load_keys, new_key, parse_keys, retry_after_s, stored_line


def test_a_new_key_is_stored_only_as_its_hash(tmp_path: Path) -> None:
    key = new_key()
    assert key.startswith(PREFIX)
    assert key != new_key()
    line = stored_line("alice", key)
    assert key not in line
    assert line == f"alice:{digest(key)}"
    (tmp_path / "keys").write_text(f"# the team's keys\n\n{line}\n")
    keys = load_keys(stored_line("bob", "tsk_b"), tmp_path / "keys")
    assert key_name(keys, key) == "alice"
    assert key_name(keys, "tsk_b") == "bob"
    assert key_name(keys, key + "x") is None


@pytest.mark.parametrize("entry", ["alice", "alice:short", "alice:" + "G" * 64, ":" + "a" * 64])
def test_a_malformed_entry_is_refused_naming_where(entry: str) -> None:
    with pytest.raises(ValueError, match="TOONSERVE_API_KEYS, entry 2"):
        parse_keys(["", entry], "TOONSERVE_API_KEYS")


def test_a_name_with_a_separator_is_refused() -> None:
    with pytest.raises(ValueError, match="one word"):
        stored_line("a:b", new_key())


def test_each_key_has_its_own_bucket_that_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=6, clock=lambda: now[0])
    assert [limiter.take("alice") for _ in range(6)] == [0.0] * 6
    wait = limiter.take("alice")
    assert wait == pytest.approx(10.0)
    assert retry_after_s(wait) == 10
    assert limiter.take("bob") == 0.0
    now[0] += 10.0
    assert limiter.take("alice") == 0.0
    assert limiter.take("alice") > 0
