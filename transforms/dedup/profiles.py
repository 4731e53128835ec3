"""Verification profiles (dense lead, shingle sample, anchors) and the copy / follow-up / unrelated decision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

UNRELATED, COPY, FOLLOW = 0, 1, 2  # edge kinds: a copy shares its canonical's cluster, a follow-up only its story


class Profiles(NamedTuple):
    """Ragged per-node arrays, rows aligned with a node table: 16-bit shingle hashes (a dense start, then a
    sample; minhash.profile_items), 64-bit anchor keys, and each text's lead as (where it starts, how many words
    its paragraph has; 0 when unknown), one row of two per node (lead_span). A node without a profile (stored by
    an older version) has empty rows."""

    items: np.ndarray
    i_off: np.ndarray
    anchors: np.ndarray
    a_off: np.ndarray
    lead: np.ndarray

    @staticmethod
    def empty(n: int = 0) -> Profiles:
        zeros = np.zeros(n + 1, np.int64)
        return Profiles(np.zeros(0, np.uint16), zeros, np.zeros(0, np.uint64), zeros.copy(), np.zeros((n, 2), np.int64))

    @staticmethod
    def of_rows(
        items: Sequence[np.ndarray], anchors: Sequence[np.ndarray], leads: Sequence[tuple[int, int]]
    ) -> Profiles:
        """From one array of items, one of anchors and one lead (start, paragraph words) per node."""
        return Profiles(
            np.concatenate([np.zeros(0, np.uint16), *[np.asarray(x, np.uint16) for x in items]]),
            np.concatenate([[0], np.cumsum([len(x) for x in items])]).astype(np.int64),
            np.concatenate([np.zeros(0, np.uint64), *[np.asarray(x, np.uint64) for x in anchors]]),
            np.concatenate([[0], np.cumsum([len(x) for x in anchors])]).astype(np.int64),
            np.asarray(leads, dtype=np.int64).reshape(-1, 2),
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

    def without_anchors(self) -> Profiles:
        """The same rows with no anchors (they only make candidates: verification never reads them)."""
        return self._replace(anchors=np.zeros(0, np.uint64), a_off=np.zeros(self.i_off.size, np.int64))

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


def lead_span(text: str, line_words: int, cap: int, longest: int) -> tuple[int, int]:
    """Where a text's lead starts, in words, and how many words its paragraph has (counted up to `longest`): the
    lead is its first line of `line_words` words or more (a sentence), past the title, dateline and short
    boilerplate lines above it. (0, 0) when no such line starts within `cap` words (a text of short lines, or one
    long line): the lead starts the text, its length unknown."""
    # Words are counted as whitespace-separated runs (the profile counts punctuation-separated ones: "NATO's" is
    # one here and two there), so the start can be a word or two early and the paragraph end a word or two short:
    # a cheap count, and the lead check tolerates it.
    skipped, start = 0, 0
    while skipped < cap:
        # Lines are read at most 4000 characters at a time, so a huge text costs no more than a short one.
        end = text.find("\n", start, start + 4000)
        line = text[start : start + 4000] if end < 0 else text[start:end]
        n = len(line.split(maxsplit=max(line_words, longest)))  # enough to tell a lead line, and exact below it
        if n >= line_words:
            return skipped, min(n, longest)
        if end < 0:
            break
        skipped += n
        start = end + 1
    return 0, 0


class Features(NamedTuple):
    """What a newsroom looks at in two articles A and B (from their shingle samples)."""

    shared: int  # sampled shingles in both
    cont_a: float  # share of A's sample found in B (A contained in B)
    cont_b: float
    lead_a: float  # share of A's lead (first lead_words words) found anywhere in B
    lead_b: float
    order: float  # share of the shared shingles that appear in the same order in both (longest common run)
    run: int = 0  # the longest passage reused verbatim: shared samples that follow each other in both texts
    head: float = 1.0  # the larger share of one head (the lead to its paragraph's end) found in the other


def lead_words(size, start, cfg, paragraph=0):
    """How many entries of a profile of `size` entries whose lead starts at `start` are its lead: the first
    quarter of the text below `start`, `lead_min_words` at least and `lead_max_words` at most; with `paragraph`
    (its length, when known), no further than the end of the lead's paragraph (the head: View). The length is
    estimated from the profile (a dense start of start + dense_words entries, then 1 in 2**sample_bits). Ints, or
    NumPy arrays of them (element-wise)."""
    dense = np.minimum(size, start + cfg.dense_words)
    length = dense + ((size - dense) << cfg.sample_bits) - start
    limit = np.where(np.asarray(paragraph) != 0, paragraph, cfg.lead_max_words)
    return np.maximum(cfg.lead_min_words, np.minimum(np.minimum(cfg.lead_max_words, length // 4), limit))


class View:
    """One profile made ready for many comparisons (built once per article, not once per pair): its lead, its
    head, the set of everything it keeps and, computed on first use (a sure copy never needs them), its sampled
    shingles in text order with where each first occurs.

    The lead is a window of words from where the lead starts; the head is the same window stopped at the end of
    the lead's paragraph. A follow-up's new lead is often one short paragraph over reused text, which the window
    runs past (both leads then look shared); the lead line found can also be a long boilerplate line above the
    real lead, which the window runs past to the lead. So a copy needs its leads in each other and one head in
    the other (classify)."""

    __slots__ = ("_items", "_bits", "_sampled", "head", "kept", "lead")

    def __init__(self, items: np.ndarray, cfg, start: int, paragraph: int = 0):
        values = items.tolist()
        start = min(start, len(values) - 1)
        self.lead = values[start : start + int(lead_words(len(values), start, cfg))]  # the lead's shingles
        self.head = self.lead[: int(lead_words(len(values), start, cfg, paragraph))]
        self.kept = frozenset(values)  # every shingle kept: what another article's lead is looked up in
        self._items, self._bits, self._sampled = items, cfg.sample_bits, None

    def sampled(self) -> tuple[int, list, dict]:
        """(sampled entries, repeats included; the distinct sampled shingles in order of first occurrence; each
        one's index of first occurrence among the sampled entries)."""
        if self._sampled is None:
            items = self._items
            sample = items[(items & np.uint16((1 << self._bits) - 1)) == 0].tolist()
            # Built from the end, the dict keeps each shingle's first index; sorting by it gives the text order.
            first = dict(zip(reversed(sample), range(len(sample) - 1, -1, -1), strict=True))
            self._sampled = len(sample), sorted(first, key=first.__getitem__), first
        return self._sampled


def view(items: np.ndarray, cfg, start: int = 0, paragraph: int = 0) -> View | None:
    """The View of a profile whose lead starts at `start` (its paragraph `paragraph` words long, 0 if unknown),
    or None when it has no entries (stored by an older version)."""
    return View(items, cfg, start, paragraph) if items.size else None


def _leads(va: View, vb: View) -> tuple[float, float, float]:
    """The share of A's lead found in B, of B's lead in A, and the larger share of one head in the other (a copy
    keeps at least the original's)."""
    la, lb = _share(va.lead, vb.kept), _share(vb.lead, va.kept)
    # A head as long as its lead has the lead's share.
    ha = la if len(va.head) == len(va.lead) else _share(va.head, vb.kept)
    hb = lb if len(vb.head) == len(vb.lead) else _share(vb.head, va.kept)
    return la, lb, max(ha, hb)


def _share(shingles: list, kept: frozenset) -> float:
    return sum(map(kept.__contains__, shingles)) / len(shingles)


def _sure_copy(la, lb, head, cfg):
    """Whether pairs estimated at `copy_sure` or more are copies without measuring the rest: each lead in the
    other article, and one head. Floats, or NumPy arrays of them."""
    return (np.minimum(la, lb) >= cfg.copy_lead) & (head >= cfg.copy_head)


def lead_shares(prof: Profiles, ra: np.ndarray, rb: np.ndarray, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_leads` of many pairs of rows of `prof` at once (rows with entries): every entry of every row involved,
    keyed by its row and sorted, and each lead entry looked up there. No set per article: a batch of candidate
    pairs, most of them copies decided on these shares alone, costs a few NumPy sorts."""
    rows, local = np.unique(np.concatenate([ra, rb]), return_inverse=True)
    sizes = np.diff(prof.i_off)[rows]
    start = np.minimum(prof.lead[rows, 0], sizes - 1)  # as View
    n_lead = np.minimum(lead_words(sizes, start, cfg), sizes - start)
    n_head = np.minimum(lead_words(sizes, start, cfg, prof.lead[rows, 1]), n_lead)
    values, offsets = _gather(prof.items, prof.i_off, rows)
    owner = np.repeat(np.arange(rows.size, dtype=np.uint64), np.diff(offsets))
    kept = np.sort((owner << np.uint64(16)) | values)

    def shares(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = n_lead[src]
        pair = np.repeat(np.arange(src.size), n)
        pos = np.arange(pair.size) - np.repeat(np.cumsum(n) - n, n)  # the entry's place in its lead
        entry = values[offsets[src][pair] + start[src][pair] + pos]
        wanted = (dst[pair].astype(np.uint64) << np.uint64(16)) | entry
        order = np.argsort(wanted)  # sorted lookups run several times faster
        at = np.minimum(np.searchsorted(kept, wanted[order]), kept.size - 1)
        hit = np.zeros(wanted.size, bool)
        hit[order] = kept[at] == wanted[order]
        lead = np.bincount(pair, weights=hit, minlength=src.size) / n
        head = np.bincount(pair, weights=hit & (pos < n_head[src][pair]), minlength=src.size) / n_head[src]
        return lead, head

    a, b = local[: ra.size], local[ra.size :]
    la, ha = shares(a, b)
    lb, hb = shares(b, a)
    return la, lb, np.maximum(ha, hb)


def features(
    a: np.ndarray, b: np.ndarray, cfg, lead_a: tuple[int, int] = (0, 0), lead_b: tuple[int, int] = (0, 0)
) -> Features | None:
    """Pair features of two profiles, or None when either has none (no profile: decide as before)."""
    va, vb = view(a, cfg, *lead_a), view(b, cfg, *lead_b)
    return None if va is None or vb is None else features_of(va, vb)


def features_of(va: View, vb: View, leads: bool = True) -> Features:
    """Pair features of two Views (lead shares left at 0 without `leads`: only a copy needs them).

    Containment, order and passages use the sampled shingles only (every text keeps the same ones, wherever they
    sit), the leads use every shingle of the lead against all the other text keeps: its dense start, its sample
    beyond. A shingle repeated in a text counts at its first occurrence."""
    samples_a, order_a, first_a = va.sampled()
    samples_b, _, first_b = vb.sampled()
    common = [x for x in order_a if x in first_b]
    ia = list(map(first_a.__getitem__, common))  # increasing: A's text order
    ib = list(map(first_b.__getitem__, common))
    shared = len(ia)
    la, lb, head = _leads(va, vb) if leads else (0.0, 0.0, 0.0)
    order = 1.0 if shared == 1 else 0.0
    best = run = 0
    # B's order of the shared shingles, taken in A's order, mostly goes forward in a copy; a passage reused as it
    # was is a stretch of samples consecutive in both. Phrases two texts share because they are written on one
    # template break off at every slot filled differently.
    for pa, pb, xa, xb in zip(ia, ib, ia[1:], ib[1:], strict=False):  # each shared shingle and the next
        if xb > pb:
            order += 1
            if xb - pb == 1 and xa - pa == 1:
                run += 1
                if run > best:
                    best = run
                continue
        run = 0
    if shared > 1:
        order /= shared - 1
    return Features(
        shared,
        shared / max(samples_a, 1),
        shared / max(samples_b, 1),
        la,
        lb,
        order,
        best + 1 if shared > 1 else shared,
        head,
    )


def classify(f: Features | None, similarity: float, cfg) -> int:
    """COPY, FOLLOW or UNRELATED for a candidate pair; `cfg` is the DedupConfig.

    A copy is a near-duplicate (estimated similarity at least `copy_min_similarity`) that keeps the original's
    lead (perhaps reworded, under a new title) and most of its body in order: both leads are found in the other
    article, one head (View) too, and the shorter text is mostly inside the longer. A follow-up writes a lead of
    its own over text reused lower down: their leads differ, but a real share of one is inside the other.
    Without profiles (signatures stored by an older version) the estimated similarity decides, as it used to."""
    if f is None:
        return COPY if similarity >= cfg.threshold else UNRELATED
    contained = max(f.cont_a, f.cont_b)
    is_copy = (
        similarity >= cfg.copy_min_similarity
        and min(f.lead_a, f.lead_b) >= cfg.copy_lead
        and f.head >= cfg.copy_head
        and contained >= cfg.copy_containment
        and f.order >= cfg.copy_order
    )
    if is_copy:
        return COPY
    if f.shared >= cfg.follow_min_shared and contained >= cfg.follow_containment and f.run >= cfg.follow_min_run:
        return FOLLOW
    return UNRELATED


def may_relate(va: View | None, vb: View | None, similarity: float, cfg) -> bool:
    """False when a pair can be neither a copy (too dissimilar) nor a follow-up (too few sampled shingles in
    common, or too small a share of either text): a set test that spares `features_of` many candidates. True
    when either profile is missing (the similarity decides, see classify)."""
    if similarity >= cfg.copy_min_similarity or va is None or vb is None:
        return True
    samples_a, _, first_a = va.sampled()
    samples_b, _, first_b = vb.sampled()
    shared = len(first_a.keys() & first_b.keys())
    return shared >= cfg.follow_min_shared and shared >= cfg.follow_containment * min(samples_a, samples_b)


def verify(
    a: np.ndarray,
    b: np.ndarray,
    similarity: float,
    cfg,
    lead_a: tuple[int, int] = (0, 0),
    lead_b: tuple[int, int] = (0, 0),
) -> int:
    """`classify` of a candidate pair from its two profiles and leads ((start, paragraph words), lead_span)."""
    return verify_views(view(a, cfg, *lead_a), view(b, cfg, *lead_b), similarity, cfg)


def verify_views(va: View | None, vb: View | None, similarity: float, cfg) -> int:
    """`classify` of a candidate pair from its two Views. A pair estimated at `copy_sure` or more whose leads are
    each in the other (and one head) is a copy without measuring the rest; a pair `may_relate` rules out is
    unrelated."""
    if va is None or vb is None:
        return classify(None, similarity, cfg)
    if similarity >= cfg.copy_sure and _sure_copy(*_leads(va, vb), cfg):
        return COPY
    return _verify_measured(va, vb, similarity, cfg)


def _verify_measured(va: View, vb: View, similarity: float, cfg) -> int:
    """`classify` of a pair that is not a sure copy, unless `may_relate` rules it out."""
    if not may_relate(va, vb, similarity, cfg):
        return UNRELATED
    # Below copy_min_similarity only a follow-up is possible, and it does not look at the leads.
    return classify(features_of(va, vb, similarity >= cfg.copy_min_similarity), similarity, cfg)


def verify_rows(prof: Profiles, ra: np.ndarray, rb: np.ndarray, sims: np.ndarray, cfg) -> np.ndarray:
    """`verify_views` of many pairs of rows of one Profiles (rows `ra[i]`, `rb[i]`, estimated similarity
    `sims[i]`): the kind of each pair. Sure copies are found for all pairs at once (lead_shares); Views are built
    only for the other pairs, once per article."""
    sizes = np.diff(prof.i_off)
    kinds = np.zeros(ra.size, np.uint8)
    measured = (sizes[ra] > 0) & (sizes[rb] > 0)
    for i in np.flatnonzero(~measured).tolist():
        kinds[i] = classify(None, float(sims[i]), cfg)
    sure = np.flatnonzero(measured & (sims >= cfg.copy_sure))
    if sure.size:
        copy = sure[_sure_copy(*lead_shares(prof, ra[sure], rb[sure], cfg), cfg)]
        kinds[copy] = COPY
        measured[copy] = False
    views: dict[int, View] = {}
    for i in np.flatnonzero(measured).tolist():
        u, v = int(ra[i]), int(rb[i])
        for row in (u, v):
            if row not in views:
                views[row] = View(prof.item_row(row), cfg, *prof.lead[row].tolist())
        kinds[i] = _verify_measured(views[u], views[v], float(sims[i]), cfg)
    return kinds
