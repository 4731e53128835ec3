"""HTML and records to Articles without Beam: dates, main text and metadata via trafilatura, fallbacks."""

from __future__ import annotations

import datetime as dt
import email.utils
import html as html_lib
import re
import unicodedata
from collections.abc import Callable

from schemas.elements import Article, RawArticle
from transforms.common import count
from transforms.extract.config import ExtractConfig, in_future
from transforms.urls import canonical_url, host_of

_TAG = re.compile(r"<[^>]+>")
_MIN_YEAR, _MAX_YEAR = 1900, 2100
_HTML_LANG = re.compile(r"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})", re.IGNORECASE)
MIN_PAGE_WORDS = 20  # below this a feed page's extraction loses to a longer feed summary


class ExtractTimeout(Exception):
    """HTML extraction ran past the per-document limit."""


def parse_datetime(value: str | None) -> dt.datetime | None:
    """ISO 8601 or RFC 822 date string -> aware UTC datetime; None when absent, unparseable or implausible."""
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    parsed = None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed is None or not (_MIN_YEAR <= parsed.year <= _MAX_YEAR):
        return None
    if parsed.tzinfo is None:
        # Dates without a zone are taken as UTC: the only reproducible choice.
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def html_to_text(fragment: str) -> str:
    """Crude tag strip for feed summaries, which are small HTML fragments."""
    text = _TAG.sub(" ", fragment)
    return unicodedata.normalize("NFC", re.sub(r"[ \t]+", " ", html_lib.unescape(text))).strip()


def extract_html(content: str, url: str | None, cfg: ExtractConfig = ExtractConfig()) -> dict:
    """Main text and metadata of an HTML page via trafilatura; {} when no main content is found."""
    import trafilatura

    doc = trafilatura.bare_extraction(
        content,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_precision=cfg.favor_precision,
        deduplicate=False,
        # Dates from markup only (meta tags, <time>, JSON-LD, URL): a guess from "© 2025" in a footer must not
        # override a feed entry's explicit date.
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    if doc is None:
        return {}
    meta = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text = (meta.get("text") or "").strip()
    if not text:
        return {}
    title = meta.get("title")
    first, _, rest = text.partition("\n")
    if title and rest.strip() and first.strip().casefold() == title.strip().casefold():
        text = rest.strip()  # the page's <h1> repeats the title; keep it once, in `title`
    lang = meta.get("language")
    if not lang:
        m = _HTML_LANG.search(content[:5000])
        lang = m.group(1).lower() if m else None
    return {
        "text": unicodedata.normalize("NFC", text),
        "title": meta.get("title"),
        "author": meta.get("author"),
        "date": meta.get("date"),
        "url": meta.get("url"),
        "sitename": meta.get("sitename"),
        "language": lang,
    }


def to_article(
    raw: RawArticle, cfg: ExtractConfig = ExtractConfig(), extractor: Callable | None = None
) -> Article | tuple[str, str]:
    """RawArticle -> Article, or (reason, detail) when nothing usable is in it.

    Metadata precedence: HTML page > input record (JSON or feed entry); text datelines come later. A date later
    than `cfg.now` + MAX_CLOCK_SKEW is dropped (counted) and the next source is used.
    `extractor(content, url, cfg)` replaces `extract_html`, e.g. with a time-limited worker process.
    """
    published = _trusted(parse_datetime(raw.published), cfg, "extract.future_date")
    updated = _trusted(parse_datetime(raw.updated), cfg, "extract.future_updated")
    fields = dict(
        input_ref=raw.input_ref,
        source=raw.source,
        url=canonical_url(raw.url),
        title=raw.title,
        author=raw.author,
        published_at=published,
        updated_at=_not_before(updated, published),
        date_source="published" if published else "run",
        content_source="text",
        flags=raw.flags,
    )
    if raw.content_type == "text":
        text = raw.content.strip()
        if not text:
            return "empty", "no text"
        return Article(text=text, **fields)
    try:
        meta = (extractor or extract_html)(raw.content, raw.url, cfg)
    except ExtractTimeout as e:
        return "extract_timeout", str(e)
    summary = html_to_text(raw.summary) if raw.summary else ""
    if meta and raw.origin == "feed" and _too_thin(meta["text"], summary):
        count("extract.thin_page")
        meta = {}
    if meta:
        page_date = _trusted(parse_datetime(meta["date"]), cfg, "extract.future_date")
        page_date = _same_day_precision(page_date, published)
        page_url = canonical_url(meta["url"])
        fields.update(
            title=meta["title"] or fields["title"],
            author=meta["author"] or fields["author"],
            url=page_url or fields["url"],
            published_at=page_date or published,
            # trafilatura gives the original publication date only: the updated date is the record's or none.
            updated_at=_not_before(updated, page_date or published),
            date_source="published" if (page_date or published) else "run",
            language=meta["language"],
            content_source="feed_page" if raw.origin == "feed" else "html",
        )
        if raw.origin == "file":
            # A bare file has no explicit source; the page's own URL names it better than its folder.
            fields["source"] = host_of(page_url) or raw.source
        return Article(text=meta["text"], **fields)
    if summary:
        fields.update(content_source="feed_summary")
        return Article(text=summary, **fields)
    return "extract_failed", "no main content found in the HTML"


def _trusted(value: dt.datetime | None, cfg: ExtractConfig, counter: str) -> dt.datetime | None:
    """`value`, or None (counted) when it lies beyond the run's clock plus the allowed skew."""
    if in_future(value, cfg.now):
        count(counter)
        return None
    return value


def _not_before(updated: dt.datetime | None, published: dt.datetime | None) -> dt.datetime | None:
    """An updated date earlier than the published one contradicts it: the input's dates are mixed up, so neither
    order can be trusted and the published one, which names the partition, is kept alone."""
    if updated is not None and published is not None and updated < published:
        count("extract.updated_before_published")
        return None
    return updated


def _too_thin(page_text: str, summary: str) -> bool:
    """A page that yields a few words (navigation of a JavaScript app, a paywall stub) is nothing next to a
    longer feed summary."""
    words = len(page_text.split())
    return words < MIN_PAGE_WORDS and len(summary.split()) > words


def _same_day_precision(page_date: dt.datetime | None, entry_date: dt.datetime | None):
    """Page metadata wins, but a page often gives only the day: keep the entry's time when the days agree."""
    if page_date and entry_date and page_date.date() == entry_date.date() and page_date.time() == dt.time(0):
        return entry_date
    return page_date
