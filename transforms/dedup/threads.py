"""Within one connected component of copy and follow-up edges: copy clusters, their canonical, and story threads."""

from __future__ import annotations

import collections
from collections.abc import Iterable

from transforms.dedup.components import connected_components
from transforms.dedup.keys import key_article_id, key_is_new, key_story, key_uid, uid_shard
from transforms.dedup.profiles import COPY, FOLLOW


def own_story(key: int) -> int:
    """The story a cluster starts when it continues no earlier one: a stored article keeps the story it was
    stored with, an article of this run starts one named by its own article_id."""
    stored = key_story(key)
    if not key_is_new(key) and stored:
        return stored
    return int(key_article_id(key), 16)


def threads(keys: list[int], edges: Iterable[tuple[int, int, int]]) -> list[tuple[int, list[int], int]]:
    """(canonical key, member keys, story id) of each copy cluster of one component.

    `keys` are the component's node keys, `edges` (uid, uid, kind) its verified pairs. Copies (COPY edges,
    transitively) form a cluster whose canonical member is its smallest key. Clusters are visited in canonical
    order; one linked by a FOLLOW edge to earlier clusters continues the story of the earliest of them, any
    other starts its own. So the ids do not depend on the order the articles came in."""
    by_uid = {key_uid(k): k for k in keys}
    copy_root = connected_components((a, b) for a, b, kind in edges if kind == COPY)
    clusters: dict[int, list[int]] = collections.defaultdict(list)
    for uid, key in by_uid.items():
        clusters[copy_root.get(uid, uid)].append(key)
    canonical = {root: min(members) for root, members in clusters.items()}
    links: dict[int, set[int]] = collections.defaultdict(set)
    for a, b, kind in edges:
        if kind != FOLLOW or a not in by_uid or b not in by_uid:
            continue
        ca, cb = copy_root.get(a, a), copy_root.get(b, b)
        if ca != cb:
            links[ca].add(cb)
            links[cb].add(ca)
    story: dict[int, int] = {}
    out = []
    for root in sorted(clusters, key=canonical.__getitem__):
        head = canonical[root]
        earlier = [c for c in links.get(root, ()) if canonical[c] < head]
        if earlier and key_is_new(head):
            story[root] = story[min(earlier, key=canonical.__getitem__)]
        else:
            story[root] = own_story(head)
        out.append((head, clusters[root], story[root]))
    return out


def story_choices(
    components: Iterable[tuple[list[int], list[tuple[int, int, int]]]],
) -> tuple[dict[int, list[tuple[int, int, int]]], dict[int, list[tuple[int, int, int]]]]:
    """(node keys, edges) per component -> by the canonical member's shard: (duplicate uid, canonical key, story)
    of this run's other members, and (canonical uid, its duplicate count, story) of this run's canonical members.

    Stored articles stay as they are, so they are never duplicates and their story is the stored one."""
    dups: dict[int, list] = collections.defaultdict(list)
    roots: dict[int, list] = collections.defaultdict(list)
    for keys, edges in components:
        for head, members, story in threads(keys, edges):
            home = uid_shard(key_uid(head))
            new = [k for k in members if k != head and key_is_new(k)]
            dups[home].extend((key_uid(k), head, story) for k in new)
            if key_is_new(head):
                roots[home].append((key_uid(head), len(new), story))
    return dups, roots
