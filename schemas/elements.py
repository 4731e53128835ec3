"""Element types passed between pipeline stages (one per stage boundary)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import unicodedata

from schemas.sanitize import repair_fields, valid_unicode

# Reject reason codes are part of the output contract: keep them short and stable.
EXCERPT_CHARS = 500

_WS = re.compile(r"\s+")


def normalize_for_hash(text: str) -> str:
    """Text normalised for identity: NFKC, case-folded, whitespace collapsed."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def stable_hash(value: str, length: int = 16) -> str:
    """A short hex digest that is identical on every machine and runner; never fails on a lone surrogate."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:length]


_RAW_TEXT_FIELDS = (
    "input_ref",
    "source",
    "content",
    "content_type",
    "url",
    "title",
    "published",
    "author",
    "summary",
    "updated",
)


@dataclasses.dataclass(frozen=True)
class RawArticle:
    """One input record as read from a file or a feed, before any extraction."""

    input_ref: str  # provenance: path, path:line for JSONL, or the fetched URL
    source: str
    content: str  # decoded text or HTML
    content_type: str  # "text" | "html"
    url: str | None = None
    title: str | None = None
    published: str | None = None  # unparsed date string from JSON or a feed entry
    author: str | None = None
    summary: str | None = None  # feed entry summary, the fallback when a page yields nothing
    origin: str = "file"  # "file" | "jsonl" | "feed"
    flags: tuple[str, ...] = ()  # what was repaired on the way in, e.g. "repaired_unicode:text"
    updated: str | None = None  # unparsed last-modified date string from JSON or a feed entry (last: positional use)

    def __post_init__(self):
        # Every string that enters the pipeline is valid Unicode from here on: keys, coders and Parquet need it.
        repaired = repair_fields(self, _RAW_TEXT_FIELDS)
        if repaired:
            object.__setattr__(self, "flags", self.flags + tuple(f"repaired_unicode:{n}" for n in repaired))


@dataclasses.dataclass(frozen=True)
class FileTally:
    """What one input file held, counted apart from the parser, and what the reader made of it.

    `expected` comes from the bytes alone (one record per .txt/.html file, one per non-blank line of a JSON Lines
    file, the elements of a .json document), so that a reader that loses records makes the run's accounting fail
    instead of balancing on what it produced.
    """

    path: str
    expected: int  # records the file holds, counted independently of parsing
    records: int = 0  # RawArticles the reader made
    rejects: int = 0  # rejects the reader made
    bytes: int = 0  # after decompression
    gzip_members: int = 0

    @property
    def balanced(self) -> bool:
        return self.expected == self.records + self.rejects


@dataclasses.dataclass(frozen=True)
class Removed:
    """One line or span the cleaner removed, and the rule that removed it."""

    rule_id: str
    text: str


@dataclasses.dataclass(frozen=True)
class EntityMention:
    """One entity mention in an article's text, with its per-article canonical name."""

    text: str
    label: str
    start: int
    end: int
    canonical: str
    model_label: str = ""  # the model's own label (fr: PER, MISC); `label` is the common one (entities/labels.py)
    entity_id: str | None = None  # a stable id when a gazetteer knows the entity: "iso3166-1:FR", "geonames:2988507"


@dataclasses.dataclass(frozen=True)
class Article:
    """An article after extraction; later stages fill in more fields with `dataclasses.replace`."""

    input_ref: str
    source: str
    text: str
    url: str | None = None
    title: str | None = None
    author: str | None = None
    published_at: dt.datetime | None = None  # timezone-aware UTC
    date_source: str = "run"  # "published" (metadata) | "dateline" (text) | "run"
    language: str | None = None
    content_source: str = "text"  # "text" | "html" | "feed_page" | "feed_summary"
    agency: str | None = None
    tags: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    removed: tuple[Removed, ...] = ()
    cluster_id: str | None = None
    duplicate_count: int = 0
    entities: tuple[EntityMention, ...] = ()
    flags: tuple[str, ...] = ()  # data-quality notes: "repaired_unicode:<field>", "ner_truncated"
    # Last: dedup rebuilds Articles positionally from dataclasses.fields order, and older callers pass fields by
    # position. Timezone-aware UTC, never earlier than published_at; None when the input gives no separate one.
    updated_at: dt.datetime | None = None
    # The story thread (dedup): the article_id of the story's first article; copies share their canonical's.
    story_id: str | None = None

    @property
    def content_hash(self) -> str:
        return stable_hash(normalize_for_hash(self.text))

    @property
    def article_id(self) -> str:
        # A canonical URL names a story better than its text, which cleaning may still change.
        if self.url:
            return stable_hash("url:" + self.url)
        return stable_hash("text:" + normalize_for_hash(self.text))

    def identity(self) -> tuple[str, str]:
        """(article_id, content_hash), normalising the text once for both."""
        normalized = normalize_for_hash(self.text)
        article_id = stable_hash("url:" + self.url) if self.url else stable_hash("text:" + normalized)
        return article_id, stable_hash(normalized)

    @property
    def word_count(self) -> int:
        return len(self.text.split())

    def partition_date(self, run_date: dt.date) -> dt.date:
        return self.published_at.date() if self.published_at else run_date


@dataclasses.dataclass(frozen=True)
class Duplicate:
    """An article that was not kept because it repeats a canonical one."""

    article_id: str
    duplicate_of: str
    similarity: float
    match: str  # "exact" | "near"
    source: str
    input_ref: str
    url: str | None = None
    title: str | None = None
    published_at: dt.datetime | None = None
    story_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Signature:
    """A canonical article's dedup fingerprint, persisted so later runs can match against it: its MinHash, its
    profile (its shingle hashes: the lead dense, the rest sampled; for the copy/follow-up check), its anchors and its
    story."""

    article_id: str
    content_hash: str
    minhash: bytes  # little-endian uint16s, one per permutation (bytes: a tuple of ints costs 18x the memory)
    published_at: dt.datetime | None = None
    story_id: str | None = None
    profile: bytes = b""  # little-endian uint32s of 16-bit shingle hashes, a dense start then a sample, in text order
    anchors: bytes = b""  # little-endian uint64s
    lead_start: int = 0  # where the lead starts in the text, in words (past the title, dateline, short lines)
    lead_length: int = 0  # words in the lead's paragraph, counted up to the longest lead (0: unknown)


@dataclasses.dataclass(frozen=True)
class Story:
    """One story thread as seen by one run (or window): its articles of this run, and how it grew."""

    story_id: str
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    canonical_id: str
    canonical_title: str | None
    article_count: int  # canonical articles of this run in the story
    duplicate_count: int  # their copies of this run
    sources: tuple[str, ...]
    top_entities: tuple[tuple[str, str, int], ...]  # (canonical name, label, articles mentioning it)
    earlier_articles: int  # stored articles of earlier runs (lookback window) already in the story
    started_here: bool  # the story's first article is in this run


@dataclasses.dataclass(frozen=True)
class Reject:
    """An input record that could not become an article, with the stage and a stable reason code."""

    input_ref: str
    stage: str
    reason: str
    detail: str
    excerpt: str | None = None

    def __post_init__(self):
        repair_fields(self, ("input_ref", "stage", "reason", "detail", "excerpt"))

    @classmethod
    def of(cls, input_ref: str, stage: str, reason: str, detail: str, content: str | bytes | None = None):
        excerpt = None
        if isinstance(content, bytes):
            content = content[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
        if content:
            excerpt = valid_unicode(content[:EXCERPT_CHARS])
        return cls(input_ref=input_ref, stage=stage, reason=reason, detail=detail, excerpt=excerpt)


@dataclasses.dataclass(frozen=True)
class FetchState:
    """What one fetch of a URL (feed or page) answered: the validators a later run sends back to ask conditionally."""

    url: str
    etag: str | None
    last_modified: str | None
    fetched_at: dt.datetime
    status: int  # 200 (downloaded) or 304 (unchanged since the stored validators)

    def __post_init__(self):
        repair_fields(self, ("url", "etag", "last_modified"))
