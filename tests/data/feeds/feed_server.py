"""A local HTTP server (127.0.0.1 only) serving the feed fixtures and every kind of misbehaving page."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import pathlib
import random
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = pathlib.Path(__file__).resolve().parent
ARTICLES = HERE / "articles"
FEEDS = HERE / "feeds"
BIG_BYTES = 6 * 1024 * 1024

STREAM_STORY = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title} | Stream Times</title><meta property="og:title" content="{title}">
<meta property="article:published_time" content="2025-03-{day:02d}T10:00:00Z"></head>
<body><nav><a href="/">Stream Times</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
<article><h1>{title}</h1>
{paragraphs}
</article><footer>© 2025 Stream Times · <a href="/privacy">Privacy</a></footer></body></html>"""

# Distinct sentences so that generated stories are not near-duplicates of one another.
SENTENCES = [
    "The city council of Riverton approved a new harbour plan after a long debate on Tuesday evening.",
    "Farmers in the northern valley reported the wettest spring in forty years, delaying planting by weeks.",
    "A regional airline announced three new routes to coastal towns starting in the summer season.",
    "Teachers at two secondary schools staged a one-day walkout over class sizes and staffing.",
    "The central bank held interest rates steady, citing stubborn inflation in services and housing.",
    "Archaeologists uncovered a Roman mosaic beneath a car park scheduled for redevelopment.",
    "Hospital waiting times fell slightly in the last quarter, according to figures published on Monday.",
    "A storm brought down power lines across the eastern districts, leaving thousands without electricity.",
    "The football club confirmed that its manager had signed a contract extension until 2028.",
    "Researchers at the university published a study on microplastics in river sediment.",
    "Police appealed for witnesses after a lorry overturned on the ring road during the morning rush.",
    "The national orchestra will tour eleven cities this autumn with a programme of new commissions.",
    "A startup building heat pumps raised fresh funding and plans to double its workforce.",
    "Residents objected to plans for a waste incinerator on the edge of the industrial estate.",
    "The ministry of health launched a vaccination campaign aimed at older adults before the winter.",
    "Bus fares will rise by four percent in April, the transport authority said in a statement.",
    "A rare bird sighting drew hundreds of watchers to the marshes over the weekend.",
    "The parliament's finance committee questioned officials about delays to a new tax system.",
    "Volunteers planted six thousand trees along the old railway line now used as a cycle path.",
    "An exhibition of early photography opened at the city museum with loans from private collections.",
    "Dock workers voted to accept a pay offer, ending a dispute that had lasted three weeks.",
    "The water company was fined for repeated sewage discharges into a protected estuary.",
    "A new library branch opened in the suburbs with a makerspace and a recording studio.",
    "Engineers began inspecting the suspension bridge after cracks were found in two cables.",
]


def stream_story(n: int) -> str:
    """Story n: a title and five sentences chosen by a generator seeded with n, so the same n gives the same page."""
    rng = random.Random(n)
    picked = rng.sample(SENTENCES, 5)
    paragraphs = "\n".join(f"<p>{s} Story {n} reports this in detail.</p>" for s in picked)
    return STREAM_STORY.format(title=f"Riverton story {n}", day=min(n, 28), paragraphs=paragraphs)


def stream_feed(base: str, n_items: int) -> str:
    """RSS whose newest items come first, like real feeds; item k links to /stream/story-k.html."""
    items = "".join(
        f"<item><title>Riverton story {k}</title><link>{base}/stream/story-{k}.html?utm_source=rss</link>"
        f"<pubDate>{k:02d} Mar 2025 10:00:00 GMT</pubDate><description>Teaser {k}.</description></item>"
        for k in range(n_items, 0, -1)
    )
    channel = f"<title>Stream Times</title><link>{base}/</link>{items}"
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{channel}</channel></rss>'


class FeedServer:
    """Start with `with FeedServer() as server:`; `server.base` is its http://127.0.0.1:PORT URL."""

    def __init__(
        self,
        slow_s: float = 3.0,
        page_delay_s: float = 0.0,
        stream_start: int = 2,
        stream_step: int = 2,
        robots: str | None = None,
        robots_status: int = 404,
        conditional: bool = False,
    ):
        self.slow_s = slow_s
        # /robots.txt: `robots` with status 200 when given, else a plain `robots_status` answer (404: none).
        self.robots = robots
        self.robots_status = 200 if robots is not None else robots_status
        # With `conditional`, 200 answers carry an ETag and Last-Modified, and a matching If-None-Match gets 304.
        self.conditional = conditional
        self.requests: list[tuple[str, dict]] = []  # (path, request headers) of every GET, in arrival order
        self.page_delay_s = page_delay_s
        self.stream_start, self.stream_step = stream_start, stream_step
        self.hits: collections.Counter = collections.Counter()
        self.in_flight: collections.Counter = collections.Counter()  # by Host header
        self.max_in_flight: collections.Counter = collections.Counter()
        self.user_agents: set[str] = set()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self.base = ""
        self.port = 0

    def __enter__(self) -> FeedServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                with server._lock:
                    server.hits[self.path] += 1
                    server.requests.append((self.path, dict(self.headers.items())))
                    hit = server.hits[self.path]
                    server.in_flight[host] += 1
                    server.max_in_flight[host] = max(server.max_in_flight[host], server.in_flight[host])
                    server.user_agents.add(self.headers.get("User-Agent", ""))
                try:
                    server._route(self, hit)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.in_flight[host] -= 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    def feed_text(self, name: str, base: str | None = None) -> str:
        """A fixture feed with its {base}/{port} placeholders filled in."""
        text = (FEEDS / name).read_text()
        return text.replace("{base}", base or self.base).replace("{port}", str(self.port))

    def bench_feed(self, n: int) -> str:
        """A feed of n distinct article links, alternating between two names of this server (two hosts)."""
        hosts = (self.base, f"http://localhost:{self.port}")
        items = "".join(
            f"<item><title>Bench story {k}</title><link>{hosts[k % 2]}/bench/{k}.html</link></item>" for k in range(n)
        )
        return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Bench</title>{items}</channel></rss>'

    def bench_page(self, k: int) -> str:
        """Page k: one of the realistic fixture pages, made unique by its title and a numbered paragraph."""
        pages = sorted(p for p in ARTICLES.glob("*.html") if p.name != "empty-page.html")
        html = pages[k % len(pages)].read_text()
        html = re.sub(r'<link rel="canonical"[^>]*>', "", html)
        return html.replace(
            "</h1>", f" ({k})</h1><p>Update {k}: this version of the story was filed as number {k}.</p>", 1
        )

    # -- routing --------------------------------------------------------------------------------------------------

    def _send(self, h, status: int, body: bytes = b"", ctype: str | None = "text/html; charset=utf-8", headers=None):
        if self.conditional and status == 200:
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            headers = {**(headers or {}), "ETag": etag, "Last-Modified": "Mon, 24 Mar 2025 10:00:00 GMT"}
            if h.headers.get("If-None-Match") == etag:
                status, body, ctype = 304, b"", None
                headers = {"ETag": etag}
        h.send_response(status)
        if ctype:
            h.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _page(self, name: str) -> bytes:
        return (ARTICLES / name).read_text().replace("{base}", self.base).encode("utf-8")

    def _route(self, h, hit: int) -> None:
        path = h.path.split("?", 1)[0]
        if path == "/robots.txt" and self.robots_status != 404:
            if self.robots_status != 200:
                return self._send(h, self.robots_status, b"robots unavailable", "text/plain")
            return self._send(h, 200, self.robots.encode("utf-8"), "text/plain")
        if path.startswith("/feeds/") and (FEEDS / path[7:]).is_file():
            ctype = "application/atom+xml" if path.endswith("atom.xml") else "application/rss+xml; charset=utf-8"
            return self._send(h, 200, self.feed_text(path[7:]).encode("utf-8"), ctype)
        if path == "/stream.xml":
            n = self.stream_start + self.stream_step * (hit - 1)
            return self._send(h, 200, stream_feed(self.base, n).encode(), "application/rss+xml")
        if path.startswith("/stream/story-"):
            n = int(path.rsplit("-", 1)[1].split(".")[0])
            return self._send(h, 200, stream_story(n).encode())
        if path == "/bench.xml":
            query = dict(q.split("=", 1) for q in (h.path.split("?", 1) + [""])[1].split("&") if "=" in q)
            return self._send(h, 200, self.bench_feed(int(query.get("n", "10"))).encode(), "application/rss+xml")
        if path.startswith("/bench/"):
            if self.page_delay_s:
                time.sleep(self.page_delay_s)
            k = int(path.rsplit("/", 1)[1].split(".")[0])
            return self._send(h, 200, self.bench_page(k).encode())
        if path.startswith("/articles/") and (ARTICLES / path[10:]).is_file():
            if self.page_delay_s:
                time.sleep(self.page_delay_s)
            return self._send(h, 200, self._page(path[10:]))
        if path == "/slow":
            time.sleep(self.slow_s)
            return self._send(h, 200, self._page("rail-budget.html"))
        if path in ("/loop/a", "/loop/b"):
            other = "/loop/b" if path == "/loop/a" else "/loop/a"
            return self._send(h, 302, b"", None, {"Location": other})
        if path.startswith("/redirect/"):
            left = int(path.rsplit("/", 1)[1])
            target = f"/redirect/{left - 1}" if left > 1 else "/articles/museum-funding.html"
            return self._send(h, 301, b"", None, {"Location": target})
        if path == "/big":
            # No Content-Length: the client must count while streaming and stop.
            h.send_response(200)
            h.send_header("Content-Type", "text/html")
            h.send_header("Connection", "close")
            h.end_headers()
            chunk = b"<p>" + b"filler text " * 5000 + b"</p>\n"
            sent = 0
            with contextlib.suppress(OSError):
                h.wfile.write(b"<html><body>")
                while sent < BIG_BYTES:
                    h.wfile.write(chunk)
                    sent += len(chunk)
            h.close_connection = True
            return None
        if path == "/big-declared":
            h.send_response(200)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(BIG_BYTES))
            h.send_header("Connection", "close")
            h.end_headers()
            h.close_connection = True
            return None
        if path == "/away":
            # A redirect to wherever the query's `to` says (another origin, or a path of this one).
            target = urllib.parse.parse_qs(h.path.split("?", 1)[1])["to"][0]
            return self._send(h, 302, b"", None, {"Location": target})
        if path == "/to-private":
            return self._send(h, 302, b"", None, {"Location": "http://10.0.0.1/internal"})
        if path == "/to-file":
            return self._send(h, 302, b"", None, {"Location": "file:///etc/passwd"})
        if path == "/gzip-bomb":
            # About 65 KB on the wire, 64 MB once inflated.
            return self._send(h, 200, (HERE / "bomb.html.gz").read_bytes(), "text/html", {"Content-Encoding": "gzip"})
        if path == "/report.pdf":
            return self._send(h, 200, b"%PDF-1.4\n%fake\n", "application/pdf")
        if path == "/flaky":
            if hit == 1:
                return self._send(h, 503, b"busy", "text/plain", {"Retry-After": "0"})
            return self._send(h, 200, self._page("ferry-timetable.html"))
        if path == "/ratelimited":
            return self._send(h, 429, b"slow down", "text/plain", {"Retry-After": "1"})
        if path == "/no-type":
            return self._send(h, 200, self._page("wind-farm.html"), None)
        if path == "/latin1":
            body = self._page("wind-farm.html").decode().replace("fishing", "pêche").encode("latin-1")
            return self._send(h, 200, body, "text/html; charset=ISO-8859-1")
        return self._send(h, 404, b"<html><body><h1>Not found</h1></body></html>")
