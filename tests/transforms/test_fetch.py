"""Tests for the HTTP client: limits, redirects, retries, the private-address guard and per-host politeness."""

import collections
import datetime as dt
import email.utils
import socket
import threading
import time
import tracemalloc

import apache_beam as beam
import pytest
import urllib3.util.connection
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from feed_server import FeedServer

from transforms.fetch import (
    FetchConfig,
    Fetcher,
    FetchError,
    FetchLinksFn,
    HostGate,
    backoff_delay,
    decode_html,
    guard,
    is_public_address,
    media_type,
    retry_after_s,
)

RUNNER = "pipelines.runners.OfflineDirectRunner"
FAST = dict(connect_timeout_s=1.0, read_timeout_s=1.0, total_timeout_s=3.0, backoff_s=0.05, max_retry_after_s=1.0)


@pytest.fixture
def server():
    with FeedServer(slow_s=2.5) as s:
        yield s


@pytest.fixture
def no_outside_connections(monkeypatch):
    """Record every connection attempt; refuse any that is not to the test server's 127.0.0.1."""
    attempts = []
    real = urllib3.util.connection.create_connection

    def guarded(address, *args, **kwargs):
        attempts.append(address[0])
        if address[0] != "127.0.0.1":
            raise AssertionError(f"a connection to {address[0]} was attempted")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guarded)
    return attempts


def _get(url, sleep=time.sleep, **overrides):
    cfg = FetchConfig(**{**FAST, "allow_private_hosts": True, **overrides})
    return Fetcher(cfg, sleep=sleep).get(url)


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/missing", "http_error"),
        ("/slow", "timeout"),
        ("/loop/a", "too_many_redirects"),
        ("/redirect/6", "too_many_redirects"),
        ("/big", "too_large"),
        ("/big-declared", "too_large"),
        ("/gzip-bomb", "too_large"),
        ("/report.pdf", "not_html"),
        ("/feeds/rss.xml", "not_html"),
        ("/ratelimited", "http_error"),
        ("/to-file", "blocked_scheme"),
    ],
)
def test_failures_have_a_reason(server, path, reason):
    with pytest.raises(FetchError) as e:
        _get(server.base + path)
    assert e.value.reason == reason


@pytest.mark.parametrize(
    "path, final, marker",
    [
        ("/articles/rail-budget.html", "/articles/rail-budget.html", "2.3 billion euros"),
        ("/redirect/5", "/articles/museum-funding.html", "climate gallery"),
        ("/no-type", "/no-type", "wind farm"),
        ("/latin1", "/latin1", "pêche"),
    ],
)
def test_pages_are_fetched_and_decoded(server, path, final, marker):
    page = _get(server.base + path)
    assert page.status == 200
    assert page.final_url == server.base + final
    assert marker in page.text()


def test_gzip_bomb_is_cut_without_inflating_it(server):
    tracemalloc.start()
    try:
        with pytest.raises(FetchError) as e:
            _get(server.base + "/gzip-bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert e.value.reason == "too_large"
    assert peak < 32 * 1024 * 1024


def test_body_limit_is_configurable(server):
    with pytest.raises(FetchError) as e:
        _get(server.base + "/articles/harbour-strike.html", max_body_bytes=1000)
    assert e.value.reason == "too_large"


def test_retries_honour_retry_after_and_give_up(server):
    slept = []
    with pytest.raises(FetchError) as e:
        _get(server.base + "/ratelimited", sleep=slept.append, retries=2)
    assert e.value.reason == "http_error" and "429" in e.value.detail
    assert server.hits["/ratelimited"] == 3
    # Retry-After: 1 (capped at 1s in FAST) was waited twice.
    assert slept == [1.0, 1.0]


def test_a_5xx_then_success_is_retried(server):
    page = _get(server.base + "/flaky", retries=1)
    assert "Ferry operator" in page.text()
    assert server.hits["/flaky"] == 2


def test_no_retry_when_retries_is_zero(server):
    with pytest.raises(FetchError):
        _get(server.base + "/flaky", retries=0)
    assert server.hits["/flaky"] == 1


def test_user_agent_is_a_setting(server):
    _get(server.base + "/articles/rail-budget.html", user_agent="TestBot/9.9 (+mailto:ops@example.org)")
    assert "TestBot/9.9 (+mailto:ops@example.org)" in server.user_agents


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://ftp.example.com/x",
        "data:text/html,<p>x</p>",
        "javascript:alert(1)",
        "http:///x",
        "http://[::1/x",
    ],
)
def test_only_http_and_https_are_fetched(url, no_outside_connections):
    with pytest.raises(FetchError) as e:
        Fetcher(FetchConfig(**FAST)).get(url)
    assert e.value.reason == "blocked_scheme"
    assert no_outside_connections == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.1.1/",
        "http://[fe80::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://0.0.0.0/",
        "https://100.64.0.1/",
    ],
)
def test_private_addresses_are_refused_before_connecting(url, no_outside_connections):
    with pytest.raises(FetchError) as e:
        Fetcher(FetchConfig(**FAST)).get(url)
    assert e.value.reason == "private_address"
    assert no_outside_connections == []


def test_loopback_names_and_numbers_are_refused(server, no_outside_connections):
    for url in (
        server.base + "/articles/rail-budget.html",
        f"http://localhost:{server.port}/articles/rail-budget.html",
        f"http://2130706433:{server.port}/articles/rail-budget.html",
        f"http://[::1]:{server.port}/articles/rail-budget.html",
    ):
        with pytest.raises(FetchError) as e:
            Fetcher(FetchConfig(**FAST)).get(url)
        assert e.value.reason == "private_address", url
    assert no_outside_connections == []
    assert server.hits == {}


def test_every_redirect_hop_is_checked(server, monkeypatch, no_outside_connections):
    # Pretend the test server's loopback address is public so that only the redirect target is private.
    real = guard.is_public_address
    monkeypatch.setattr(guard, "is_public_address", lambda a: a == "127.0.0.1" or real(a))
    with pytest.raises(FetchError) as e:
        Fetcher(FetchConfig(**FAST)).get(server.base + "/to-private")
    assert e.value.reason == "private_address" and "10.0.0.1" in e.value.detail
    assert server.hits["/to-private"] == 1
    assert no_outside_connections == ["127.0.0.1"]


def test_a_name_resolving_to_any_private_address_is_refused(monkeypatch, no_outside_connections):
    def resolve(host, port, *args, **kwargs):
        assert host == "mixed.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ("93.184.216.34", "10.1.2.3")]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(FetchError) as e:
        Fetcher(FetchConfig(**FAST)).get("http://mixed.example/story")
    assert e.value.reason == "private_address"
    assert no_outside_connections == []


def test_the_checked_address_is_the_one_connected_to(server, monkeypatch, no_outside_connections):
    """DNS rebinding: resolution happens once, in the guard, and the socket goes to that address."""
    calls = []
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        calls.append(host)
        if host == "news.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    real_public = guard.is_public_address
    monkeypatch.setattr(guard, "is_public_address", lambda a: a == "127.0.0.1" or real_public(a))
    page = Fetcher(FetchConfig(**FAST)).get(f"http://news.example:{server.port}/articles/rail-budget.html")
    assert "rail" in page.text()
    assert calls.count("news.example") == 1
    assert no_outside_connections == ["127.0.0.1"]


@pytest.mark.parametrize("allow_private_hosts", [False, True])
def test_a_resolver_that_does_not_answer_times_out_within_the_connect_timeout(monkeypatch, allow_private_hosts):
    answered = threading.Event()

    def silent(host, port, *args, **kwargs):
        answered.wait(10)  # a resolver retrying for longer than any fetch may take
        raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")

    monkeypatch.setattr(socket, "getaddrinfo", silent)
    started = time.monotonic()
    try:
        with pytest.raises(FetchError) as e:
            Fetcher(FetchConfig(**{**FAST, "connect_timeout_s": 0.5, "allow_private_hosts": allow_private_hosts})).get(
                "http://slow-dns.example/story"
            )
    finally:
        answered.set()
    assert e.value.reason == "timeout", e.value
    assert time.monotonic() - started < 3.0  # one connect timeout, not the resolver's 10 s


def test_an_address_that_refuses_gives_way_to_the_next_one(server, monkeypatch):
    """Like a host whose IPv6 address is unreachable from here: its next address is tried, and only checked ones."""
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host == "two.example":
            # 127.0.0.2 is loopback too, but nothing listens there: the connection is refused at once.
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ("127.0.0.2", "127.0.0.1")]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    real_public = guard.is_public_address
    monkeypatch.setattr(guard, "is_public_address", lambda a: a in ("127.0.0.1", "127.0.0.2") or real_public(a))
    page = Fetcher(FetchConfig(**{**FAST, "retries": 0})).get(
        f"http://two.example:{server.port}/articles/rail-budget.html"
    )
    assert "rail" in page.text()


@pytest.mark.parametrize(
    "address, public",
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("192.0.2.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("not-an-ip", False),
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(address) is public


@pytest.mark.parametrize(
    "header, expected",
    [
        ("text/html; charset=UTF-8", ("text/html", "UTF-8")),
        ('application/xhtml+xml;charset="iso-8859-1"', ("application/xhtml+xml", "iso-8859-1")),
        ("TEXT/HTML", ("text/html", None)),
        ("", ("", None)),
        (None, ("", None)),
    ],
)
def test_media_type(header, expected):
    assert media_type(header) == expected


@pytest.mark.parametrize(
    "body, charset, expected",
    [
        ("<p>café</p>".encode(), None, "<p>café</p>"),
        ("<p>café</p>".encode("latin-1"), "iso-8859-1", "<p>café</p>"),
        (
            '<meta charset="windows-1252"><p>caf\xe9</p>'.encode("cp1252"),
            None,
            '<meta charset="windows-1252"><p>café</p>',
        ),
        ("<p>café</p>".encode(), "no-such-codec", "<p>café</p>"),
    ],
)
def test_decode_html(body, charset, expected):
    assert decode_html(body, charset) == expected


def test_retry_after_and_backoff():
    now = time.time()
    http_date = email.utils.format_datetime(dt.datetime.fromtimestamp(now + 20, dt.timezone.utc), usegmt=True)
    assert retry_after_s("7", now) == 7.0
    assert 18 <= retry_after_s(http_date, now) <= 21
    assert retry_after_s("soon", now) is None
    cfg = FetchConfig(backoff_s=1.0, max_retry_after_s=30.0)
    assert [backoff_delay(cfg, a, None) for a in range(6)] == [1, 2, 4, 8, 16, 30]
    assert backoff_delay(cfg, 0, 3600) == 30.0


def test_host_gate_limits_in_flight_requests():
    gate = HostGate(2, 0.0)
    seen = []
    # Each request waits inside the gate for a second one: two get in together, and a third would show in seen.
    pair = threading.Barrier(2, timeout=10)

    def work():
        with gate:
            seen.append(gate.in_flight)
            pair.wait()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gate.max_in_flight == 2 and max(seen) == 2


def test_host_gate_spaces_request_starts():
    clock = [100.0]
    slept = []

    def sleep(s):
        slept.append(round(s, 3))
        clock[0] += s

    gate = HostGate(4, 0.5, clock=lambda: clock[0], sleep=sleep)
    for _ in range(3):
        with gate:
            pass
    assert slept == [0.5, 0.5]


Link = collections.namedtuple("Link", "url")


def _links(base, names):
    return [Link(f"{base}/articles/{n}.html") for n in names]


def _outcome(link, result):
    if isinstance(result, FetchError):
        return beam.pvalue.TaggedOutput("rejects", (link.url.rsplit("/", 1)[1], result.reason))
    return link.url.rsplit("/", 1)[1]


PAGES = ["harbour-strike", "rail-budget", "vaccine-trial", "library-reopens", "wind-farm", "school-meals"]


@pytest.mark.parametrize("per_host", [1, 2])
def test_fetch_step_keeps_per_host_concurrency(per_host):
    with FeedServer(page_delay_s=0.3) as server:
        hosts = [("127.0.0.1", server.base), ("localhost", f"http://localhost:{server.port}")]
        groups = [(h, _links(base, PAGES)) for h, base in hosts]
        cfg = FetchConfig(**{**FAST, "allow_private_hosts": True, "per_host_concurrency": per_host})
        with TestPipeline(runner=RUNNER) as p:
            out = (
                p
                | beam.Create([groups])
                | beam.ParDo(FetchLinksFn(cfg, _outcome)).with_outputs("rejects", main="pages")
            )
            assert_that(out["pages"], equal_to([f"{n}.html" for n in PAGES] * 2))
            assert_that(out["rejects"], equal_to([]), label="NoRejects")
        assert server.max_in_flight["127.0.0.1"] == per_host
        assert server.max_in_flight["localhost"] == per_host


def test_fetch_step_turns_every_failure_into_an_output():
    with FeedServer(slow_s=2.5) as server:
        links = _links(server.base, ["rail-budget", "does-not-exist"])
        cfg = FetchConfig(**{**FAST, "allow_private_hosts": True})
        with TestPipeline(runner=RUNNER) as p:
            out = (
                p
                | beam.Create([[("127.0.0.1", links)]])
                | beam.ParDo(FetchLinksFn(cfg, _outcome)).with_outputs("rejects", main="pages")
            )
            assert_that(out["pages"], equal_to(["rail-budget.html"]))
            assert_that(out["rejects"], equal_to([("does-not-exist.html", "http_error")]), label="Rejects")


# ---------------------------------------------------------------------------------------------------------------------
# The total deadline against servers that answer a byte at a time, or never


class DripServer:
    """A raw socket server on 127.0.0.1 that answers slowly: headers or body a byte every DRIP_S, or nothing.

    Every answer completes after about GIVE_UP_S, so a client without a working deadline gets a page (or a late
    error) instead of hanging the test run.
    """

    DRIP_S = 0.1
    GIVE_UP_S = 12.0
    BODY = b"<html><body><p>" + b"x" * int(GIVE_UP_S / DRIP_S) + b"</p></body></html>"

    def __init__(self):
        self._stop = threading.Event()
        self.hits = collections.Counter()

    def __enter__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._listener.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    data = conn.recv(4096)
                    if not data:
                        return
                    request += data
                path = request.split(b" ", 2)[1].decode()
                self.hits[path] += 1
                self._answer(conn, path, self.hits[path])
            except OSError:  # the client gave up and closed its end
                pass

    def _drip(self, conn, data: bytes):
        for i in range(len(data)):
            if self._stop.wait(self.DRIP_S):
                return
            conn.sendall(data[i : i + 1])

    def _answer(self, conn, path, hit):
        html = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
        sized = html + b"Content-Length: %d\r\n\r\n" % len(self.BODY)
        empty = b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        if path == "/silent":
            self._stop.wait(self.GIVE_UP_S)
        elif path == "/drip-headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            self._drip(conn, b"X-Slow: " + b"a" * int(self.GIVE_UP_S / self.DRIP_S) + b"\r\n")
            conn.sendall(sized[len(b"HTTP/1.1 200 OK\r\n") :] + self.BODY)
        elif path == "/drip-body":
            conn.sendall(sized)
            self._drip(conn, self.BODY)
        elif path == "/drip-body-unsized":
            # No Content-Length: the body ends when the connection does, so a cut body looks complete.
            conn.sendall(html + b"\r\n")
            self._drip(conn, self.BODY)
        elif path == "/redirect-to-drip":
            time.sleep(0.5)
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /drip-body\r\n" + empty)
        elif path == "/retry-then-drip" and hit == 1:
            conn.sendall(b"HTTP/1.1 503 Busy\r\nRetry-After: 0\r\n" + empty)
        elif path == "/retry-then-drip":
            conn.sendall(sized)
            self._drip(conn, self.BODY)


DEADLINE_S = 2.0


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "path",
    ["/silent", "/drip-headers", "/drip-body", "/drip-body-unsized", "/redirect-to-drip", "/retry-then-drip"],
)
def test_total_deadline_holds_against_slow_servers(path):
    # A per-read timeout far above the drip interval: only the total deadline can end these fetches.
    cfg = dict(read_timeout_s=10.0, total_timeout_s=DEADLINE_S, retries=1, backoff_s=0.05)
    with DripServer() as server:
        started = time.monotonic()
        with pytest.raises(FetchError) as e:
            _get(server.base + path, **cfg)
        elapsed = time.monotonic() - started
    assert e.value.reason == "timeout", e.value
    assert elapsed < DEADLINE_S + 3, f"took {elapsed:.1f}s against a {DEADLINE_S}s deadline"
    if path == "/retry-then-drip":
        assert server.hits[path] == 2


def test_deadline_watch_ends_with_each_fetch(server):
    fetcher = Fetcher(FetchConfig(**{**FAST, "allow_private_hosts": True}))
    for _ in range(5):
        fetcher.get(server.base + "/articles/rail-budget.html")
    # Each fetch's deadline watch is cancelled when it ends, and its thread ends at once (not at the deadline).
    watches = [t for t in threading.enumerate() if t.name.startswith("fetch-deadline")]
    for t in watches:
        t.join(timeout=1.0)
    assert not [t for t in watches if t.is_alive()]
