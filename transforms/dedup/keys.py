"""Node ids and canonical-order keys packed into ints, shard routing, and the canonical choices made on them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np

from schemas.elements import stable_hash

_M = (1 << 64) - 1
SHARD_SHIFT = 56  # uid = shard (8 bits) | history flag (1 bit) | hash (55 bits)
HIST_BIT = 1 << 55
_HASH_MASK = (1 << 55) - 1
_NO_DATE = _M  # sorts after every real timestamp
_TS_OFFSET = 1 << 62  # microseconds since 1970, shifted so that dates before 1970 stay positive
_LEN_MAX = (1 << 32) - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_US = dt.timedelta(microseconds=1)


def make_uid(article_id: str, ref: str, content_hash: str, shards: int, history: bool = False) -> int:
    """A 64-bit node id: the text's shard (so exact copies meet), a history flag, and a hash of its identity."""
    shard = int(content_hash[:8], 16) % shards
    h = int(stable_hash(f"{article_id}\x00{ref}\x00{content_hash}"), 16) & _HASH_MASK
    return (shard << SHARD_SHIFT) | (HIST_BIT if history else 0) | h


def node_key(
    uid: int,
    article_id: str,
    content_hash: str,
    published_at: dt.datetime | None,
    length: int,
    history: bool,
    story: int = 0,
) -> int:
    """One int whose order is the canonical order, and which carries what later steps need to know of a node.

    Bits, most significant first: history flag (0 = stored by a previous run, already published, so first),
    published_at in microseconds (None last), text length complemented (longest first), article_id, uid
    (breaks ties between identical records), content_hash, and the story id a stored article belongs to (0 for
    this run's articles, whose story is decided here). A graph step compares and hashes one int instead of a
    tuple of strings. Ids and hashes are the project's 16-hex-digit `stable_hash` values.
    """
    ts = _NO_DATE if published_at is None else _micros(published_at) + _TS_OFFSET
    return (
        (0 if history else 1) << 352
        | (ts & _M) << 288
        | (_LEN_MAX - min(length, _LEN_MAX)) << 256
        | int(article_id, 16) << 192
        | uid << 128
        | int(content_hash, 16) << 64
        | (story & _M)
    )


def _micros(when: dt.datetime) -> int:
    """Microseconds since 1970, exactly (a float timestamp rounds far from 1970); naive times are taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return (when - _EPOCH) // _US


def key_published(key: int) -> dt.datetime | None:
    """The published_at inside a node key, in UTC (None when the article had none)."""
    ts = (key >> 288) & _M
    return None if ts == _NO_DATE else _EPOCH + (ts - _TS_OFFSET) * _US


def key_is_new(key: int) -> bool:
    """Whether a node key is an article of this run (not a stored signature)."""
    return bool(key >> 352)


def key_uid(key: int) -> int:
    """The node id inside a node key."""
    return (key >> 128) & _M


def key_article_id(key: int) -> str:
    """The article_id inside a node key."""
    return format((key >> 192) & _M, "016x")


def key_content_hash(key: int) -> str:
    """The content_hash inside a node key."""
    return format((key >> 64) & _M, "016x")


def key_story(key: int) -> int:
    """The stored story id inside a stored node's key (0 for this run's articles)."""
    return key & _M


def same_text(a: int, b: int) -> bool:
    """Whether two node keys carry the same content_hash."""
    return ((a ^ b) >> 64) & _M == 0


def uid_shard(uid: int) -> int:
    """The shard of one node id."""
    return uid >> SHARD_SHIFT


def shards_of(uids: np.ndarray) -> np.ndarray:
    """The shard of each node id (uint64 array)."""
    return (uids >> np.uint64(SHARD_SHIFT)).astype(np.int64)


def by_shard(shard_ids: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(shard, the rows in it, ascending) for each shard present, in shard order: one sort, not a scan per
    shard."""
    if not shard_ids.size:
        return
    order = np.argsort(shard_ids, kind="stable")
    ids = shard_ids[order]
    for part in np.split(order, np.flatnonzero(ids[1:] != ids[:-1]) + 1):
        yield int(shard_ids[part[0]]), part


def collapse_exact(keys: list[int]) -> tuple[list[int], list[tuple[int, int]]]:
    """One shard's node keys -> (sorted rows that represent their text, (copy, representative) key pairs).

    The representative of a text is its first node in canonical order; the same uid twice (a stored signature in
    two partitions) keeps its best-ranked row. Copies among stored nodes need no edge, since neither is output.
    """
    seen_uid, rep_of_text, reps, exact = set(), {}, [], []
    for i in sorted(range(len(keys)), key=keys.__getitem__):
        key = keys[i]
        uid = key_uid(key)
        if uid in seen_uid:
            continue
        seen_uid.add(uid)
        rep = rep_of_text.setdefault((key >> 64) & _M, key)
        if rep == key:
            reps.append(i)
        elif key_is_new(key):
            exact.append((key, rep))
    return sorted(reps), exact
