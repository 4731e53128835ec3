"""Ordered work cut into bounded batches (pure): spaCy's pipe calls, NumPy's hashing passes."""

from __future__ import annotations

from collections.abc import Sequence


def bounded_batches(sizes: Sequence[int], max_items: int, max_total: int) -> list[tuple[int, int]]:
    """[start, end) ranges covering `sizes` in order, each of at most max_items items and max_total in total,
    except that an item larger than max_total gets a batch to itself.
    """
    batches, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_items or total + size > max_total):
            batches.append((start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        batches.append((start, len(sizes)))
    return batches
