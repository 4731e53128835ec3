"""Read stage: files (text, HTML, JSON Lines, JSON, gzip) matched by globs become RawArticle records."""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import io
import json
import os
import posixpath
import stat
import unicodedata
import zlib
from collections.abc import Iterable, Iterator

import apache_beam as beam
import charset_normalizer
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.elements import FileTally, RawArticle, Reject
from transforms.common import REJECTS, count, run_guarded
from transforms.urls import canonical_url, host_of

STAGE = "read"
TEXT_EXT = (".txt", ".text")
HTML_EXT = (".html", ".htm", ".xhtml")
JSONL_EXT = (".jsonl", ".ndjson")
JSON_EXT = (".json",)
SUPPORTED_EXT = TEXT_EXT + HTML_EXT + JSONL_EXT + JSON_EXT
# Record metadata longer than this is cut: a megabyte "source" would become a shuffle key in every later stage.
FIELD_LIMITS = {"source": 200, "title": 2000, "author": 500, "published": 100, "updated": 100, "url": 8192}


@dataclasses.dataclass(frozen=True)
class ReadConfig:
    """Read-stage settings."""

    max_bytes: int = 50 * 1024 * 1024  # per file, after decompression
    exclude: tuple[str, ...] = ()  # folders never read from (the run's own --output)
    folders: tuple[str, ...] = ()  # folders given as --input: only the supported files below them are read


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
        text = data.decode(decode_guess(data), errors="replace")
    if "\x00" in text:
        raise ReadError("undecodable", "binary content (NUL bytes)")
    return unicodedata.normalize("NFC", text)


def gunzip_members(data: bytes, max_bytes: int) -> tuple[bytes, int]:
    """Decompress every member of a gzip stream (bgzip, `pigz -i`, `cat a.gz b.gz`) -> (bytes, members).

    Refuses truncated or corrupt streams and outputs above max_bytes (gzip bombs). Zero padding after the last
    member (some writers align files) is allowed.
    """
    out, size, members, rest = [], 0, 0, data
    while rest:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = d.decompress(rest, max_bytes + 1 - size)
        except zlib.error as e:
            raise ReadError("bad_gzip", f"corrupt gzip stream in member {members + 1}: {e}") from None
        size += len(chunk)
        if size > max_bytes:
            raise ReadError("too_large", f"decompresses to more than {max_bytes} bytes")
        if not d.eof:
            raise ReadError("bad_gzip", f"truncated gzip stream in member {members + 1}")
        out.append(chunk)
        members += 1
        rest = d.unused_data.lstrip(b"\x00")  # zero padding between or after members, as gzip itself allows
    if not members:
        raise ReadError("bad_gzip", "empty gzip file")
    return b"".join(out), members


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """All members of a gzip stream, decompressed (see gunzip_members)."""
    return gunzip_members(data, max_bytes)[0]


def source_for(explicit: str | None, url: str | None, path: str) -> str:
    """Explicit source, else the URL's host, else the name of the input's folder."""
    if explicit and str(explicit).strip():
        return str(explicit).strip()
    return host_of(url) or posixpath.basename(posixpath.dirname(path.replace("\\", "/"))) or "unknown"


def file_kind(path: str) -> tuple[str, bool]:
    """('text' | 'html' | 'jsonl' | 'json' | 'unknown', gzipped) from the file name."""
    lower = path.lower()
    gz = lower.endswith(".gz")
    if gz:
        lower = lower[:-3]
    for kind, exts in (("text", TEXT_EXT), ("html", HTML_EXT), ("jsonl", JSONL_EXT), ("json", JSON_EXT)):
        if lower.endswith(exts):
            return kind, gz
    return "unknown", gz


def is_supported(path: str) -> bool:
    """Whether the reader knows the file's type (used when a folder is given as input)."""
    return file_kind(path)[0] != "unknown"


def _local(path: str) -> str | None:
    """The native path of a local file or file:// URL; None for other filesystems."""
    if FileSystems.get_scheme(path) not in (None, "file"):
        return None
    return path[len("file://") :] if path.startswith("file://") else path


def is_under(path: str, root: str) -> bool:
    """Whether `path` lies in the folder `root` (local paths resolved, links included; URLs by prefix)."""
    if not root:
        return False
    local_path, local_root = _local(path), _local(root)
    if local_path is not None and local_root is not None:
        base = os.path.realpath(local_root).rstrip(os.sep) + os.sep
        return os.path.realpath(local_path).startswith(base)
    return path.startswith(root.rstrip("/") + "/")


def not_regular(path: str) -> str | None:
    """Why a local path cannot be read as a file (a FIFO would block the reader forever), or None."""
    native = _local(path)
    if native is None:
        return None  # object stores hold only regular objects
    try:
        mode = os.stat(native).st_mode
    except OSError as e:
        return f"cannot stat it: {e.strerror or type(e).__name__}"
    if stat.S_ISREG(mode):
        return None
    kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
    return f"{kind}; only regular files are read"


# ---------------------------------------------------------------------------------------- JSON Lines lines

_JSON_SPACE = " \t\r"  # JSON's own whitespace (besides "\n"): a line of only these is blank
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"))
_BOMS += ((codecs.BOM_UTF16_BE, "utf-16"),)


def bom_text(data: bytes) -> str | None:
    """The text of a UTF-16/32 file that starts with its byte-order mark and decodes cleanly, else None.

    Such files are the only ones whose lines are not split on the byte "\n"."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                return None
    return None


def _guess_encoding(data: bytes) -> str | None:
    try:
        return decode_guess(data)
    except ReadError:
        return None


def decode_guess(data: bytes) -> str:
    """The detected (non-UTF-8) encoding of a file's bytes; ReadError when none is plausible."""
    matches = [m for m in charset_normalizer.from_bytes(data) if m.chaos <= 0.3]
    if not matches:
        raise ReadError("undecodable", "not UTF-8 and no text encoding could be detected")
    # Ties between single-byte code pages are common; news in Latin script is most often cp1252.
    return min(matches, key=lambda m: (round(m.chaos, 2), _preference(m.encoding), -m.coherence)).encoding


def json_lines(data: bytes) -> Iterator[tuple[int, str | ReadError, str]]:
    """(1-based line number, decoded line or ReadError, excerpt) of every non-blank line of a JSON Lines file.

    Lines are split on "\n" only (str.splitlines() would also split on U+2028, U+2029 and U+0085, which JSON
    strings may hold raw) and decoded one by one: a line of binary or undecodable bytes is that line's reject,
    never its file's.
    """
    data = data.removeprefix(codecs.BOM_UTF8)
    text = bom_text(data)
    if text is not None:
        for lineno, line in enumerate(text.split("\n"), 1):
            if line.strip(_JSON_SPACE):
                yield lineno, _checked(unicodedata.normalize("NFC", line)), line
        return
    fallback: list[str | None] = []  # the whole file's guessed encoding, detected once and only when needed
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip(_JSON_SPACE.encode()):
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            if not fallback:
                fallback.append(_guess_encoding(data))
            line = raw.decode(fallback[0], errors="strict") if fallback[0] and _decodes(raw, fallback[0]) else None
        excerpt = raw.decode("utf-8", errors="replace")
        if line is None:
            yield lineno, ReadError("undecodable", "line is not UTF-8 nor in the file's encoding"), excerpt
        else:
            yield lineno, _checked(unicodedata.normalize("NFC", line)), excerpt


def _decodes(raw: bytes, codec: str) -> bool:
    try:
        raw.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _checked(line: str) -> str | ReadError:
    # A raw NUL cannot be inside a JSON string (it must be escaped): the line is binary.
    return ReadError("undecodable", "binary content (NUL bytes) in the line") if "\x00" in line else line


# ----------------------------------------------------------------------------------------------- counting


def _decompressed_for_count(data: bytes, gz: bool, max_bytes: int) -> bytes:
    # The standard library's gzip reader, not the reader's own member loop: the count must not share its bugs.
    if not gz:
        return data
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        return f.read(max_bytes + 1)


def _count_lines(raw: bytes) -> int:
    raw = raw.removeprefix(codecs.BOM_UTF8)
    text = bom_text(raw)
    if text is not None:
        return sum(1 for line in text.split("\n") if line.strip(_JSON_SPACE))
    return sum(1 for line in raw.split(b"\n") if line.strip(_JSON_SPACE.encode()))


def _json_document(data: bytes):
    """The value of a whole-file JSON document (an object or an array), or _NOT_A_DOCUMENT."""
    try:
        stripped = decode(data).strip()
    except ReadError:
        return _NOT_A_DOCUMENT
    if not stripped.startswith(("[", "{")):
        return _NOT_A_DOCUMENT
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return _NOT_A_DOCUMENT


_NOT_A_DOCUMENT = object()


def expected_records(path: str, data: bytes, max_bytes: int) -> tuple[int, int]:
    """(records the file holds, decompressed bytes), from the bytes alone and never raising.

    One per .txt/.html file; one per non-blank line (split on "\n" only) of a JSON Lines file; the elements of a
    .json array, 1 for a .json object. A file that cannot be read at all counts 1: it becomes one reject.
    """
    kind, gz = file_kind(path)
    if len(data) > max_bytes:
        return 1, len(data)
    try:
        raw = _decompressed_for_count(data, gz, max_bytes)
    except (OSError, EOFError, zlib.error):
        return 1, 0
    if kind not in ("jsonl", "json") or len(raw) > max_bytes or not raw.strip():
        return 1, len(raw)
    if kind == "json":
        doc = _json_document(raw)
        if isinstance(doc, list):
            return max(1, len(doc)), len(raw)
        if doc is not _NOT_A_DOCUMENT:
            return 1, len(raw)
    return max(1, _count_lines(raw)), len(raw)


# ------------------------------------------------------------------------------------------------ parsing


def _json_values(path: str, data: bytes, whole_file: bool) -> Iterator[tuple[str, object, str | None]]:
    """(input_ref, parsed value or ReadError, raw line for the excerpt) of a JSON Lines or JSON file."""
    if whole_file:
        doc = _json_document(data)
        if isinstance(doc, list):
            if not doc:
                yield path, ReadError("empty", "the JSON array is empty"), None
            for i, value in enumerate(doc, 1):
                yield f"{path}:{i}", value, None
            return
        if doc is not _NOT_A_DOCUMENT:
            yield path, doc, None
            return
        # Not one document: a .json file holding JSON Lines is common enough to read line by line.
    for lineno, line, excerpt in json_lines(data):
        ref = f"{path}:{lineno}"
        if isinstance(line, ReadError):
            yield ref, line, excerpt
            continue
        try:
            yield ref, json.loads(line), excerpt
        except json.JSONDecodeError as e:
            yield ref, ReadError("bad_json", f"invalid JSON: {e.msg} at column {e.colno}"), excerpt
        except RecursionError:
            yield ref, ReadError("bad_json", "JSON nested too deeply"), excerpt
        except ValueError as e:  # e.g. an integer of more digits than Python converts
            yield ref, ReadError("bad_json", f"cannot parse: {str(e)[:200]}"), excerpt


def _excerpt(value: object, line: str | None) -> str | None:
    if line is not None:
        return line
    try:
        return json.dumps(value, ensure_ascii=False)[:1000]
    except (ValueError, TypeError, RecursionError):
        return None


def _field(value: dict, key: str) -> str | None:
    v = value.get(key)
    if not isinstance(v, (str, int, float)) or isinstance(v, bool):
        return None
    try:
        text = str(v).strip()
    except ValueError:  # an int too long to print
        return None
    return text[: FIELD_LIMITS.get(key, 2000)] or None


def from_json(ref: str, path: str, value: object, excerpt: str | None) -> RawArticle | Reject:
    """One parsed JSON record -> RawArticle, or a Reject when it is not an article object."""
    if not isinstance(value, dict):
        return Reject.of(ref, STAGE, "bad_record", "JSON record is not an object", excerpt)
    html, text = value.get("html"), value.get("text")
    body, ctype = (html, "html") if isinstance(html, str) and html.strip() else (text, "text")
    if not isinstance(body, str) or not body.strip():
        return Reject.of(ref, STAGE, "empty", "record has no non-empty 'text' or 'html' field", excerpt)
    url = _field(value, "url") if isinstance(value.get("url"), str) else None
    return RawArticle(
        input_ref=ref,
        source=source_for(_field(value, "source"), url, path)[: FIELD_LIMITS["source"]],
        content=unicodedata.normalize("NFC", body),
        content_type=ctype,
        url=canonical_url(url) or url,
        title=_field(value, "title"),
        published=_field(value, "published"),
        author=_field(value, "author"),
        origin="jsonl",
        updated=_field(value, "updated"),
    )


def _guarded(ref: str, make, excerpt) -> RawArticle | Reject:
    """One record's conversion; an unexpected error is that record's reject, never its file's."""
    try:
        return make()
    except Exception as e:  # noqa: BLE001 - one poisoned record must not take its file with it
        return Reject.of(ref, STAGE, "internal_error", f"{type(e).__name__}: {str(e)[:300]}", excerpt)


def _unpacked(path: str, data: bytes, cfg: ReadConfig) -> tuple[str, bytes, int]:
    """(kind, decompressed bytes, gzip members) of a file; ReadError for a file that is unreadable as a whole."""
    kind, gz = file_kind(path)
    if kind == "unknown":
        raise ReadError("unsupported_type", f"file extension is not one of {', '.join(SUPPORTED_EXT)} (or .gz)")
    if len(data) > cfg.max_bytes:
        raise ReadError("too_large", f"{len(data)} bytes is over the {cfg.max_bytes}-byte limit")
    members = 0
    if gz:
        data, members = gunzip_members(data, cfg.max_bytes)
    if not data.strip():
        raise ReadError("empty", "file is empty")
    return kind, data, members


def _whole_text(data: bytes) -> str:
    text = decode(data)
    if not text.strip():
        raise ReadError("empty", "file has only whitespace")
    return text


def parse_file(path: str, data: bytes, cfg: ReadConfig, members: list | None = None) -> Iterator[RawArticle | Reject]:
    """All records of one file's bytes: RawArticles and Rejects, never an exception for bad input.

    `members`, when given, receives the number of gzip members read.
    """
    try:
        kind, data, n_members = _unpacked(path, data, cfg)
        text = _whole_text(data) if kind in ("text", "html") else None
    except ReadError as e:
        yield Reject.of(path, STAGE, e.reason, e.detail, data if e.reason != "too_large" else None)
        return
    except Exception as e:  # noqa: BLE001 - an unexpected failure on the whole file is still one reject
        yield Reject.of(path, STAGE, "internal_error", f"{type(e).__name__}: {str(e)[:300]}", data[:2000])
        return
    if members is not None:
        members.append(n_members)
    if text is None:
        n = 0
        for ref, value, line in _json_values(path, data, whole_file=kind == "json"):
            n += 1
            if isinstance(value, ReadError):
                yield Reject.of(ref, STAGE, value.reason, value.detail, line)
            else:
                excerpt = _excerpt(value, line)
                yield _guarded(ref, lambda r=ref, v=value, x=excerpt: from_json(r, path, v, x), excerpt)
        if not n:  # only blank lines (a byte-order mark, carriage returns): the file is one reject
            yield Reject.of(path, STAGE, "empty", "file has no non-blank line", data)
        return
    yield _guarded(
        path,
        lambda: RawArticle(
            input_ref=path,
            source=source_for(None, None, path),
            content=text,
            content_type="html" if kind == "html" else "text",
            origin="file",
        ),
        text[:2000],
    )


def read_bytes(path: str, max_bytes: int) -> bytes:
    """Up to max_bytes + 1 bytes of a file through Beam's FileSystems (local, gs://, s3://)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read(max_bytes + 1)


def read_file(path: str, size: int | None, cfg: ReadConfig) -> tuple[list[RawArticle | Reject], FileTally]:
    """Every record of one input file and its tally; never raises for bad input."""
    why = not_regular(path)
    if why is not None:
        return [Reject.of(path, STAGE, "not_regular_file", why)], FileTally(path, expected=1, rejects=1)
    if size is not None and size > cfg.max_bytes:
        detail = f"{size} bytes is over the {cfg.max_bytes}-byte limit"
        return [Reject.of(path, STAGE, "too_large", detail)], FileTally(path, expected=1, rejects=1)
    try:
        data = read_bytes(path, cfg.max_bytes)
    except OSError as e:  # vanished, permission denied, an I/O error: this file's reject, not the run's end
        detail = f"cannot read it: {type(e).__name__}: {str(e)[:300]}"
        return [Reject.of(path, STAGE, "unreadable", detail)], FileTally(path, expected=1, rejects=1)
    expected, n_bytes = expected_records(path, data, cfg.max_bytes)
    members: list[int] = []
    records = list(parse_file(path, data, cfg, members))
    n_rejects = sum(isinstance(r, Reject) for r in records)
    tally = FileTally(
        path,
        expected=expected,
        records=len(records) - n_rejects,
        rejects=n_rejects,
        bytes=n_bytes,
        gzip_members=members[0] if members else 0,
    )
    return records, tally


# ---------------------------------------------------------------------------------------------------- Beam


class _ReadFileFn(beam.DoFn):
    def __init__(self, cfg: ReadConfig):
        self._cfg = cfg

    def process(self, metadata) -> Iterable:
        path = metadata.path
        if any(is_under(path, root) for root in self._cfg.exclude):
            count("read.skipped_output_files")  # the run's own output is never its input
            return
        if not is_supported(path) and any(is_under(path, root) for root in self._cfg.folders):
            count("read.skipped_unsupported_in_folder")  # a folder means the supported files below it
            return
        count("files_read")
        records, tally = read_file(path, metadata.size_in_bytes, self._cfg)
        for record in records:
            if isinstance(record, Reject):
                count(f"rejected.{STAGE}.{record.reason}")
                yield beam.pvalue.TaggedOutput(REJECTS, record)
            else:
                if record.flags:
                    count("read.repaired_unicode")
                yield record
        if not tally.balanced:
            count("read.unbalanced_files")
        yield beam.pvalue.TaggedOutput("tallies", tally)


def _metadata_of(_path, matches):
    return next(iter(matches))


class ReadFiles(beam.PTransform):
    """File globs -> {'raw': RawArticle, 'rejects': Reject, 'tallies': FileTally (one per file)}.

    Unreadable records become rejects; each file's tally says how many records it holds, counted apart from
    the parser, so the run's accounting can see a reader that loses records.
    """

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
            | "Metadata" >> beam.MapTuple(_metadata_of)
        )
        raw, rejects, tallies = run_guarded(
            metadata, "ReadFile", STAGE, _ReadFileFn(self._cfg), tags=(REJECTS, "tallies")
        )
        return {"raw": raw, "rejects": rejects, "tallies": tallies}
