"""The timing loop: per-call wall times, rotating orders, and the summary statistics."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def call_ms(fn: Callable[[], object]) -> float:
    """Milliseconds of one call of ``fn``."""
    tick = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - tick)


def batches(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in consecutive batches of ``size`` (a short last batch is dropped)."""
    return [list(items[i : i + size]) for i in range(0, len(items) - size + 1, size)]


def ms_per_item(fn: Callable[[list[T]], object], items: Sequence[T], batch: int, passes: int) -> list[float]:
    """Per-call times over ``passes`` passes of ``items`` in batches, each divided by the batch size (ms)."""
    out = []
    for _ in range(passes):
        for chunk in batches(items, batch):
            out.append(call_ms(lambda chunk=chunk: fn(chunk)) / batch)
    return out


def rotated(names: Sequence[str], round_index: int) -> list[str]:
    """``names`` starting at ``round_index`` (mod the count): each name leads a round in turn."""
    if not names:
        return []
    k = round_index % len(names)
    return [*names[k:], *names[:k]]


def summary(values: Sequence[float], stat: str = "median") -> float:
    """``median`` or ``best`` (minimum: the figure least disturbed by other load) of ``values``."""
    if not values:
        return float("nan")
    return min(values) if stat == "best" else statistics.median(values)
