"""Dedup-stage settings: `DedupConfig`, its command-line flags and their parsing."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt

MAX_LOOKBACK_DAYS = 3650  # ten years: see DedupConfig
MAX_SHARDS = 256  # a node's shard is the top 8 bits of its uid (see keys.py)

# Defaults, chosen by measurement (bench/dedup_quality.py on tests/data/neardup, bench/dedup_speed.py):
# - Word 3-shingles. Syndicated copies differ by scattered edits, and every changed word destroys k shingles:
#   5% of words changed keeps ~86% of 3-shingles but only ~77% of 5-shingles. On the labelled set, k=3 keeps
#   every copy above 0.44 while topic-sharing different stories stay below 0.06; k=4/5 only lower the copies.
# - The lead weighs 3x: the first 150 shingles are added twice more, salted. A follow-up story that reuses
#   background paragraphs (up to 80% of its text) has a *new* lead, a copy keeps the original's lead. With plain
#   Jaccard the two overlap (follow-ups reach 0.45, edited copies go down to 0.38); with the weighted lead,
#   follow-ups stay <= 0.29 and copies >= 0.44, so pairwise F1 is 1.0 for any threshold in [0.30, 0.45].
# - Threshold 0.38: inside that window, 3 standard errors (0.03) of the 256-bin estimate above the closest
#   follow-up (0.285) and 2.5 below the closest copy of an original (0.456). Heavier copies tried by hand (a
#   100-word footer added, two paragraphs cut, 8% of words changed) stay >= 0.48.
# - 256 one-permutation-hashing bins of 16 bits (estimate SE ~0.03 at J=0.4) and 85 bands of 3 rows: the LSH
#   S-curve (1/b)^(1/r) ~ 0.23 sits under the threshold, P(candidate) = 0.99 at J=0.38 and 0.9995 at 0.44, and
#   unrelated pairs (J ~ 0.02) collide with probability 7e-4.
# - Past a few hundred members a bucket is a template or boilerplate, not a story: pairs are compared in
#   sub-buckets of `max_bucket_size`, so the cost stays linear.


@dataclasses.dataclass(frozen=True)
class DedupConfig:
    """Dedup-stage settings; `output` and `run_date` locate the signatures of previous runs."""

    output: str = ""
    run_date: dt.date | None = None
    threshold: float = 0.38
    shingle_size: int = 3
    num_perm: int = 256
    bands: int = 85
    lookback_days: int = 7
    max_bucket_size: int = 200
    lead_words: int = 150  # the first shingles that weigh `lead_weight` times (see the defaults' note)
    lead_weight: int = 3
    shards: int = 32  # key ranges for the batched shuffles; raise for very large days
    # Normalised text hashed together by NumPy (~10k words): its temporary arrays then stay in the CPU's cache and
    # the allocator's free lists, where 512 articles at a time (~300k words) ran 1.6x slower.
    batch_bytes: int = 1 << 16
    cc_rounds: int = 8  # large-star/small-star rounds; 8 settle chains of ~1000 articles
    # Verification by structure (profiles.py). Chosen on the dev split of bench/make_threads.py (real Reuters text,
    # CoNLL-2003 dev), where copies' weaker lead share is >= 0.33 and follow-ups' <= 0.07 (so copy_lead 0.2), copies
    # keep >= 0.59 of the shorter text (copy_containment 0.5) and follow-ups share >= 0.14 while unrelated articles
    # of the same days share <= 0.38 but never with their leads (follow_containment 0.2 with 8 shared samples).
    # `threshold` above now only decides pairs with a stored signature that has no profile (older files).
    sample_bits: int = 2  # past the dense part, a shingle is in the profile when its low bits are 0: 1 in 4
    max_samples: int = 600  # per article: ~2000 words
    lead_min_words: int = 20  # "the lead": the first quarter of the words, title and dateline included, ...
    lead_max_words: int = 40  # ... but at least and at most this many
    dense_words: int = 60  # every shingle of the lead's first words is kept: leads compare exactly (shifts of 20)
    lead_line_words: int = 15  # the lead starts at the first line this long (a sentence): title, dateline and
    max_lead_start: int = 100  # short boilerplate lines above it are not the lead; at most this many words in
    # A copy is first a near-duplicate: its estimated similarity is at least this. Below the old single threshold
    # (0.38, at which every copy of both held-out sets and of tests/data/neardup was found), so structure decides
    # among near-duplicates; without it, different briefs written on one template ("plans for X on Thursday, a
    # decision that affects about N households"), at 0.1-0.3, passed the structure checks as copies.
    copy_min_similarity: float = 0.35
    copy_lead: float = 0.2  # a copy: each lead at least this much inside the other article ...
    # ... and one head (the lead to its paragraph's end) this much (profiles.View). On dev, copies' larger head
    # share is >= 0.80 and follow-ups' <= 0.35.
    copy_head: float = 0.5
    copy_containment: float = 0.5  # ... the shorter text at least this much inside the longer ...
    copy_order: float = 0.8  # ... and the shared text mostly in the same order
    # At or above this estimated similarity, a pair whose leads are in each other is a copy without measuring the
    # rest (which costs more): the bodies are then alike too.
    copy_sure: float = 0.6
    follow_containment: float = 0.2  # a follow-up: at least this share of one text inside the other ...
    follow_min_shared: int = 8  # ... and at least this many sampled shingles (~30 words) in common ...
    # ... some of them one passage reused as it was: this many consecutive samples (~24 words) in both texts.
    # Briefs written on one template share many phrases but no such passage: without it, 1,000 distinct template
    # briefs (bench/make_short_corpus.py) chained into 5 "stories"; at 6 into 132 small groups (at 7, 71, but
    # dev follow-ups linked fall to 58/62; 6 keeps 60/62).
    follow_min_run: int = 6
    anchor_words: int = 8  # anchors: content-defined word 8-grams, candidates for follow-ups
    anchor_bits: int = 4  # 1 in 16 positions
    max_anchors: int = 128
    anchor_bucket_cap: int = 50  # an 8-gram in more articles than this is boilerplate, not a story's background

    def __post_init__(self):
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"--dedup-threshold must be in (0, 1], got {self.threshold}")
        if not 1 <= self.shingle_size <= 8:
            raise ValueError(f"--shingle-size must be between 1 and 8, got {self.shingle_size}")
        if not 16 <= self.num_perm <= 4096:
            raise ValueError(f"--num-perm must be between 16 and 4096, got {self.num_perm}")
        if not 1 <= self.bands <= self.num_perm:
            raise ValueError(f"--lsh-bands must be between 1 and --num-perm ({self.num_perm}), got {self.bands}")
        # Every lookback day is one listing of OUT/signatures and its signatures are held in memory as a side
        # input; news repeats within weeks, so a longer window than ten years is a typo (and ~10**6 days is past
        # the range of dates altogether).
        if not 0 <= self.lookback_days <= MAX_LOOKBACK_DAYS:
            raise ValueError(
                f"--dedup-lookback-days must be between 0 and {MAX_LOOKBACK_DAYS}, got {self.lookback_days}"
            )
        if self.max_bucket_size < 2:
            raise ValueError(f"--max-bucket-size must be at least 2, got {self.max_bucket_size}")
        if not 1 <= self.shards <= MAX_SHARDS or self.lead_weight < 1 or self.lead_words < 0 or self.cc_rounds < 1:
            raise ValueError("dedup: shards must be 1..256, lead weight and rounds at least 1")
        if not (0 <= self.sample_bits <= 8 and 0 <= self.anchor_bits <= 16 and self.anchor_words >= 1):
            raise ValueError("dedup: sample and anchor rates must be 1..256 and 1..65536, anchors at least a word")

    @property
    def graph_shards(self) -> int:
        """Key ranges of the connected-components steps: edges are few, so fewer and larger batches."""
        return max(1, self.shards // 4)

    @property
    def rows(self) -> int:
        """Signature rows per LSH band (num_perm // bands; leftover bins only serve verification)."""
        return self.num_perm // self.bands


_D = DedupConfig()  # the flags' defaults are the dataclass's, so each is written once


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dedup stage's command-line flags."""
    g = parser.add_argument_group("deduplication")
    g.add_argument(
        "--dedup-threshold",
        dest="dedup_threshold",
        type=float,
        default=_D.threshold,
        help="Estimated similarity (lead-weighted Jaccard of word shingles, 0-1) at or above which two articles "
        f"are the same story (default {_D.threshold}; chosen on labelled copies vs follow-up stories).",
    )
    g.add_argument(
        "--shingle-size",
        dest="shingle_size",
        type=int,
        default=_D.shingle_size,
        help=f"Words per shingle (default {_D.shingle_size}; larger is stricter about scattered edits).",
    )
    g.add_argument(
        "--num-perm",
        dest="num_perm",
        type=int,
        default=_D.num_perm,
        help=f"MinHash signature length (default {_D.num_perm}); must match the stored signatures for cross-day dedup.",
    )
    g.add_argument(
        "--lsh-bands",
        dest="lsh_bands",
        type=int,
        default=_D.bands,
        help=f"LSH bands (default {_D.bands}, i.e. {_D.rows} rows each); more "
        "bands find lower similarities at the cost of more candidate pairs.",
    )
    g.add_argument(
        "--dedup-lookback-days",
        dest="dedup_lookback_days",
        type=int,
        default=_D.lookback_days,
        help="Match new articles against the signatures stored by runs of this many previous days in the same "
        f"--output (default {_D.lookback_days}; 0 disables cross-day dedup).",
    )
    g.add_argument(
        "--max-bucket-size",
        dest="max_bucket_size",
        type=int,
        default=_D.max_bucket_size,
        help=f"LSH buckets larger than this are compared in sub-buckets of this size (default {_D.max_bucket_size}); "
        "capped buckets are counted in the run summary.",
    )


def config_from_options(opts, *, run_date: dt.date, output: str, now: dt.datetime) -> DedupConfig:
    """Validated DedupConfig from parsed options (ValueError with a one-line message when invalid)."""
    del now  # dedup does not depend on the wall clock
    return DedupConfig(
        output=output,
        run_date=run_date,
        threshold=float(opts.dedup_threshold),
        shingle_size=int(opts.shingle_size),
        num_perm=int(opts.num_perm),
        bands=int(opts.lsh_bands),
        lookback_days=int(opts.dedup_lookback_days),
        max_bucket_size=int(opts.max_bucket_size),
    )
