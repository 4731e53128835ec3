"""HTTP fetching for feeds and their linked pages: timeouts, size cap, redirects, retries, SSRF guard, politeness."""

from transforms.fetch.client import Fetcher, backoff_delay, request_error, retry_after_s
from transforms.fetch.config import DEFAULT_USER_AGENT, READS_PER_FETCH, STAGE, FetchConfig, FetchError, Page
from transforms.fetch.decode import HTML_TYPES, decode_html, looks_like_html, media_type
from transforms.fetch.guard import check_scheme, is_public_address
from transforms.fetch.hosts import HostGate, fetch_all
from transforms.fetch.transform import FetchLinksFn

__all__ = [
    "DEFAULT_USER_AGENT",
    "HTML_TYPES",
    "READS_PER_FETCH",
    "STAGE",
    "FetchConfig",
    "FetchError",
    "FetchLinksFn",
    "Fetcher",
    "HostGate",
    "Page",
    "backoff_delay",
    "check_scheme",
    "decode_html",
    "fetch_all",
    "is_public_address",
    "looks_like_html",
    "media_type",
    "request_error",
    "retry_after_s",
]
