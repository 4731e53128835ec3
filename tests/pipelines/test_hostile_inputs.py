"""One regression test per hostile-input class: a bad record, file or flag never crashes, stalls or shrinks a run."""

from __future__ import annotations

import gzip
import json
import os
import pathlib
import random
import tempfile

import pyarrow.parquet as pq
import pytest
from conftest import read_dataset, run_ingest

from pipelines import runners

DAY = "2026-12-01"
GOOD = "A harbour strike closed the northern port on Monday, union officials said in a statement."


def _ingest(inputs, out, *extra) -> int:
    args = []
    for pattern in inputs if isinstance(inputs, list) else [inputs]:
        args += ["--input", str(pattern)]
    return run_ingest(*args, "--output", str(out), "--run-date", DAY, *extra)


def _manifest(out) -> dict:
    return json.loads((pathlib.Path(out) / "_manifests" / f"run_date={DAY}.json").read_text())


def _refs(out, dataset) -> list[str]:
    table = read_dataset(out, dataset)
    return sorted(table.column("input_ref").to_pylist()) if table.num_rows else []


_WORDS = (
    "port union strike council budget river school hospital election minister court police market energy "
    "farmers rail bridge storm museum festival airport factory workers teachers doctors prices housing water "
    "harbour ferry mayor village province coast forest mine bank shares exports wheat coffee tourism league"
).split()


def _good(n: int, url: str | None = None) -> dict:
    """A record whose text shares no run of words with another n's, so dedup keeps every one."""
    rng = random.Random(n)
    words = [rng.choice(_WORDS) for _ in range(60)]
    record = {"text": f"Story {n}: " + " ".join(words) + "."}
    if url:
        record["url"] = url
    return record


def test_lone_surrogates_are_repaired_and_flagged_not_fatal(tmp_path, capsys):
    # Valid JSON, invalid text: before, the run exited 1 in Clean/LearnRepeatedLines and Write/KeyArticles.
    lines = [
        '{"text": "Bad \\ud800 text about the port strike", "title": "T\\udc00", "source": "S\\ud800", '
        '"author": "A\\udfff"}',
        json.dumps(_good(2)),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    assert _ingest(tmp_path / "in.jsonl", tmp_path / "out") == 0
    articles = read_dataset(tmp_path / "out", "articles").to_pylist()
    assert len(articles) == 2
    bad = next(a for a in articles if a["input_ref"].endswith(":1"))
    assert "\ufffd" in bad["text"] and bad["title"] == "T\ufffd" and bad["source"] == "S\ufffd"
    assert {"repaired_unicode:content", "repaired_unicode:title", "repaired_unicode:source"} <= set(bad["flags"])
    assert "invalid Unicode" in capsys.readouterr().out


@pytest.mark.parametrize(
    "poison",
    [
        '{"text": "bad url story words", "url": "http://[::1/x"}',
        "[" * 100_000 + "]" * 100_000,
        '{"text": "a big number", "n": ' + "9" * 5000 + "}",
    ],
    ids=["invalid-url", "nested-100k", "int-5000-digits"],
)
def test_one_poisoned_line_is_one_reject_and_the_other_lines_land(tmp_path, poison):
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join([json.dumps(_good(1)), poison, json.dumps(_good(3))]) + "\n")
    assert _ingest(path, tmp_path / "out") == 0
    kept = _refs(tmp_path / "out", "articles") + _refs(tmp_path / "out", "rejects")
    if "url" in poison:
        # An unusable URL is dropped from the record, which still lands as an article.
        assert _refs(tmp_path / "out", "articles") == [f"{path}:1", f"{path}:2", f"{path}:3"]
    else:
        rejects = read_dataset(tmp_path / "out", "rejects").to_pylist()
        assert [(r["input_ref"], r["reason"]) for r in rejects] == [(f"{path}:2", "bad_json")]
        assert sorted(kept) == [f"{path}:1", f"{path}:2", f"{path}:3"]


def test_raw_line_separators_inside_json_strings_do_not_split_records(tmp_path):
    record = {"text": "One story \u2028 with a raw line separator \u2029 and a next-line \u0085 in it."}
    path = tmp_path / "sep.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n" + json.dumps(_good(2)) + "\n", encoding="utf-8")
    assert _ingest(path, tmp_path / "out") == 0
    assert _refs(tmp_path / "out", "articles") == [f"{path}:1", f"{path}:2"]
    assert read_dataset(tmp_path / "out", "rejects").num_rows == 0


def test_pretty_printed_json_document_is_one_record(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"title": "Pretty", **_good(1)}, indent=2))
    assert _ingest(path, tmp_path / "out") == 0
    articles = read_dataset(tmp_path / "out", "articles").to_pylist()
    assert [(a["input_ref"], a["title"]) for a in articles] == [(str(path), "Pretty")]
    assert read_dataset(tmp_path / "out", "rejects").num_rows == 0


def test_every_member_of_a_multi_member_gzip_is_read(tmp_path):
    members = [
        gzip.compress("".join(json.dumps(_good(100 * k + i)) + "\n" for i in range(100)).encode()) for k in range(3)
    ]
    path = tmp_path / "cat.jsonl.gz"
    path.write_bytes(b"".join(members))
    assert _ingest(path, tmp_path / "out", "--dedup-threshold", "1.0") == 0
    manifest = _manifest(tmp_path / "out")
    assert manifest["counts"]["records_read"] == 300
    articles, dups = read_dataset(tmp_path / "out", "articles"), read_dataset(tmp_path / "out", "duplicates")
    assert articles.num_rows + dups.num_rows == 300


def test_a_glob_matching_nothing_never_wipes_a_committed_date(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    for i in range(3):
        (tmp_path / "in" / f"{i}.txt").write_text(f"Story {i}\n{GOOD} {i} {i} {i}")
    out = tmp_path / "out"
    assert _ingest(tmp_path / "in" / "*.txt", out) == 0
    before = sorted(p.name for p in out.rglob("*.parquet"))
    assert _ingest(tmp_path / "typo" / "*.txt", out) == 2
    assert "--allow-empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.rglob("*.parquet")) == before
    # Asked for explicitly, the empty run replaces the date.
    assert _ingest(tmp_path / "typo" / "*.txt", out, "--allow-empty") == 0
    assert read_dataset(out, "articles").num_rows == 0


def test_a_feed_run_that_reads_nothing_is_refused_at_commit(tmp_path, capsys):
    (tmp_path / "a.txt").write_text(f"Story\n{GOOD}")
    out = tmp_path / "out"
    assert _ingest(tmp_path / "a.txt", out) == 0
    feed = tmp_path / "empty.xml"
    feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>Empty</title></channel></rss>')
    code = run_ingest("--feed", str(feed), "--output", str(out), "--run-date", DAY)
    assert code == 1
    assert "keeps its" in capsys.readouterr().err
    assert read_dataset(out, "articles").num_rows == 1
    assert not list((out / "_manifests").glob("*.refused.json"))


@pytest.mark.timeout(120)
def test_a_fifo_matching_the_glob_is_a_reject_not_a_hang(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text(f"Story\n{GOOD}")
    os.mkfifo(tmp_path / "in" / "pipe.txt")
    assert _ingest(tmp_path / "in" / "*.txt", tmp_path / "out") == 0
    rejects = read_dataset(tmp_path / "out", "rejects").to_pylist()
    assert [(r["input_ref"], r["reason"]) for r in rejects] == [(str(tmp_path / "in" / "pipe.txt"), "not_regular_file")]
    assert not list((tmp_path / "out" / "_locks").glob("*.lock"))


def test_a_folder_as_input_means_the_supported_files_below_it(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "a.txt").write_text(f"Story A\n{GOOD} a a a")
    (tmp_path / "in" / "sub" / "b.jsonl").write_text(json.dumps(_good(2)) + "\n")
    (tmp_path / "in" / "notes.pdf").write_bytes(b"%PDF-1.4 not an article")
    assert _ingest(tmp_path / "in", tmp_path / "out") == 0
    assert _refs(tmp_path / "out", "articles") == [str(tmp_path / "in" / "a.txt"), f"{tmp_path / 'in/sub/b.jsonl'}:1"]
    assert read_dataset(tmp_path / "out", "rejects").num_rows == 0


@pytest.mark.parametrize(
    "flags",
    [
        ("--run-date", "0001-01-01"),
        ("--dedup-lookback-days", "1000000"),
        ("--max-file-mb", "inf"),
        ("--max-file-mb", "nan"),
        ("--write-shards", "100000000"),
    ],
)
def test_out_of_range_values_are_usage_errors(tmp_path, flags, capsys):
    (tmp_path / "a.txt").write_text(GOOD)
    args = ["--input", str(tmp_path / "a.txt"), "--output", str(tmp_path / "out"), *flags]
    if flags[0] != "--run-date":
        args += ["--run-date", DAY]
    assert run_ingest(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("news-ingest: error:") and "Traceback" not in err[0]


def test_the_output_folder_is_never_read_back_as_input(tmp_path):
    (tmp_path / "a.txt").write_text(f"Story\n{GOOD}")
    out = tmp_path / "out"
    assert _ingest(tmp_path / "**", out) == 0
    # The second run's glob now also matches report.html, the manifests and the Parquet files under out/.
    assert _ingest(tmp_path / "**", out) == 0
    assert _refs(out, "articles") == [str(tmp_path / "a.txt")]
    assert read_dataset(out, "rejects").num_rows == 0
    assert _manifest(out)["counts"]["records_read"] == 1


def test_failed_runs_leave_no_temp_folders(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    (tmp_path / "a.txt").write_text(f"Story\n{GOOD}")
    assert _ingest(tmp_path / "a.txt", tmp_path / "out") == 0

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom in the middle of the graph")

    monkeypatch.setattr("pipelines.ingest.ArticleChain", broken)
    assert _ingest(tmp_path / "a.txt", tmp_path / "out2") == 1
    assert list(tmp.iterdir()) == []


def test_stale_private_temp_folders_of_dead_runs_are_removed(tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f"news-ingest-{dead.pid}-abc").mkdir()
    (tmp_path / f"news-ingest-{os.getpid()}-mine").mkdir()
    (tmp_path / "beam-pipeline-tempother").mkdir()
    assert runners.remove_stale_tempdirs(str(tmp_path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beam-pipeline-tempother", f"news-ingest-{os.getpid()}-mine"]


def test_a_reader_that_loses_records_fails_the_accounting(tmp_path, monkeypatch, capsys):
    import transforms.read as read

    original = read.parse_file

    def lossy(*args, **kwargs):
        records = list(original(*args, **kwargs))
        return iter(records[:-1])  # a reader bug: the last record of every file vanishes

    monkeypatch.setattr(read, "parse_file", lossy)
    path = tmp_path / "three.jsonl"
    path.write_text("".join(json.dumps(_good(i)) + "\n" for i in range(3)))
    assert _ingest(path, tmp_path / "out") == 3
    captured = capsys.readouterr()
    assert "UNBALANCED" in captured.out and f"{path}: holds 3, read 2" in captured.out
    assert "accounted for" in captured.err


def test_files_with_rejects_are_listed_with_their_counts(tmp_path, capsys):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(_good(1)) + "\n{broken\n")
    assert _ingest(path, tmp_path / "out") == 0
    listed = _manifest(tmp_path / "out")["counts"]["files_with_rejects"]
    assert [(f["path"], f["expected"], f["records"], f["rejects"]) for f in listed] == [(str(path), 2, 1, 1)]
    assert f"{path}: holds 2, read 1, rejected 1" in capsys.readouterr().out


def test_written_files_hold_only_valid_unicode(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"text": "\\udc80\\udc81 lone lows and \\ud83d\\ude00 a real pair"}\n')
    assert _ingest(tmp_path / "x.jsonl", tmp_path / "out") == 0
    for f in (tmp_path / "out").rglob("*.parquet"):
        for row in pq.read_table(f).to_pylist():
            for value in row.values():
                if isinstance(value, str):
                    value.encode("utf-8")
    text = read_dataset(tmp_path / "out", "articles").column("text").to_pylist()[0]
    assert "\U0001f600" in text


@pytest.mark.timeout(300)
def test_a_reader_that_closes_the_pipe_early_does_not_fail_a_committed_run(tmp_path):
    # `news-ingest ... | head -1`: the summary's reader leaves; the run is committed and its exit code stands.
    import subprocess
    import sys

    (tmp_path / "a.txt").write_text(f"Story\n{GOOD}")
    cmd = [sys.executable, "-c", "from pipelines.ingest import main; main()", "--input", str(tmp_path / "a.txt")]
    cmd += ["--output", str(tmp_path / "out"), "--run-date", DAY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=pathlib.Path(__file__).parents[2])
    proc.stdout.close()  # nobody reads the summary
    _, err = proc.communicate(timeout=280)
    assert proc.returncode == 0, err.decode()
    assert b"BrokenPipe" not in err
    assert read_dataset(tmp_path / "out", "articles").num_rows == 1


def test_first_files_keeps_the_unbalanced_then_the_first_paths_within_bounds():
    from pipelines.ingest import FirstFiles

    rows = [{"path": f"/in/{i:03d}.jsonl", "expected": 2, "records": 1, "rejects": 1} for i in range(50)]
    rows.append({"path": "/in/zzz.jsonl", "expected": 3, "records": 1, "rejects": 1})  # lost a record
    fn = FirstFiles(5)
    halves = [fn.create_accumulator(), fn.create_accumulator()]
    for i, row in enumerate(rows):
        halves[i % 2] = fn.add_input(halves[i % 2], row)
        assert len(halves[i % 2]) <= 10
    out = fn.extract_output(fn.merge_accumulators(halves))
    assert [r["path"] for r in out] == [
        "/in/zzz.jsonl",
        "/in/000.jsonl",
        "/in/001.jsonl",
        "/in/002.jsonl",
        "/in/003.jsonl",
    ]
