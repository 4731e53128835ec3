"""Extract stage: RawArticle (text or HTML) -> Article with body text and metadata."""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import email.utils
import html as html_lib
import os
import pickle
import re
import select
import struct
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable

import apache_beam as beam

from schemas.elements import Article, RawArticle
from transforms.common import count, reject, run_guarded
from transforms.urls import canonical_url, host_of

STAGE = "extract"
_TAG = re.compile(r"<[^>]+>")
_MIN_YEAR, _MAX_YEAR = 1900, 2100
_HTML_LANG = re.compile(r"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})", re.IGNORECASE)
MIN_PAGE_WORDS = 20  # below this a feed page's extraction loses to a longer feed summary
_LEN = struct.Struct("!Q")  # frame header of the extraction worker's pipe protocol
_WORKER_START_S = 120.0  # importing trafilatura on a loaded machine; not charged to any page


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """Extract-stage settings."""

    favor_precision: bool = False
    # Hard per-page limit on HTML extraction, enforced in a worker process; None runs trafilatura in-process.
    timeout_s: float | None = 30.0


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

    Metadata precedence: HTML page > input record (JSON or feed entry); text datelines come later.
    `extractor(content, url, cfg)` replaces `extract_html`, e.g. with a time-limited worker process.
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
        page_date = _same_day_precision(parse_datetime(meta["date"]), published)
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
    if summary:
        fields.update(content_source="feed_summary")
        return Article(text=summary, **fields)
    return "extract_failed", "no main content found in the HTML"


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


def _serve() -> None:
    """Worker-process loop: read (content, url, cfg) frames on stdin, answer extract_html() results on stdout."""
    out = os.fdopen(os.dup(1), "wb")
    # Anything a library prints must not corrupt the frames.
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    import logging

    import trafilatura  # noqa: F401 - imported before the ready frame so start-up is not charged to a page

    logging.disable(logging.CRITICAL)
    ready = pickle.dumps(("ready", None))
    out.write(_LEN.pack(len(ready)) + ready)
    out.flush()
    while True:
        head = inp.read(_LEN.size)
        if len(head) < _LEN.size:
            return
        content, url, cfg = pickle.loads(inp.read(_LEN.unpack(head)[0]))
        try:
            reply = ("ok", extract_html(content, url, cfg))
        except Exception as e:  # noqa: BLE001 - reported back to the parent as an extraction failure
            reply = ("error", f"{type(e).__name__}: {e}"[:500])
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_LEN.pack(len(data)) + data)
        out.flush()


class TimedExtractor:
    """extract_html() in a long-lived child process, killed and restarted when one page takes too long.

    A thread cannot be stopped, so a runaway trafilatura call would keep burning a core; a process can be killed.
    """

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        proc = subprocess.Popen(
            [sys.executable, "-c", "from transforms.extract import _serve; _serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        count("extract.worker_starts")
        try:
            ready = self._read(proc, time.monotonic() + _WORKER_START_S)
        except (EOFError, OSError):
            ready = None
        if ready is None or ready[0] != "ready":
            self._proc = proc
            self.close()
            raise RuntimeError("extraction worker did not start")
        return proc

    def __call__(self, content: str, url: str | None, cfg: ExtractConfig) -> dict:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        proc = self._proc
        data = pickle.dumps((content, url, cfg), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            proc.stdin.write(_LEN.pack(len(data)) + data)
            proc.stdin.flush()
            reply = self._read(proc, time.monotonic() + self.timeout_s)
        except (BrokenPipeError, EOFError, OSError) as e:
            self.close()
            raise RuntimeError(f"extraction worker died: {type(e).__name__}") from None
        if reply is None:
            self.close()
            raise ExtractTimeout(f"extraction took longer than {self.timeout_s:g}s")
        status, value = reply
        if status != "ok":
            raise RuntimeError(value)
        return value

    def _read(self, proc: subprocess.Popen, deadline: float):
        fd = proc.stdout.fileno()
        buf = b""
        need = _LEN.size
        header_done = False
        while True:
            while len(buf) < need:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                ready, _, _ = select.select([fd], [], [], remaining)
                if not ready:
                    return None
                chunk = os.read(fd, max(65536, need - len(buf)))
                if not chunk:
                    raise EOFError("worker closed its output")
                buf += chunk
            if header_done:
                return pickle.loads(buf[:need])
            need = _LEN.unpack(buf[: _LEN.size])[0]
            buf = buf[_LEN.size :]
            header_done = True

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass


# Idle workers kept for the next DoFn instance in this process: some runners (the bundle-based DirectRunner used for
# streaming) set up and tear down a DoFn per bundle, and a worker costs a second or two to start.
_IDLE_WORKERS: list[TimedExtractor] = []
_IDLE_LOCK = threading.Lock()
_MAX_IDLE_WORKERS = 4


@atexit.register
def _close_idle_extractors() -> None:
    with _IDLE_LOCK:
        workers, _IDLE_WORKERS[:] = list(_IDLE_WORKERS), []
    for worker in workers:
        worker.close()


def _borrow_extractor(timeout_s: float) -> TimedExtractor:
    with _IDLE_LOCK:
        for i, worker in enumerate(_IDLE_WORKERS):
            if worker.timeout_s == timeout_s:
                return _IDLE_WORKERS.pop(i)
    return TimedExtractor(timeout_s)


def _return_extractor(worker: TimedExtractor) -> None:
    with _IDLE_LOCK:
        if len(_IDLE_WORKERS) < _MAX_IDLE_WORKERS:
            _IDLE_WORKERS.append(worker)
            return
    worker.close()


class _ExtractFn(beam.DoFn):
    def __init__(self, cfg: ExtractConfig):
        self._cfg = cfg

    def setup(self):
        self._extractor = _borrow_extractor(self._cfg.timeout_s) if self._cfg.timeout_s else None

    def teardown(self):
        extractor, self._extractor = getattr(self, "_extractor", None), None
        if extractor is not None:
            _return_extractor(extractor)

    def process(self, raw: RawArticle) -> Iterable:
        result = to_article(raw, self._cfg, self._extractor)
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
