"""Tests for the run report: its numbers against DuckDB, missing datasets, trends, the CLI and progress."""

from __future__ import annotations

import datetime as dt
import gzip
import html.parser
import io
import json
import random
import shutil
import time
from collections import defaultdict

import apache_beam as beam
import duckdb
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from conftest import SEEDS, run_ingest

from pipelines import report as rp
from schemas import datasets as ds
from schemas.elements import Article, Duplicate, EntityMention, Reject, Removed, Signature, Story
from transforms.common import count
from transforms.write import WriteConfig, commit, manifest_path, staging_dir, to_table, write_table

RUN = dt.date(2026, 11, 23)
RUNNER = "pipelines.runners.OfflineDirectRunner"
UTC = dt.timezone.utc
BAD_INPUTS = {
    "empty.txt": b"",
    "broken.jsonl": b'{"text": "A fine record from JSON Lines.", "url": "https://example.org/a"}\n{"text": broken\n',
    "garbage.txt": b"\xff\xfe\x00\x00garbage\x81\x82",
    "truncated.txt.gz": gzip.compress(b"A story that never arrives in full. " * 40)[:-20],
}
BAD_REASONS = {"empty", "bad_json", "undecodable", "bad_gzip"}


# ---------------------------------------------------------------- a synthetic run with every dataset filled

SOURCES = ("example.com", "news.example.org", "wire.test", "evil<script>alert(1)</script>.test")
PEOPLE = ("Mark Rutte", "Ursula von der Leyen", "Olaf Scholz", "$PLTR$ & <b>Co</b>")
ORGS = ("NATO", "European Commission", "United Nations")
RULES = ("nav.menu", "footer.copyright", "share.buttons", "newsletter.signup")
REASONS = (("read", "bad_json"), ("read", "empty"), ("extract", "extract_failed"), ("clean", "too_short"))


def synthetic_run(
    out, run_date: dt.date, *, n: int = 40, days: int = 6, datasets=tuple(ds.DATASETS), seed: int = 7
) -> dict:
    """Write a committed run with all datasets (or the given subset) through the write stage's own commit."""
    rng = random.Random(seed * 100_000 + run_date.toordinal())
    out = str(out)
    rows: dict[tuple[str, dt.date], list[dict]] = defaultdict(list)
    at = dt.datetime(2026, 11, 23, 6, tzinfo=UTC)
    for i in range(n):
        day = None if i % 9 == 0 else dt.datetime(2026, 11, 1 + rng.randrange(days), 12, tzinfo=UTC)
        names = [(p, "PERSON") for p in rng.sample(PEOPLE, 2)] + [(o, "ORG") for o in rng.sample(ORGS, 1)]
        mentions = tuple(
            EntityMention(text=name, label=label, start=10 * k, end=10 * k + len(name), canonical=name)
            for k, (name, label) in enumerate(names * rng.randint(1, 3))
        )
        a = Article(
            input_ref=f"in/{run_date}/{i}.txt",
            source=rng.choice(SOURCES),
            text=f"Story {i} of {run_date}.",
            url=f"https://example.com/{run_date}/{i}",
            published_at=day,
            removed=tuple(Removed(rule_id=r, text=f"line {r}") for r in rng.sample(RULES, rng.randint(0, 3))),
            duplicate_count=rng.choice((0, 0, 0, 1, 2, 4)),
            entities=mentions,
            language=rng.choice(("en", "en", "fr", "de", "und", None)),
        )
        if "articles" in datasets:
            part, row = ds.article_row(a, run_date, at)
            rows[("articles", part)].append(row)
        if "entities" in datasets:
            for part, row in ds.entity_rows(a, run_date):
                rows[("entities", part)].append(row)
        if "signatures" in datasets:
            sig = Signature(
                article_id=a.article_id,
                content_hash=a.content_hash,
                minhash=b"\x01\x00\x02\x00\x03\x00",
                published_at=day,
            )
            rows[("signatures", run_date)].append(ds.signature_row(sig, run_date)[1])
    if "duplicates" in datasets:
        for i in range(n // 4):
            d = Duplicate(
                article_id=f"dup{i}",
                duplicate_of="x",
                similarity=1.0 if i % 3 else 0.9,
                match="near" if i % 3 == 0 else "exact",
                source=rng.choice(SOURCES),
                input_ref=f"in/{run_date}/dup{i}.txt",
                published_at=dt.datetime(2026, 11, 2, tzinfo=UTC),
            )
            part, row = ds.duplicate_row(d, run_date, at)
            rows[("duplicates", part)].append(row)
    if "stories" in datasets:
        for i in range(n // 3):
            first = dt.datetime(2026, 11, 1 + rng.randrange(days), 8, tzinfo=UTC)
            story = Story(
                story_id=f"story{i:03d}",
                first_seen=first,
                last_seen=first + dt.timedelta(hours=rng.randrange(60)),
                canonical_id=f"art{i}",
                canonical_title=None if i % 5 == 0 else f"Story <{i}>",
                article_count=rng.randint(1, 6),
                duplicate_count=rng.choice((0, 0, 1, 3)),
                sources=tuple(rng.sample(SOURCES, rng.randint(1, 3))),
                top_entities=(("Mark Rutte", "PERSON", 2),),
                earlier_articles=rng.choice((0, 0, 1, 2, 9)),
                started_here=i % 2 == 0,
            )
            rows[("stories", run_date)].append(ds.story_row(story, run_date)[1])
    if "rejects" in datasets:
        for i in range(n // 5 + 25):
            stage, reason = REASONS[i % len(REASONS)] if i % 7 else REASONS[0]
            r = Reject.of(f"in/{run_date}/bad{i:03d}.jsonl:{i}", stage, reason, f"detail <{i}>")
            rows[("rejects", run_date)].append(ds.reject_row(r, run_date)[1])
    return commit_rows(out, run_date, rows, datasets)


def commit_rows(out, run_date: dt.date, rows: dict, datasets, counts: dict | None = None) -> dict:
    """Commit (dataset, partition) -> rows as one run, records_read being articles + duplicates + rejects."""
    out = str(out)
    cfg = WriteConfig(output=out, run_date=run_date, ingested_at=dt.datetime(2026, 11, 23, 6, tzinfo=UTC))
    entries = []
    for (name, part), part_rows in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        rel = f"{name}/{ds.DATASETS[name].partition_key}={part.isoformat()}/part-{run_date}-00000.parquet"
        write_table(f"{staging_dir(out, run_date)}/{rel}", to_table(name, part_rows))
        entries.append({"kind": "file", "dataset": name, "rel": rel, "rows": len(part_rows)})
    read = sum(e["rows"] for e in entries if e["dataset"] in ("articles", "duplicates", "rejects"))
    entries.append({"kind": "count", "name": "records_read", "value": read})
    entries += [{"kind": "count", "name": k, "value": v} for k, v in (counts or {}).items()]
    return commit(cfg, datasets, entries)


# ---------------------------------------------------------------- DuckDB, the reference


def _sql(query: str, *params) -> list[tuple]:
    with duckdb.connect() as con:
        return con.execute(query, list(params)).fetchall()


def _glob(out, name: str) -> str:
    return f"{out}/{name}/**/*.parquet"


def _reference(out, run_date: dt.date) -> dict:
    """What an analyst gets from DuckDB for one run: the numbers the report must reproduce."""
    arts = f"read_parquet('{_glob(out, 'articles')}', hive_partitioning=true)"
    rej = f"read_parquet('{_glob(out, 'rejects')}', hive_partitioning=true)"
    d = run_date.isoformat()
    ref = {
        "articles": _sql(f"SELECT count(*) FROM {arts} WHERE run_date = ?::DATE", d)[0][0],
        "per_source": sorted(
            _sql(f"SELECT source, count(*) FROM {arts} WHERE run_date = ?::DATE GROUP BY 1", d),
            key=lambda r: (-r[1], r[0]),
        ),
        "per_date": _sql(
            f"SELECT CAST(published_date AS VARCHAR), count(*) FROM {arts} WHERE run_date = ?::DATE "
            "GROUP BY 1 ORDER BY 1",
            d,
        ),
        "per_language": sorted(
            _sql(f"SELECT coalesce(language, 'und'), count(*) FROM {arts} WHERE run_date = ?::DATE GROUP BY 1", d),
            key=lambda r: (-r[1], r[0]),
        ),
        "clusters": _sql(
            f"SELECT coalesce(duplicate_count, 0) + 1, count(*) FROM {arts} WHERE run_date = ?::DATE GROUP BY 1 "
            "ORDER BY 1",
            d,
        ),
        "removed": sorted(
            _sql(
                f"SELECT r.rule_id, count(*), count(DISTINCT article_id) FROM "
                f"(SELECT article_id, unnest(removed) AS r FROM {arts} WHERE run_date = ?::DATE) GROUP BY 1",
                d,
            ),
            key=lambda r: (-r[1], r[0]),
        ),
        "rejects": dict(_sql(f"SELECT reason, count(*) FROM {rej} WHERE run_date = ?::DATE GROUP BY 1", d)),
    }
    if list((out / "duplicates").glob("**/*.parquet")):
        dups = f"read_parquet('{_glob(out, 'duplicates')}', hive_partitioning=true)"
        ref["duplicates"] = dict(_sql(f"SELECT match, count(*) FROM {dups} WHERE run_date = ?::DATE GROUP BY 1", d))
    if list((out / "stories").glob("**/*.parquet")):
        stories = f"read_parquet('{_glob(out, 'stories')}', hive_partitioning=true)"
        base = (
            "SELECT story_id, earlier_articles + article_count AS articles, article_count + duplicate_count AS added, "
            f"round(article_count / (earlier_articles + 1), 3) AS growth FROM {stories} "
            "WHERE run_date = ?::DATE"
        )
        ref["largest"] = [r[0] for r in _sql(f"{base} ORDER BY articles DESC, added DESC, story_id LIMIT 10", d)]
        ref["growing"] = [r[0] for r in _sql(f"{base} ORDER BY growth DESC, added DESC, story_id LIMIT 10", d)]
    if list((out / "entities").glob("**/*.parquet")):
        ents = f"read_parquet('{_glob(out, 'entities')}', hive_partitioning=true)"
        ref["entity_rows"] = _sql(f"SELECT count(*) FROM {ents} WHERE run_date = ?::DATE", d)[0][0]
        ref["entities"] = _sql(
            "SELECT label, entity, n_articles, n_mentions FROM ("
            f"SELECT label, entity, count(*) AS n_articles, sum(mentions) AS n_mentions FROM {ents} "
            "WHERE run_date = ?::DATE GROUP BY 1, 2) "
            "QUALIFY row_number() OVER (PARTITION BY label ORDER BY n_articles DESC, n_mentions DESC, entity) <= 20 "
            "ORDER BY 1, 3 DESC, 4 DESC, 2",
            d,
        )
    return ref


def _check_against_duckdb(report: dict, out, run_date: dt.date) -> dict:
    ref = _reference(out, run_date)
    c = report["counts"]
    assert c["articles"] == ref["articles"]
    assert c["rejected"] == sum(ref["rejects"].values())
    assert c["rejected_by_reason"] == ref["rejects"]
    assert [(r["source"], r["articles"]) for r in report["articles_per_source"]] == ref["per_source"]
    assert [(r["date"], r["articles"]) for r in report["articles_per_published_date"]] == ref["per_date"]
    assert [(r["language"], r["articles"]) for r in report["articles_per_language"]] == ref["per_language"]
    assert [(r["size"], r["clusters"]) for r in report["cluster_sizes"]] == ref["clusters"]
    assert [(r["rule_id"], r["lines"], r["articles"]) for r in report["removed_by_rule"]] == ref["removed"]
    assert report["removed_lines"] == sum(r[1] for r in ref["removed"])
    dups = ref.get("duplicates", {})
    assert (c["duplicates"] or 0) == sum(dups.values())
    if c["duplicates"] is not None:
        assert (c["duplicates_exact"], c["duplicates_near"]) == (dups.get("exact", 0), dups.get("near", 0))
    assert (c["entity_rows"] or 0) == ref.get("entity_rows", 0)
    if "largest" in ref:
        assert [r["story_id"] for r in report["largest_stories"]] == ref["largest"]
        assert [r["story_id"] for r in report["fastest_growing_stories"]] == ref["growing"]
    if "entities" in ref:
        got = [
            (label, r["entity"], r["articles"], r["mentions"])
            for label, rows in report["top_entities"].items()
            for r in rows
        ]
        assert got == ref["entities"]
    assert c["accounted"] == ref["articles"] + sum(dups.values()) + sum(ref["rejects"].values())
    assert report["ok"] is (c["read"] == c["accounted"])
    assert report["reject_rate"] == pytest.approx(c["rejected"] / c["read"] if c["read"] else 0.0)
    return ref


# ---------------------------------------------------------------- the pipeline on seeds plus bad inputs


@pytest.fixture(scope="module")
def pipeline_out(tmp_path_factory):
    base = tmp_path_factory.mktemp("report_run")
    inputs = base / "in"
    inputs.mkdir()
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, inputs / seed.name)
    for name, data in BAD_INPUTS.items():
        (inputs / name).write_bytes(data)
    out = base / "out"
    assert run_ingest("--input", f"{inputs}/*", "--output", out, "--run-date", RUN.isoformat()) == 0
    return out


def test_report_matches_duckdb_on_pipeline_output(pipeline_out):
    metrics = {"files_read": 9, "rejected.read.bad_json": 1}
    options = {"output": str(pipeline_out), "s3_secret_access_key": "hunter2"}
    report = rp.build_report(str(pipeline_out), RUN, metrics=metrics, options=options, wall_s=2.5)
    ref = _check_against_duckdb(report, pipeline_out, RUN)
    assert BAD_REASONS <= set(ref["rejects"])  # the bad inputs really went through the run
    manifest = json.loads(open(manifest_path(str(pipeline_out), RUN)).read())
    assert report["counts"]["read"] == manifest["counts"]["records_read"]
    assert report["ok"] is True
    assert report["counts"]["files_read"] == 9 and report["metrics"] == dict(sorted(metrics.items()))
    assert report["wall_s"] == 2.5 and report["run_date"] == RUN.isoformat()
    sampled = {(s["stage"], s["reason"]) for s in report["sample_rejects"]}
    assert {("read", r) for r in BAD_REASONS} <= sampled
    assert report["options"] == {"output": str(pipeline_out), "s3_secret_access_key": "***"}
    assert "hunter2" not in json.dumps(report, allow_nan=False)  # plain JSON a monitoring system can parse


def test_write_report_leaves_json_and_html(pipeline_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(pipeline_out, out)
    report = rp.build_report(str(out), RUN)
    json_path, html_path = rp.write_report(str(out), RUN, report)
    folder = out / "reports" / f"run_date={RUN}"
    assert (json_path, html_path) == (str(folder / "report.json"), str(folder / "report.html"))
    assert json.loads((folder / "report.json").read_text()) == json.loads(json.dumps(report))
    page = (folder / "report.html").read_text()
    assert f'id="count-articles" data-value="{report["counts"]["articles"]}"' in page
    assert not list(folder.glob("*.tmp"))


def test_report_matches_duckdb_on_every_dataset(tmp_path):
    synthetic_run(tmp_path, RUN, n=60)
    synthetic_run(tmp_path, RUN + dt.timedelta(days=1), n=30)  # another run in the same folders must not leak in
    report = rp.build_report(str(tmp_path), RUN)
    ref = _check_against_duckdb(report, tmp_path, RUN)
    assert ref["duplicates"]["exact"] and ref["duplicates"]["near"] and ref["entities"] and ref["removed"]
    assert all(len(rows) <= rp.TOP_ENTITIES for rows in report["top_entities"].values())
    assert all(d["produced"] for d in report["datasets"].values())
    kept = report["counts"]["articles"] + report["counts"]["duplicates"]
    assert report["duplicate_rate"] == pytest.approx(report["counts"]["duplicates"] / kept)
    assert len(report["sample_rejects"]) == rp.SAMPLE_REJECTS
    assert {(s["stage"], s["reason"]) for s in report["sample_rejects"]} == set(REASONS)


def test_missing_datasets_are_not_produced(tmp_path):
    synthetic_run(tmp_path, RUN, datasets=("articles", "rejects"))
    report = rp.build_report(str(tmp_path), RUN)
    for name in ("duplicates", "entities", "signatures"):
        assert report["datasets"][name] == {"produced": False, "files": 0, "rows": None}
    c = report["counts"]
    assert (c["duplicates"], c["duplicates_exact"], c["duplicates_near"], c["entity_rows"]) == (None,) * 4
    assert report["top_entities"] is None and report["duplicate_rate"] is None
    assert report["ok"] is True
    page = rp.render_html(report)
    assert 'id="count-duplicates" data-value="" data-produced="false">not produced' in page
    assert "Entities not produced by this run" in page


def test_nothing_but_rejects(tmp_path):
    synthetic_run(tmp_path, RUN, datasets=("rejects",))
    report = rp.build_report(str(tmp_path), RUN)
    assert report["counts"]["articles"] is None and report["articles_per_source"] is None
    assert report["reject_rate"] == 1.0
    assert "Articles not produced by this run" in rp.render_html(report)


def test_html_is_self_contained_escaped_and_deterministic(tmp_path):
    synthetic_run(tmp_path, RUN, n=60)
    report = rp.build_report(str(tmp_path), RUN)
    page = rp.render_html(report)
    assert page == rp.render_html(rp.build_report(str(tmp_path), RUN))
    lower = page.lower()
    for external in ("<script", "<link", "<iframe", "@import", "url(http", 'src="http', 'href="http'):
        assert external not in lower, external
    assert "&lt;script&gt;" in page  # a hostile source name is shown, not run
    for key, *_ in rp.CHARTS:
        assert f'id="chart-{key}"' in page
    assert page.count("<svg") == len(rp.CHARTS)
    largest = page.split('id="largest-stories"', 1)[1].split("</table>", 1)[0]
    assert largest.count("<tr") == len(report["largest_stories"]) + 1 > 1
    assert "Story &lt;" in largest  # titles come from the data: escaped
    languages = page.split('id="languages"', 1)[1].split("</table>", 1)[0]
    for row in report["articles_per_language"]:
        assert f"<td>{row['language']}</td>" in languages


class _Text(html.parser.HTMLParser):
    """The page as a browser parses it: the elements it opens and the text of each cell, list item and heading."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: set[str] = set()
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.update(name for name, _ in attrs)

    def handle_data(self, data):
        self.texts.append(data)


HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "' onmouseover='alert(1)", "</td></tr>&amp;")


def test_hostile_strings_in_the_data_are_escaped(tmp_path):
    synthetic_run(tmp_path, RUN, n=60, datasets=("articles", "entities", "rejects"))
    report = rp.build_report(
        str(tmp_path), RUN, options={"input": list(HOSTILE)}, metrics={h: 1 for h in HOSTILE}, warnings=HOSTILE
    )
    # Every field that reaches the page from crawled data or from the command line gets a hostile value.
    report["articles_per_source"] = [{"source": h, "articles": 1} for h in HOSTILE]
    report["removed_by_rule"] = [{"rule_id": h, "lines": 1, "articles": 1} for h in HOSTILE]
    report["top_entities"] = {h: [{"entity": h, "articles": 2, "mentions": 3}] for h in HOSTILE}
    report["sample_rejects"] = [{"input_ref": h, "stage": "read", "reason": h, "detail": h} for h in HOSTILE]
    report["counts"]["rejected_by_stage"] = {"read": {h: 1 for h in HOSTILE}}
    report["counts"]["rejected_by_reason"] = {h: 1 for h in HOSTILE}
    report["files_with_rejects"] = [
        {"path": h, "expected": 2, "records": 1, "rejects": 1, "bytes": 9, "gzip_members": 0} for h in HOSTILE
    ]
    page = rp.render_html(report)
    assert "<script" not in page.lower() and "<img" not in page.lower() and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parsed = _Text()
    parsed.feed(page)
    assert not {"script", "img"} & set(parsed.tags)  # the SVG charts (matplotlib escapes their text) too
    # Shown as the same text, once per place it appears: the sources, rules, entities, samples, files, warnings...
    for h in HOSTILE:
        assert parsed.texts.count(h) >= 8, (h, parsed.texts.count(h))
    assert not [a for a in parsed.attrs if a.startswith("on")]  # no attribute was closed and a handler added


# ---------------------------------------------------------------- news-ingest report (main)


def test_main_regenerates_and_keeps_run_metrics(pipeline_out, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(pipeline_out, out)
    original = rp.build_report(str(out), RUN, metrics={"files_read": 9}, options={"input": ["x"]}, wall_s=1.5)
    rp.write_report(str(out), RUN, original)
    (out / "reports" / f"run_date={RUN}" / "report.html").unlink()
    assert rp.main([str(out)]) == 0
    again = json.loads((out / "reports" / f"run_date={RUN}" / "report.json").read_text())
    assert again == json.loads(json.dumps(original))
    assert (out / "reports" / f"run_date={RUN}" / "report.html").exists()
    assert "report.html" in capsys.readouterr().out


def test_main_trends_over_two_runs(pipeline_out, tmp_path, seeds_dir):
    out = tmp_path / "out"
    shutil.copytree(pipeline_out, out)
    second = RUN + dt.timedelta(days=1)
    assert run_ingest("--input", f"{seeds_dir}/00[0-2]*.txt", "--output", out, "--run-date", second.isoformat()) == 0
    assert rp.main([str(out), "--last", "5"]) == 0
    report = json.loads((out / "reports" / f"run_date={second}" / "report.json").read_text())
    assert [p["run_date"] for p in report["trends"]] == [RUN.isoformat(), second.isoformat()]
    for point in report["trends"]:
        d = dt.date.fromisoformat(point["run_date"])
        ref = _reference(out, d)
        assert point["articles"] == ref["articles"]
        assert point["rejected"] == sum(ref["rejects"].values())
        assert point["read"] == ref["articles"] + sum(ref.get("duplicates", {}).values()) + point["rejected"]
        assert point["reject_rate"] == pytest.approx(point["rejected"] / point["read"])
    assert report["trends"][1]["rejected"] == 0 and report["trends"][0]["rejected"] >= len(BAD_REASONS)
    page = (out / "reports" / f"run_date={second}" / "report.html").read_text()
    assert 'id="chart-trends"' in page and 'id="trends-table"' in page
    assert rp.main([str(out), "--last", "1"]) == 0
    report = json.loads((out / "reports" / f"run_date={second}" / "report.json").read_text())
    assert [p["run_date"] for p in report["trends"]] == [second.isoformat()]
    assert rp.main([str(out), "--run-date", RUN.isoformat()]) == 0
    first = json.loads((out / "reports" / f"run_date={RUN}" / "report.json").read_text())
    assert first["trends"] is None and first["counts"]["rejected"] >= len(BAD_REASONS)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["{out}", "--last", "0"],
        ["{out}", "--last", "many"],
        ["{out}", "--run-date", "2026-13-01"],
        ["{out}", "--run-date", "2026-11-23", "--last", "2"],
        ["{out}", "--bogus"],
        ["{out}", "extra"],
        ["{out}/does-not-exist"],
    ],
)
def test_main_usage_errors_are_one_line(args, tmp_path, capsys):
    synthetic_run(tmp_path, RUN, n=5, datasets=("articles", "rejects"))
    code = rp.main([a.format(out=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("news-ingest report: error:"), err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [["{out}"], ["{out}", "--run-date", "2020-01-01"]])
def test_main_without_a_committed_run_fails_in_one_line(args, tmp_path, capsys):
    if "--run-date" in args:
        synthetic_run(tmp_path, RUN, n=5, datasets=("articles", "rejects"))
    assert rp.main([a.format(out=tmp_path) for a in args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no committed run" in err


def test_report_subcommand_is_routed(pipeline_out, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(pipeline_out, out)
    assert run_ingest("report", out, "--run-date", RUN.isoformat()) == 0
    assert (out / "reports" / f"run_date={RUN}" / "report.json").exists()
    assert run_ingest("report") == 2


# ---------------------------------------------------------------- metrics and progress


def test_metrics_from_result():
    p = TestPipeline(runner=RUNNER)
    _ = p | beam.Create(["a", "b", "c"]) | beam.Map(lambda x: count("files_read") or count(f"seen.{x}", 2))
    result = p.run()
    result.wait_until_finish()
    assert rp.metrics_from_result(result) == {"files_read": 3, "seen.a": 2, "seen.b": 2, "seen.c": 2}


class _Tty(io.StringIO):
    def isatty(self):
        return True


class _LiveResult:
    """A running PipelineResult as Dataflow would expose it: metrics() answers while the job runs."""

    def __init__(self, counters: dict):
        self._counters = counters

    def metrics(self):
        from apache_beam.metrics.execution import MetricKey, MetricResult
        from apache_beam.metrics.metricbase import MetricName

        outer = self

        class _Q:
            def query(self, _filter=None):
                return {
                    "counters": [
                        MetricResult(MetricKey("step", MetricName("news", k)), None, v)
                        for k, v in outer._counters.items()
                    ]
                }

        return _Q()


def test_progress_is_quiet_without_a_terminal():
    stream = io.StringIO()
    with rp.Progress(stream=stream, interval=0.01, files=3):
        time.sleep(0.1)
    assert stream.getvalue() == ""


def test_progress_ticks_on_a_terminal_with_live_metrics():
    stream = _Tty()
    progress = rp.Progress(stream=stream, interval=0.01, files=12)
    with progress:
        progress.attach(_LiveResult({"files_read": 5, "rows_written.articles": 1234}))
        deadline = time.monotonic() + 5
        while "articles written" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
    text = stream.getvalue()
    assert "running 00:0" in text and "5/12 files read" in text and "1,234 articles written" in text
    assert text.endswith("\r\x1b[K")  # the line is cleared for the summary that follows
    assert rp.Progress(stream=_Tty(), files=7).start().line().endswith("7 input files")


# ---------------------------------------------------------------- object stores


@pytest.mark.slow
def test_report_on_s3(tmp_path, monkeypatch, capsys):
    """The report reads and writes through Beam's FileSystems: an s3:// output gives the same report."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    from moto.server import ThreadedMotoServer

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    saved = FileSystems._pipeline_options
    try:
        host, port = server.get_host_and_port()
        flags = [f"--s3_endpoint_url=http://{host}:{port}", "--s3_region_name=us-east-1"]
        flags += ["--s3_access_key_id=testing", "--s3_secret_access_key=testing"]
        import boto3

        client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1")
        client.create_bucket(Bucket="rep")
        for day in (RUN, RUN + dt.timedelta(days=1)):
            synthetic_run(tmp_path, day, n=20, days=2)
        # Uploaded with one client: Beam builds a new boto3 client per FileSystems call, slow for a fixture.
        for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
            client.upload_file(str(path), "rep", f"out/{path.relative_to(tmp_path).as_posix()}")
        FileSystems.set_options(PipelineOptions(flags))
        out = "s3://rep/out"
        assert rp.build_report(out, RUN) == rp.build_report(str(tmp_path), RUN)
        FileSystems._pipeline_options = None  # main must take the endpoint from its own command line
        assert rp.main([out, "--last", "2", *flags]) == 0, capsys.readouterr().err
        written = f"{out}/reports/run_date={RUN + dt.timedelta(days=1)}/report.json"
        with FileSystems.open(written) as f:
            report = json.loads(f.read())
        assert [p["run_date"] for p in report["trends"]] == [RUN.isoformat(), (RUN + dt.timedelta(days=1)).isoformat()]
        assert FileSystems.exists(written.replace(".json", ".html"))
    finally:
        FileSystems._pipeline_options = saved
        server.stop()


# ---------------------------------------------------------------- per-source health and drift

SOURCE_DATASETS = ("articles", "duplicates", "rejects")


def source_day(out, run_date: dt.date, spec: dict, *, counts: dict | None = None, extra_rejects=()) -> dict:
    """Commit a run from source -> {"articles", "words", "undated", "failures", "duplicates", "removed"}.

    Failures are extract rejects of the source's page URLs (what a site that turned its pages empty gives).
    """
    rows: dict[tuple[str, dt.date], list[dict]] = defaultdict(list)
    at = dt.datetime(2026, 11, 23, 6, tzinfo=UTC)
    for source, s in sorted(spec.items()):
        for i in range(s.get("articles", 0)):
            dated = i >= s.get("undated", 0)
            a = Article(
                input_ref=f"https://{source}/{run_date}/{i}",
                source=source,
                text=" ".join(["word"] * s.get("words", 100)) + f" {i}",
                url=f"https://{source}/{run_date}/{i}",
                published_at=dt.datetime(2026, 11, 2, tzinfo=UTC) if dated else None,
                date_source="published" if dated else "run",
                removed=tuple(Removed(rule_id="nav.menu", text="Home") for _ in range(s.get("removed", 0))),
            )
            part, row = ds.article_row(a, run_date, at)
            rows[("articles", part)].append(row)
        for i in range(s.get("duplicates", 0)):
            d = Duplicate(
                article_id=f"{source}-dup{i}",
                duplicate_of="x",
                similarity=1.0,
                match="exact",
                source=source,
                input_ref=f"https://{source}/{run_date}/dup{i}",
                published_at=dt.datetime(2026, 11, 2, tzinfo=UTC),
            )
            part, row = ds.duplicate_row(d, run_date, at)
            rows[("duplicates", part)].append(row)
        for i in range(s.get("failures", 0)):
            r = Reject.of(f"https://www.{source}/{run_date}/gone{i}", "extract", "no_text", "nothing left")
            rows[("rejects", run_date)].append(ds.reject_row(r, run_date)[1])
    for ref, stage, reason in extra_rejects:
        rows[("rejects", run_date)].append(ds.reject_row(Reject.of(ref, stage, reason, "x"), run_date)[1])
    return commit_rows(out, run_date, rows, SOURCE_DATASETS, counts)


def _by_source(report: dict) -> dict:
    return {r["source"]: r for r in report["sources"]}


def test_ref_sources_follow_the_read_stage_rule():
    from pipelines.report.sources import ref_sources

    refs = [
        "https://www.Example.com:8443/a/b?q=1",
        "in/wire/batch.jsonl:17",
        "/data/feeds/agency/page.html",
        "C:\\dumps\\local\\x.txt",
        "lonely.txt",
        None,
        "https://www.example.com/other",
    ]
    got = ref_sources(pa.array(refs, pa.string())).to_pylist()
    assert got == ["example.com", "wire", "agency", "local", "unknown", "unknown", "example.com"]
    assert ref_sources(pa.array([], pa.string())).to_pylist() == []


def test_per_source_figures(tmp_path):
    fetch = {"a.example": {"fetched": 12, "unchanged": 3}, "idle.example": {"fetched": 4, "unchanged": 4}}
    source_day(
        tmp_path,
        RUN,
        {
            "a.example": {"articles": 4, "words": 99, "undated": 1, "duplicates": 2, "removed": 3, "failures": 2},
            "b.example": {"articles": 6, "words": 9},
        },
        counts={"fetch_by_source": fetch},
        extra_rejects=[
            ("https://a.example/x", "fetch", "http_error"),
            ("in/wire/batch.jsonl:3", "read", "bad_json"),
            ("in/wire/batch.jsonl:9", "read", "bad_json"),
            ("in/wire/other.txt", "clean", "too_short"),
        ],
    )
    report = rp.build_report(str(tmp_path), RUN)
    assert [r["source"] for r in report["sources"]] == ["b.example", "a.example", "idle.example", "wire"]
    a, b, idle, wire = (_by_source(report)[s] for s in ("a.example", "b.example", "idle.example", "wire"))
    assert (a["articles"], a["duplicates"], a["rejected"], a["extraction_failures"]) == (4, 2, 3, 3)
    assert a["rejected_by_reason"] == {"http_error": 1, "no_text": 2}
    assert a["records"] == 9 and a["extraction_failure_rate"] == pytest.approx(3 / 9, abs=1e-6)
    assert a["missing_date_rate"] == 0.25 and a["mean_words"] == 100.0 and a["removed_lines_per_article"] == 3.0
    assert (a["fetched"], a["unchanged"]) == (12, 3)
    assert (b["mean_words"], b["missing_date_rate"], b["extraction_failure_rate"]) == (10.0, 0.0, 0.0)
    assert (b["fetched"], b["unchanged"]) == (None, None)  # the fetch stage recorded nothing for it
    assert (idle["articles"], idle["records"], idle["fetched"], idle["unchanged"]) == (0, 0, 4, 4)
    assert idle["missing_date_rate"] is None and idle["mean_words"] is None
    assert wire["rejected_by_reason"] == {"bad_json": 2, "too_short": 1} and wire["extraction_failures"] == 0
    # Every record is attributed to exactly one source.
    assert sum(r["records"] for r in report["sources"]) == report["counts"]["accounted"]
    assert report["drift"] == []  # no history, no drift


def test_fetch_counts_are_null_without_the_manifest_entry(tmp_path):
    source_day(tmp_path, RUN, {"a.example": {"articles": 2}})
    (row,) = rp.build_report(str(tmp_path), RUN)["sources"]
    assert (row["fetched"], row["unchanged"]) == (None, None)


STEADY = {"articles": 10, "words": 200}


def test_pages_turning_empty_on_day_three_is_drift(tmp_path, capsys):
    days = [RUN + dt.timedelta(days=k) for k in range(3)]
    for day in days[:2]:
        source_day(tmp_path, day, {"steady.example": STEADY, "broken.example": {"articles": 10, "words": 300}})
    # Day 3: the site changed its template; extraction finds no text on most pages, the rest are stubs.
    source_day(
        tmp_path,
        days[2],
        {"steady.example": STEADY | {"words": 180}, "broken.example": {"articles": 1, "words": 5, "failures": 9}},
    )
    report = rp.build_report(str(tmp_path), days[2])
    (flag,) = report["drift"]
    assert flag["source"] == "broken.example"
    assert flag["baseline_runs"] == [d.isoformat() for d in days[:2]]
    assert (flag["records"], flag["baseline_records"]) == (10, 20)
    moved = {m["metric"]: m for m in flag["moved"]}
    assert set(moved) == {"extraction_failure_rate", "mean_words"}
    assert (moved["extraction_failure_rate"]["baseline"], moved["extraction_failure_rate"]["current"]) == (0.0, 0.9)
    assert (moved["mean_words"]["baseline"], moved["mean_words"]["current"]) == (301.0, 6.0)
    # The same run without the broken day in it is quiet, and so is day 2 against day 1.
    assert rp.build_report(str(tmp_path), days[1])["drift"] == []
    # news-ingest report rebuilds it, and the page opens with the banner.
    assert rp.main([str(tmp_path)]) == 0
    written = json.loads((tmp_path / "reports" / f"run_date={days[2]}" / "report.json").read_text())
    assert written["drift"] == report["drift"] and written["sources"] == report["sources"]
    page = (tmp_path / "reports" / f"run_date={days[2]}" / "report.html").read_text()
    assert page.index('id="drift" data-rows="1"') < page.index('id="headline"')
    assert f'id="source-health" data-rows="{len(report["sources"])}"' in page
    assert "extraction failure rate 0.0% → 90.0%" in page


def test_dates_vanishing_is_drift_but_a_falling_rate_is_not(tmp_path):
    days = [RUN + dt.timedelta(days=k) for k in range(3)]
    for day in days[:2]:
        source_day(tmp_path, day, {"dated.example": STEADY, "mending.example": STEADY | {"failures": 6}})
    source_day(tmp_path, days[2], {"dated.example": STEADY | {"undated": 6}, "mending.example": STEADY})
    (flag,) = rp.build_report(str(tmp_path), days[2])["drift"]
    assert flag["source"] == "dated.example"
    assert [(m["metric"], m["baseline"], m["current"]) for m in flag["moved"]] == [("missing_date_rate", 0.0, 0.6)]


def test_drift_rule_thresholds():
    from collections import Counter

    from pipelines.report import sources as sr

    def tally(articles, rejected=0, failures=0, words=100, run_dated=0):
        return Counter(
            articles=articles,
            rejected=rejected,
            failures=failures,
            words=words * articles,
            worded=articles,
            run_dated=run_dated,
        )

    base = {"s": tally(20)}

    def flagged(now, baseline=base):
        return [m["metric"] for d in sr.drift({"s": now}, baseline, ["2026-11-22"]) for m in d["moved"]]

    assert flagged(tally(10, words=int(100 * sr.DRIFT_LENGTH_LOW))) == []  # exactly at the factor
    assert flagged(tally(10, words=int(100 * sr.DRIFT_LENGTH_LOW) - 1)) == ["mean_words"]
    assert flagged(tally(10, words=int(100 * sr.DRIFT_LENGTH_HIGH))) == []
    assert flagged(tally(10, words=int(100 * sr.DRIFT_LENGTH_HIGH) + 1)) == ["mean_words"]
    assert flagged(tally(6, rejected=2, failures=2)) == []  # +0.25 is not more than the threshold
    assert flagged(tally(6, rejected=3, failures=3)) == ["extraction_failure_rate"]
    assert flagged(tally(20, run_dated=5)) == [] and flagged(tally(20, run_dated=6)) == ["missing_date_rate"]
    assert flagged(tally(0, rejected=5, failures=5)) == ["extraction_failure_rate", "mean_words"]
    # Too few records this run, or in the baseline: one odd page is not a trend.
    assert flagged(tally(0, rejected=sr.DRIFT_MIN_RECORDS - 1, failures=sr.DRIFT_MIN_RECORDS - 1)) == []
    assert flagged(tally(0, rejected=5, failures=5), {"s": tally(sr.DRIFT_MIN_BASELINE_RECORDS - 1)}) == []
    assert flagged(tally(10, words=1), {}) == []  # a new source has no baseline


def test_drift_baseline_is_the_previous_seven_runs(tmp_path):
    from pipelines.report.sources import DRIFT_BASELINE_RUNS

    days = [RUN + dt.timedelta(days=k) for k in range(DRIFT_BASELINE_RUNS + 3)]
    target = days[-2]
    for day in days:
        # The oldest run and the run after the target are broken too: neither may be in the target's baseline.
        broken = day in (days[0], target, days[-1])
        spec = {"articles": 1, "words": 50, "failures": 9} if broken else {"articles": 10, "words": 50}
        source_day(tmp_path, day, {"x.example": spec})
    (flag,) = rp.build_report(str(tmp_path), target)["drift"]
    assert flag["baseline_runs"] == [d.isoformat() for d in days[1:-2]]
    assert len(flag["baseline_runs"]) == DRIFT_BASELINE_RUNS
    assert flag["baseline_records"] == 10 * DRIFT_BASELINE_RUNS
    assert flag["moved"][0] == {"metric": "extraction_failure_rate", "baseline": 0.0, "current": 0.9, "change": 0.9}


def test_no_drift_banner_without_flags(tmp_path):
    for k in range(3):
        source_day(tmp_path, RUN + dt.timedelta(days=k), {"steady.example": STEADY})
    report = rp.build_report(str(tmp_path), RUN + dt.timedelta(days=2))
    assert report["drift"] == []
    page = rp.render_html(report)
    assert 'id="drift"' not in page and 'id="source-health" data-rows="1"' in page
