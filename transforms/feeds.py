"""Feed source: feed lists and OPML, RSS/Atom parsing, and linked pages fetched once each as RawArticle records."""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import io
import math
import os
import posixpath
import re
import stat
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from schemas.elements import RawArticle, Reject
from schemas.sanitize import REPLACEMENT, repair_fields
from transforms.common import REJECTS, TaggedParDo, count, reject, run_guarded
from transforms.fetch import DEFAULT_USER_AGENT, FetchConfig, Fetcher, FetchError, FetchLinksFn, Page
from transforms.urls import canonical_url, host_of

STAGE = "feeds"
FETCH_STAGE = "fetch"
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?\s*$", re.I)
_POLLS = re.compile(r"^\s*(\d+)\s*polls?\s*$", re.I)
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.I)
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
_ENTRY_TEXT_FIELDS = ("url", "feed", "source", "title", "published", "author", "summary")


@dataclasses.dataclass(frozen=True)
class FeedConfig:
    """Feed-source settings: which feeds, how pages are fetched, and how streaming polls them."""

    feeds: tuple[tuple[str, str | None], ...] = ()  # (URL or path, source name or None), in the order given
    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0
    total_timeout_s: float = 60.0
    max_body_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 2
    backoff_s: float = 1.0
    max_retry_after_s: float = 30.0
    per_host_concurrency: int = 2
    per_host_delay_s: float = 0.0
    max_parallel_hosts: int = 8
    allow_private_hosts: bool = False
    extract_timeout_s: float | None = 30.0
    streaming: bool = False
    poll_interval_s: float = 900.0
    stop_after_s: float | None = None  # streaming stops after this long...
    stop_after_polls: int | None = None  # ...or after this many polls; neither: runs until cancelled
    dedup_lookback_days: float = 7.0  # streaming forgets a URL not seen in any poll for this long

    @property
    def fetch(self) -> FetchConfig:
        return FetchConfig(
            user_agent=self.user_agent,
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            total_timeout_s=self.total_timeout_s,
            max_body_bytes=self.max_body_bytes,
            max_redirects=self.max_redirects,
            retries=self.retries,
            backoff_s=self.backoff_s,
            max_retry_after_s=self.max_retry_after_s,
            per_host_concurrency=self.per_host_concurrency,
            per_host_delay_s=self.per_host_delay_s,
            max_parallel_hosts=self.max_parallel_hosts,
            allow_private_hosts=self.allow_private_hosts,
        )

    def poll_count(self) -> int | None:
        """Number of polls a bounded streaming run makes (the first is at start), or None when unbounded."""
        if self.stop_after_polls is not None:
            return self.stop_after_polls
        if self.stop_after_s is not None:
            return int(math.floor(self.stop_after_s / self.poll_interval_s)) + 1
        return None


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


# ---------------------------------------------------------------------------------------------------------------------
# Options


def parse_duration(value: str) -> float:
    """'30s', '15m', '1h', '1d', '500ms' or a bare number of seconds -> seconds."""
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration like 30s, 15m or 1h: {value!r}")
    return float(m.group(1)) * _UNITS[(m.group(2) or "").lower() or None]


def parse_stop_after(value: str | None) -> tuple[float | None, int | None]:
    """'2m' -> (120.0, None); '3polls' -> (None, 3); None -> (None, None)."""
    if value is None or str(value).strip() == "":
        return None, None
    m = _POLLS.match(str(value))
    if m:
        return None, int(m.group(1))
    return parse_duration(value), None


def add_arguments(parser) -> None:
    """Feed flags of `news-ingest` (Beam's own --streaming switches to polling)."""
    g = parser.add_argument_group("feeds (RSS/Atom)")
    g.add_argument(
        "--feed",
        dest="feed",
        action="append",
        default=None,
        help="Feed URL, or local path / file:// URL of a feed file (repeatable).",
    )
    g.add_argument(
        "--feeds",
        dest="feeds_file",
        default=None,
        help="File listing feeds, one per line: URL_OR_PATH [source name]; '#' starts a comment. OPML also works.",
    )
    g.add_argument(
        "--allow-private-hosts",
        dest="allow_private_hosts",
        action="store_true",
        default=False,
        help="Also fetch hosts that resolve to private, loopback or link-local addresses (off: SSRF guard).",
    )
    g.add_argument("--user-agent", dest="user_agent", default=DEFAULT_USER_AGENT, help="User-Agent sent with requests.")
    g.add_argument(
        "--fetch-timeout",
        dest="fetch_timeout",
        type=float,
        default=20.0,
        help="Read timeout per request in seconds (default 20); connect timeout is min(10, this), "
        "a whole fetch with retries and redirects gets 3x this.",
    )
    g.add_argument("--fetch-retries", dest="fetch_retries", type=int, default=2, help="Retries on 429/5xx (default 2).")
    g.add_argument(
        "--max-body-mb",
        dest="max_body_mb",
        type=float,
        default=5.0,
        help="Pages and feeds larger than this are cut and rejected as 'too_large' (default 5).",
    )
    g.add_argument(
        "--per-host-concurrency",
        dest="per_host_concurrency",
        type=int,
        default=2,
        help="Requests in flight per host at most (default 2).",
    )
    g.add_argument(
        "--per-host-delay",
        dest="per_host_delay",
        default="0s",
        help="Minimum gap between request starts on one host, e.g. 500ms or 1s (default 0).",
    )
    g.add_argument(
        "--extract-timeout",
        dest="extract_timeout",
        default="30s",
        help="Per-page extraction time limit, e.g. 30s; 0 disables it (default 30s).",
    )
    g.add_argument(
        "--poll-interval",
        dest="poll_interval",
        default="15m",
        help="With --streaming: how often feeds are polled, e.g. 30s, 15m, 1h (default 15m).",
    )
    g.add_argument(
        "--stop-after",
        dest="stop_after",
        default=None,
        help="With --streaming: stop after a duration (e.g. 2m, 1h) or a number of polls (e.g. 3polls). "
        "Default: run until cancelled.",
    )


def _is_streaming(opts) -> bool:
    try:
        from apache_beam.options.pipeline_options import StandardOptions

        return bool(opts.view_as(StandardOptions).streaming)
    except AttributeError:
        return bool(getattr(opts, "streaming", False))


def config_from_options(opts, *, run_date: dt.date, output: str, now: dt.datetime) -> FeedConfig:
    """Validate feed flags and read the feed list; raises ValueError with a one-line message."""
    del run_date, output, now  # the feed source does not depend on them
    feeds: list[tuple[str, str | None]] = [(f.strip(), None) for f in (getattr(opts, "feed", None) or []) if f.strip()]
    feeds_file = getattr(opts, "feeds_file", None)
    if feeds_file:
        feeds += read_feed_list(feeds_file)
    try:
        per_host_delay = parse_duration(getattr(opts, "per_host_delay", "0s") or "0s")
        extract_timeout = parse_duration(getattr(opts, "extract_timeout", "30s") or "0s")
        poll_interval = parse_duration(getattr(opts, "poll_interval", "15m") or "15m")
        stop_after_s, stop_after_polls = parse_stop_after(getattr(opts, "stop_after", None))
    except ValueError as e:
        raise ValueError(f"feeds: {e}") from None
    read_timeout = float(getattr(opts, "fetch_timeout", 20.0))
    max_body_mb = float(getattr(opts, "max_body_mb", 5.0))
    per_host = int(getattr(opts, "per_host_concurrency", 2))
    retries = int(getattr(opts, "fetch_retries", 2))
    user_agent = (getattr(opts, "user_agent", None) or "").strip()
    if read_timeout <= 0:
        raise ValueError("--fetch-timeout must be positive")
    if max_body_mb <= 0:
        raise ValueError("--max-body-mb must be positive")
    if per_host < 1:
        raise ValueError("--per-host-concurrency must be at least 1")
    if retries < 0:
        raise ValueError("--fetch-retries must not be negative")
    if not user_agent:
        raise ValueError("--user-agent must not be empty")
    if poll_interval <= 0:
        raise ValueError("--poll-interval must be positive")
    if stop_after_polls is not None and stop_after_polls < 1:
        raise ValueError("--stop-after must allow at least one poll")
    if stop_after_s is not None and stop_after_s <= 0:
        raise ValueError("--stop-after must be positive")
    lookback = getattr(opts, "dedup_lookback_days", None)
    return FeedConfig(
        feeds=_unique_feeds(feeds),
        user_agent=user_agent,
        connect_timeout_s=min(10.0, read_timeout),
        read_timeout_s=read_timeout,
        total_timeout_s=3 * read_timeout,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        retries=retries,
        per_host_concurrency=per_host,
        per_host_delay_s=per_host_delay,
        allow_private_hosts=bool(getattr(opts, "allow_private_hosts", False)),
        extract_timeout_s=extract_timeout or None,
        streaming=_is_streaming(opts),
        poll_interval_s=poll_interval,
        stop_after_s=stop_after_s,
        stop_after_polls=stop_after_polls,
        dedup_lookback_days=float(lookback) if lookback else 7.0,
    )


def _unique_feeds(feeds: Iterable[tuple[str, str | None]]) -> tuple[tuple[str, str | None], ...]:
    """Each feed once, in first-given order; the first name given for it wins."""
    out: dict[str, str | None] = {}
    for location, name in feeds:
        key = canonical_url(location) or location
        if key not in out:
            out[key] = name
        elif out[key] is None and name:
            out[key] = name
    return tuple(out.items())


# ---------------------------------------------------------------------------------------------------------------------
# Feed lists and OPML


def _scheme(location: str) -> str:
    scheme = urllib.parse.urlsplit(location).scheme.lower()
    # "C:\feeds\x.xml" has a one-letter "scheme"; it is a path.
    return "" if len(scheme) == 1 else scheme


def parse_feed_list(text: str, base_dir: str | None = None) -> list[tuple[str, str | None]]:
    """Lines 'URL_OR_PATH [source name]'; blank lines and '#' comments skipped; relative paths joined to base_dir."""
    feeds = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = re.split(r"\s+#", line, maxsplit=1)[0].strip()
        parts = line.split(None, 1)
        location = parts[0]
        name = parts[1].strip() if len(parts) > 1 else None
        if base_dir and not _scheme(location) and not posixpath.isabs(location):
            location = FileSystems.join(base_dir, location)
        feeds.append((location, name or None))
    return feeds


def parse_opml(data: bytes) -> list[tuple[str, str | None]]:
    """OPML outlines with an xmlUrl -> (url, title or text); entity declarations and DTDs are not honoured."""
    from lxml import etree

    if _ENTITY_DECL.search(data[:65536]):
        raise ValueError("OPML file declares XML entities; refusing it")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as e:
        raise ValueError(f"OPML is not valid XML: {e}") from None
    if root is None:
        raise ValueError("OPML is empty")
    feeds = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url:
            name = (outline.get("title") or outline.get("text") or "").strip() or None
            feeds.append((url, name))
    return feeds


def read_feed_list(path: str) -> list[tuple[str, str | None]]:
    """A --feeds file (plain list or OPML), local or on any Beam filesystem."""
    try:
        with FileSystems.open(path) as f:
            data = f.read(10 * 1024 * 1024 + 1)
    except Exception as e:  # noqa: BLE001 - Beam raises various errors for missing files
        raise ValueError(f"--feeds {path!r}: cannot read it ({type(e).__name__})") from None
    stripped = data.lstrip()
    if stripped.startswith(b"<"):
        try:
            feeds = parse_opml(data)
        except ValueError as e:
            raise ValueError(f"--feeds {path!r}: {e}") from None
    else:
        feeds = parse_feed_list(data.decode("utf-8-sig", errors="replace"), posixpath.dirname(path) or None)
    if not feeds:
        raise ValueError(f"--feeds {path!r} lists no feeds")
    return feeds


# ---------------------------------------------------------------------------------------------------------------------
# Parsing feeds


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
    host = host_of(location) if _scheme(location) in ("http", "https") else None
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
        published = e.get("published_parsed") or e.get("updated_parsed")
        entries.append(
            FeedEntry(
                url=canonical_url(link) or link,
                feed=location,
                feed_index=index,
                entry_index=i,
                source=source,
                title=_clean(e.get("title"), 1000),
                published=(_iso(published) if published else None) or _clean(e.get("published") or e.get("updated")),
                author=_clean(e.get("author"), 300),
                summary=_entry_summary(e),
            )
        )
    return entries, rejects, bozo


def load_feed(location: str, fetcher: Fetcher | None, max_bytes: int) -> tuple[bytes, str | None, str | None]:
    """(bytes, base URL, content type) of a feed given by URL or by the user's own local/remote file path."""
    scheme = _scheme(location)
    if scheme in ("http", "https"):
        if fetcher is None:
            raise FeedUnreadable("no HTTP client")
        try:
            page: Page = fetcher.get(location, html_only=False, accept=FEED_ACCEPT)
        except FetchError as e:
            raise FeedUnreadable(f"{e.reason}: {e.detail}") from None
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


def read_feed(location: str, name: str | None, index: int, fetcher: Fetcher | None, cfg: FeedConfig):
    """One feed -> (entries, rejects); an unreadable feed is one `feed_unreadable` reject."""
    try:
        data, base, ctype = load_feed(location, fetcher, cfg.max_body_bytes)
        entries, rejects, bozo = parse_feed(
            data, location=location, index=index, name=name, base_url=base, content_type=ctype
        )
    except FeedUnreadable as e:
        return [], [Reject.of(location, STAGE, "feed_unreadable", str(e))]
    if bozo:
        count(f"feeds.bozo.{bozo}")
    count("feeds.read")
    count("feeds.entries", len(entries))
    return entries, rejects


class FeedReaderFn(beam.DoFn):
    """Base of the DoFns that read feeds: one HTTP client per DoFn instance, `read(item)` for (index, (location,
    name)) items. Subclasses decide what to emit."""

    def __init__(self, cfg: FeedConfig):
        self._cfg = cfg

    def setup(self):
        self._fetcher = Fetcher(self._cfg.fetch)

    def read(self, item) -> tuple[str, list[FeedEntry], list[Reject]]:
        index, (location, name) = item
        entries, rejects = read_feed(location, name, index, self._fetcher, self._cfg)
        return location, entries, rejects

    def teardown(self):
        if getattr(self, "_fetcher", None) is not None:
            self._fetcher.close()


class _ReadFeedFn(FeedReaderFn):
    def process(self, item):
        _, entries, rejects = self.read(item)
        for r in rejects:
            count(f"rejected.{r.stage}.{r.reason}")
            yield beam.pvalue.TaggedOutput(REJECTS, r)
        yield from entries


# ---------------------------------------------------------------------------------------------------------------------
# Fetching the linked pages


def _host_of(keyed: tuple[str, list[FeedEntry]]) -> str:
    return keyed[0]


def _number_hosts(keyed: tuple[str, Iterable[str]], size: int) -> Iterator[tuple[str, int]]:
    for i, host in enumerate(sorted(keyed[1])):
        yield host, i // size


def _by_batch(host: str, joined: dict) -> tuple[int, tuple[str, list[FeedEntry]]]:
    (batch,), (links,) = joined["batch"], joined["links"]
    return batch, (host, links)


def _hosts_in_order(_, hosts: Iterable[tuple[str, list[FeedEntry]]]) -> list[tuple[str, list[FeedEntry]]]:
    return sorted(hosts, key=_host_of)


class _HostBatches(beam.PTransform):
    """(host, [entry]) -> lists of up to `size` (host, [entry]): hosts numbered in name order and cut in runs,
    so batches are full however few hosts there are. Only host names meet on one key, never the links.

    (Batch's hash shards would scatter a handful of hosts into batches of one, fetched one after another; a
    side input with the host count would do, but Beam's DaskRunner cannot compute one made by a shuffle.)
    """

    def __init__(self, size: int):
        super().__init__()
        self._size = size

    def expand(self, by_host):
        batch_of = (
            by_host
            | "HostNames" >> beam.Map(lambda keyed: ("", keyed[0]))
            | "AllHostNames" >> beam.GroupByKey()
            | "NumberHosts" >> beam.FlatMap(_number_hosts, self._size)
        )
        return (
            {"batch": batch_of, "links": by_host}
            | "JoinBatch" >> beam.CoGroupByKey()
            | "KeyByBatch" >> beam.MapTuple(_by_batch)
            | "GroupBatch" >> beam.GroupByKey()
            | "HostsInOrder" >> beam.MapTuple(_hosts_in_order)
        )


def _host_key(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).hostname or ""
    except ValueError:  # "http://[::1/x": fetching it makes the reject
        return ""


def _listed(host: str, entries: Iterable[FeedEntry]) -> tuple[str, list[FeedEntry]]:
    return host, sorted(entries, key=lambda e: e.url)


def _first_of(url: str, entries: Iterable[FeedEntry]) -> FeedEntry:
    entries = sorted(entries, key=lambda e: e.order)
    if len(entries) > 1:
        # The same story in several feeds is fetched once; the first feed given names its source.
        count("feeds.duplicate_links", len(entries) - 1)
    return entries[0]


def to_raw(entry: FeedEntry, result) -> RawArticle | beam.pvalue.TaggedOutput:
    """A fetched page (or fetch error) for a feed entry -> RawArticle (or a counted fetch reject)."""
    if isinstance(result, FetchError):
        return reject(entry.url, FETCH_STAGE, result.reason, result.detail)
    count("fetch.pages")
    return RawArticle(
        input_ref=entry.url,
        source=entry.source,
        content=result.text(),
        content_type="html",
        url=canonical_url(result.final_url) or entry.url,
        title=entry.title,
        published=entry.published,
        author=entry.author,
        summary=entry.summary,
        origin="feed",
        flags=entry.flags,
    )


class FetchEntries(beam.PTransform):
    """FeedEntry -> {'raw': RawArticle, 'rejects': Reject}: one fetch per distinct URL, hosts fetched politely."""

    def __init__(self, cfg: FeedConfig):
        super().__init__()
        self._cfg = cfg

    def expand(self, entries):
        by_host = (
            entries
            | "KeyByUrl" >> beam.Map(lambda e: (e.url, e))
            | "OncePerUrl" >> beam.GroupByKey()
            | "FirstEntry" >> beam.MapTuple(_first_of)
            | "KeyByHost" >> beam.Map(lambda e: (_host_key(e.url), e))
            | "GroupByHost" >> beam.GroupByKey()
            | "ListLinks" >> beam.MapTuple(_listed)
            # Up to max_parallel_hosts hosts per element, fetched side by side.
            | "HostBatches" >> _HostBatches(self._cfg.fetch.max_parallel_hosts)
        )
        # Not run_guarded: FetchLinksFn turns every failure of a link into a reject itself, one per link.
        fetched = by_host | "FetchPages" >> TaggedParDo(FetchLinksFn(self._cfg.fetch, to_raw), REJECTS, main="raw")
        return {"raw": fetched["raw"], "rejects": fetched[REJECTS]}


class ReadFeeds(beam.PTransform):
    """Configured feeds -> {'raw': RawArticle (origin 'feed'), 'rejects': Reject}.

    Every entry ends as one RawArticle or one reject; a URL listed by several feeds is fetched and emitted once
    (counted in `feeds.duplicate_links`), so the run's `records_read` counts distinct URLs.
    """

    def __init__(self, cfg: FeedConfig):
        super().__init__()
        self._cfg = cfg

    def expand(self, pbegin):
        feeds = (
            pbegin
            | "Feeds" >> beam.Create(list(enumerate(self._cfg.feeds)))
            # One feed per worker slot: feed fetches are slow and independent.
            | "SpreadFeeds" >> beam.Reshuffle()
        )
        entries, feed_rejects = run_guarded(feeds, "ReadFeed", STAGE, _ReadFeedFn(self._cfg))
        fetched = entries | "Fetch" >> FetchEntries(self._cfg)
        rejects = (feed_rejects, fetched["rejects"]) | "AllRejects" >> beam.Flatten()
        return {"raw": fetched["raw"], "rejects": rejects}
