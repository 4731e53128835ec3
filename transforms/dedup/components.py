"""Graph kernel in NumPy: LSH bucket pairs, large-star/small-star connected components, and their roots."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def bucket_pairs(keys: np.ndarray, uids: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Candidate pairs (a < b) of members sharing a band key, deduplicated, plus (capped buckets, skipped pairs).

    A bucket larger than `cap` is split into consecutive sub-buckets of `cap` members (in uid order), compared
    within each and chained by their first members, so a hot bucket costs O(n * cap), not O(n^2).
    """
    empty = np.zeros(0, np.uint64)
    if keys.size < 2:
        return empty, empty, 0, 0
    order = np.lexsort((uids, keys))
    k, u = keys[order], uids[order]
    distinct = np.concatenate(([True], (k[1:] != k[:-1]) | (u[1:] != u[:-1])))
    k, u = k[distinct], u[distinct]
    bounds = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1], [True])))
    starts, sizes = bounds[:-1], np.diff(bounds)
    a_parts, b_parts = [], []
    small = (sizes >= 2) & (sizes <= cap)
    for size in np.unique(sizes[small]).tolist():
        # All buckets of one size at once: a (buckets, size) member matrix, then its upper triangle.
        members = u[starts[small & (sizes == size)][:, None] + np.arange(size)]
        ia, ib = np.triu_indices(size, 1)
        a_parts.append(members[:, ia].ravel())
        b_parts.append(members[:, ib].ravel())
    capped = skipped = 0
    for start, size in zip(starts[sizes > cap].tolist(), sizes[sizes > cap].tolist(), strict=True):
        capped += 1
        members = u[start : start + size]
        compared = 0
        for s in range(0, size, cap):
            ia, ib = np.triu_indices(min(cap, size - s), 1)
            a_parts.append(members[s + ia])
            b_parts.append(members[s + ib])
            compared += ia.size
        heads = members[::cap]
        a_parts.append(heads[:-1])
        b_parts.append(heads[1:])
        skipped += size * (size - 1) // 2 - compared - (heads.size - 1)
    if not a_parts:
        return empty, empty, capped, skipped
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    a, b = unique_pairs(np.minimum(a, b), np.maximum(a, b))
    return a, b, capped, skipped


def unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (a, b) pairs, sorted by a then b (np.unique(axis=0) without its structured-array copy)."""
    if a.size < 2:
        return a, b
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    keep = np.concatenate(([True], (a[1:] != a[:-1]) | (b[1:] != b[:-1])))
    return a[keep], b[keep]


def shared_keys(keys: np.ndarray, uids: np.ndarray, cap: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The entries whose key is held by at least two entries (and, with `cap`, by at most `cap`): most keys are
    one article's alone and can pair with nothing, so bucket_pairs sorts only the rest. Also returns how many
    distinct keys were over `cap`."""
    if keys.size < 2:
        return keys[:0], uids[:0], 0
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    size = counts[inverse]
    keep = size >= 2
    over = 0
    if cap is not None:
        over = int(np.count_nonzero(counts > cap))
        keep &= size <= cap
    return keys[keep], uids[keep], over


def connected_components(edges: Iterable[tuple]) -> dict:
    """Union-find over edges of comparable nodes: {node: smallest node of its component} (reference for tests)."""
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra
    return {x: find(x) for x in parent}


def _groups(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Directed edges sorted by owner, deduplicated: (u, v, each owner's first index, each edge's owner index)."""
    u, v = unique_pairs(u, v)
    starts = np.flatnonzero(np.concatenate(([True], u[1:] != u[:-1])))
    owner = np.repeat(np.arange(starts.size), np.diff(np.append(starts, u.size)))
    return u, v, starts, owner


def star_step(u: np.ndarray, v: np.ndarray, large: bool) -> tuple[np.ndarray, np.ndarray]:
    """One large-star or small-star step (Kiveris et al., 2014) over directed edges u -> v (both directions of
    every undirected edge of the owners u present), as arrays; returns the new undirected edges (a, b).

    Both steps keep every component connected and move each node towards the component's smallest id;
    alternating them turns every component into a star around that id in O(log n) rounds in practice.
    """
    empty = np.zeros(0, dtype=np.uint64)
    if not u.size:
        return empty, empty
    if large:
        # Each neighbour larger than u links to m(u) = min(N(u) + u).
        u, v, starts, owner = _groups(u, v)
        m = np.minimum(np.minimum.reduceat(v, starts), u[starts])[owner]
        sel = v > u
        return v[sel], m[sel]
    # u and its smaller neighbours all link to the smallest of them.
    sel = v < u
    if not sel.any():
        return empty, empty
    u, v, starts, owner = _groups(u[sel], v[sel])
    m = np.minimum.reduceat(v, starts)
    keep = v != m[owner]
    return np.concatenate([v[keep], u[starts]]), np.concatenate([m[owner][keep], m])


def star_roots(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Read a star forest from directed edges u -> v: (nodes, their root, nodes not in star form).

    A root's neighbours are all larger than it and it is its own root; any other node's root is its smallest
    neighbour. Once the steps have converged, such a node has exactly one neighbour; a node with more (the rounds
    ran out) is counted, and still points to a smaller node of its own cluster.
    """
    if not u.size:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64), 0
    u, v, starts, owner = _groups(u, v)
    nodes = u[starts]
    smallest = np.minimum.reduceat(v, starts)
    is_root = smallest > nodes
    degree = np.diff(np.append(starts, u.size))
    unconverged = int(np.count_nonzero(~is_root & (degree > 1)))
    return nodes, np.where(is_root, nodes, smallest), unconverged
