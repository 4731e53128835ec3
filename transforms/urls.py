"""URL canonicalisation shared by readers, feeds and article identity."""

from __future__ import annotations

import urllib.parse

import courlan

# Parameters that identify a click, not a page; filtered on top of courlan's normalisation.
_TRACKING = frozenset(
    {"ref", "ref_src", "ref_url", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid"}
)


def canonical_url(url: str | None) -> str | None:
    """Lower-cased scheme and host, no fragment, no tracking parameters, sorted query; None if not http(s)."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
    except ValueError:  # "http://[::1/x": an invalid IPv6 host, or a bad port
        return None
    try:
        url = courlan.normalize_url(url, strict=False)
    except (ValueError, AttributeError):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return None
    query = [(k, v) for k, v in query if not k.lower().startswith("utm_") and k.lower() not in _TRACKING]
    return urllib.parse.urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", urllib.parse.urlencode(sorted(query)), "")
    )


def host_of(url: str | None) -> str | None:
    """The URL's host without a leading 'www.', or None."""
    if not url:
        return None
    try:
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
    except ValueError:
        return None
    return host[4:] if host.startswith("www.") else (host or None)
