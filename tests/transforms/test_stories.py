"""Story threads: copy / follow-up / unrelated verification, story ids, the stories dataset, old signatures."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import random

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import read_dataset, run_ingest

from schemas.datasets import STORIES, story_row
from schemas.elements import Article, Duplicate, EntityMention
from transforms.dedup import (
    COPY,
    FOLLOW,
    UNRELATED,
    Dedup,
    DedupConfig,
    classify,
    features,
    key_article_id,
    lead_span,
    make_uid,
    may_relate,
    node_key,
    normalize_text,
    sketches,
    threads,
    verify,
    view,
)
from transforms.dedup.profiles import Profiles, features_of, lead_shares, lead_words, verify_rows, verify_views
from transforms.stories import Stories, aggregate, member_of_article, member_of_duplicate
from transforms.write import to_table

RUNNER = "pipelines.runners.OfflineDirectRunner"
T0 = dt.datetime(2026, 6, 1, 8, tzinfo=dt.timezone.utc)
CFG = DedupConfig()

# Made-up syllables: a vocabulary no news text (and no seed or test file) shares.
_SYL = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "vo", "pe", "dai", "run", "sel", "tor", "bam", "qui", "xen"]
_VOCAB = sorted({a + b + c for a in _SYL for b in _SYL for c in _SYL[:6]})


def sentences(seed: int, n: int, words: int = 18) -> list[str]:
    r = random.Random(seed)
    return [" ".join(r.choice(_VOCAB) for _ in range(words)).capitalize() + "." for _ in range(n)]


def text(*lines: str) -> str:
    return "\n".join(lines)


ORIGINAL = ["Tolkami board agrees to sell river port"] + sentences(1, 24)  # ~440 words


def _copy() -> str:
    """Retitled, dateline added, last two sentences cut, two sentences reworded, boilerplate lines added."""
    body = list(ORIGINAL[1:-2])
    body[0] = "KASELO (Wire) - " + body[0]
    w = body[5].split()
    w[3], w[4] = w[4], w[3]
    body[5] = " ".join(w)
    body[9] = " ".join(body[9].split()[:-3]) + " tordaibam."
    return text("Port sale agreed, board says", "Advertisement", *body, "Share this story", "All rights reserved.")


def _followup() -> str:
    """A lead of its own (three new sentences under a new title), then background from below the original's lead."""
    return text("Port buyer names new chief", *sentences(2, 4), *ORIGINAL[9:20])


def _negative_title() -> str:
    """Another story under the same title (a standing headline)."""
    return text(ORIGINAL[0], *sentences(3, 22))


def _negative_quote() -> str:
    """Another story quoting one sentence of the original."""
    other = sentences(4, 22)
    return text("Council votes on budget", *other[:10], ORIGINAL[7], *other[10:])


def _lead(text: str) -> tuple[int, int]:
    return lead_span(text, CFG.lead_line_words, CFG.max_lead_start, CFG.lead_max_words)


def _kind(a: str, b: str) -> int:
    leads = [_lead(t) for t in (a, b)]
    sigs, prof = sketches([normalize_text(a), normalize_text(b)], CFG, leads)
    sim = float((sigs[0] == sigs[1]).mean())
    kind = classify(features(prof.item_row(0), prof.item_row(1), CFG, *leads), sim, CFG)
    assert verify(prof.item_row(0), prof.item_row(1), sim, CFG, *leads) == kind  # the shortcut agrees
    pair = np.array([0, 1]), np.array([1, 0])
    assert verify_rows(prof, *pair, np.array([sim, sim]), CFG).tolist() == [kind, kind]  # and the batched one
    if kind != UNRELATED:  # the screen never drops a related pair
        assert may_relate(view(prof.item_row(0), CFG, *leads[0]), view(prof.item_row(1), CFG, *leads[1]), sim, CFG)
    return kind


# --- verification (pure) --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, kind",
    [
        (_copy, COPY),
        # A long boilerplate line above the lead is taken for the lead, but the original's head is in the copy.
        (lambda: text(ORIGINAL[0], *sentences(5, 1, 17), *ORIGINAL[1:]), COPY),
        (_followup, FOLLOW),
        (_negative_title, UNRELATED),
        (_negative_quote, UNRELATED),
        (lambda: text(*sentences(9, 25)), UNRELATED),
    ],
    ids=["copy", "copy-under-long-boilerplate", "followup", "same-title", "one-quoted-sentence", "unrelated"],
)
def test_pairs_are_told_apart_by_structure(make, kind):
    other = make()
    assert _kind(text(*ORIGINAL), other) == kind
    assert _kind(other, text(*ORIGINAL)) == kind  # symmetric


def test_a_followup_reusing_most_of_the_original_is_still_no_copy():
    # 80% of the original's body under a new lead: overall overlap as high as a copy's, but the lead is new.
    followup = text("Port buyer names new chief", *sentences(5, 5), *ORIGINAL[5:])
    assert _kind(text(*ORIGINAL), followup) == FOLLOW


def test_a_followup_whose_new_lead_is_one_short_paragraph_is_no_copy():
    # The story's paragraphs after its first reused under a one-paragraph lead of its own. The lead windows run
    # past both short paragraphs into the shared text, so the leads look shared (above copy_lead); the heads stop
    # at the paragraphs' ends, and neither is in the other.
    story = ["Tolkami port sale closes", *sentences(40, 14, 22)]
    followup = ["Port buyer faces inquiry", *sentences(41, 1, 22), *story[2:]]
    a, b = text(*story), text(*followup)
    assert _kind(a, b) == FOLLOW and _kind(b, a) == FOLLOW
    leads = [_lead(t) for t in (a, b)]
    assert leads == [(4, 22), (4, 22)]
    _, prof = sketches([normalize_text(a), normalize_text(b)], CFG, leads)
    f = features(prof.item_row(0), prof.item_row(1), CFG, *leads)
    assert min(f.lead_a, f.lead_b) >= CFG.copy_lead and f.head < 0.1


def test_the_screen_only_drops_pairs_that_are_neither_copy_nor_follow_up():
    # Random pairs sharing a random number of sentences at random places: whatever `classify` calls related, the
    # cheap set screen run before it must let through; and it must drop most of the unrelated ones.
    r = random.Random(7)
    dropped = related = 0
    for trial in range(300):
        base = sentences(100 + trial, 20)
        other = sentences(1000 + trial, 20)
        k = r.randint(0, 12)
        at = r.randint(0, 20 - k)
        other[at : at + k] = base[r.randint(0, 20 - k) :][:k]
        a, b = text(*base), text(*other)
        leads = [_lead(t) for t in (a, b)]
        sigs, prof = sketches([normalize_text(a), normalize_text(b)], CFG, leads)
        sim = float((sigs[0] == sigs[1]).mean())
        kind = verify(prof.item_row(0), prof.item_row(1), sim, CFG, *leads)
        passes = may_relate(view(prof.item_row(0), CFG, *leads[0]), view(prof.item_row(1), CFG, *leads[1]), sim, CFG)
        related += kind != UNRELATED
        dropped += not passes
        assert passes or kind == UNRELATED
    assert related > 30 and dropped > 50  # both sides of the screen were exercised


def test_a_batch_of_pairs_is_decided_as_pair_by_pair():
    # The stage decides a batch of pairs at once (sure copies from sorted lookups, Views for the rest); every pair
    # must get the kind the pair-by-pair reference gives: copies, follow-ups (one under a one-paragraph lead),
    # unrelated texts and random mixes, odd stored leads, and a row with no profile (stored by an older version),
    # all in one batch; at their estimated similarity, and all at a sure copy's.
    r = random.Random(11)
    story = ["Tolkami port sale closes", *sentences(40, 14, 22)]
    texts = [text(*ORIGINAL), _copy(), _followup(), _negative_title(), _negative_quote()]
    texts += [text(*story), text("Port buyer faces inquiry", *sentences(41, 1, 22), *story[2:])]
    texts.append(" ".join(ORIGINAL[1].split()[:9]))  # shorter than a lead, and inside the original
    for trial in range(12):
        base, other = sentences(200 + trial, 16), sentences(300 + trial, 16)
        k = r.randint(0, 14)
        other[r.randint(0, 16 - k) :][:k] = base[:k]
        texts += [text(*base), text(*other)]
    leads = [_lead(t) for t in texts]
    leads[7], leads[8], leads[9] = (10_000, 0), (2, 3), (0, 0)  # past the profile's end, a short head, unknown
    sigs, prof = sketches([normalize_text(t) for t in texts], CFG, leads)
    prof = Profiles.concat([prof, Profiles.empty(1)])
    sigs = np.concatenate([sigs, sigs[:1]])
    n = len(texts) + 1
    ra, rb = np.nonzero(~np.eye(n, dtype=bool))  # every ordered pair
    views = [view(prof.item_row(i), CFG, *prof.lead[i].tolist()) for i in range(n)]
    measured = (ra < n - 1) & (rb < n - 1)
    shares = zip(*lead_shares(prof, ra[measured], rb[measured], CFG), strict=True)
    pairs = (features_of(views[u], views[v]) for u, v in zip(ra[measured], rb[measured], strict=True))
    assert list(shares) == [(f.lead_a, f.lead_b, f.head) for f in pairs]  # the same numbers, not just kinds
    kinds = set()
    for sims in ((sigs[ra] == sigs[rb]).mean(axis=1), np.full(ra.size, CFG.copy_sure)):
        expected = [verify_views(views[u], views[v], float(s), CFG) for u, v, s in zip(ra, rb, sims, strict=True)]
        assert verify_rows(prof, ra, rb, sims, CFG).tolist() == expected
        kinds.update(expected)
    assert kinds == {COPY, FOLLOW, UNRELATED}


def test_without_profiles_the_estimated_similarity_decides():
    assert features(np.zeros(0, np.uint64), np.arange(5, dtype=np.uint64), CFG) is None
    assert classify(None, CFG.threshold, CFG) == COPY
    assert classify(None, CFG.threshold - 0.01, CFG) == UNRELATED


def test_profiles_keep_the_lead_dense_and_sample_the_rest():
    words = normalize_text(text(*ORIGINAL)).split()
    _, prof = sketches([normalize_text(text(*ORIGINAL))], CFG)
    items = prof.item_row(0)
    rest = items[CFG.dense_words :]
    assert 0.15 * (len(words) - CFG.dense_words) < rest.size < 0.4 * (len(words) - CFG.dense_words)
    assert _lead(text(*ORIGINAL))[0] == 7  # past the title
    assert _lead(_copy())[0] == 6  # past the new title and a boilerplate line
    assert not (rest & np.uint32((1 << CFG.sample_bits) - 1)).any()  # the same shingles in every text
    # The dense start is every shingle: a text's first words give the same entries alone or in a longer text.
    _, head = sketches([b" ".join(words[: CFG.dense_words + 2])], CFG)
    assert np.array_equal(head.item_row(0)[: CFG.dense_words], items[: CFG.dense_words])
    assert prof.anchor_row(0).size > 0


# --- story threads (pure) --------------------------------------------------------------------------------------


def _key(name: str, hours: float, history: bool = False, story: int = 0) -> int:
    aid = f"{int.from_bytes(name.encode()[:8].ljust(8, b'_'), 'big'):016x}"
    uid = make_uid(aid, "", "00000000000000ab", 8, history)
    return node_key(uid, aid, "00000000000000ab", T0 + dt.timedelta(hours=hours), 100, history, story)


def _uid(key: int) -> int:
    return (key >> 128) & ((1 << 64) - 1)


def test_threads_copies_share_the_canonical_and_followups_the_earlier_story():
    o, c, f, fc, g = (_key(n, h) for n, h in (("orig", 1), ("copy", 2), ("follow", 20), ("fcopy", 21), ("later", 40)))
    edges = [
        (_uid(o), _uid(c), COPY),
        (_uid(f), _uid(fc), COPY),
        (_uid(c), _uid(f), FOLLOW),
        (_uid(g), _uid(f), FOLLOW),
    ]
    story = int(key_article_id(o), 16)
    expected = sorted([(o, sorted([o, c]), story), (f, sorted([f, fc]), story), (g, [g], story)])
    got = sorted((h, sorted(ms), s) for h, ms, s in threads([o, c, f, fc, g], edges))
    assert got == expected
    for seed in range(5):  # any order of nodes and edges
        r = random.Random(seed)
        keys, es = [o, c, f, fc, g], list(edges)
        r.shuffle(keys)
        r.shuffle(es)
        assert sorted((h, sorted(ms), s) for h, ms, s in threads(keys, [(b, a, k) for a, b, k in es])) == expected


def test_threads_a_stored_article_keeps_its_stored_story():
    stored = _key("monday", -20, history=True, story=0xABC)
    new = _key("tuesday", 5)
    [(h1, _, s1), (h2, _, s2)] = sorted(threads([new, stored], [(_uid(new), _uid(stored), FOLLOW)]))
    assert (h1, s1) == (stored, 0xABC)  # stored first in canonical order
    assert (h2, s2) == (new, 0xABC)


# --- the Dedup transform -------------------------------------------------------------------------------------


def _article(name: str, body: str, hours: float, source: str = "wire", **kw) -> Article:
    return Article(
        input_ref=f"in/{name}",
        source=source,
        text=body,
        url=f"https://stories.example/{name}",
        title=body.splitlines()[0],
        published_at=T0 + dt.timedelta(hours=hours),
        **kw,
    )


def _thread_articles() -> list[Article]:
    return [
        _article("orig", text(*ORIGINAL), 0),
        _article("copy", _copy(), 2, source="syndicator"),
        _article("follow", _followup(), 20),
        _article("title", _negative_title(), 3),
        _article("quote", _negative_quote(), 4),
    ]


def _check_story_rows(articles: list[Article], expected: list[tuple], cfg: DedupConfig = CFG) -> None:
    with TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create(articles) | Dedup(cfg)
        kept = out["articles"] | "K" >> beam.Map(lambda a: (a.input_ref, "article", a.cluster_id, a.story_id))
        dups = out["duplicates"] | "D" >> beam.Map(lambda d: (d.input_ref, "duplicate", d.duplicate_of, d.story_id))
        assert_that((kept, dups) | beam.Flatten(), equal_to(expected))


@pytest.mark.parametrize("order", ["given", "reversed", "rotated"])
def test_dedup_gives_story_ids_independent_of_input_order(order):
    articles = _thread_articles()
    orig = articles[0].article_id
    expected = [
        ("in/orig", "article", orig, orig),
        ("in/copy", "duplicate", orig, orig),
        ("in/follow", "article", articles[2].article_id, orig),
        ("in/title", "article", articles[3].article_id, articles[3].article_id),
        ("in/quote", "article", articles[4].article_id, articles[4].article_id),
    ]
    shuffled = {"given": articles, "reversed": articles[::-1], "rotated": articles[2:] + articles[:2]}[order]
    _check_story_rows(shuffled, expected)


def test_old_signature_files_are_read_as_before(tmp_path):
    """A signatures file written before story threads (no story_id, profile, anchors): copies still match it on
    the estimated similarity, and its article is the story of what joins it."""
    from transforms.dedup.minhash import content_hash_of, signatures

    day = dt.date(2026, 6, 2)
    folder = tmp_path / "signatures" / f"run_date={(day - dt.timedelta(days=1)).isoformat()}"
    folder.mkdir(parents=True)
    old = pa.schema(
        [
            ("article_id", pa.string()),
            ("content_hash", pa.string()),
            ("minhash", pa.list_(pa.uint64())),
            ("published_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    norm = normalize_text(text(*ORIGINAL))
    row = {
        "article_id": "00000000000000aa",
        "content_hash": content_hash_of(norm),
        "minhash": signatures([norm], CFG)[0].tolist(),
        "published_at": T0 - dt.timedelta(days=1),
    }
    pq.write_table(pa.Table.from_pylist([row], schema=old), folder / "part-old-00000.parquet")
    cfg = DedupConfig(output=str(tmp_path), run_date=day)
    copy = _article("copy", _copy(), 2)
    _check_story_rows([copy], [("in/copy", "duplicate", "00000000000000aa", "00000000000000aa")], cfg)


def test_stored_signatures_carry_each_rows_own_values_and_skip_duplicates():
    """Each Signature's bytes are its own row's (signature, profile, anchors, lead), also for rows taken out of
    order from a larger batch; a dropped row gets none; a row in no component is its own story."""
    from transforms.dedup.keys import key_article_id
    from transforms.dedup.messages import Fresh
    from transforms.dedup.records import stored_signatures

    bodies = [text(*ORIGINAL), _copy(), text(*sentences(7, 12)), text("Brief", *sentences(8, 3))]
    arts = [_article(f"a{i}", body, i) for i, body in enumerate(bodies)]
    norms = [normalize_text(a.text) for a in arts]
    leads = [lead_span(a.text, CFG.lead_line_words, CFG.max_lead_start, CFG.lead_max_words) for a in arts]
    sigs, prof = sketches(norms, CFG, leads)
    uids = [make_uid(a.article_id, a.input_ref, str(i).zfill(16), CFG.shards) for i, a in enumerate(arts)]
    keys = [
        node_key(u, a.article_id, str(i).zfill(16), a.published_at, len(a.text), False)
        for i, (u, a) in enumerate(zip(uids, arts, strict=True))
    ]
    rows = [3, 0, 2, 1]
    fresh = Fresh(np.array(uids, np.uint64), keys, sigs, prof).take(rows)
    story = int(arts[3].article_id, 16)
    out = list(stored_signatures(fresh, {uids[2]}, {uids[0]: story}))
    assert [s.article_id for s in out] == [arts[i].article_id for i in (3, 0, 1)]
    for sig, i in zip(out, (3, 0, 1), strict=True):
        assert sig.article_id == key_article_id(keys[i])
        assert np.array_equal(np.frombuffer(sig.minhash, "<u2"), sigs[i])
        assert np.array_equal(np.frombuffer(sig.profile, "<u4"), prof.item_row(i))
        assert np.array_equal(np.frombuffer(sig.anchors, "<u8"), prof.anchor_row(i))
        assert (sig.lead_start, sig.lead_length) == tuple(prof.lead[i].tolist())
        assert sig.published_at == arts[i].published_at
    assert prof.anchor_row(0).size and prof.item_row(3).size  # the rows compared above are not all empty
    assert [s.story_id for s in out] == [arts[3].article_id, arts[3].article_id, arts[1].article_id]


# --- the stories dataset --------------------------------------------------------------------------------------


def _mention(name: str, label: str = "ORG") -> EntityMention:
    return EntityMention(text=name, label=label, start=0, end=len(name), canonical=name)


def test_aggregate_counts_a_story_and_ranks_its_entities():
    a = _article("a", "x y z", 1, story_id="s1", entities=(_mention("Tolkami"), _mention("Kaselo", "GPE")))
    a = Article(**{**a.__dict__, "story_id": a.article_id})
    b = _article("b", "p q r", 5, source="other", story_id=a.article_id, entities=(_mention("Tolkami"),))
    d = Duplicate("dd", a.article_id, 0.8, "near", "syndicator", "in/d", published_at=T0, story_id=a.article_id)
    members = [member_of_article(b)[1], member_of_duplicate(d)[1], member_of_article(a)[1]]
    story = aggregate(a.article_id, members, earlier=2, top_entities=1)
    assert story.first_seen == T0 and story.last_seen == T0 + dt.timedelta(hours=5)
    assert (story.canonical_id, story.canonical_title) == (a.article_id, "x y z")
    assert (story.article_count, story.duplicate_count, story.earlier_articles) == (2, 1, 2)
    assert story.sources == ("other", "syndicator", "wire")
    assert story.top_entities == (("Tolkami", "ORG", 2),)
    assert story.started_here
    assert aggregate("s9", []) is None
    table = to_table("stories", [story_row(story, dt.date(2026, 6, 1))[1]])
    assert table.schema == STORIES
    assert table.to_pylist()[0]["top_entities"] == [{"entity": "Tolkami", "label": "ORG", "articles": 2}]


def test_profiles_take_and_concat_keep_ragged_rows_aligned():
    from transforms.dedup import Profiles

    p = Profiles.of_rows(
        [np.array([1, 2, 3]), np.array([], np.uint32), np.array([7])], [[9], [8, 8], []], [(0, 0), (5, 30), (2, 18)]
    )
    q = Profiles.concat([p.take([2, 0]), p.take([1]), Profiles.empty()])
    assert [q.item_row(i).tolist() for i in range(q.rows)] == [[7], [1, 2, 3], []]
    assert [q.anchor_row(i).tolist() for i in range(q.rows)] == [[], [9], [8, 8]]
    assert q.lead.tolist() == [[2, 18], [0, 0], [5, 30]] and q.items.dtype == np.uint16 and q.anchors.dtype == np.uint64


def test_lead_span_is_bounded_on_huge_or_odd_texts():
    assert lead_span("x" * 10_000_000, 15, 100, 40) == (0, 0)  # one huge word: no sentence, lead from the start
    assert lead_span("short\n" * 1_000_000, 15, 100, 40) == (0, 0)
    assert lead_span("Title\n\n" + "word " * 20, 15, 100, 40) == (1, 20)
    assert lead_span("", 15, 100, 40) == (0, 0)
    assert lead_span("word " * 1_000_000, 15, 100, 40) == (0, 40)  # one long line: its length counted to 40
    # A line of exactly line_words words is the lead; one word fewer is skipped, counted exactly.
    assert lead_span("a b c\n" + "w " * 15 + "\nnext paragraph", 15, 100, 40) == (3, 15)
    assert lead_span("w " * 14 + "\n" + "x " * 40, 15, 100, 40) == (14, 40)


def test_the_lead_stops_at_the_end_of_its_paragraph():
    # A 22-word first paragraph over a long text: the lead is that paragraph (not a quarter of the text), but
    # never shorter than lead_min_words; an unknown paragraph length (0) leaves the quarter rule.
    assert lead_words(400, 0, CFG, 22) == 22
    assert lead_words(400, 0, CFG, 0) == CFG.lead_max_words
    assert lead_words(400, 0, CFG, 5) == CFG.lead_min_words
    assert lead_words(30, 0, CFG, 38) == CFG.lead_min_words  # a short text: still its quarter (at least the floor)


def test_the_writer_knows_the_stories_dataset():
    from transforms.write import KNOWN_DATASETS, rows_for

    story = aggregate("s1", [member_of_article(_article("a", "one", 1))[1]])
    [(partition, row)] = rows_for("stories", story, dt.date(2026, 6, 1), T0)
    assert partition == dt.date(2026, 6, 1) and row["story_id"] == "s1"
    assert "stories" in KNOWN_DATASETS  # so a rerun of a date replaces its stories files


def test_stories_transform_groups_articles_and_duplicates():
    a = _article("a", "one", 1, story_id=None)
    a = Article(**{**a.__dict__, "story_id": a.article_id})
    b = Article(**{**_article("b", "two", 3).__dict__, "story_id": a.article_id})
    c = _article("c", "three", 2)
    d = Duplicate("dd", a.article_id, 1.0, "exact", "wire", "in/d", published_at=T0, story_id=a.article_id)
    with TestPipeline(runner=RUNNER) as p:
        stories = {
            "articles": p | "A" >> beam.Create([a, b, c]),
            "duplicates": p | "D" >> beam.Create([d]),
            "stored_stories": p | "S" >> beam.Create([(a.article_id, 3), ("gone", 4)]),
        } | Stories()
        got = stories | beam.Map(lambda s: (s.story_id, s.article_count, s.duplicate_count, s.earlier_articles))
        assert_that(got, equal_to([(a.article_id, 2, 1, 3), (c.article_id, 1, 0, 0)]))


# --- across days, through the command line ----------------------------------------------------------------------


def _jsonl(path: pathlib.Path, name: str, body: str, published: dt.datetime) -> pathlib.Path:
    path.mkdir(parents=True, exist_ok=True)
    record = {"url": f"https://stories.example/{name}", "title": body.splitlines()[0], "text": body}
    record["published"] = published.isoformat().replace("+00:00", "Z")
    (path / f"{name}.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path / f"{name}.jsonl"


def test_a_followup_on_tuesday_joins_mondays_story(tmp_path):
    monday, tuesday = dt.date(2026, 6, 1), dt.date(2026, 6, 2)
    out = tmp_path / "out"
    day1 = _jsonl(tmp_path / "in1", "orig", text(*ORIGINAL), T0)
    day2a = _jsonl(tmp_path / "in2", "follow", _followup(), T0 + dt.timedelta(days=1))
    _jsonl(tmp_path / "in2", "copy", _copy(), T0 + dt.timedelta(days=1, hours=1))
    assert run_ingest("--input", day1, "--output", out, "--run-date", monday.isoformat()) == 0
    assert run_ingest("--input", day2a.parent / "*.jsonl", "--output", out, "--run-date", tuesday.isoformat()) == 0
    arts = {r["url"].rsplit("/", 1)[1]: r for r in read_dataset(out, "articles").to_pylist()}
    dups = read_dataset(out, "duplicates").to_pylist()
    orig = arts["orig"]["article_id"]
    assert arts["orig"]["story_id"] == orig
    assert arts["follow"]["story_id"] == orig  # Tuesday's follow-up continues Monday's story
    assert [(d["duplicate_of"], d["story_id"]) for d in dups] == [(orig, orig)]
    stories = read_dataset(out, "stories").to_pylist()
    by_day = {(str(s["run_date"]), s["story_id"]): s for s in stories}
    first = by_day[(monday.isoformat(), orig)]
    assert (first["article_count"], first["earlier_articles"], first["started_here"]) == (1, 0, True)
    second = by_day[(tuesday.isoformat(), orig)]
    assert (second["article_count"], second["duplicate_count"], second["earlier_articles"]) == (1, 1, 1)
    assert not second["started_here"] and second["canonical_id"] == arts["follow"]["article_id"]
    # A rerun of Tuesday replaces its stories rows instead of adding to them.
    assert run_ingest("--input", day2a.parent / "*.jsonl", "--output", out, "--run-date", tuesday.isoformat()) == 0
    again = read_dataset(out, "stories").to_pylist()
    assert sorted((str(s["run_date"]), s["story_id"]) for s in again) == sorted(by_day)


def test_a_pair_that_is_not_a_near_duplicate_is_never_a_copy_whatever_its_structure():
    from transforms.dedup.config import DedupConfig
    from transforms.dedup.profiles import COPY, FOLLOW, Features, classify

    cfg = DedupConfig()
    # Two briefs written on one template: leads and most sampled shingles shared, in order, but the estimated
    # similarity of the whole texts is that of different stories.
    alike = Features(shared=40, cont_a=0.6, cont_b=0.55, lead_a=0.5, lead_b=0.45, order=0.9, run=10)
    assert classify(alike, cfg.copy_min_similarity - 0.15, cfg) == FOLLOW
    assert classify(alike, cfg.copy_min_similarity, cfg) == COPY


def test_a_follow_up_reuses_a_passage_not_scattered_template_phrases():
    from transforms.dedup.config import DedupConfig
    from transforms.dedup.profiles import FOLLOW, UNRELATED, Features, classify

    cfg = DedupConfig()
    # Profiles of sampled shingles only (low bits 0). B holds nine of A's shingles at these places of A and of B:
    # one passage (consecutive in both), or pairs scattered like template phrases.
    a = np.arange(1, 61, dtype=np.uint32) << np.uint32(cfg.sample_bits)
    passage = np.arange(40, 49), np.arange(3, 12)
    scattered = np.array([1, 2, 10, 11, 20, 21, 30, 31, 40]), np.array([5, 6, 15, 16, 22, 23, 35, 36, 44])
    runs = []
    for (ia, ib), kind in ((passage, FOLLOW), (scattered, UNRELATED)):
        b = np.arange(1001, 1061, dtype=np.uint32) << np.uint32(cfg.sample_bits)
        b[ib] = a[ia]
        run = features(a, b, cfg).run
        runs.append(run)
        f = Features(shared=9, cont_a=0.3, cont_b=0.25, lead_a=0.0, lead_b=0.05, order=1.0, run=run)
        assert classify(f, 0.2, cfg) == kind
    assert runs == [9, 2]


@pytest.mark.parametrize(
    "stored, expected",
    [
        ({"lead_start": 7, "lead_length": 22}, [7, 22]),
        ({"lead_start": 7}, [7, 0]),  # written before lead lengths were stored: the length is unknown
        ({"lead_start": -3, "lead_length": 10**6}, [0, CFG.lead_max_words]),  # out of range: kept within bounds
    ],
    ids=["both", "no-length-column", "out-of-range"],
)
def test_stored_leads_are_read_back_within_bounds(tmp_path, stored, expected):
    """Also the profile: files of older versions stored 32 bits of each hash, read as the 16 this one keeps."""
    from schemas.datasets import SIGNATURES
    from transforms.dedup.history import read_history
    from transforms.dedup.minhash import content_hash_of

    day = dt.date(2026, 6, 1)
    folder = tmp_path / "signatures" / f"run_date={day.isoformat()}"
    folder.mkdir(parents=True)
    norm = normalize_text(text(*ORIGINAL))
    sigs, prof = sketches([norm], CFG)
    row = {
        "article_id": "00000000000000aa",
        "content_hash": content_hash_of(norm),
        "minhash": sigs[0].tolist(),
        "published_at": T0,
        # An older version's 32 bits: high bits that this version does not keep.
        "profile": (prof.item_row(0).astype("<u4") | np.uint32(0xABCD0000)).tobytes(),
        **stored,
    }
    schema = pa.schema([f for f in SIGNATURES if f.name in row])
    pq.write_table(pa.Table.from_pylist([row], schema=schema), folder / "part-00000.parquet")
    [(_, nodes)] = list(read_history(day, DedupConfig(output=str(tmp_path))))
    assert nodes.prof.lead.tolist() == [expected] and np.array_equal(nodes.prof.item_row(0), prof.item_row(0))
