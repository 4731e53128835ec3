"""robots.txt per origin: fetched once (per TTL), parsed with protego, asked about each link and its crawl delay."""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable

MAX_CRAWL_DELAY_S = 30.0  # a site's Crawl-delay is honoured up to this, so one site cannot stall a worker
DISALLOWED = "robots_disallowed"
UNAVAILABLE = "robots_unavailable"
ROBOTS_ACCEPT = "text/plain, */*;q=0.5"
# The URL itself is refused by the SSRF guard or the scheme check: its own fetch makes that reject.
_NOT_ROBOTS_FAILURES = frozenset({"private_address", "blocked_scheme"})


def origin_of(url: str) -> str | None:
    """'https://Host:8080/a?b' -> 'https://host:8080', or None for a URL that is not http(s)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def robots_url(url: str) -> str | None:
    """Where the robots.txt governing `url` lives."""
    origin = origin_of(url)
    return f"{origin}/robots.txt" if origin else None


class RobotsRules:
    """One origin's verdict: parsed rules, allow-all (no robots.txt) or disallow-all (robots.txt unavailable)."""

    def __init__(self, text: str | None, unavailable: bool = False, detail: str = ""):
        self.unavailable = unavailable
        self.detail = detail
        self._parser = None
        if text is not None and not unavailable:
            from protego import Protego

            self._parser = Protego.parse(text)

    def can_fetch(self, url: str, user_agent: str) -> bool:
        if self.unavailable:
            return False
        return self._parser is None or bool(self._parser.can_fetch(url, user_agent))

    def crawl_delay(self, user_agent: str) -> float:
        if self._parser is None:
            return 0.0
        delay = self._parser.crawl_delay(user_agent)
        return min(float(delay), MAX_CRAWL_DELAY_S) if delay else 0.0


def rules_from_fetch(load: Callable[[str], object], url: str) -> RobotsRules | None:
    """Fetch and judge one robots.txt. `load(url)` returns the body (bytes or str) or raises an error with
    `.reason`, `.detail` and optionally `.status` (FetchError). None: the guard refuses the origin itself."""
    try:
        body = load(url)
    except Exception as e:  # noqa: BLE001 - any failure to read robots.txt is judged below
        reason = getattr(e, "reason", "unreachable")
        status = getattr(e, "status", None)
        if reason in _NOT_ROBOTS_FAILURES:
            return None
        if status is not None and 400 <= status < 500:
            return RobotsRules(None)  # no robots.txt (404, 410, 401, 403, ...): everything is allowed
        return RobotsRules(None, unavailable=True, detail=f"{url}: {getattr(e, 'detail', None) or e}")
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return RobotsRules(text)


class RobotsCache:
    """Per-origin robots.txt rules for one worker, each origin fetched once per `ttl_s` (None: for ever)."""

    def __init__(
        self,
        user_agent: str,
        load: Callable[[str], object],
        ttl_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._agent = user_agent
        self._load = load
        self._ttl = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._origin_locks: dict[str, threading.Lock] = {}
        self._rules: dict[str, tuple[float, RobotsRules | None]] = {}
        self.fetched = 0  # robots.txt requests made
        self.unavailable: list[str] = []  # origins found unavailable, in order
        self._undrained = [0, 0]  # (fetched, unavailable) not yet taken by drain()

    def rules(self, url: str) -> RobotsRules | None:
        origin = origin_of(url)
        if origin is None:
            return None
        with self._lock:
            lock = self._origin_locks.setdefault(origin, threading.Lock())
        # One fetch per origin: other threads with links of the same origin wait for it.
        with lock:
            cached = self._rules.get(origin)
            if cached is not None and (self._ttl is None or self._clock() - cached[0] < self._ttl):
                return cached[1]
            rules = rules_from_fetch(self._load, f"{origin}/robots.txt")
            with self._lock:
                self.fetched += 1
                self._undrained[0] += 1
                if rules is not None and rules.unavailable:
                    self.unavailable.append(origin)
                    self._undrained[1] += 1
                self._rules[origin] = (self._clock(), rules)
            return rules

    def drain(self) -> tuple[int, int]:
        """(robots.txt fetched, origins found unavailable) since the last drain: each reported by one DoFn once,
        however many DoFns share the cache (Beam counters must be incremented on a DoFn's own thread)."""
        with self._lock:
            taken = tuple(self._undrained)
            self._undrained = [0, 0]
        return taken

    def verdict(self, url: str) -> tuple[str, str] | None:
        """None when `url` may be fetched, else (reason, detail)."""
        rules = self.rules(url)
        if rules is None or rules.can_fetch(url, self._agent):
            return None
        if rules.unavailable:
            return UNAVAILABLE, f"robots.txt could not be read, so the host is not crawled ({rules.detail})"[:500]
        return DISALLOWED, f"robots.txt disallows this URL for {self._agent!r}"[:500]

    def allowed(self, url: str) -> bool:
        return self.verdict(url) is None

    def delay(self, url_or_host: str) -> float:
        """The Crawl-delay (capped at MAX_CRAWL_DELAY_S) of the origins already read for this host or URL."""
        origin = origin_of(url_or_host)
        with self._lock:
            if origin is not None:
                found = [self._rules.get(origin, (0, None))[1]]
            else:
                host = url_or_host.lower()
                found = [r for o, (_, r) in self._rules.items() if urllib.parse.urlsplit(o).hostname == host]
        return max((r.crawl_delay(self._agent) for r in found if r is not None), default=0.0)
