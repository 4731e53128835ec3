"""Content-Type parsing, HTML sniffing and decoding of fetched bytes to text."""

from __future__ import annotations

import codecs
import re

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def media_type(header: str | None) -> tuple[str, str | None]:
    """Content-Type header -> (lower-cased media type, charset or None)."""
    if not header:
        return "", None
    parts = [p.strip() for p in header.split(";")]
    charset = None
    for p in parts[1:]:
        key, _, value = p.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return parts[0].lower(), charset


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(body: bytes, charset: str | None = None) -> str:
    """Bytes of an HTML page -> text, never raising; undecodable bytes become U+FFFD."""
    codec = _codec(charset)
    if codec is None:
        m = _META_CHARSET.search(body[:4096])
        codec = _codec(m.group(1).decode("ascii", "replace")) if m else None
    if codec is None:
        try:
            return body.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Imported here: only pages that declare nothing and are not UTF-8 pay for detection.
            import charset_normalizer

            best = charset_normalizer.from_bytes(body[:200_000]).best()
            codec = best.encoding if best is not None else "utf-8"
    return body.decode(codec, errors="replace")


def looks_like_html(body: bytes) -> bool:
    """Sniff for servers that send no Content-Type."""
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head
