"""Resident memory of a process and all its descendants, for the benches that run the CLI as a subprocess."""

from __future__ import annotations

import psutil


def tree_rss_bytes(pid: int) -> int:
    """RSS summed over the process and its descendants (the runner and the workers it starts); 0 once gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total
