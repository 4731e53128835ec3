"""HTTP fetching for feeds and their linked pages: timeouts, size cap, redirects, retries, SSRF guard, politeness."""

from transforms.fetch.client import Fetcher, backoff_delay, request_error, retry_after_s
from transforms.fetch.config import DEFAULT_USER_AGENT, READS_PER_FETCH, STAGE, FetchConfig, FetchError, Page
from transforms.fetch.decode import HTML_TYPES, decode_html, looks_like_html, media_type
from transforms.fetch.guard import check_scheme, is_public_address
from transforms.fetch.hosts import HostGate, fetch_all
from transforms.fetch.robots import MAX_CRAWL_DELAY_S, RobotsCache, RobotsRules, robots_url
from transforms.fetch.state import Validators, latest_validators, read_fetch_state, state_of
from transforms.fetch.transform import FetchLinksFn, count_robots, robots_cache

__all__ = [
    "DEFAULT_USER_AGENT",
    "HTML_TYPES",
    "MAX_CRAWL_DELAY_S",
    "READS_PER_FETCH",
    "STAGE",
    "FetchConfig",
    "FetchError",
    "FetchLinksFn",
    "Fetcher",
    "HostGate",
    "Page",
    "RobotsCache",
    "RobotsRules",
    "Validators",
    "backoff_delay",
    "check_scheme",
    "count_robots",
    "decode_html",
    "fetch_all",
    "is_public_address",
    "latest_validators",
    "looks_like_html",
    "media_type",
    "read_fetch_state",
    "request_error",
    "retry_after_s",
    "robots_cache",
    "robots_url",
    "state_of",
]
