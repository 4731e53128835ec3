"""Tests for the read stage: decoding, gzip, JSONL, sources, and one test per reject reason."""

import gzip
import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.elements import RawArticle, Reject
from transforms.read import ReadConfig, ReadError, ReadFiles, decode, gunzip, parse_file, source_for

CFG = ReadConfig(max_bytes=10_000)
RUNNER = "pipelines.runners.OfflineDirectRunner"


def _one(path, data, cfg=CFG):
    records = list(parse_file(path, data, cfg))
    assert len(records) == 1, records
    return records[0]


@pytest.mark.parametrize(
    "data, expected",
    [
        ("Grüße “quoted” — dash".encode(), "Grüße “quoted” — dash"),
        ("\ufeffWith BOM".encode(), "With BOM"),
        ("Café naïve “quoted” résumé and more text for detection to be confident".encode("cp1252"), "Café naïve"),
        ("Привет, как дела? Это тестовый текст на русском языке.".encode("cp1251"), "Привет"),
        ("e\u0301te\u0301".encode(), "\u00e9t\u00e9"),  # NFC
    ],
)
def test_decode(data, expected):
    assert decode(data).startswith(expected)


@pytest.mark.parametrize("data", [b"\xff\xfe\x00\x00garbage\x81\x82", bytes(range(128, 256)) * 3, b"ok\x00binary"])
def test_decode_rejects_binary_and_unknown(data):
    with pytest.raises(ReadError) as e:
        decode(data)
    assert e.value.reason == "undecodable"


def test_gunzip_roundtrip_and_limits():
    payload = b"hello " * 100
    assert gunzip(gzip.compress(payload), 10_000) == payload
    with pytest.raises(ReadError, match="truncated") as e:
        gunzip(gzip.compress(payload)[:-12], 10_000)
    assert e.value.reason == "bad_gzip"
    with pytest.raises(ReadError) as e:
        gunzip(gzip.compress(b"0" * 50_000), 10_000)
    assert e.value.reason == "too_large"


@pytest.mark.parametrize(
    "explicit, url, path, expected",
    [
        ("Reuters", "https://www.example.com/a", "/data/feed/x.txt", "Reuters"),
        (None, "https://www.example.com/a", "/data/feed/x.txt", "example.com"),
        (None, None, "/data/menafn/x.txt", "menafn"),
        ("  ", None, "s3://bucket/agency/x.txt", "agency"),
    ],
)
def test_source_for(explicit, url, path, expected):
    assert source_for(explicit, url, path) == expected


def test_text_file_is_one_article():
    rec = _one("/in/seeds/a.txt", b"Title\nBody text.")
    assert isinstance(rec, RawArticle)
    assert (rec.input_ref, rec.source, rec.content_type, rec.content) == (
        "/in/seeds/a.txt",
        "seeds",
        "text",
        "Title\nBody text.",
    )


def test_gzipped_html_is_read_transparently():
    rec = _one("/in/site/page.html.gz", gzip.compress(b"<html><body><p>x</p></body></html>"))
    assert rec.content_type == "html" and "<p>x</p>" in rec.content


def test_jsonl_records_carry_line_numbers_and_fields():
    lines = [
        {
            "text": "Body one.",
            "url": "https://News.example.org/a?utm_source=x",
            "title": "T1",
            "published": "2025-03-01",
        },
        {"html": "<p>Body two</p>", "source": "Wire"},
    ]
    data = "\n".join(json.dumps(x) for x in lines).encode() + b"\n\n"
    recs = list(parse_file("/in/dump/batch.jsonl", data, CFG))
    assert [r.input_ref for r in recs] == ["/in/dump/batch.jsonl:1", "/in/dump/batch.jsonl:2"]
    assert recs[0].url == "https://news.example.org/a" and recs[0].source == "news.example.org"
    assert (recs[0].title, recs[0].published, recs[0].origin) == ("T1", "2025-03-01", "jsonl")
    assert (recs[1].content_type, recs[1].source) == ("html", "Wire")


def test_json_array_file():
    data = json.dumps([{"text": "a"}, {"text": "b"}]).encode()
    assert [r.input_ref for r in parse_file("/x/a.json", data, CFG)] == ["/x/a.json:1", "/x/a.json:2"]


# One case per reject reason of the read stage.
@pytest.mark.parametrize(
    "path, data, reason",
    [
        ("/x/bad.txt", b"\xff\xfe\x00\x00garbage\x81\x82", "undecodable"),
        ("/x/empty.txt", b"", "empty"),
        ("/x/blank.txt", b"  \n\t\n", "empty"),
        ("/x/big.txt", b"x" * 10_001, "too_large"),
        ("/x/trunc.txt.gz", gzip.compress(b"hello world " * 50, mtime=0)[:-20], "bad_gzip"),
        ("/x/notgzip.txt.gz", b"plain text, not gzip", "bad_gzip"),
        ("/x/image.png", b"\x89PNG....", "unsupported_type"),
        ("/x/lines.jsonl", b'{"text": "ok"\n', "bad_json"),
        ("/x/lines.jsonl", b'["not", "an", "object"]\n', "bad_record"),
        ("/x/lines.jsonl", b'{"title": "no body"}\n', "empty"),
    ],
    # Readable ids that are the same in every process: pytest-xdist workers must collect identical names.
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_reject_reasons(path, data, reason):
    rec = _one(path, data)
    assert isinstance(rec, Reject)
    assert (rec.stage, rec.reason) == ("read", reason)
    assert rec.detail


def test_bad_json_line_does_not_lose_good_lines():
    data = b'{"text": "one"}\n{broken\n{"text": "three"}\n'
    recs = list(parse_file("/x/m.jsonl", data, CFG))
    assert [(type(r).__name__, r.input_ref) for r in recs] == [
        ("RawArticle", "/x/m.jsonl:1"),
        ("Reject", "/x/m.jsonl:2"),
        ("RawArticle", "/x/m.jsonl:3"),
    ]
    assert recs[1].excerpt == "{broken"


def test_read_files_transform(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.txt").write_text("First article.")
    (tmp_path / "a" / "two.jsonl").write_text('{"text": "Second."}\nnot json\n')
    (tmp_path / "a" / "empty.txt").write_bytes(b"")
    # Overlapping globs must not read a file twice.
    patterns = [str(tmp_path / "a" / "*.txt"), str(tmp_path / "**" / "one.txt"), str(tmp_path / "a" / "*.jsonl")]
    with TestPipeline(runner=RUNNER) as p:
        out = p | ReadFiles(patterns, CFG)
        assert_that(
            out["raw"] | beam.Map(lambda r: r.input_ref.replace(str(tmp_path), "")),
            equal_to(["/a/one.txt", "/a/two.jsonl:1"]),
            label="raw",
        )
        assert_that(
            out["rejects"] | beam.Map(lambda r: (r.input_ref.replace(str(tmp_path), ""), r.reason)),
            equal_to([("/a/two.jsonl:2", "bad_json"), ("/a/empty.txt", "empty")]),
            label="rejects",
        )
