"""Tests for the dedup stage: shingles, MinHash, banding, canonical order, components, and the Dedup transform."""

import argparse
import dataclasses
import datetime as dt
import json
import logging
import pathlib
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import read_dataset

from schemas.elements import Article, normalize_for_hash
from transforms.dedup import (
    MAX_LOOKBACK_DAYS,
    Dedup,
    DedupConfig,
    add_arguments,
    band_keys,
    bucket_pairs,
    check_history,
    config_from_options,
    connected_components,
    content_hash_of,
    estimate_similarity,
    exact_jaccard,
    history_dates,
    history_schema_problem,
    key_article_id,
    key_content_hash,
    key_is_new,
    key_published,
    key_uid,
    make_uid,
    minhash_from_shingles,
    node_key,
    normalize_text,
    read_history,
    shingle_hashes,
    shingle_set,
    signatures,
    star_roots,
    star_step,
    word_hashes,
)
from transforms.dedup.keys import by_shard
from transforms.write import to_table, write_table

RUNNER = "pipelines.runners.OfflineDirectRunner"
DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "neardup"
DOCS = {d["id"]: d for d in map(json.loads, (DATA / "docs.jsonl").read_text(encoding="utf-8").splitlines())}
T0 = dt.datetime(2025, 3, 26, 10, tzinfo=dt.timezone.utc)
RUN_DATE = dt.date(2025, 3, 27)


def _article(doc_id: str, text: str | None = None, hours: float = 0, url: str | None = "auto", **kw) -> Article:
    return Article(
        input_ref=f"in/{doc_id}",
        source="test",
        text=DOCS[doc_id]["text"] if text is None else text,
        url=f"https://news.example/{doc_id}" if url == "auto" else url,
        published_at=T0 + dt.timedelta(hours=hours),
        **kw,
    )


def _sig(text: str, cfg: DedupConfig = DedupConfig()) -> np.ndarray:
    return signatures([normalize_text(text)], cfg)[0]


def _words(n: int, start: int = 0) -> str:
    """Distinct made-up words, so shingle overlaps are exact by construction."""
    return " ".join(f"w{i}x" for i in range(start, start + n))


# --- normalisation and hashing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Plain ASCII text.\n\nNew paragraph.",
        "  leading and trailing  \t\r\n",
        "“Curly” quotes — and dashes… ’",
        "Straße İstanbul ǅ ﬁ ẞ",
        "nbsp\u00a0thin\u2009ideographic\u3000space",
        "odd\x1cseparators\x1d\x1e\x1fhere",
        "line\u2028paragraph\u2029next\x85nel\u1680ogham",
        "Ⅻ ① ⁱ K Å",
        "",
    ],
)
def test_normalize_text_equals_normalize_for_hash(text):
    assert normalize_text(text) == normalize_for_hash(text).encode("utf-8")


def test_normalize_text_fuzz_equals_normalize_for_hash():
    rng = random.Random(11)
    alphabet = list("aZ é É ß İ ﬁ “”—…ǅ①⁰") + [" ", "\t", "\n", "\x0b", "\x1c", "\x85", "\xa0", "\u2028", "\u3000"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(25)))
        assert normalize_text(text) == normalize_for_hash(text).encode("utf-8"), repr(text)


def test_content_hash_matches_article():
    text = DOCS["seed001"]["text"]
    assert content_hash_of(normalize_text(text)) == Article(input_ref="x", source="s", text=text).content_hash


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("“quoted” words — here", '"quoted" words - here', True),
        ("Rutte’s remarks", "Rutte's remarks", True),
        ("NATO Secretary-General", "nato secretary general", True),
        ("international", "internationa", False),
        ("abcdefghijklmnopqrstuvwxyz1", "abcdefghijklmnopqrstuvwxyz2", False),  # differ past the 8-byte loads
        ("безопасности", "безопасность", False),
    ],
)
def test_word_hashes_ignore_punctuation_and_case(a, b, same):
    ha, _ = word_hashes([normalize_text(a)])
    hb, _ = word_hashes([normalize_text(b)])
    assert (ha.size == hb.size and bool((ha == hb).all())) is same


def test_word_hashes_count_words_per_text_and_never_across_texts():
    texts = [normalize_text(t) for t in ("one two three", "", "four", "“five” six")]
    hashes, offsets = word_hashes(texts)
    assert offsets.tolist() == [0, 3, 3, 4, 6]
    alone, _ = word_hashes([texts[3]])
    assert hashes[4:].tolist() == alone.tolist()


@pytest.mark.parametrize(
    "words, k, lead_words, lead_weight, expected",
    [
        (10, 3, 0, 1, 8),  # n - k + 1 shingles
        (10, 3, 150, 3, 24),  # short text: every shingle is in the lead and counts three times
        (200, 3, 150, 3, 198 + 2 * 150),
        (2, 3, 0, 1, 1),  # fewer words than k: one shingle
        (0, 3, 0, 1, 1),  # no words at all: one shingle of the text itself
    ],
)
def test_shingle_counts(words, k, lead_words, lead_weight, expected):
    text = normalize_text(_words(words) if words else "— … —")
    shingles, doc = shingle_hashes([text], k, lead_words, lead_weight)
    assert len(set(shingles.tolist())) == expected
    assert set(doc.tolist()) == {0}


@pytest.mark.parametrize("overlap", [0, 100, 300, 450, 600])
def test_minhash_estimates_exact_jaccard(overlap):
    cfg = DedupConfig(lead_weight=1)
    a, b = _words(600), _words(600, start=600 - overlap)
    exact = exact_jaccard(shingle_set(a, cfg), shingle_set(b, cfg))
    assert abs(estimate_similarity(_sig(a, cfg), _sig(b, cfg)) - exact) < 0.08


def test_signatures_are_deterministic_and_independent_of_the_batch():
    texts = [normalize_text(DOCS[i]["text"]) for i in ("seed000", "seed001", "seed002")]
    together = signatures(texts)
    assert together.shape == (3, DedupConfig().num_perm) and together.dtype == np.uint16
    assert (signatures(texts[1:2])[0] == together[1]).all()
    assert (signatures(texts) == together).all()


def test_signatures_of_tiny_texts_fill_every_bin():
    # One shingle (kept three times by the lead weight, all in a few bins): every bin borrows from them.
    one, same, other = signatures([normalize_text(t) for t in ("one", "ONE!", "one two")])
    assert len(set(one.tolist())) <= 3 and (one == same).all() and (one != other).any()
    shingles, doc = shingle_hashes([normalize_text("—")], lead_weight=1)
    assert len(set(minhash_from_shingles(shingles, doc, 1, 256)[0].tolist())) == 1


def test_band_keys_change_only_with_their_band():
    sig = _sig(DOCS["seed000"]["text"])
    edited = sig.copy()
    edited[7] ^= 1  # bin 7 is in band 7 // rows
    cfg = DedupConfig()
    keys, keys2 = band_keys(np.stack([sig, edited]), cfg.bands)
    assert np.flatnonzero(keys != keys2).tolist() == [7 // cfg.rows]
    flat = np.zeros((1, cfg.num_perm), dtype=np.uint16)
    assert len(set(band_keys(flat, cfg.bands)[0].tolist())) == cfg.bands  # same values, different bands


def test_bucket_pairs_all_pairs_once():
    keys = np.array([5, 5, 5, 9, 9, 7, 5], dtype=np.uint64)
    uids = np.array([1, 2, 3, 1, 2, 4, 1], dtype=np.uint64)  # (1, 2) in two buckets, uid 1 twice in bucket 5
    a, b, capped, skipped = bucket_pairs(keys, uids, cap=10)
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == [(1, 2), (1, 3), (2, 3)]
    assert (capped, skipped) == (0, 0)


def test_bucket_pairs_caps_hot_buckets():
    n, cap = 25, 10
    a, b, capped, skipped = bucket_pairs(np.full(n, 3, np.uint64), np.arange(1, n + 1, dtype=np.uint64), cap)
    # Sub-buckets of 10, 10 and 5 members, all pairs inside, first members chained.
    assert a.size == 45 + 45 + 10 + 2
    assert (capped, skipped) == (1, n * (n - 1) // 2 - a.size)
    assert connected_components(zip(a.tolist(), b.tolist(), strict=True)) == {i: 1 for i in range(1, n + 1)}


@pytest.mark.parametrize(
    "sims, threshold, kept",
    [([0.9, 0.38, 0.37], 0.38, [True, True, False]), ([1.0], 1.0, [True])],
)
def test_verification_keeps_pairs_at_or_above_threshold(sims, threshold, kept):
    num_perm = 100
    a = np.zeros((len(sims), num_perm), dtype=np.uint16)
    b = a.copy()
    for row, s in enumerate(sims):
        b[row, round(s * num_perm) :] = 1
    assert (estimate_similarity(a, b) >= threshold).tolist() == kept


# --- canonical order and components --------------------------------------------------------------------------


def _key(aid: str, published=T0, length=100, history=False) -> int:
    uid = make_uid(aid, "ref", "00000000000000ff", 32, history=history)
    return node_key(uid, aid, "00000000000000ff", published, length, history)


@pytest.mark.parametrize(
    "winner, loser",
    [
        (_key("bbbbbbbbbbbbbbbb", published=T0), _key("aaaaaaaaaaaaaaaa", published=T0 + dt.timedelta(seconds=1))),
        (_key("bbbbbbbbbbbbbbbb", published=T0), _key("aaaaaaaaaaaaaaaa", published=None)),
        (_key("bbbbbbbbbbbbbbbb", length=500), _key("aaaaaaaaaaaaaaaa", length=499)),
        (_key("aaaaaaaaaaaaaaaa"), _key("bbbbbbbbbbbbbbbb")),
        (_key("ffffffffffffffff", published=None, history=True), _key("aaaaaaaaaaaaaaaa", length=10**6)),
        (_key("aaaaaaaaaaaaaaaa", published=dt.datetime(1950, 1, 1, tzinfo=dt.timezone.utc)), _key("bbbbbbbbbbbbbbbb")),
    ],
)
def test_canonical_order(winner, loser):
    assert min(winner, loser) == winner


def test_node_key_carries_its_fields():
    uid = make_uid("0123456789abcdef", "in/x", "fedcba9876543210", 32)
    key = node_key(uid, "0123456789abcdef", "fedcba9876543210", T0, 42, False)
    assert (key_uid(key), key_article_id(key), key_content_hash(key), key_is_new(key)) == (
        uid,
        "0123456789abcdef",
        "fedcba9876543210",
        True,
    )
    assert uid >> 56 == int("fedcba98", 16) % 32  # exact copies share a shard


@pytest.mark.parametrize(
    "published",
    [
        T0 + dt.timedelta(microseconds=123457),
        dt.datetime(1901, 1, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc),  # far from 1970: floats would round
        None,
    ],
)
def test_node_key_carries_the_exact_publication_time(published):
    # The stored signature takes its published_at from the key: the same instant, to the microsecond, in UTC.
    got = key_published(_key("0123456789abcdef", published=published))
    assert got == published and (got is None or got.utcoffset() == dt.timedelta(0))


def test_by_shard_groups_every_row_once_in_order():
    ids = np.array([3, 1, 3, 0, 1, 3, 7])
    assert [(s, rows.tolist()) for s, rows in by_shard(ids)] == [(0, [3]), (1, [1, 4]), (3, [0, 2, 5]), (7, [6])]
    assert list(by_shard(np.zeros(0, np.int64))) == []


def test_union_find_components():
    assert connected_components([(3, 4), (4, 5), (9, 8), (1, 1)]) == {1: 1, 3: 3, 4: 3, 5: 3, 8: 8, 9: 8}


def _stars(edges, rounds):
    a = np.array([e[0] for e in edges], np.uint64)
    b = np.array([e[1] for e in edges], np.uint64)
    for i in range(2 * rounds):
        a, b = star_step(np.concatenate([a, b]), np.concatenate([b, a]), i % 2 == 0)
    nodes, roots, unconverged = star_roots(np.concatenate([a, b]), np.concatenate([b, a]))
    return dict(zip(nodes.tolist(), roots.tolist(), strict=True)), unconverged


@pytest.mark.parametrize("shape", ["path", "tree", "random"])
def test_star_steps_match_union_find(shape):
    rng = random.Random(shape)
    for _ in range(30):
        ids = rng.sample(range(1, 10**12), rng.randrange(2, 200))
        if shape == "path":
            edges = list(zip(ids, ids[1:], strict=False))
        elif shape == "tree":
            edges = [(ids[i], ids[rng.randrange(i)]) for i in range(1, len(ids))]
        else:
            edges = [e for e in ((rng.choice(ids), rng.choice(ids)) for _ in ids) if e[0] != e[1]] or [(1, 2)]
        roots, unconverged = _stars(edges, DedupConfig().cc_rounds)
        assert unconverged == 0
        assert roots == connected_components(edges)


def test_star_roots_count_unconverged_nodes():
    roots, unconverged = _stars([(i, i + 1) for i in range(1, 40)], rounds=1)
    assert unconverged > 0 and all(root <= node for node, root in roots.items())


# --- settings ------------------------------------------------------------------------------------------------


def _parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_flags_have_help_and_build_the_config():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {a.option_strings[0]: a for a in parser._actions if a.option_strings and a.dest != "help"}
    assert set(flags) == {
        "--dedup-threshold",
        "--shingle-size",
        "--num-perm",
        "--lsh-bands",
        "--dedup-lookback-days",
        "--max-bucket-size",
    }
    assert all(a.help for a in flags.values())
    opts = _parse("--dedup-threshold", "0.5", "--num-perm", "128", "--lsh-bands", "32")
    cfg = config_from_options(opts, run_date=RUN_DATE, output="/out", now=dt.datetime.now(dt.timezone.utc))
    assert (cfg.threshold, cfg.num_perm, cfg.bands, cfg.rows, cfg.lookback_days) == (0.5, 128, 32, 4, 7)
    assert (cfg.output, cfg.run_date) == ("/out", RUN_DATE)


@pytest.mark.parametrize(
    "argv",
    [
        ("--dedup-threshold", "0"),
        ("--dedup-threshold", "1.5"),
        ("--shingle-size", "0"),
        ("--num-perm", "8"),
        ("--lsh-bands", "0"),
        ("--num-perm", "64", "--lsh-bands", "65"),
        ("--dedup-lookback-days", "-1"),
        ("--dedup-lookback-days", "3651"),
        ("--dedup-lookback-days", "1000000"),  # was an OverflowError in history_dates
        ("--max-bucket-size", "1"),
    ],
)
def test_invalid_settings_are_one_line_errors(argv):
    with pytest.raises(ValueError) as e:
        config_from_options(_parse(*argv), run_date=RUN_DATE, output="/out", now=dt.datetime.now(dt.timezone.utc))
    assert "\n" not in str(e.value) and argv[0] in str(e.value)


@pytest.mark.parametrize(
    "lookback, expected", [(0, []), (1, ["2025-03-26"]), (3, ["2025-03-24", "2025-03-25", "2025-03-26"])]
)
def test_history_dates_exclude_the_run_date(lookback, expected):
    cfg = DedupConfig(output="/out", run_date=RUN_DATE, lookback_days=lookback)
    assert [d.isoformat() for d in history_dates(cfg)] == expected


def test_ten_years_of_lookback_are_allowed():
    cfg = DedupConfig(output="/out", run_date=RUN_DATE, lookback_days=MAX_LOOKBACK_DAYS)
    dates = history_dates(cfg)
    assert len(dates) == MAX_LOOKBACK_DAYS == 3650 and dates[-1] == RUN_DATE - dt.timedelta(days=1)


@pytest.mark.parametrize(
    "run_date, expected",
    [
        (dt.date.min, []),
        (dt.date(1, 1, 3), ["0001-01-01", "0001-01-02"]),
        (dt.date.max, [(dt.date.max - dt.timedelta(days=d)).isoformat() for d in range(7, 0, -1)]),
    ],
)
def test_history_dates_skip_days_before_the_first_date(run_date, expected):
    cfg = DedupConfig(output="/out", run_date=run_date, lookback_days=7)
    assert [d.isoformat() for d in history_dates(cfg)] == expected


# --- the Dedup transform -------------------------------------------------------------------------------------


def _run(articles, cfg=DedupConfig(), check=None):
    """Run Dedup; `check(outputs)` gets {name: PCollection}. Returns the pipeline result (for metrics)."""
    p = TestPipeline(runner=RUNNER)
    out = p | beam.Create(articles) | Dedup(cfg)
    check(out)
    result = p.run()
    result.wait_until_finish()
    return result


def _ids(pcoll, label, fn):
    return pcoll | label >> beam.Map(fn)


def _seeds():
    return [_article(f"seed00{i}", hours=i) for i in range(5)]


def test_the_five_seeds_stay_five_stories():
    seeds = _seeds()

    def check(out):
        assert_that(
            _ids(out["articles"], "Kept", lambda a: (a.article_id, a.cluster_id, a.duplicate_count)),
            equal_to([(a.article_id, a.article_id, 0) for a in seeds]),
            label="FiveCanonical",
        )
        assert_that(out["duplicates"], equal_to([]), label="NoDuplicates")
        assert_that(_ids(out["signatures"], "Sigs", lambda s: s.article_id), equal_to([a.article_id for a in seeds]))

    _run(seeds, check=check)


def test_syndicated_copies_point_to_their_original():
    seeds = _seeds()
    copies = [_article(f"seed00{i}-syndicated", hours=i + 2) for i in range(5)]

    def check(out):
        assert_that(
            _ids(out["duplicates"], "Dups", lambda d: (d.article_id, d.duplicate_of, d.match, d.similarity >= 0.38)),
            equal_to([(c.article_id, s.article_id, "near", True) for c, s in zip(copies, seeds, strict=True)]),
            label="CopiesAreDuplicates",
        )
        assert_that(
            _ids(out["articles"], "Kept", lambda a: (a.article_id, a.cluster_id, a.duplicate_count)),
            equal_to([(s.article_id, s.article_id, 1) for s in seeds]),
            label="OriginalsKept",
        )

    _run(seeds + copies, check=check)


def test_exact_copy_is_an_exact_duplicate_of_the_earliest():
    original = _article("seed002", hours=5)
    earlier = _article("seed002", url="https://mirror.example/x", hours=1)
    shouty = _article("seed002", text=DOCS["seed002"]["text"].upper(), url="https://shout.example/x", hours=3)

    def check(out):
        assert_that(
            _ids(out["duplicates"], "Dups", lambda d: (d.article_id, d.duplicate_of, d.match, d.similarity)),
            equal_to(
                [
                    (original.article_id, earlier.article_id, "exact", 1.0),
                    (shouty.article_id, earlier.article_id, "exact", 1.0),
                ]
            ),
        )
        assert_that(
            _ids(out["articles"], "Kept", lambda a: (a.article_id, a.duplicate_count)),
            equal_to([(earlier.article_id, 2)]),
            label="Kept",
        )

    _run([original, earlier, shouty], check=check)


def test_the_same_record_twice_is_kept_once():
    a = _article("seed004")

    def check(out):
        assert_that(
            _ids(out["articles"], "Kept", lambda x: (x.article_id, x.duplicate_count)), equal_to([(a.article_id, 1)])
        )
        assert_that(
            _ids(out["duplicates"], "Dups", lambda d: (d.article_id, d.duplicate_of, d.match)),
            equal_to([(a.article_id, a.article_id, "exact")]),
            label="Dups",
        )

    _run([a, a], check=check)


def test_stories_reusing_background_are_not_merged():
    articles = _seeds() + [_article(f"followup00{i}_{v}", hours=30 + i) for i in range(5) for v in "ab"]

    def check(out):
        assert_that(out["duplicates"], equal_to([]), label="NoDuplicates")
        assert_that(_ids(out["articles"], "Kept", lambda a: a.article_id), equal_to([a.article_id for a in articles]))

    _run(articles, check=check)


def test_a_chain_of_overlaps_is_one_story_with_the_earliest_first():
    # B opens with A's second half and C with B's: each reuses the other's text but not its lead, so nothing is a
    # copy; B continues A's story and C continues B's, so all three are one thread named after A.
    a = _article("a", text=_words(600, 0), hours=1)
    b = _article("b", text=_words(600, 300), hours=2)
    c = _article("c", text=_words(600, 600), hours=3)

    def check(out):
        assert_that(out["duplicates"], equal_to([]), label="NoDups")
        kept = _ids(out["articles"], "Kept", lambda x: (x.article_id, x.cluster_id, x.story_id))
        assert_that(
            kept,
            equal_to([(x.article_id, x.article_id, a.article_id) for x in (a, b, c)]),
            label="Kept",
        )

    _run([c, a, b], check=check)


def test_empty_text_is_rejected():
    empty = _article("e", text=" \n\t ", url=None)

    def check(out):
        assert_that(
            _ids(out["rejects"], "Rejects", lambda r: (r.input_ref, r.stage, r.reason)),
            equal_to([("in/e", "dedup", "empty_text")]),
        )
        assert_that(out["articles"], equal_to([]), label="NoArticles")

    _run([empty], check=check)


def _store_signatures(output: pathlib.Path, run_date: dt.date, stored: list[tuple[str, str]]) -> None:
    """Write a previous run's signatures the way WriteDatasets does: (article_id, text) pairs."""
    folder = output / "signatures" / f"run_date={run_date.isoformat()}"
    folder.mkdir(parents=True)
    rows = _signature_rows(run_date, stored)
    write_table(str(folder / f"part-{run_date.isoformat()}-00000.parquet"), to_table("signatures", rows))


def _signature_rows(run_date: dt.date, stored: list[tuple[str, str]]) -> list[dict]:
    from schemas.datasets import signature_row
    from schemas.elements import Signature

    rows = []
    for article_id, text in stored:
        norm = normalize_text(text)
        sig = Signature(
            article_id, content_hash_of(norm), _sig(text).astype("<u2").tobytes(), T0 - dt.timedelta(days=1)
        )
        rows.append(signature_row(sig, run_date)[1])
    return rows


def test_previous_runs_signatures_make_repeats_duplicates(tmp_path):
    seeds = _seeds()
    stored = [(f"{i:016x}", a.text) for i, a in enumerate(seeds)]
    _store_signatures(tmp_path, RUN_DATE - dt.timedelta(days=2), stored[:3])
    _store_signatures(tmp_path, RUN_DATE - dt.timedelta(days=1), stored[3:])
    cfg = DedupConfig(output=str(tmp_path), run_date=RUN_DATE)

    def check(out):
        assert_that(
            _ids(out["duplicates"], "Dups", lambda d: (d.article_id, d.duplicate_of, d.match)),
            equal_to([(a.article_id, aid, "exact") for a, (aid, _) in zip(seeds, stored, strict=True)]),
        )
        assert_that(out["articles"], equal_to([]), label="NothingNew")
        assert_that(out["signatures"], equal_to([]), label="NoNewSignatures")

    result = _run(seeds, cfg, check=check)
    loaded = result.metrics().query(MetricsFilter().with_name("dedup.history_loaded"))["counters"]
    assert sum(c.committed for c in loaded) == 5


def test_a_near_copy_of_a_stored_story_points_to_the_stored_id(tmp_path):
    _store_signatures(tmp_path, RUN_DATE - dt.timedelta(days=1), [("00000000000000aa", DOCS["seed003"]["text"])])
    copy = _article("seed003-syndicated")

    def check(out):
        assert_that(
            _ids(out["duplicates"], "Dups", lambda d: (d.article_id, d.duplicate_of, d.match)),
            equal_to([(copy.article_id, "00000000000000aa", "near")]),
        )

    _run([copy], DedupConfig(output=str(tmp_path), run_date=RUN_DATE), check=check)


def test_the_run_dates_own_signatures_and_old_ones_are_ignored(tmp_path):
    seeds = _seeds()
    _store_signatures(tmp_path, RUN_DATE, [("00000000000000bb", seeds[0].text)])  # a rerun of this date
    _store_signatures(tmp_path, RUN_DATE - dt.timedelta(days=8), [("00000000000000cc", seeds[1].text)])  # too old
    cfg = DedupConfig(output=str(tmp_path), run_date=RUN_DATE)

    def check(out):
        assert_that(out["duplicates"], equal_to([]), label="NoDuplicates")
        assert_that(_ids(out["articles"], "Kept", lambda a: a.article_id), equal_to([a.article_id for a in seeds]))

    _run(seeds, cfg, check=check)


def test_a_missing_signatures_folder_is_a_first_run(tmp_path):
    seeds = _seeds()[:2]

    def check(out):
        assert_that(_ids(out["articles"], "Kept", lambda a: a.article_id), equal_to([a.article_id for a in seeds]))

    _run(seeds, DedupConfig(output=str(tmp_path / "nothing-here"), run_date=RUN_DATE), check=check)


# --- damaged history -----------------------------------------------------------------------------------------


def _folder(output: pathlib.Path, run_date: dt.date) -> pathlib.Path:
    return output / "signatures" / f"run_date={run_date.isoformat()}"


def _damage(output: pathlib.Path, run_date: dt.date, kind: str) -> str:
    """A damaged signatures file of `kind` in the run date's folder, next to any good one; returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = _folder(output, run_date)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{run_date.isoformat()}-bad-{kind}.parquet"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"\x00\xffnot parquet\n" * 64)
    elif kind == "truncated":  # a good file cut short, as a full disk or a killed writer leaves it
        write_table(str(path), to_table("signatures", _signature_rows(run_date, [("00000000000000ee", "x y z")])))
        good = path.read_bytes()
        path.write_bytes(good[: len(good) // 2])
    elif kind == "wrong_schema":
        pq.write_table(pa.table({"x": [1, 2]}), path)
    elif kind == "wrong_types":
        strings = pa.array(["00000000000000ef"])
        pq.write_table(
            pa.table({"article_id": strings, "content_hash": strings, "minhash": strings, "published_at": strings}),
            path,
        )
    else:
        raise AssertionError(kind)
    return str(path)


DAMAGE = ("empty", "garbage", "truncated", "wrong_schema", "wrong_types")


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_history_file_is_named_and_skipped(tmp_path, kind, caplog):
    day = RUN_DATE - dt.timedelta(days=1)
    _store_signatures(tmp_path, day, [("00000000000000aa", DOCS["seed003"]["text"])])
    bad = _damage(tmp_path, day, kind)
    cfg = DedupConfig(output=str(tmp_path), run_date=RUN_DATE)

    [(path, reason)] = check_history(cfg)
    assert path == bad and reason and "\n" not in reason and len(reason) <= 200
    with caplog.at_level(logging.WARNING, logger="transforms.dedup"):
        batches = list(read_history(day, cfg))
    loaded = [key_article_id(k) for _, nodes in batches for k in nodes.keys]
    assert loaded == ["00000000000000aa"]
    assert bad in caplog.text


def test_sound_or_out_of_window_history_is_not_reported(tmp_path):
    _store_signatures(tmp_path, RUN_DATE - dt.timedelta(days=1), [("00000000000000aa", DOCS["seed003"]["text"])])
    _damage(tmp_path, RUN_DATE, "garbage")  # the run date's own folder is never read
    _damage(tmp_path, RUN_DATE - dt.timedelta(days=8), "garbage")  # past the 7-day lookback
    assert check_history(DedupConfig(output=str(tmp_path), run_date=RUN_DATE)) == []
    assert check_history(DedupConfig(output=str(tmp_path / "nothing-here"), run_date=RUN_DATE)) == []
    assert check_history(DedupConfig(output=str(tmp_path), run_date=RUN_DATE, lookback_days=0)) == []


@pytest.mark.parametrize(
    "columns, problem",
    [
        ({"article_id": "string", "content_hash": "string", "minhash": "list<uint64>", "published_at": "ts"}, None),
        ({"article_id": "string", "content_hash": "string", "minhash": "list<uint16>", "published_at": "ts"}, None),
        ({"article_id": "string", "content_hash": "string", "minhash": "list<uint64>"}, "no published_at column"),
        ({"article_id": "int", "content_hash": "string", "minhash": "string", "published_at": "ts"}, "article_id is"),
    ],
)
def test_history_schema_problem(columns, problem):
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int": pa.int64(),
        "ts": pa.timestamp("us", tz="UTC"),
        "list<uint64>": pa.list_(pa.uint64()),
        "list<uint16>": pa.list_(pa.uint16()),
    }
    found = history_schema_problem(pa.schema([(name, types[t]) for name, t in columns.items()]))
    assert found == problem if problem is None else found.startswith(problem)


def test_a_damaged_history_file_does_not_block_the_run(tmp_path):
    # The good file of D-1 still makes the repeat a duplicate; every damaged file is skipped and counted, and no
    # article is lost: the new story stays an article.
    day = RUN_DATE - dt.timedelta(days=1)
    _store_signatures(tmp_path, day, [("00000000000000aa", DOCS["seed003"]["text"])])
    bad = {_damage(tmp_path, day, kind) for kind in DAMAGE} | {_damage(tmp_path, day - dt.timedelta(days=1), "empty")}
    cfg = DedupConfig(output=str(tmp_path), run_date=RUN_DATE)
    copy, new = _article("seed003-syndicated"), _article("seed000")

    def check(out):
        assert_that(
            _ids(out["duplicates"], "Dups", lambda d: (d.article_id, d.duplicate_of, d.match)),
            equal_to([(copy.article_id, "00000000000000aa", "near")]),
        )
        assert_that(_ids(out["articles"], "Kept", lambda a: a.article_id), equal_to([new.article_id]), label="K")

    result = _run([copy, new], cfg, check=check)
    counters = result.metrics().query(MetricsFilter().with_name("dedup.history_unreadable"))["counters"]
    assert sum(c.committed for c in counters) == len(bad) == 6
    assert {path for path, _ in check_history(cfg)} == bad


def test_giant_buckets_are_capped_and_counted():
    # 30 versions of one text, each with its own last word: one LSH bucket per band with 30 members.
    base = _words(400)
    articles = [_article(f"v{i}", text=f"{base} unique{i}", hours=i) for i in range(30)]
    cfg = DedupConfig(max_bucket_size=8)

    def check(out):
        everything = (
            _ids(out["articles"], "A", lambda a: a.article_id),
            _ids(out["duplicates"], "D", lambda d: d.article_id),
        ) | beam.Flatten()
        assert_that(everything, equal_to([a.article_id for a in articles]))
        assert_that(
            _ids(out["articles"], "Kept", lambda a: a.article_id), equal_to([articles[0].article_id]), label="K"
        )

    result = _run(articles, cfg, check=check)
    capped = result.metrics().query(MetricsFilter().with_name("dedup.buckets_capped"))["counters"]
    skipped = result.metrics().query(MetricsFilter().with_name("dedup.pairs_skipped"))["counters"]
    assert sum(c.committed for c in capped) > 0
    assert sum(c.committed for c in skipped) > 0


def test_every_article_ends_in_exactly_one_output():
    docs = list(DOCS)
    articles = [_article(d, hours=i % 7) for i, d in enumerate(docs)] + [_article("blank", text="", url=None)]

    def check(out):
        everything = (
            _ids(out["articles"], "A", lambda a: a.input_ref),
            _ids(out["duplicates"], "D", lambda d: d.input_ref),
            _ids(out["rejects"], "R", lambda r: r.input_ref),
        ) | beam.Flatten()
        assert_that(everything, equal_to([a.input_ref for a in articles]))
        kept_and_counted = out["articles"] | "Counts" >> beam.Map(lambda a: a.duplicate_count)
        assert_that(
            kept_and_counted | beam.CombineGlobally(sum),
            equal_to([len(articles) - 1 - 15]),  # 15 stories: 5 seeds and 10 follow-ups
            label="Counts",
        )
        # One stored signature per canonical article, with its publication time and story.
        fields = {
            tag: out[name] | f"{tag}Fields" >> beam.Map(lambda x: (x.article_id, (x.published_at, x.story_id)))
            for tag, name in (("a", "articles"), ("s", "signatures"))
        }
        joined = fields | "JoinSigs" >> beam.CoGroupByKey() | beam.Map(lambda kv: (list(kv[1]["a"]), list(kv[1]["s"])))

        def one_each(rows):
            assert len(rows) == 15
            for kept, stored in rows:
                assert len(kept) == 1 and stored == kept, (kept, stored)

        assert_that(joined, one_each, label="Sigs")

    _run(articles, check=check)


def test_canonical_articles_keep_their_fields():
    a = _article("seed000", title="A title", tags=("x",))

    def check(out):
        assert_that(
            out["articles"],
            equal_to([dataclasses.replace(a, cluster_id=a.article_id, duplicate_count=0, story_id=a.article_id)]),
        )

    _run([a], check=check)


def _ingest_day(output: pathlib.Path, run_date: dt.date, articles: list[Article]) -> None:
    """Dedup, then the real writer: the signatures round-trip through Parquet as a next run reads them."""
    from transforms.write import WriteConfig, WriteDatasets

    cfg = DedupConfig(output=str(output), run_date=run_date)
    write = WriteConfig(output=str(output), run_date=run_date, ingested_at=dt.datetime.now(dt.timezone.utc))
    with TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create(articles) | Dedup(cfg)
        {name: out[name] for name in ("articles", "duplicates", "signatures", "rejects")} | WriteDatasets(write)


def test_a_second_run_on_the_next_day_makes_every_article_a_duplicate(tmp_path):
    articles = _seeds() + [_article("seed001-syndicated", hours=3)]
    _ingest_day(tmp_path, RUN_DATE, articles)
    _ingest_day(tmp_path, RUN_DATE + dt.timedelta(days=1), articles)
    dups = read_dataset(tmp_path, "duplicates").to_pylist()
    kept = read_dataset(tmp_path, "articles").to_pylist()
    first, second = RUN_DATE, RUN_DATE + dt.timedelta(days=1)
    assert sorted(a["article_id"] for a in kept if a["run_date"] == first) == sorted(a.article_id for a in _seeds())
    assert not [a for a in kept if a["run_date"] == second]
    again = {d["article_id"]: d for d in dups if d["run_date"] == second}
    assert set(again) == {a.article_id for a in articles}
    assert all(d["duplicate_of"] == d["article_id"] for d in again.values() if d["match"] == "exact")
    copy = again[articles[-1].article_id]
    assert copy["duplicate_of"] == _seeds()[1].article_id
    signatures = read_dataset(tmp_path, "signatures").to_pylist()
    assert len(signatures) == 5 and all(len(s["minhash"]) == DedupConfig().num_perm for s in signatures)


def test_windowed_articles_are_deduplicated_per_window_against_stored_signatures(tmp_path):
    # The streaming chain windows articles hourly; stored signatures (global window) must reach every window.
    from apache_beam.transforms import window

    _store_signatures(tmp_path, RUN_DATE - dt.timedelta(days=1), [("00000000000000dd", DOCS["seed004"]["text"])])
    seed, copy = _article("seed000"), _article("seed000-syndicated", hours=1)
    repeat = _article("seed004-syndicated", hours=2)
    stamps = {seed.input_ref: 0, copy.input_ref: 60, repeat.input_ref: 4000}  # two hourly windows

    def check(out):
        assert_that(
            _ids(out["duplicates"], "Dups", lambda d: (d.article_id, d.duplicate_of)),
            equal_to([(copy.article_id, seed.article_id), (repeat.article_id, "00000000000000dd")]),
        )

    p = TestPipeline(runner=RUNNER)
    windowed = (
        p
        | beam.Create([seed, copy, repeat])
        | beam.Map(lambda a: window.TimestampedValue(a, 1_700_000_000 + stamps[a.input_ref]))
        | beam.WindowInto(window.FixedWindows(3600))
    )
    check(windowed | Dedup(DedupConfig(output=str(tmp_path), run_date=RUN_DATE)))
    p.run().wait_until_finish()
