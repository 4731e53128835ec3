"""HTTP fetching for feeds and their linked pages: timeouts, size cap, redirects, retries, SSRF guard, politeness."""

from __future__ import annotations

import collections
import dataclasses
import email.utils
import ipaddress
import queue
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from transforms.common import count

STAGE = "fetch"
DEFAULT_USER_AGENT = "news-ingest/0.1 (RSS/Atom news reader; set --user-agent to add a contact address)"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


@dataclasses.dataclass(frozen=True)
class FetchConfig:
    """How pages are fetched: limits, retries, identity and politeness."""

    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0  # per socket read
    total_timeout_s: float = 60.0  # whole request, redirects and retries included
    max_body_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 2  # extra attempts on 429, 5xx and connection errors
    backoff_s: float = 1.0  # first retry delay; doubles each attempt
    max_retry_after_s: float = 30.0  # a server's Retry-After is honoured up to this
    per_host_concurrency: int = 2
    per_host_delay_s: float = 0.0  # minimum gap between request starts on one host
    max_parallel_hosts: int = 8  # hosts fetched at once per worker
    allow_private_hosts: bool = False


class FetchError(Exception):
    """An expected fetch failure with a stable reason code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Page:
    """A fetched response body and where it finally came from."""

    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int
    content_type: str  # media type only, lower-cased ("" when absent)
    charset: str | None
    body: bytes

    def text(self) -> str:
        """The body decoded: declared charset, then <meta charset>, then UTF-8, then detection."""
        return decode_html(self.body, self.charset)


# ---------------------------------------------------------------------------------------------------------------------
# Address and scheme checks


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses; private, loopback, link-local, reserved and the like are not."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_scheme(url: str) -> None:
    """Only http and https are ever fetched; anything else (file:, ftp:, data:, javascript:) is refused."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:  # "http://[::1/x": a broken IPv6 host or port
        raise FetchError("blocked_scheme", "not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError("blocked_scheme", f"scheme {parts.scheme or '(none)'!r} is not fetched")
    if not host:
        raise FetchError("blocked_scheme", "URL has no host")


class _BlockedAddress(NewConnectionError):
    """Raised instead of connecting when a host resolves to a non-public address."""


def _guarded(base):
    class Guarded(base):
        """Resolves, refuses non-public addresses, then connects to the checked address itself.

        Connecting to the address that was checked (not resolving again) closes the DNS-rebinding gap.
        """

        def _new_conn(self):
            try:
                infos = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
            except socket.gaierror as e:
                raise NameResolutionError(self.host, self, e) from e
            addresses = [info[4][0] for info in infos]
            blocked = [a for a in addresses if not is_public_address(a)]
            if blocked or not addresses:
                shown = blocked[0] if blocked else "(none)"
                raise _BlockedAddress(self, f"{self.host} resolves to non-public address {shown}")
            original = self._dns_host
            self._dns_host = addresses[0]
            try:
                return super()._new_conn()
            finally:
                self._dns_host = original

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded


# ---------------------------------------------------------------------------------------------------------------------
# The total deadline

# Socket timeouts bound each read, not a response: a server sending a byte a second never trips them. So every
# fetch has a _Deadline that shuts its connection's socket down when the time is up, which ends any read.
_WATCH_LOCK = threading.Lock()
_current = threading.local()  # the _Deadline of the fetch running on this thread


def _shutdown(sock) -> None:
    # socket.socket's own shutdown, not SSLSocket's, which would drop the TLS state under the reading thread.
    # A socket object that is closed has no file descriptor any more, so this never reaches a reused one.
    if isinstance(sock, socket.socket):
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


class _Deadline:
    """Ends one fetch's reads at its deadline by shutting down the socket it is reading from."""

    def __init__(self, seconds: float):
        self.fired = False
        self._done = False
        self._conn = self._sock = None
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.name = "fetch-deadline"
        self._timer.daemon = True
        self._timer.start()

    def attach(self, conn, sock) -> None:
        """`conn` now reads for this fetch from `sock` (a pooled connection passes from fetch to fetch)."""
        with _WATCH_LOCK:
            conn._fetch_deadline = self
            self._conn, self._sock = conn, sock
            if self.fired:
                _shutdown(sock)

    def _fire(self) -> None:
        with _WATCH_LOCK:
            if self._done:
                return
            self.fired = True
            if self._conn is not None and getattr(self._conn, "_fetch_deadline", None) is self:
                _shutdown(self._sock)

    def finish(self) -> None:
        with _WATCH_LOCK:
            self._done = True
            self._conn = self._sock = None
        self._timer.cancel()


def _watch(conn) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None and conn.sock is not None:
        deadline.attach(conn, conn.sock)


def _watched(base):
    class Watched(base):
        """Puts its socket under the running fetch's deadline: after connecting, and before each response (a
        kept-alive connection serves later fetches). TLS handshakes need no watch: Python bounds a whole
        handshake by the socket timeout, which is at most the time left."""

        def connect(self):
            super().connect()
            _watch(self)

        def getresponse(self, *args, **kwargs):
            _watch(self)
            return super().getresponse(*args, **kwargs)

    Watched.__name__ = f"Watched{base.__name__}"
    return Watched


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _watched(HTTPConnection)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _watched(HTTPSConnection)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _guarded(_watched(HTTPConnection))


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _guarded(_watched(HTTPSConnection))


class _Adapter(requests.adapters.HTTPAdapter):
    pools = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self.pools)


class _GuardedAdapter(_Adapter):
    pools = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def _blocked_detail(exc: BaseException) -> str:
    blocked = _blocked_cause(exc)
    return str(blocked).split(": ", 1)[-1] if blocked is not None else "non-public address"


def _blocked_cause(exc: BaseException) -> _BlockedAddress | None:
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, _BlockedAddress):
            return e
        stack += [getattr(e, "reason", None), e.__cause__, e.__context__]
        stack += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Decoding and parsing helpers


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
    import codecs

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
            import charset_normalizer

            best = charset_normalizer.from_bytes(body[:200_000]).best()
            codec = best.encoding if best is not None else "utf-8"
    return body.decode(codec, errors="replace")


def looks_like_html(body: bytes) -> bool:
    """Sniff for servers that send no Content-Type."""
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


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
    blocked = _blocked_cause(e)
    if blocked is not None:
        return FetchError("private_address", _blocked_detail(e))
    if isinstance(e, requests.exceptions.Timeout):
        limit = timeout[0] if isinstance(e, requests.exceptions.ConnectTimeout) else timeout[1]
        return FetchError("timeout", f"{type(e).__name__} after {limit:g}s")
    if isinstance(e, requests.exceptions.ConnectionError):
        return None
    return FetchError("http_error", _short(e))


# ---------------------------------------------------------------------------------------------------------------------
# The client


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
        adapter_cls = _Adapter if cfg.allow_private_hosts else _GuardedAdapter
        for scheme in ("http://", "https://"):
            session.mount(scheme, adapter_cls(pool_connections=pool, pool_maxsize=pool, max_retries=0))
        self._session = session

    def close(self) -> None:
        self._session.close()

    def get(self, url: str, *, html_only: bool = True, accept: str = "text/html,application/xhtml+xml") -> Page:
        """GET with redirects, retries and limits. Raises FetchError with a reason code."""
        watch = _Deadline(self._cfg.total_timeout_s)
        outer = getattr(_current, "deadline", None)
        _current.deadline = watch
        try:
            return self._get(url, time.monotonic() + self._cfg.total_timeout_s, watch, html_only, accept)
        finally:
            _current.deadline = outer
            watch.finish()

    def _get(self, url: str, deadline: float, watch: _Deadline, html_only: bool, accept: str) -> Page:
        cfg = self._cfg
        current, seen = url, {url}
        for hop in range(cfg.max_redirects + 1):
            check_scheme(current)
            resp = self._request(current, deadline, watch, accept)
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
                    current = target
                    continue
                if not 200 <= resp.status_code < 300:
                    raise FetchError("http_error", f"HTTP {resp.status_code}")
                ctype, charset = media_type(resp.headers.get("Content-Type"))
                if html_only and ctype and ctype not in HTML_TYPES:
                    raise FetchError("not_html", f"content type {ctype!r}")
                body = self._read_body(resp, deadline, watch)
                if html_only and not ctype and not looks_like_html(body):
                    raise FetchError("not_html", "no content type and the body does not look like HTML")
                return Page(url, current, resp.status_code, ctype, charset, body)
        raise FetchError("too_many_redirects", f"more than {cfg.max_redirects} redirects")

    def _timeout(self, what: str = "response") -> FetchError:
        return FetchError("timeout", f"no complete {what} within {self._cfg.total_timeout_s:g}s")

    def _request(self, url: str, deadline: float, watch: _Deadline, accept: str) -> requests.Response:
        cfg = self._cfg
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or watch.fired:
                raise self._timeout()
            timeout = (min(cfg.connect_timeout_s, remaining), min(cfg.read_timeout_s, remaining))
            retry_after = None
            try:
                resp = self._session.get(
                    url, stream=True, allow_redirects=False, timeout=timeout, headers={"Accept": accept}
                )
            except requests.exceptions.RequestException as e:
                # Once the deadline has shut the socket, whatever error that caused is the deadline's.
                if watch.fired:
                    raise self._timeout() from None
                error = request_error(e, timeout)
                if error is not None or attempt >= cfg.retries:
                    raise error or FetchError("unreachable", _short(e)) from None
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

    def _read_body(self, resp: requests.Response, deadline: float, watch: _Deadline) -> bytes:
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
            raise FetchError(cause, f"while reading the body: {_short(e)}") from None
        # A body without a length ends where the connection does, so one the deadline cut short looks complete.
        if watch.fired:
            raise self._timeout("body")
        return b"".join(chunks)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]


# ---------------------------------------------------------------------------------------------------------------------
# Per-host politeness


class HostGate:
    """At most `limit` requests in flight on one host, and request starts spaced by `delay_s`."""

    def __init__(self, limit: int, delay_s: float, clock: Callable[[], float] = time.monotonic, sleep=time.sleep):
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._delay = delay_s
        self._next_start = 0.0
        self._clock, self._sleep = clock, sleep
        self.in_flight = 0
        self.max_in_flight = 0

    def __enter__(self):
        self._slots.acquire()
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self._delay
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if start > now:
            self._sleep(start - now)
        return self

    def __exit__(self, *exc):
        with self._lock:
            self.in_flight -= 1
        self._slots.release()
        return False


def fetch_all(
    links: Iterable,
    work: Callable,
    gate: HostGate,
    pool: ThreadPoolExecutor,
    workers: int,
    done: queue.Queue,
    tag=None,
) -> int:
    """Run `work(link)` for each of one host's links on `workers` pool threads behind `gate`.

    Results go to `done` as (tag, link, result); returns the number of links submitted.
    """
    todo = collections.deque(links)
    n = len(todo)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                link = todo.popleft()
            try:
                with gate:
                    result = work(link)
            except BaseException as e:  # noqa: BLE001 - a worker thread must report every link, whatever happens
                result = FetchError("internal_error", f"{type(e).__name__}: {_short(e)}")
            done.put((tag, link, result))

    for _ in range(min(workers, n)):
        pool.submit(worker)
    return n


# ---------------------------------------------------------------------------------------------------------------------
# The Beam step


class FetchLinksFn(beam.DoFn):
    """[(host, [link])] -> fetched results: the hosts of one batch side by side, each host politely.

    `to_output(link, page_or_error)` turns each result into the element to emit (a main output value or a
    TaggedOutput). Results are emitted from process() as they complete, so memory holds about one page per
    request in flight, and never from finish_bundle(), whose output Beam's DaskRunner drops.
    """

    def __init__(self, cfg: FetchConfig, to_output: Callable, html_only: bool = True):
        self._cfg = cfg
        self._to_output = to_output
        self._html_only = html_only

    def setup(self):
        self._fetcher = Fetcher(self._cfg)
        self._pool = ThreadPoolExecutor(
            max_workers=self._cfg.max_parallel_hosts * self._cfg.per_host_concurrency, thread_name_prefix="fetch"
        )
        self._gates: dict[str, HostGate] = {}
        self._retries_reported = 0

    def _gate(self, host: str) -> HostGate:
        # Kept across elements: a host's in-flight limit and delay hold for the worker's whole life.
        if host not in self._gates:
            self._gates[host] = HostGate(self._cfg.per_host_concurrency, self._cfg.per_host_delay_s)
        return self._gates[host]

    def _work(self, link):
        try:
            return self._fetcher.get(link.url, html_only=self._html_only)
        except FetchError as e:
            return e

    def process(self, hosts):
        done: queue.Queue = queue.Queue()
        outstanding = 0
        for host, links in sorted(((h or "", list(ls)) for h, ls in hosts), key=lambda hl: hl[0]):
            if not links:
                continue
            count("fetch.hosts")
            links.sort(key=lambda link: link.url)
            outstanding += fetch_all(
                links, self._work, self._gate(host), self._pool, self._cfg.per_host_concurrency, done
            )
        while outstanding:
            _, link, result = done.get()
            outstanding -= 1
            yield self._to_output(link, result)
        retries = self._fetcher.retries
        if retries > self._retries_reported:
            count("fetch.retries", retries - self._retries_reported)
            self._retries_reported = retries

    def teardown(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        fetcher = getattr(self, "_fetcher", None)
        if fetcher is not None:
            fetcher.close()
