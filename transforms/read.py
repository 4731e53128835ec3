"""Read stage: files (text, HTML, JSON Lines, gzip) matched by globs become RawArticle records."""

from __future__ import annotations

import dataclasses
import json
import posixpath
import unicodedata
import zlib
from collections.abc import Iterable, Iterator

import apache_beam as beam
import charset_normalizer
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.elements import RawArticle, Reject
from transforms.common import count, reject, run_guarded
from transforms.urls import canonical_url, host_of

STAGE = "read"
TEXT_EXT = (".txt", ".text")
HTML_EXT = (".html", ".htm", ".xhtml")
JSONL_EXT = (".jsonl", ".json", ".ndjson")


@dataclasses.dataclass(frozen=True)
class ReadConfig:
    """Read-stage settings."""

    max_bytes: int = 50 * 1024 * 1024  # per file, after decompression


class ReadError(Exception):
    """An expected, per-record read failure with a stable reason code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_PREFERRED = ("cp1252", "iso8859_15", "latin_1", "utf_16", "cp1251", "gb18030", "shift_jis", "euc_kr")


def _preference(encoding: str) -> int:
    return _PREFERRED.index(encoding) if encoding in _PREFERRED else len(_PREFERRED)


def decode(data: bytes) -> str:
    """UTF-8 first (with or without BOM), then charset detection; NFC-normalised."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # A chaotic guess is mojibake in waiting: better a reject than garbage text.
        matches = [m for m in charset_normalizer.from_bytes(data) if m.chaos <= 0.3]
        if not matches:
            raise ReadError("undecodable", "not UTF-8 and no text encoding could be detected") from None
        # Ties between single-byte code pages are common; news in Latin script is most often cp1252.
        best = min(matches, key=lambda m: (round(m.chaos, 2), _preference(m.encoding), -m.coherence))
        text = str(best)
    if "\x00" in text:
        raise ReadError("undecodable", "binary content (NUL bytes)")
    return unicodedata.normalize("NFC", text)


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress gzip, refusing truncated streams and outputs above max_bytes (gzip bombs)."""
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, max_bytes + 1)
    except zlib.error as e:
        raise ReadError("bad_gzip", f"corrupt gzip stream: {e}") from None
    if len(out) > max_bytes:
        raise ReadError("too_large", f"decompresses to more than {max_bytes} bytes")
    if not d.eof:
        raise ReadError("bad_gzip", "truncated gzip stream")
    return out


def source_for(explicit: str | None, url: str | None, path: str) -> str:
    """Explicit source, else the URL's host, else the name of the input's folder."""
    if explicit and str(explicit).strip():
        return str(explicit).strip()
    return host_of(url) or posixpath.basename(posixpath.dirname(path.replace("\\", "/"))) or "unknown"


def _kind(path: str) -> tuple[str, bool]:
    lower = path.lower()
    gz = lower.endswith(".gz")
    if gz:
        lower = lower[:-3]
    for kind, exts in (("text", TEXT_EXT), ("html", HTML_EXT), ("jsonl", JSONL_EXT)):
        if lower.endswith(exts):
            return kind, gz
    return "unknown", gz


def _json_records(path: str, text: str, whole_file: bool) -> Iterator[tuple[str, str | object]]:
    """(input_ref, parsed value or the raw line when it is not JSON)."""
    stripped = text.lstrip()
    if whole_file and stripped.startswith("["):
        # A .json file holding one array is a common export shape; each element is a record.
        try:
            values = json.loads(stripped)
        except json.JSONDecodeError:
            values = None
        if isinstance(values, list):
            for i, value in enumerate(values, 1):
                yield f"{path}:{i}", value
            return
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield f"{path}:{lineno}", json.loads(line)
            except json.JSONDecodeError as e:
                yield f"{path}:{lineno}", ReadError("bad_json", f"invalid JSON: {e.msg} at column {e.colno}")


def _from_json(ref: str, path: str, value: object, line: str) -> RawArticle | Reject:
    if not isinstance(value, dict):
        return Reject.of(ref, STAGE, "bad_record", "JSON record is not an object", line)
    html, text = value.get("html"), value.get("text")
    body, ctype = (html, "html") if isinstance(html, str) and html.strip() else (text, "text")
    if not isinstance(body, str) or not body.strip():
        return Reject.of(ref, STAGE, "empty", "record has no non-empty 'text' or 'html' field", line)
    url = value.get("url") if isinstance(value.get("url"), str) else None

    def opt(key: str) -> str | None:
        v = value.get(key)
        return str(v) if isinstance(v, (str, int, float)) and str(v).strip() else None

    return RawArticle(
        input_ref=ref,
        source=source_for(opt("source"), url, path),
        content=unicodedata.normalize("NFC", body),
        content_type=ctype,
        url=canonical_url(url) or url,
        title=opt("title"),
        published=opt("published"),
        author=opt("author"),
        origin="jsonl",
    )


def parse_file(path: str, data: bytes, cfg: ReadConfig) -> Iterator[RawArticle | Reject]:
    """All records of one file's bytes: RawArticles and Rejects, never an exception for bad input."""
    try:
        kind, gz = _kind(path)
        if kind == "unknown":
            raise ReadError("unsupported_type", "file extension is not .txt, .html, .htm, .json or .jsonl")
        if len(data) > cfg.max_bytes:
            raise ReadError("too_large", f"{len(data)} bytes is over the {cfg.max_bytes}-byte limit")
        if gz:
            data = gunzip(data, cfg.max_bytes)
        if not data.strip():
            raise ReadError("empty", "file is empty")
        text = decode(data)
        if not text.strip():
            raise ReadError("empty", "file has only whitespace")
    except ReadError as e:
        yield Reject.of(path, STAGE, e.reason, e.detail, data if e.reason not in ("too_large",) else None)
        return
    if kind == "jsonl":
        lines = text.splitlines()
        for ref, value in _json_records(path, text, whole_file=path.lower().removesuffix(".gz").endswith(".json")):
            line_no = int(ref.rsplit(":", 1)[1])
            raw_line = lines[line_no - 1] if line_no - 1 < len(lines) else ""
            if isinstance(value, ReadError):
                yield Reject.of(ref, STAGE, value.reason, value.detail, raw_line)
            else:
                yield _from_json(ref, path, value, raw_line)
        return
    yield RawArticle(
        input_ref=path,
        source=source_for(None, None, path),
        content=text,
        content_type="html" if kind == "html" else "text",
        origin="file",
    )


class _ReadFileFn(beam.DoFn):
    def __init__(self, cfg: ReadConfig):
        self._cfg = cfg

    def process(self, metadata) -> Iterable:
        path = metadata.path
        count("files_read")
        if metadata.size_in_bytes > self._cfg.max_bytes:
            yield reject(path, STAGE, "too_large", f"{metadata.size_in_bytes} bytes is over the limit")
            return
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            data = f.read(self._cfg.max_bytes + 1)
        for record in parse_file(path, data, self._cfg):
            if isinstance(record, Reject):
                count(f"rejected.{STAGE}.{record.reason}")
                yield beam.pvalue.TaggedOutput("rejects", record)
            else:
                count("records_read")
                yield record


class ReadFiles(beam.PTransform):
    """File globs -> {'raw': RawArticle, 'rejects': Reject}. Unreadable records become rejects."""

    def __init__(self, patterns: Iterable[str], cfg: ReadConfig = ReadConfig()):
        super().__init__()
        self._patterns = sorted(set(patterns))
        self._cfg = cfg

    def expand(self, pbegin):
        metadata = (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            | "Match" >> fileio.MatchAll()
            | "KeyByPath" >> beam.Map(lambda m: (m.path, m))
            # Overlapping globs must not read a file twice; the shuffle also spreads files over workers.
            | "OncePerFile" >> beam.GroupByKey()
            | "Metadata" >> beam.MapTuple(lambda _path, ms: next(iter(ms)))
        )
        raw, rejects = run_guarded(metadata, "ReadFile", STAGE, _ReadFileFn(self._cfg))
        return {"raw": raw, "rejects": rejects}
