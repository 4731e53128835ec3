"""The HTTP client: one requests Session with timeouts, retries, redirects, a body limit and the SSRF guard."""

from __future__ import annotations

import email.utils
import threading
import time
import urllib.parse
from collections.abc import Callable

import requests

from transforms.fetch.config import FetchConfig, FetchError, Page, short
from transforms.fetch.deadline import Deadline, running
from transforms.fetch.decode import HTML_TYPES, looks_like_html, media_type
from transforms.fetch.guard import Adapter, GuardedAdapter, blocked_cause, blocked_detail, check_scheme

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


def retry_after_s(value: str | None, now: float) -> float | None:
    """A Retry-After header (seconds or an HTTP date) -> seconds to wait, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def backoff_delay(cfg: FetchConfig, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff, or the server's Retry-After when it says so; both capped."""
    if retry_after is not None:
        return min(retry_after, cfg.max_retry_after_s)
    return min(cfg.backoff_s * (2**attempt), cfg.max_retry_after_s)


def request_error(e: requests.exceptions.RequestException, timeout: tuple[float, float]) -> FetchError | None:
    """The FetchError for a failed request, or None for a connection error that is worth a retry."""
    if blocked_cause(e) is not None:
        return FetchError("private_address", blocked_detail(e))
    if isinstance(e, requests.exceptions.Timeout):
        limit = timeout[0] if isinstance(e, requests.exceptions.ConnectTimeout) else timeout[1]
        return FetchError("timeout", f"{type(e).__name__} after {limit:g}s")
    if isinstance(e, requests.exceptions.ConnectionError):
        return None
    return FetchError("http_error", short(e))


class Fetcher:
    """One requests Session with the project's limits; create it in DoFn.setup(), share it between threads."""

    def __init__(self, cfg: FetchConfig, sleep: Callable[[float], None] = time.sleep):
        self._cfg = cfg
        self._sleep = sleep
        # Counted here, reported by the DoFn: Beam metrics incremented on pool threads would be lost.
        self.retries = 0
        self._retries_lock = threading.Lock()
        session = requests.Session()
        # Environment proxies and .netrc would route around the address guard and leak credentials.
        session.trust_env = False
        session.headers.update({"User-Agent": cfg.user_agent, "Accept-Encoding": "gzip, deflate"})
        pool = max(10, cfg.max_parallel_hosts * cfg.per_host_concurrency)
        adapter_cls = Adapter if cfg.allow_private_hosts else GuardedAdapter
        for scheme in ("http://", "https://"):
            session.mount(scheme, adapter_cls(pool_connections=pool, pool_maxsize=pool, max_retries=0))
        self._session = session

    def close(self) -> None:
        self._session.close()

    def get(
        self,
        url: str,
        *,
        html_only: bool = True,
        accept: str = "text/html,application/xhtml+xml",
        validators: tuple[str | None, str | None] | None = None,
        may_follow: Callable[[str], tuple[str, str] | None] | None = None,
    ) -> Page:
        """GET with redirects, retries and limits. Raises FetchError with a reason code.

        `validators` (ETag, Last-Modified) of an earlier fetch make the request conditional; a 304 answer is a
        Page with status 304, an empty body and the validators it was asked with (or the new ones it sent).
        `may_follow(target)` is asked before each redirect is followed: None lets it through, a (reason, detail)
        ends the fetch with that error (robots.txt rules hold wherever a redirect leads)."""
        with running(self._cfg.total_timeout_s) as watch:
            deadline = time.monotonic() + self._cfg.total_timeout_s
            return self._get(url, deadline, watch, html_only, accept, validators, may_follow)

    def _get(
        self, url: str, deadline: float, watch: Deadline, html_only: bool, accept: str, validators, may_follow
    ) -> Page:
        cfg = self._cfg
        headers = {"Accept": accept}
        etag, modified = validators or (None, None)
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        current, seen = url, {url}
        for hop in range(cfg.max_redirects + 1):
            check_scheme(current)
            resp = self._request(current, deadline, watch, headers)
            with resp:
                if resp.status_code in _REDIRECTS and resp.headers.get("Location"):
                    try:
                        target = urllib.parse.urljoin(current, resp.headers["Location"].strip())
                        target = urllib.parse.urldefrag(target)[0]
                    except ValueError:
                        raise FetchError("http_error", f"HTTP {resp.status_code} to an invalid URL") from None
                    if target in seen:
                        raise FetchError("too_many_redirects", f"redirect loop at hop {hop + 1}: {target}")
                    seen.add(target)
                    verdict = may_follow(target) if may_follow is not None else None
                    if verdict is not None:
                        reason, detail = verdict
                        raise FetchError(reason, f"redirected to {target[:200]}: {detail}")
                    current = target
                    continue
                new_etag, new_modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
                if resp.status_code == 304 and validators:
                    ctype, charset = media_type(resp.headers.get("Content-Type"))
                    return Page(url, current, 304, ctype, charset, b"", new_etag or etag, new_modified or modified)
                if not 200 <= resp.status_code < 300:
                    raise FetchError("http_error", f"HTTP {resp.status_code}", status=resp.status_code)
                ctype, charset = media_type(resp.headers.get("Content-Type"))
                if html_only and ctype and ctype not in HTML_TYPES:
                    raise FetchError("not_html", f"content type {ctype!r}")
                body = self._read_body(resp, deadline, watch)
                if html_only and not ctype and not looks_like_html(body):
                    raise FetchError("not_html", "no content type and the body does not look like HTML")
                return Page(url, current, resp.status_code, ctype, charset, body, new_etag, new_modified)
        raise FetchError("too_many_redirects", f"more than {cfg.max_redirects} redirects")

    def _timeout(self, what: str = "response") -> FetchError:
        return FetchError("timeout", f"no complete {what} within {self._cfg.total_timeout_s:g}s")

    def _request(self, url: str, deadline: float, watch: Deadline, headers: dict) -> requests.Response:
        cfg = self._cfg
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or watch.fired:
                raise self._timeout()
            timeout = (min(cfg.connect_timeout_s, remaining), min(cfg.read_timeout_s, remaining))
            retry_after = None
            try:
                resp = self._session.get(url, stream=True, allow_redirects=False, timeout=timeout, headers=headers)
            except requests.exceptions.RequestException as e:
                # Once the deadline has shut the socket, whatever error that caused is the deadline's.
                if watch.fired:
                    raise self._timeout() from None
                error = request_error(e, timeout)
                if error is not None or attempt >= cfg.retries:
                    raise error or FetchError("unreachable", short(e)) from None
            else:
                if resp.status_code != 429 and resp.status_code < 500:
                    return resp
                if attempt >= cfg.retries:
                    return resp
                retry_after = retry_after_s(resp.headers.get("Retry-After"), time.time())
                resp.close()
            delay = backoff_delay(cfg, attempt, retry_after)
            if time.monotonic() + delay >= deadline:
                raise FetchError(
                    "http_error", f"still failing after {attempt + 1} attempts; next retry past the deadline"
                )
            with self._retries_lock:
                self.retries += 1
            self._sleep(delay)
            attempt += 1

    def _read_body(self, resp: requests.Response, deadline: float, watch: Deadline) -> bytes:
        limit = self._cfg.max_body_bytes
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FetchError("too_large", f"Content-Length {declared} is over the {limit}-byte limit")
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise FetchError("too_large", f"body is over the {limit}-byte limit")
                if time.monotonic() > deadline:
                    raise self._timeout("body")
                chunks.append(chunk)
        except requests.exceptions.RequestException as e:
            if watch.fired:
                raise self._timeout("body") from None
            cause = "timeout" if "timed out" in str(e).lower() else "http_error"
            raise FetchError(cause, f"while reading the body: {short(e)}") from None
        # A body without a length ends where the connection does, so one the deadline cut short looks complete.
        if watch.fired:
            raise self._timeout("body")
        return b"".join(chunks)
