"""The stage's output records: each article of a shard as a canonical Article or a Duplicate, and the stored
Signature of each canonical one."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import operator
import pickle
from collections.abc import Container, Iterator

from schemas.elements import Article, Duplicate, Signature
from transforms.dedup.keys import key_article_id, key_content_hash, key_published, key_uid, same_text
from transforms.dedup.messages import Fresh, Pending

_FIELDS = tuple(f.name for f in dataclasses.fields(Article))
pack = operator.attrgetter(*_FIELDS)  # an Article as a plain tuple: ~4x cheaper to pickle than the dataclass
_F = {name: i for i, name in enumerate(_FIELDS)}


def seal(article: Article) -> bytes:
    """An article's fields serialised once: it crosses its shuffles as opaque bytes, never re-pickled."""
    return pickle.dumps(pack(article), protocol=pickle.HIGHEST_PROTOCOL)


def unseal(sealed: bytes) -> tuple:
    """The fields `seal` serialised."""
    return pickle.loads(sealed)


def story_id(story: int) -> str:
    """A story id as stored: 16 hex digits, the article_id of the story's first article."""
    return format(story, "016x")


def assign(
    pending: list[Pending],
    dups: dict[int, tuple[int, float, int]],
    roots: dict[int, tuple[int, int]],
    counts: collections.Counter,
) -> Iterator[tuple[str, object]]:
    """('articles', Article) and ('duplicates', Duplicate) records of one shard.

    `dups`: uid -> (canonical key, estimated similarity to the canonical, story) of near or exact duplicates;
    `roots`: uid -> (duplicates of this run, story) of a canonical article in a component. An article in no
    component starts its own story. The identical record twice (same id, ref and text) is kept once and the other
    is an exact duplicate. `counts` gets the outcomes.
    """
    title, source, url = _F["title"], _F["source"], _F["url"]
    records = sorted(
        ((key_uid(p.key), p.key, unseal(p.sealed)) for p in pending),
        key=lambda r: (r[0], r[2][title] or "", r[2][source], r[2][url] or ""),
    )
    for uid, group in itertools.groupby(records, key=lambda r: r[0]):
        (_, key, values), *same = group
        hit = dups.get(uid)
        if hit is None:
            canonical = key_article_id(key)
            n, story = roots.get(uid, (0, int(canonical, 16)))
            story = story_id(story)
            counts["stories.continued" if story != canonical else "stories.started"] += 1
            fields = list(values)
            fields[_F["cluster_id"]] = canonical
            fields[_F["duplicate_count"]] = n + len(same)
            fields[_F["story_id"]] = story
            counts["canonical"] += 1
            yield "articles", Article(*fields)
        else:
            root, similarity, story = hit
            story = story_id(story)
            canonical = key_article_id(root)
            if same_text(root, key):
                similarity, match = 1.0, "exact"
            else:
                similarity, match = round(similarity, 4), "near"
            counts[f"duplicates.{match}"] += 1
            yield "duplicates", _duplicate(key, values, canonical, similarity, match, story)
        for _, _, copy in same:
            counts["duplicates.exact"] += 1
            yield "duplicates", _duplicate(key, copy, canonical, 1.0, "exact", story)


def stored_signatures(fresh: Fresh, dropped: Container[int], stories: dict[int, int]) -> Iterator[Signature]:
    """The Signature of each article of `fresh` that is canonical (its uid not in `dropped`: duplicates), as
    later runs read it back (history.py). `stories`: uid -> story of a canonical article in a component (any other
    starts its own, named by its article_id). The article_id, content_hash and published_at come from the node
    key (keys.node_key)."""
    prof = fresh.prof
    # Each column is laid out as little-endian bytes once, and a row's value is a slice of it.
    sigs = fresh.sigs.astype("<u2").tobytes()
    width = fresh.sigs.shape[1] * 2
    items, i_off = prof.items.astype("<u4").tobytes(), (prof.i_off * 4).tolist()
    anchors, a_off = prof.anchors.astype("<u8").tobytes(), (prof.a_off * 8).tolist()
    for i, (uid, key, (start, length)) in enumerate(
        zip(fresh.uids.tolist(), fresh.keys, prof.lead.tolist(), strict=True)
    ):
        if uid in dropped:
            continue
        canonical = key_article_id(key)
        yield Signature(
            canonical,
            key_content_hash(key),
            sigs[i * width : (i + 1) * width],
            key_published(key),
            story_id=story_id(stories.get(uid, int(canonical, 16))),
            profile=items[i_off[i] : i_off[i + 1]],
            anchors=anchors[a_off[i] : a_off[i + 1]],
            lead_start=start,
            lead_length=length,
        )


def _duplicate(key: int, values: tuple, of: str, similarity: float, match: str, story: str) -> Duplicate:
    return Duplicate(
        article_id=key_article_id(key),
        duplicate_of=of,
        similarity=similarity,
        match=match,
        source=values[_F["source"]],
        input_ref=values[_F["input_ref"]],
        url=values[_F["url"]],
        title=values[_F["title"]],
        published_at=values[_F["published_at"]],
        story_id=story,
    )
