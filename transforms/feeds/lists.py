"""Feed lists: plain 'URL_OR_PATH [source name]' files and OPML, local or on any Beam filesystem."""

from __future__ import annotations

import posixpath
import re
import urllib.parse

from apache_beam.io.filesystems import FileSystems

_ENTITY_DECL = re.compile(rb"<!ENTITY", re.I)
_MAX_LIST_BYTES = 10 * 1024 * 1024


def location_scheme(location: str) -> str:
    """The lower-cased URL scheme of a feed location, "" for a local path."""
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
        if base_dir and not location_scheme(location) and not posixpath.isabs(location):
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
            data = f.read(_MAX_LIST_BYTES + 1)
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
