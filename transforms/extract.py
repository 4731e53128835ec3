"""Extract stage: RawArticle (text or HTML) -> Article with body text and metadata."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import html as html_lib
import re
import unicodedata
from typing import Iterable, Optional

import apache_beam as beam

from schemas.elements import Article, RawArticle
from transforms.common import count, reject, run_guarded
from transforms.urls import canonical_url, host_of

STAGE = "extract"
_TAG = re.compile(r"<[^>]+>")
_MIN_YEAR, _MAX_YEAR = 1900, 2100
_HTML_LANG = re.compile(r"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """Extract-stage settings."""

    favor_precision: bool = False


def parse_datetime(value: Optional[str]) -> Optional[dt.datetime]:
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


def extract_html(content: str, url: Optional[str], cfg: ExtractConfig = ExtractConfig()) -> dict:
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


def to_article(raw: RawArticle, cfg: ExtractConfig = ExtractConfig()) -> Article | tuple[str, str]:
    """RawArticle -> Article, or (reason, detail) when nothing usable is in it.

    Metadata precedence: HTML page > input record (JSON or feed entry); text datelines come later.
    """
    published = parse_datetime(raw.published)
    fields = dict(
        input_ref=raw.input_ref,
        source=raw.source,
        url=canonical_url(raw.url),
        title=raw.title,
        author=raw.author,
        published_at=published,
        date_source="published" if published else "run",
        content_source="text",
    )
    if raw.content_type == "text":
        text = raw.content.strip()
        if not text:
            return "empty", "no text"
        return Article(text=text, **fields)
    meta = extract_html(raw.content, raw.url, cfg)
    if meta:
        page_date = parse_datetime(meta["date"])
        page_url = canonical_url(meta["url"])
        fields.update(
            title=meta["title"] or fields["title"],
            author=meta["author"] or fields["author"],
            url=page_url or fields["url"],
            published_at=page_date or published,
            date_source="published" if (page_date or published) else "run",
            language=meta["language"],
            content_source="feed_page" if raw.origin == "feed" else "html",
        )
        if raw.origin == "file":
            # A bare file has no explicit source; the page's own URL names it better than its folder.
            fields["source"] = host_of(page_url) or raw.source
        return Article(text=meta["text"], **fields)
    if raw.summary and html_to_text(raw.summary):
        fields.update(content_source="feed_summary")
        return Article(text=html_to_text(raw.summary), **fields)
    return "extract_failed", "no main content found in the HTML"


class _ExtractFn(beam.DoFn):
    def __init__(self, cfg: ExtractConfig):
        self._cfg = cfg

    def process(self, raw: RawArticle) -> Iterable:
        result = to_article(raw, self._cfg)
        if isinstance(result, Article):
            count(f"extracted.{result.content_source}")
            yield result
        else:
            reason, detail = result
            yield reject(raw.input_ref, STAGE, reason, detail, raw.content)


class Extract(beam.PTransform):
    """RawArticle -> {'articles': Article, 'rejects': Reject}."""

    def __init__(self, cfg: ExtractConfig = ExtractConfig()):
        super().__init__()
        self._cfg = cfg

    def expand(self, raw):
        articles, rejects = run_guarded(raw, "ExtractText", STAGE, _ExtractFn(self._cfg))
        return {"articles": articles, "rejects": rejects}
