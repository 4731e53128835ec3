"""Feed bytes to FeedEntry records: loading a feed, repairing bad character references, RSS/Atom parsing."""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import io
import os
import posixpath
import re
import stat
import sys
import urllib.parse
import urllib.request

from apache_beam.io.filesystems import FileSystems

from schemas.elements import Reject
from schemas.sanitize import REPLACEMENT, repair_fields
from transforms.common import count
from transforms.feeds.config import STAGE, FeedConfig
from transforms.feeds.lists import location_scheme
from transforms.fetch import Fetcher, FetchError, Page
from transforms.urls import canonical_url, host_of

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
_CHAR_REF = re.compile(rb"&#([0-9]+|[xX][0-9a-fA-F]+);")
_CHAR_REF_RUN = re.compile(rb"(?:&#(?:[0-9]+|[xX][0-9a-fA-F]+);)+")
_UTF16_32_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# A noncharacter (valid Unicode, valid XML) standing in for a character reference no parser can take, until
# FeedEntry turns it into U+FFFD and flags the field.
BAD_CHAR = "\ufdd0"
MAX_NAME_CHARS = 120
_ENTRY_TEXT_FIELDS = ("url", "feed", "source", "title", "published", "author", "summary", "updated")


@dataclasses.dataclass(frozen=True)
class FeedEntry:
    """One feed item, with its link canonicalised and the feed it came from."""

    url: str  # canonical link, or the raw link when it is not http(s) (rejected when fetched)
    feed: str
    feed_index: int
    entry_index: int
    source: str
    title: str | None = None
    published: str | None = None
    author: str | None = None
    summary: str | None = None
    flags: tuple[str, ...] = ()  # what was repaired on the way in, passed on to RawArticle.flags
    updated: str | None = None  # the entry's last-modified date; `published` falls back to it when it has no other

    def __post_init__(self):
        # Feed text is a stranger's: keys, coders and Parquet need valid Unicode, and the repair is recorded.
        repaired = repair_entry_fields(self, _ENTRY_TEXT_FIELDS)
        if repaired:
            object.__setattr__(self, "flags", self.flags + tuple(f"repaired_unicode:{n}" for n in repaired))

    @property
    def order(self) -> tuple[int, int]:
        return self.feed_index, self.entry_index


def repair_entry_fields(obj, names) -> tuple[str, ...]:
    """Repair lone surrogates and BAD_CHAR stand-ins in the str fields `names` of a frozen dataclass instance (from
    its __post_init__); returns the names of the fields that needed it."""
    repaired = set(repair_fields(obj, names))
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, str) and BAD_CHAR in value:
            object.__setattr__(obj, name, value.replace(BAD_CHAR, REPLACEMENT))
            repaired.add(name)
    return tuple(n for n in names if n in repaired)


class FeedUnreadable(Exception):
    """A feed that could not be fetched, or is not a feed."""


class FeedRefused(Exception):
    """A feed URL robots.txt keeps us from requesting: `reason` is robots_disallowed or robots_unavailable."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class FeedUnchanged(Exception):
    """The server answered 304 to a conditional feed request: same entries as the last time it was read."""

    def __init__(self, page: Page):
        super().__init__(f"{page.url} not modified")
        self.page = page


def _ref_value(ref: bytes) -> int:
    hexadecimal = ref[:1] in (b"x", b"X")
    digits = (ref[1:] if hexadecimal else ref).lstrip(b"0") or b"0"
    if len(digits) > 8:  # past U+10FFFF in any base; int() of thousands of digits would raise
        return sys.maxunicode + 1
    return int(digits, 16 if hexadecimal else 10)


def _fixed_refs(run: re.Match) -> bytes:
    values = [_ref_value(m.group(1)) for m in _CHAR_REF.finditer(run.group(0))]
    if all(v <= sys.maxunicode and not 0xD800 <= v <= 0xDFFF for v in values):
        return run.group(0)
    out, i = [], 0
    while i < len(values):
        v = values[i]
        if 0xD800 <= v <= 0xDBFF and i + 1 < len(values) and 0xDC00 <= values[i + 1] <= 0xDFFF:
            # A character beyond the BMP written as its UTF-16 pair (JSON-style): joined again.
            v = 0x10000 + ((v - 0xD800) << 10) + (values[i + 1] - 0xDC00)
            i += 1
        elif 0xD800 <= v <= 0xDFFF or v > sys.maxunicode:
            v = ord(BAD_CHAR)
        out.append(f"&#x{v:X};")
        i += 1
    return "".join(out).encode("ascii")


def repair_char_refs(data: bytes) -> bytes:
    """Feed bytes with each numeric character reference to a surrogate or past U+10FFFF made BAD_CHAR (a split
    surrogate pair joined again): feedparser's fallback parser crashes on them, losing the whole feed."""
    for bom, codec in _UTF16_32_BOMS:
        if data.startswith(bom):
            # References are ASCII only in ASCII-compatible encodings; these are rewritten in their own.
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                return data
            fixed = _CHAR_REF_RUN.sub(_fixed_refs, text.encode("utf-8", "surrogatepass"))
            return fixed.decode("utf-8", "surrogatepass").encode(codec, "surrogatepass")
    return _CHAR_REF_RUN.sub(_fixed_refs, data)


def _iso(parsed) -> str | None:
    try:
        return dt.datetime(*parsed[:6], tzinfo=dt.timezone.utc).isoformat()
    except (TypeError, ValueError):
        return None


def _clean(value, limit: int | None = None) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split()) if limit else value.strip()
    if not value:
        return None
    return value[:limit] if limit else value


def _entry_summary(entry) -> str | None:
    # content:encoded / atom:content is usually the full story; the summary is the teaser.
    best = _clean(entry.get("summary"))
    for content in entry.get("content") or ():
        value = _clean(content.get("value") if hasattr(content, "get") else None)
        if value and len(value) > len(best or ""):
            best = value
    return best


def source_name(name: str | None, feed_title: str | None, location: str) -> str:
    """The feed line's name, else the feed's own title, else its host (or file name)."""
    for candidate in (name, feed_title):
        candidate = _clean(candidate, MAX_NAME_CHARS)
        if candidate:
            return candidate
    host = host_of(location) if location_scheme(location) in ("http", "https") else None
    return host or posixpath.splitext(posixpath.basename(location.rstrip("/")))[0] or "feed"


def parse_feed(
    data: bytes,
    *,
    location: str,
    index: int = 0,
    name: str | None = None,
    base_url: str | None = None,
    content_type: str | None = None,
) -> tuple[list[FeedEntry], list[Reject], str | None]:
    """Feed bytes -> (entries, entry rejects, bozo reason or None). Raises FeedUnreadable when it is not a feed."""
    import feedparser

    headers = {"content-location": base_url or ""}
    if content_type:
        headers["content-type"] = content_type
    # A stream, never bytes or str: feedparser opens a str/bytes argument as a URL or local file name when it can.
    stream = io.BytesIO(repair_char_refs(data))
    try:
        d = feedparser.parse(stream, response_headers=headers, sanitize_html=True, resolve_relative_uris=True)
    except Exception as e:  # noqa: BLE001 - a stranger's bytes that break the parser are that feed's failure
        raise FeedUnreadable(f"feed parser failed ({type(e).__name__}: {str(e)[:200]})") from None
    bozo = type(d.get("bozo_exception")).__name__ if d.get("bozo") else None
    if not d.get("version") and not d.entries:
        detail = f"not a feed ({bozo}: {str(d.get('bozo_exception'))[:200]})" if bozo else "not an RSS or Atom feed"
        raise FeedUnreadable(detail)
    if bozo and not d.entries:
        raise FeedUnreadable(f"malformed feed with no entries ({bozo}: {str(d.get('bozo_exception'))[:200]})")
    source = source_name(name, d.feed.get("title"), location)
    entries, rejects = [], []
    for i, e in enumerate(d.entries):
        link = _clean(e.get("link"))
        if not link:
            for candidate in e.get("links") or ():
                if candidate.get("href") and candidate.get("rel", "alternate") == "alternate":
                    link = candidate["href"].strip()
                    break
        if not link:
            ref = f"{location}#entry-{i + 1}"
            title = (_clean(e.get("title")) or "").replace(BAD_CHAR, REPLACEMENT)
            rejects.append(Reject.of(ref, STAGE, "no_link", "feed entry has no link", title))
            continue
        # An entry with only an updated date (common in Atom) is still dated by it; `updated` keeps it apart too.
        parsed = e.get("published_parsed") or e.get("updated_parsed")
        published = (_iso(parsed) if parsed else None) or _clean(e.get("published") or e.get("updated"))
        # dict.get: feedparser's own get() answers `updated` with the published date when the entry has none.
        updated_parsed = dict.get(e, "updated_parsed")
        updated = (_iso(updated_parsed) if updated_parsed else None) or _clean(dict.get(e, "updated"))
        entries.append(
            FeedEntry(
                url=canonical_url(link) or link,
                feed=location,
                feed_index=index,
                entry_index=i,
                source=source,
                title=_clean(e.get("title"), 1000),
                published=published,
                author=_clean(e.get("author"), 300),
                summary=_entry_summary(e),
                updated=updated,
            )
        )
    return entries, rejects, bozo


def fetch_feed_page(location: str, fetcher: Fetcher, robots=None, validators=None) -> Page:
    """GET a feed URL: asks `robots` (a RobotsCache, or None to skip) first, conditionally with `validators`.
    Raises FeedRefused, FeedUnchanged (304) or FeedUnreadable."""
    if robots is not None:
        verdict = robots.verdict(location)
        if verdict is not None:
            raise FeedRefused(*verdict)
    try:
        page: Page = fetcher.get(location, html_only=False, accept=FEED_ACCEPT, validators=validators)
    except FetchError as e:
        raise FeedUnreadable(f"{e.reason}: {e.detail}") from None
    if page.unchanged:
        raise FeedUnchanged(page)
    return page


def load_feed(
    location: str, fetcher: Fetcher | None, max_bytes: int, *, robots=None, validators=None, fetched: list | None = None
) -> tuple[bytes, str | None, str | None]:
    """(bytes, base URL, content type) of a feed given by URL or by the user's own local/remote file path.

    A feed fetched over HTTP is appended to `fetched` (its Page, for the fetch state)."""
    scheme = location_scheme(location)
    if scheme in ("http", "https"):
        if fetcher is None:
            raise FeedUnreadable("no HTTP client")
        page = fetch_feed_page(location, fetcher, robots, validators)
        if fetched is not None:
            fetched.append(page)
        ctype = page.content_type + (f"; charset={page.charset}" if page.charset else "")
        return page.body, page.final_url, ctype or None
    if scheme == "file":
        path = urllib.request.url2pathname(urllib.parse.urlsplit(location).path)
    elif scheme in ("", "gs", "s3"):
        path = location
    else:
        raise FeedUnreadable(f"scheme {scheme!r} is not read")
    if scheme in ("", "file"):
        check_regular_file(path)
    try:
        with FileSystems.open(path) as f:
            data = f.read(max_bytes + 1)
    except Exception as e:  # noqa: BLE001 - Beam raises various errors for missing files
        raise FeedUnreadable(f"cannot read {path}: {type(e).__name__}") from None
    if len(data) > max_bytes:
        raise FeedUnreadable(f"too_large: feed file is over the {max_bytes}-byte limit")
    # The user's own file: parse it as XML whatever its name, relative links resolve against nothing.
    return data, None, "application/xml"


def check_regular_file(path: str) -> None:
    """Raise FeedUnreadable unless `path` is a regular file: reading a FIFO or a device never ends."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise FeedUnreadable(f"cannot read {path}: {type(e).__name__}") from None
    if not stat.S_ISREG(mode):
        raise FeedUnreadable(f"cannot read {path}: not a regular file")


def read_feed(
    location: str,
    name: str | None,
    index: int,
    fetcher: Fetcher | None,
    cfg: FeedConfig,
    *,
    robots=None,
    validators=None,
    fetched: list | None = None,
):
    """One feed -> (entries, rejects); an unreadable feed is one `feed_unreadable` reject, one robots.txt keeps
    us from is a `robots_disallowed`/`robots_unavailable` reject, and an unchanged one (304) is neither: no
    entries, counted in `feeds.unchanged`. The Page of an HTTP feed answered 200 or 304 is appended to `fetched`."""
    try:
        data, base, ctype = load_feed(
            location, fetcher, cfg.fetch.max_body_bytes, robots=robots, validators=validators, fetched=fetched
        )
        entries, rejects, bozo = parse_feed(
            data, location=location, index=index, name=name, base_url=base, content_type=ctype
        )
    except FeedUnreadable as e:
        return [], [Reject.of(location, STAGE, "feed_unreadable", str(e))]
    except FeedRefused as e:
        return [], [Reject.of(location, STAGE, e.reason, e.detail)]
    except FeedUnchanged as e:
        if fetched is not None:
            fetched.append(e.page)
        count("feeds.unchanged")
        return [], []
    if bozo:
        count(f"feeds.bozo.{bozo}")
    count("feeds.read")
    count("feeds.entries", len(entries))
    return entries, rejects
