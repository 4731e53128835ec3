"""Pure aggregation of a run's articles and duplicates into one Story row per story thread."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from schemas.elements import Article, Duplicate, Story


class Member(NamedTuple):
    """What a story needs of one of its articles (the text stays behind)."""

    canonical: bool  # an article, not a duplicate
    article_id: str
    published_at: dt.datetime | None
    title: str | None
    source: str
    entities: tuple[tuple[str, str], ...]  # distinct (canonical name, label), articles only


def story_of_article(a: Article) -> str:
    """The article's story id; an article that never went through dedup is a story of its own."""
    return a.story_id or a.article_id


def member_of_article(a: Article) -> tuple[str, Member]:
    entities = tuple(sorted({(m.canonical, m.label) for m in a.entities if m.canonical}))
    return story_of_article(a), Member(True, a.article_id, a.published_at, a.title, a.source, entities)


def member_of_duplicate(d: Duplicate) -> tuple[str, Member]:
    return d.story_id or d.duplicate_of, Member(False, d.article_id, d.published_at, d.title, d.source, ())


def _order(m: Member) -> tuple:
    # Earliest first, undated last, then the id: a total order, so the canonical never depends on input order.
    return (m.published_at is None, m.published_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc), m.article_id)


def aggregate(story_id: str, members: Iterable[Member], earlier: int = 0, top_entities: int = 5) -> Story | None:
    """The story's row, or None when it has no member in this run (only stored articles)."""
    members = sorted(members, key=_order)
    if not members:
        return None
    articles = [m for m in members if m.canonical]
    head = (articles or members)[0]
    dates = [m.published_at for m in members if m.published_at is not None]
    mentions = collections.Counter(e for m in articles for e in m.entities)
    top = sorted(mentions.items(), key=lambda kv: (-kv[1], kv[0]))[:top_entities]
    return Story(
        story_id=story_id,
        first_seen=min(dates) if dates else None,
        last_seen=max(dates) if dates else None,
        canonical_id=head.article_id,
        canonical_title=head.title,
        article_count=len(articles),
        duplicate_count=len(members) - len(articles),
        sources=tuple(sorted({m.source for m in members})),
        top_entities=tuple((name, label, n) for (name, label), n in top),
        earlier_articles=earlier,
        started_here=any(m.article_id == story_id for m in articles),
    )
