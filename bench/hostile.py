"""CLI on a generated hostile corpus (good articles mixed with poisoned records and files): accounting, time, memory."""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import pathlib
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pyarrow.dataset as pads

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from make_corpus import _sentences, article  # noqa: E402 - the bench folder is not a package
from proctree import tree_rss_bytes  # noqa: E402

RUN_DATE = "2026-12-01"
SOURCES = ("reuters.com", "apnews.com", "bbc.co.uk", "dw.com", "lemonde.fr", "elpais.com")


class Corpus:
    """Writes files under `root` and counts the records it plants (what the run should read)."""

    def __init__(self, root: pathlib.Path, rng: random.Random):
        self.root, self.rng, self.pool = root, rng, _sentences()
        self.planted = 0
        self.kinds: collections.Counter = collections.Counter()

    def path(self, rel: str) -> pathlib.Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write(self, rel: str, data: bytes, records: int, kind: str) -> None:
        self.path(rel).write_bytes(data)
        self.planted += records
        self.kinds[kind] += records

    def good(self, i: int, words: int = 400) -> dict:
        title, body = article(self.rng, self.pool, words)
        return {
            "url": f"https://www.{SOURCES[i % len(SOURCES)]}/news/{i:06d}?utm_source=bench",
            "title": title,
            "text": body,
            "published": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            "author": "Bench Reporter",
        }


def _line(value, ensure_ascii: bool = True) -> bytes:
    # Lone surrogates have no UTF-8 form: escaped they are valid JSON, which is exactly the hostile case.
    return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


def poisoned_lines(c: Corpus, i: int) -> list[tuple[bytes, str]]:
    """One JSON Lines line of each poisoned record class, cycling with i."""
    g = c.good(i, 150)
    big = "x" * 400_000
    classes = [
        (
            _line({**g, "text": g["text"] + " \ud800", "title": "\ud800", "source": "\udc00", "author": "a\udfff"}),
            "surrogates",
        ),
        (_line({**g, "url": "http://[::1/x"}), "bad_url"),
        (b"[" * 100_000 + b"]" * 100_000, "deep_nesting"),
        (b'{"text": "digits", "n": ' + b"9" * 5000 + b"}", "huge_int"),
        (_line({**g, "text": g["text"].replace(". ", ".\u2028", 3) + "\u2029\x85"}, ensure_ascii=False), "raw_u2028"),
        (_line({**g, "text": g["text"] + "\x00\x01\x0b\x0c\x1b[31m"}), "control_chars"),
        (_line({**g, "source": big, "title": big, "author": big, "published": big}), "huge_metadata"),
        (_line({**g, "title": 42, "author": ["a"], "published": {"d": 1}, "source": True, "url": 7}), "wrong_types"),
        (_line([g]), "not_object"),
        (_line("just a string"), "not_object"),
        (_line({"title": "no body", "text": "   "}), "empty_text"),
        (_line({"text": None, "html": 5}), "empty_text"),
        (b'{"text": "unterminated', "bad_json"),
        (bytes(c.rng.randrange(32, 127) for _ in range(80)), "garbage_line"),
        (
            _line({"html": f"<html><body><article><p>{g['text']}</p><p>&#xD800; &#0;</p></article></body></html>"}),
            "html",
        ),
    ]
    return [classes[(i + k) % len(classes)] for k in range(3)]


def build(c: Corpus, n: int, count_traps: bool) -> None:
    """About n records: two thirds good articles (txt, html, jsonl, syndicated copies), one third poisoned."""
    n_good = n * 2 // 3
    jsonl: list[bytes] = []
    for i in range(n_good):
        g = c.good(i)
        kind = ("txt", "html", "jsonl", "jsonl")[i % 4]
        if kind == "txt":
            c.write(f"good/txt/a{i:06d}.txt", f"{g['title']}\n\n{g['text']}\n".encode(), 1, "good_txt")
        elif kind == "html":
            paras = "".join(f"<p>{p}</p>" for p in g["text"].split("\n\n"))
            page = (
                f'<html lang="en"><head><title>{g["title"]}</title><link rel="canonical" href="{g["url"]}">'
                f'<meta property="article:published_time" content="{g["published"]}"></head><body>'
                f"<nav>Home Menu Sign in</nav><article><h1>{g['title']}</h1>{paras}</article>"
                "<footer>© 2026 Bench News</footer></body></html>"
            )
            c.write(f"good/html/a{i:06d}.html", page.encode(), 1, "good_html")
        else:
            jsonl.append(_line(g))
            if i % 20 == 2:  # a syndicated copy under another source: a duplicate, not a new article
                jsonl.append(_line({**g, "url": None, "source": "syndicator.example"}))
    for k in range(0, len(jsonl), 100):
        chunk = jsonl[k : k + 100]
        c.write(f"good/jsonl/part-{k // 100:04d}.jsonl", b"\n".join(chunk) + b"\n", len(chunk), "good_jsonl")

    # Poisoned records, three per line group, mixed with good lines and blank lines in the same files.
    lines, i = [], 0
    while c.planted + len(lines) < n:
        for data, kind in poisoned_lines(c, i):
            lines.append(data)
            c.kinds[kind] += 1
        lines.append(_line(c.good(100_000 + i, 120)))
        c.kinds["good_jsonl_among_poison"] += 1
        lines.append(b"   ")  # blank: not a record
        i += 1
    records = sum(1 for x in lines if x.strip())
    for k in range(0, len(lines), 60):
        chunk = lines[k : k + 60]
        c.path(f"poison/records-{k // 60:04d}.jsonl").write_bytes(b"\n".join(chunk))
    c.planted += records

    # Whole hostile files.
    g = c.good(200_000)
    c.write("files/garbage.txt", bytes(c.rng.randrange(256) for _ in range(4096)), 1, "garbage_file")
    c.write("files/garbage.jsonl", bytes(c.rng.randrange(128, 256) for _ in range(4096)), 1, "garbage_file")
    c.write("files/binary.html", b"\x89PNG\r\n\x1a\n" + os.urandom(2048), 1, "garbage_file")
    c.write("files/empty.txt", b"", 1, "empty_file")
    c.write("files/empty.jsonl", b"", 1, "empty_file")
    c.write("files/blank.json", b" \n\t\r\n", 1, "empty_file")
    c.write("files/empty-array.json", b"[]", 1, "empty_file")
    os.mkfifo(c.path("files/pipe.jsonl"))  # must become a reject, not a reader blocked forever
    c.planted += 1
    c.kinds["fifo"] += 1
    members = b"".join(gzip.compress(_line(c.good(210_000 + m, 200)) + b"\n", mtime=0) for m in range(3))
    c.write("files/multi-member.jsonl.gz", members, 3, "gzip_multi_member")
    c.write("files/truncated.jsonl.gz", members[: len(members) // 2], 1, "gzip_truncated")
    c.write("files/trailing-garbage.txt.gz", gzip.compress(g["text"].encode()) + b"garbage", 1, "gzip_trailing")
    c.write("files/not-gzip.json.gz", b"plain text, not gzip", 1, "gzip_fake")
    c.write("files/pretty.json", json.dumps(c.good(220_000), indent=2).encode(), 1, "pretty_json")
    array = [c.good(230_000 + k, 200) for k in range(5)] + [{"text": ""}, 17]
    c.write("files/array.json", json.dumps(array, indent=1).encode(), len(array), "json_array")
    c.write("files/deep.json", b"[" * 100_000 + b"]" * 100_000, 1, "deep_nesting")
    c.write(
        "files/cp1252.txt", ("Café résumé – “quoted” news\n\n" + g["text"]).encode("cp1252", "replace"), 1, "cp1252"
    )
    c.write("files/bom.txt", b"\xef\xbb\xbf" + g["text"].encode(), 1, "bom")
    c.write(
        "files/utf16.jsonl",
        "\n".join(json.dumps(c.good(240_000 + k, 100)) for k in range(3)).encode("utf-16"),
        3,
        "utf16",
    )
    for k in range(3):
        huge = {**c.good(250_000 + k, 200), "text": c.good(260_000 + k, 60_000)["text"]}  # a few hundred KB
        c.write(f"files/huge-{k}.jsonl", _line(huge) + b"\n", 1, "huge_text")
    c.write("files/huge.txt", ("\n\n".join([g["text"]] * 400)).encode(), 1, "huge_text")
    c.path("files/unsupported.pdf").write_bytes(b"%PDF-1.4")  # skipped: a folder means its supported files
    if count_traps:
        # Files where the independent record count and the reader disagreed when this bench was written.
        c.write("traps/nbsp-line.jsonl", _line(c.good(270_000, 80)) + "\n\u00a0\n".encode(), 1, "trap")
        c.write("traps/nul.jsonl", _line(c.good(270_001, 80)) + b"\n" + b'{"text": "a\x00b"}\n', 1, "trap")
        padded = gzip.compress(_line(c.good(270_002, 80)) + b"\n") + b"\0" * 8 + gzip.compress(b'{"text": "x"}\n')
        c.write("traps/zero-padded.jsonl.gz", padded, 1, "trap")


def run_cli(corpus: pathlib.Path, out: pathlib.Path, extra: list[str]) -> tuple[int, float, int, int, str, str]:
    """(exit code, wall seconds, peak RSS of the process tree, peak RSS of one process, stdout, stderr)."""
    cmd = [str(ROOT / ".venv" / "bin" / "news-ingest"), "--input", str(corpus), "--output", str(out)]
    cmd += ["--run-date", RUN_DATE, *extra]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, done = [0], threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
            done.wait(0.1)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    wall = time.monotonic() - start
    done.set()
    watcher.join()
    single = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # largest waited-for descendant
    return proc.returncode, wall, peak[0], single, stdout, stderr


def _rows(out: pathlib.Path, name: str):
    path = out / name
    if not path.exists():
        return None
    return pads.dataset(str(path), format="parquet", partitioning="hive").to_table()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=3000, help="records to plant (about)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-count-traps", dest="count_traps", action="store_false", help="leave out the trap files")
    ap.add_argument("--keep", type=pathlib.Path, help="build the corpus and output here and keep them")
    ap.add_argument("extra", nargs="*", help="extra pipeline flags, e.g. --direct_num_workers=2")
    args = ap.parse_args()
    tmp = None
    if args.keep:
        base = args.keep
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
    else:
        tmp = tempfile.TemporaryDirectory()
        base = pathlib.Path(tmp.name)
    try:
        corpus, out = base / "corpus", base / "out"
        c = Corpus(corpus, random.Random(args.seed))
        t0 = time.monotonic()
        build(c, args.n, args.count_traps)
        size = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file())
        n_files = sum(1 for p in corpus.rglob("*") if not p.is_dir())
        print(
            f"corpus: {n_files} files, {size / 1e6:.1f} MB, {c.planted} records planted, "
            f"built in {time.monotonic() - t0:.1f}s"
        )
        print("  planted by class: " + ", ".join(f"{k}={v}" for k, v in sorted(c.kinds.items())))
        code, wall, peak_tree, peak_one, stdout, stderr = run_cli(corpus, out, args.extra)
        print(
            f"cli exit code {code}; wall {wall:.1f}s; peak RSS {peak_tree / 2**20:.0f} MiB (process tree, polled), "
            f"{peak_one / 2**20:.0f} MiB (largest single process); cores={os.cpu_count()}"
        )
        if stderr.strip():
            print("  stderr: " + stderr.strip().splitlines()[-1][:300])
        manifest_path = out / "_manifests" / f"run_date={RUN_DATE}.json"
        if not manifest_path.exists():
            print("no manifest: the run committed nothing")
            print(stdout[-3000:])
            return
        counts = json.loads(manifest_path.read_text())["counts"]
        articles, duplicates, rejects = (_rows(out, name) for name in ("articles", "duplicates", "rejects"))
        n_art = articles.num_rows if articles is not None else 0
        n_dup = duplicates.num_rows if duplicates is not None else 0
        n_rej = rejects.num_rows if rejects is not None else 0
        read = counts.get("records_read", 0)
        print(f"records read {read} (planted {c.planted}); articles {n_art}; duplicates {n_dup}; rejects {n_rej}")
        print(f"read == articles + duplicates + rejects: {read == n_art + n_dup + n_rej} ({n_art + n_dup + n_rej})")
        if rejects is not None:
            pairs = zip(rejects.column("stage").to_pylist(), rejects.column("reason").to_pylist(), strict=True)
            by = collections.Counter(pairs)
            for (stage, reason), k in sorted(by.items()):
                print(f"  rejected {stage}/{reason}: {k}")
        listed = counts.get("files_with_rejects") or []
        print(f"files listed with rejects: {len(listed)}")
        for f in listed:
            bad = "" if f["expected"] == f["records"] + f["rejects"] else "  UNBALANCED"
            rel = os.path.relpath(f["path"], corpus)
            print(f"  {rel}: holds {f['expected']}, read {f['records']}, rejected {f['rejects']}{bad}")
        print(f"wall {wall:.1f}s, {read / wall:.1f} records/s; peak RSS {peak_tree / 2**20:.0f} MiB")
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
