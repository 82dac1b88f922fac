from __future__ import annotations

import pytest

from core.memory import release_free_memory, trims_after


def test_release_free_memory_trims_on_glibc() -> None:
    assert isinstance(release_free_memory(), bool)


def test_trims_after_passes_results_and_errors_through() -> None:
    @trims_after
    def double(x: int) -> int:
        return 2 * x

    @trims_after
    def fail() -> None:
        raise ValueError("kept")

    assert double(21) == 42
    assert double.__name__ == "double"
    with pytest.raises(ValueError, match="kept"):
        fail()
