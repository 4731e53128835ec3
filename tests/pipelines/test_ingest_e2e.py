"""End-to-end tests of the ingestion CLI on the seeds, on HTML with dates, and on bad input."""

import datetime as dt
import gzip
import json
import pathlib
import shutil
import subprocess
import sys

import duckdb
import pytest
from conftest import ROOT, SEEDS, read_dataset, run_ingest

RUN = "2026-11-23"
PAGE = (pathlib.Path(__file__).parent.parent / "transforms" / "test_extract.py").read_text()
HTML = PAGE.split('PAGE = """', 1)[1].split('"""', 1)[0]


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds_out")
    assert run_ingest("--input", f"{SEEDS}/*.txt", "--output", out, "--run-date", RUN) == 0
    return out


def test_seeds_produce_five_articles(seed_run):
    articles = read_dataset(seed_run, "articles")
    assert articles.num_rows == 5
    assert sorted(articles["input_ref"].to_pylist()) == sorted(str(p) for p in SEEDS.glob("*.txt"))
    assert set(articles["source"].to_pylist()) == {"seeds"}
    assert len(set(articles["article_id"].to_pylist())) == 5
    assert read_dataset(seed_run, "rejects").num_rows == 0


def test_duckdb_reads_hive_partitions(seed_run):
    con = duckdb.connect()
    rows = con.execute(
        f"select published_date, date_source, count(*) from read_parquet('{seed_run}/articles/**/*.parquet', "
        "hive_partitioning=true) group by all order by all"
    ).fetchall()
    # Seeds with a text dateline (002, 004) get their own date; the rest fall back to the run date.
    assert sorted((str(d), src, n) for d, src, n in rows) == [
        ("2025-03-22", "dateline", 1),
        ("2025-09-04", "dateline", 1),
        (RUN, "run", 3),
    ]


def test_same_input_gives_same_output(seed_run, tmp_path):
    assert run_ingest("--input", f"{SEEDS}/*.txt", "--output", tmp_path, "--run-date", RUN) == 0
    a = read_dataset(seed_run, "articles").drop_columns(["ingested_at"]).sort_by("article_id")
    b = read_dataset(tmp_path, "articles").drop_columns(["ingested_at"]).sort_by("article_id")
    assert a.equals(b)


def test_html_with_date_lands_in_its_published_partition(tmp_path):
    inp = tmp_path / "in" / "site"
    inp.mkdir(parents=True)
    (inp / "page.html").write_text(HTML)
    shutil.copy(SEEDS / "000_e9b85166178c19ae.txt", inp / "seed.txt")
    out = tmp_path / "out"
    assert (
        run_ingest("--input", f"{tmp_path}/in/**/*.html", "--input", f"{inp}/*.txt", "--output", out, "--run-date", RUN)
        == 0
    )
    t = read_dataset(out, "articles")
    got = {
        pathlib.Path(r).name: (str(d), s)
        for r, d, s in zip(
            t["input_ref"].to_pylist(), t["published_date"].to_pylist(), t["date_source"].to_pylist(), strict=True
        )
    }
    assert got == {"page.html": ("2025-03-26", "published"), "seed.txt": (RUN, "run")}
    con = duckdb.connect()
    dates = con.execute(
        f"select distinct published_date::varchar from read_parquet('{out}/articles/**/*.parquet', "
        "hive_partitioning=true) order by 1"
    ).fetchall()
    assert dates == [("2025-03-26",), (RUN,)]


def test_bad_input_is_rejected_and_good_input_lands(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(SEEDS / "001_6ba81dc0816d3c55.txt", inp / "good.txt")
    (inp / "undecodable.txt").write_bytes(b"\xff\xfe\x00\x00garbage\x81\x82")
    (inp / "empty.txt").write_bytes(b"")
    (inp / "mixed.jsonl").write_text(
        json.dumps({"text": "A good record from JSON Lines.", "source": "wire"}) + "\n{not json\n"
    )
    (inp / "truncated.txt.gz").write_bytes(gzip.compress((SEEDS / "000_e9b85166178c19ae.txt").read_bytes())[:-30])
    (inp / "good.txt.gz").write_bytes(gzip.compress((SEEDS / "003_86ecde5899c78d3d.txt").read_bytes()))
    out = tmp_path / "out"
    assert run_ingest("--input", f"{inp}/*", "--output", out, "--run-date", RUN) == 0
    articles = read_dataset(out, "articles")
    assert sorted(pathlib.Path(r).name for r in articles["input_ref"].to_pylist()) == [
        "good.txt",
        "good.txt.gz",
        "mixed.jsonl:1",
    ]
    rejects = read_dataset(out, "rejects")
    got = sorted(
        (pathlib.Path(r).name, s, why)
        for r, s, why in zip(
            rejects["input_ref"].to_pylist(), rejects["stage"].to_pylist(), rejects["reason"].to_pylist(), strict=True
        )
    )
    assert got == [
        ("empty.txt", "read", "empty"),
        ("mixed.jsonl:2", "read", "bad_json"),
        ("truncated.txt.gz", "read", "bad_gzip"),
        ("undecodable.txt", "read", "undecodable"),
    ]
    assert {str(d) for d in rejects["run_date"].to_pylist()} == {RUN}
    manifest = json.loads((out / "_manifests" / f"run_date={RUN}.json").read_text())
    assert manifest["counts"]["records_read"] == 7


def _cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "pipelines.ingest", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_is_quiet_and_prints_a_summary(tmp_path):
    proc = _cli("--input", f"{SEEDS}/00[01]*.txt", "--output", tmp_path, "--run-date", RUN)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""
    assert "records read" in proc.stdout and "articles" in proc.stdout and str(tmp_path) in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "seeds/*.txt"], "--output is required"),
        (["--input", "no/such/file.txt", "--output", "OUT"], "no such file"),
        (["--input", "seeds/*.txt", "--output", "OUT", "--run-date", "23/11/2026"], "--run-date"),
        (["--output", "OUT"], "nothing to read"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, args, message):
    proc = _cli(*[a.replace("OUT", str(tmp_path)) for a in args])
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_help_documents_flags():
    proc = _cli("--help")
    assert proc.returncode == 0
    for flag in ("--input", "--output", "--run-date", "--verbose", "--max-file-mb"):
        assert flag in proc.stdout


def test_glob_that_matches_nothing_is_a_warning_not_a_crash(tmp_path):
    proc = _cli(
        "--input",
        f"{tmp_path}/nothing/*.txt",
        "--input",
        f"{SEEDS}/000*.txt",
        "--output",
        tmp_path / "o",
        "--run-date",
        RUN,
    )
    assert proc.returncode == 0, proc.stderr
    assert "matched no files" in proc.stdout
    assert dt.date.fromisoformat(RUN)
