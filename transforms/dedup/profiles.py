"""Verification profiles (dense lead, shingle sample, anchors) and the copy / follow-up / unrelated decision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

UNRELATED, COPY, FOLLOW = 0, 1, 2  # edge kinds: a copy shares its canonical's cluster, a follow-up only its story


class Profiles(NamedTuple):
    """Ragged per-node arrays, rows aligned with a node table: 32-bit shingle hashes (a dense start, then a
    sample; minhash.profile_items), 64-bit anchor keys, and where each text's lead starts (in words). A node
    without a profile (stored by an older version) has empty rows."""

    items: np.ndarray
    i_off: np.ndarray
    anchors: np.ndarray
    a_off: np.ndarray
    lead: np.ndarray

    @staticmethod
    def empty(n: int = 0) -> Profiles:
        zeros = np.zeros(n + 1, np.int64)
        return Profiles(np.zeros(0, np.uint32), zeros, np.zeros(0, np.uint64), zeros.copy(), np.zeros(n, np.int64))

    @staticmethod
    def of_rows(items: Sequence[np.ndarray], anchors: Sequence[np.ndarray], leads: Sequence[int]) -> Profiles:
        """From one array of items, one of anchors and one lead start per node."""
        return Profiles(
            np.concatenate([np.zeros(0, np.uint32), *[np.asarray(x, np.uint32) for x in items]]),
            np.concatenate([[0], np.cumsum([len(x) for x in items])]).astype(np.int64),
            np.concatenate([np.zeros(0, np.uint64), *[np.asarray(x, np.uint64) for x in anchors]]),
            np.concatenate([[0], np.cumsum([len(x) for x in anchors])]).astype(np.int64),
            np.asarray(leads, dtype=np.int64).reshape(-1),
        )

    @staticmethod
    def concat(parts: Sequence[Profiles]) -> Profiles:
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return Profiles.empty()

        def offsets(offs):
            out, base = [np.zeros(1, np.int64)], 0
            for o in offs:
                out.append(o[1:] + base)
                base += int(o[-1])
            return np.concatenate(out)

        return Profiles(
            np.concatenate([p.items for p in parts]),
            offsets([p.i_off for p in parts]),
            np.concatenate([p.anchors for p in parts]),
            offsets([p.a_off for p in parts]),
            np.concatenate([p.lead for p in parts]),
        )

    @property
    def rows(self) -> int:
        return self.i_off.size - 1

    def item_row(self, i: int) -> np.ndarray:
        return self.items[self.i_off[i] : self.i_off[i + 1]]

    def anchor_row(self, i: int) -> np.ndarray:
        return self.anchors[self.a_off[i] : self.a_off[i + 1]]

    def take(self, rows: Sequence[int]) -> Profiles:
        """The given rows, in that order (vectorised: no array per row)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        items, i_off = _gather(self.items, self.i_off, rows)
        anchors, a_off = _gather(self.anchors, self.a_off, rows)
        return Profiles(items, i_off, anchors, a_off, self.lead[rows])


def _gather(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ragged rows `rows` of (values, offsets), concatenated, with their new offsets."""
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
    new = np.zeros(rows.size + 1, np.int64)
    np.cumsum(lengths, out=new[1:])
    index = np.arange(int(new[-1]), dtype=np.int64) - np.repeat(new[:-1] - starts, lengths)
    return values[index], new


def lead_start(text: str, line_words: int, cap: int) -> int:
    """Where a text's lead starts, in words: at its first line of `line_words` words or more (a sentence), past
    the title, dateline and short boilerplate lines above it. 0 when no such line starts within `cap` words (a
    text of short lines, or one long line)."""
    # Words are counted as whitespace-separated runs (the profile counts punctuation-separated ones: "NATO's" is
    # one here and two there), so the start can be a word or two early: a cheap count, and the lead check
    # tolerates it.
    skipped, start = 0, 0
    while skipped < cap:
        # Lines are read at most 4000 characters at a time, so a huge text costs no more than a short one.
        end = text.find("\n", start, start + 4000)
        line = text[start : start + 4000] if end < 0 else text[start:end]
        n = len(line.split())
        if n >= line_words:
            return skipped
        if end < 0:
            break
        skipped += n
        start = end + 1
    return 0


class Features(NamedTuple):
    """What a newsroom looks at in two articles A and B (from their shingle samples)."""

    shared: int  # sampled shingles in both
    cont_a: float  # share of A's sample found in B (A contained in B)
    cont_b: float
    lead_a: float  # share of A's lead (first lead_words words) found anywhere in B
    lead_b: float
    order: float  # share of the shared shingles that appear in the same order in both (longest common run)
    run: int = 0  # the longest passage reused verbatim: shared samples that follow each other in both texts


def lead_words(size: int, start: int, cfg) -> int:
    """How many entries of a profile of `size` entries whose lead starts at `start` are its lead: the first
    quarter of the text below `start`, `lead_min_words` at least and `lead_max_words` at most. The length is
    estimated from the profile (a dense start of start + dense_words entries, then 1 in 2**sample_bits)."""
    dense = min(size, start + cfg.dense_words)
    length = dense + ((size - dense) << cfg.sample_bits) - start
    return max(cfg.lead_min_words, min(cfg.lead_max_words, length // 4))


def lead_shares(a: np.ndarray, b: np.ndarray, cfg, start_a: int = 0, start_b: int = 0) -> tuple[float, float]:
    """The share of A's lead found anywhere B's profile keeps, and of B's lead in A (0 when either is empty)."""
    if not a.size or not b.size:
        return 0.0, 0.0
    return _lead_in(a, start_a, b, cfg), _lead_in(b, start_b, a, cfg)


def _lead_in(a: np.ndarray, start: int, b: np.ndarray | set, cfg) -> float:
    start = min(start, a.size - 1)
    lead = a[start : start + lead_words(a.size, start, cfg)].tolist()
    other = b if isinstance(b, set) else set(b.tolist())
    return sum(x in other for x in lead) / len(lead)


def features(a: np.ndarray, b: np.ndarray, cfg, start_a: int = 0, start_b: int = 0) -> Features | None:
    """Pair features of two profiles, or None when either has none (no profile: decide as before).

    Containment and order use the sampled shingles only (every text keeps the same ones, wherever they sit), the
    leads use every shingle of the lead against all the other text keeps: its dense start, its sample beyond."""
    if not a.size or not b.size:
        return None
    mask = np.uint32((1 << cfg.sample_bits) - 1)
    sa, sb = np.flatnonzero((a & mask) == 0), np.flatnonzero((b & mask) == 0)
    common, ia, ib = np.intersect1d(a[sa], b[sb], return_indices=True)
    shared = int(common.size)
    la, lb = lead_shares(a, b, cfg, start_a, start_b)
    order = 0.0
    if shared > 1:
        # Entries are in text order: B's order of the shared shingles, taken in A's order, mostly goes forward.
        steps = np.diff(sb[ib][np.argsort(sa[ia], kind="stable")])
        order = float(np.count_nonzero(steps > 0)) / steps.size
    elif shared:
        order = 1.0
    return Features(shared, shared / max(sa.size, 1), shared / max(sb.size, 1), la, lb, order, _longest_run(ia, ib))


def _longest_run(ia: np.ndarray, ib: np.ndarray) -> int:
    """The most shared samples that are consecutive samples in both texts: a passage reused as it was. Phrases
    two texts share because they are written on one template break off at every slot filled differently."""
    if ia.size < 2:
        return int(ia.size)
    order = np.argsort(ia, kind="stable")
    a, b = ia[order], ib[order]
    follows = (np.diff(a) == 1) & (np.diff(b) == 1)
    best = run = 0
    for f in follows.tolist():
        run = run + 1 if f else 0
        best = max(best, run)
    return best + 1


def classify(f: Features | None, similarity: float, cfg) -> int:
    """COPY, FOLLOW or UNRELATED for a candidate pair; `cfg` is the DedupConfig.

    A copy is a near-duplicate (estimated similarity at least `copy_min_similarity`) that keeps the original's
    lead (perhaps reworded, under a new title) and most of its body in order: both leads are found in the other
    article, and the shorter text is mostly inside the longer. A follow-up writes a
    lead of its own over text reused lower down: their leads differ, but a real share of one is inside the other.
    Without profiles (signatures stored by an older version) the estimated similarity decides, as it used to."""
    if f is None:
        return COPY if similarity >= cfg.threshold else UNRELATED
    contained = max(f.cont_a, f.cont_b)
    is_copy = (
        similarity >= cfg.copy_min_similarity
        and min(f.lead_a, f.lead_b) >= cfg.copy_lead
        and contained >= cfg.copy_containment
        and f.order >= cfg.copy_order
    )
    if is_copy:
        return COPY
    if f.shared >= cfg.follow_min_shared and contained >= cfg.follow_containment and f.run >= cfg.follow_min_run:
        return FOLLOW
    return UNRELATED


def verify(a: np.ndarray, b: np.ndarray, similarity: float, cfg, start_a: int = 0, start_b: int = 0) -> int:
    """`classify` of a candidate pair from its two profiles and lead starts. A pair estimated at `copy_sure` or
    more whose leads are each in the other is a copy without measuring the rest (what costs most)."""
    if a.size and b.size and similarity >= cfg.copy_sure:
        if min(lead_shares(a, b, cfg, start_a, start_b)) >= cfg.copy_lead:
            return COPY
    return classify(features(a, b, cfg, start_a, start_b), similarity, cfg)
