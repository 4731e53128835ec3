"""Fetch settings, the fetch error with its reason code, and the fetched page."""

from __future__ import annotations

import dataclasses

from transforms.fetch.decode import decode_html

STAGE = "fetch"
DEFAULT_USER_AGENT = "news-ingest/0.1 (RSS/Atom news reader; set --user-agent to add a contact address)"
# A whole fetch (redirects and retries included) may take this many read timeouts: one slow hop plus retries.
READS_PER_FETCH = 3


@dataclasses.dataclass(frozen=True)
class FetchConfig:
    """How pages are fetched: limits, retries, identity and politeness."""

    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0  # per socket read
    total_timeout_s: float = READS_PER_FETCH * read_timeout_s  # whole request, redirects and retries included
    max_body_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 2  # extra attempts on 429, 5xx and connection errors
    backoff_s: float = 1.0  # first retry delay; doubles each attempt
    max_retry_after_s: float = 30.0  # a server's Retry-After is honoured up to this
    per_host_concurrency: int = 2
    per_host_delay_s: float = 0.0  # minimum gap between request starts on one host
    max_parallel_hosts: int = 8  # hosts fetched at once per worker
    allow_private_hosts: bool = False
    obey_robots: bool = True  # robots.txt rules and Crawl-delay (--ignore-robots turns it off)
    robots_for_feeds: bool = True  # feed URLs obey robots.txt too (--ignore-robots-for-feeds turns it off)
    robots_ttl_s: float | None = None  # how long a robots.txt is trusted; None: the whole run (streaming: a poll)
    # Set per run: the DoFns of one run in one worker process share their robots.txt cache (feeds and pages read
    # each robots.txt once). Empty: each DoFn instance has its own.
    robots_scope: str = ""


class FetchError(Exception):
    """An expected fetch failure with a stable reason code."""

    def __init__(self, reason: str, detail: str, status: int | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status  # the HTTP status when the server answered with an error


def short(e: BaseException) -> str:
    """An exception's first line (or its type), bounded: the detail of a FetchError made from it."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]


@dataclasses.dataclass(frozen=True)
class Page:
    """A fetched response body and where it finally came from."""

    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int
    content_type: str  # media type only, lower-cased ("" when absent)
    charset: str | None
    body: bytes
    etag: str | None = None
    last_modified: str | None = None

    @property
    def unchanged(self) -> bool:
        """The server answered 304 Not Modified to a conditional request: nothing new to read."""
        return self.status == 304

    def text(self) -> str:
        """The body decoded: declared charset, then <meta charset>, then UTF-8, then detection."""
        return decode_html(self.body, self.charset)
