"""Dedup stage: exact and MinHash-LSH near-duplicate clusters, canonical choice, cross-day signatures."""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as dt
import hashlib
import itertools
import logging
import operator
import pickle
import unicodedata
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
import numpy as np

from schemas.elements import Article, Duplicate, Signature, stable_hash
from transforms.common import REJECTS, TaggedParDo, count, reject, run_guarded

STAGE = "dedup"
_LOG = logging.getLogger(__name__)

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
DEFAULT_THRESHOLD = 0.38
DEFAULT_SHINGLE = 3
DEFAULT_NUM_PERM = 256
DEFAULT_BANDS = 85
DEFAULT_LOOKBACK_DAYS = 7
MAX_LOOKBACK_DAYS = 3650  # ten years: see DedupConfig
# Past a few hundred members a bucket is a template or boilerplate, not a story: pairs are compared in
# sub-buckets of this size, so the cost stays linear.
DEFAULT_MAX_BUCKET = 200

_M64 = np.uint64
_M = (1 << 64) - 1
_EMPTY = np.uint32(0xFFFFFFFF)
_SHARD_SHIFT = _M64(56)  # uid = shard (8 bits) | history flag (1 bit) | hash (55 bits)
_HIST_BIT = 1 << 55
_HASH_MASK = (1 << 55) - 1
_MAX_SHARDS = 256
_PROBES = 64  # optimal-densification probes before the rotation fallback (only very short texts need it)
_K = [
    _M64(x)
    for x in (
        0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x27D4EB2F165667C5, 0x85EBCA77C2B2AE63,
    )
]  # fmt: skip
_LEAD_SALT = _M64(0x5851F42D4C957F2D)


@dataclasses.dataclass(frozen=True)
class DedupConfig:
    """Dedup-stage settings; `output` and `run_date` locate the signatures of previous runs."""

    output: str = ""
    run_date: dt.date | None = None
    threshold: float = DEFAULT_THRESHOLD
    shingle_size: int = DEFAULT_SHINGLE
    num_perm: int = DEFAULT_NUM_PERM
    bands: int = DEFAULT_BANDS
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    max_bucket_size: int = DEFAULT_MAX_BUCKET
    lead_words: int = 150  # the first shingles that weigh `lead_weight` times (see the defaults' note)
    lead_weight: int = 3
    shards: int = 32  # key ranges for the batched shuffles; raise for very large days
    batch_size: int = 512  # articles hashed together by NumPy
    cc_rounds: int = 8  # large-star/small-star rounds; 8 settle chains of ~1000 articles

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
        if not 1 <= self.shards <= _MAX_SHARDS or self.lead_weight < 1 or self.lead_words < 0 or self.cc_rounds < 1:
            raise ValueError("dedup: shards must be 1..256, lead weight and rounds at least 1")

    @property
    def graph_shards(self) -> int:
        """Key ranges of the connected-components steps: edges are few, so fewer and larger batches."""
        return max(1, self.shards // 4)

    @property
    def rows(self) -> int:
        """Signature rows per LSH band (num_perm // bands; leftover bins only serve verification)."""
        return self.num_perm // self.bands


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dedup stage's command-line flags."""
    g = parser.add_argument_group("deduplication")
    g.add_argument(
        "--dedup-threshold",
        dest="dedup_threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="Estimated similarity (lead-weighted Jaccard of word shingles, 0-1) at or above which two articles "
        f"are the same story (default {DEFAULT_THRESHOLD}; chosen on labelled copies vs follow-up stories).",
    )
    g.add_argument(
        "--shingle-size",
        dest="shingle_size",
        type=int,
        default=DEFAULT_SHINGLE,
        help=f"Words per shingle (default {DEFAULT_SHINGLE}; larger is stricter about scattered edits).",
    )
    g.add_argument(
        "--num-perm",
        dest="num_perm",
        type=int,
        default=DEFAULT_NUM_PERM,
        help=f"MinHash signature length (default {DEFAULT_NUM_PERM}); must match the stored signatures "
        "for cross-day dedup.",
    )
    g.add_argument(
        "--lsh-bands",
        dest="lsh_bands",
        type=int,
        default=DEFAULT_BANDS,
        help=f"LSH bands (default {DEFAULT_BANDS}, i.e. {DEFAULT_NUM_PERM // DEFAULT_BANDS} rows each); more "
        "bands find lower similarities at the cost of more candidate pairs.",
    )
    g.add_argument(
        "--dedup-lookback-days",
        dest="dedup_lookback_days",
        type=int,
        default=DEFAULT_LOOKBACK_DAYS,
        help="Match new articles against the signatures stored by runs of this many previous days in the same "
        f"--output (default {DEFAULT_LOOKBACK_DAYS}; 0 disables cross-day dedup).",
    )
    g.add_argument(
        "--max-bucket-size",
        dest="max_bucket_size",
        type=int,
        default=DEFAULT_MAX_BUCKET,
        help=f"LSH buckets larger than this are compared in sub-buckets of this size (default {DEFAULT_MAX_BUCKET}); "
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


# ---------------------------------------------------------------------------------------------------------------
# Pure logic: normalisation, shingles, signatures, banding, verification, canonical order, components.
# ---------------------------------------------------------------------------------------------------------------


_ASCII_SPACES = bytes.maketrans(b"\t\n\r\x0b\x0c", b"     ")


def normalize_text(text: str) -> bytes:
    """`schemas.elements.normalize_for_hash(text).encode()`, ~5x faster on news text (equal output: tested).

    Most of the cost of the original is per-character work on non-ASCII strings (casefold, split/join) and a
    regex. Here ASCII text is lowercased as bytes; so is text whose only non-ASCII characters are general
    punctuation (U+2000-207F: curly quotes, dashes, ellipsis), which has no case. Whitespace runs are collapsed
    on bytes, unless the text holds a rare space that str.split() knows and bytes.split() does not.
    """
    if text.isascii():
        s = None
        raw = text.encode("ascii").lower()  # ASCII is already NFKC
    else:
        s = unicodedata.normalize("NFKC", text)
        raw = s.encode("utf-8")
        # Each U+2000-207F character is 3 bytes starting E2 80 or E2 81: if they explain every extra byte,
        # all non-ASCII characters are caseless punctuation.
        if len(raw) - len(s) == 2 * (raw.count(b"\xe2\x80") + raw.count(b"\xe2\x81")):
            raw = raw.lower()
        else:
            s = s.casefold()
            raw = s.encode("utf-8")
    odd = b"\x1c" in raw or b"\x1d" in raw or b"\x1e" in raw or b"\x1f" in raw
    if s is not None and not odd:
        odd = "\x85" in s or "\u1680" in s or "\u2028" in s or "\u2029" in s
    if odd:
        return " ".join(raw.decode("utf-8").split()).encode("utf-8")
    raw = raw.translate(_ASCII_SPACES)
    while b"  " in raw:
        raw = raw.replace(b"  ", b" ")
    return raw.strip(b" ")


def content_hash_of(normalized: bytes) -> str:
    """`Article.content_hash` of an article whose normalised text (UTF-8) is given."""
    return hashlib.sha256(normalized).hexdigest()[:16]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: every input bit affects every output bit (uint64 arithmetic wraps)."""
    x = x ^ (x >> _M64(30))
    x *= _M64(0xBF58476D1CE4E5B9)
    x ^= x >> _M64(27)
    x *= _M64(0x94D049BB133111EB)
    x ^= x >> _M64(31)
    return x


# (lead byte, second-byte range, sequence length) of UTF-8 sequences that are not word characters: Latin-1
# punctuation U+00A0-00BF, general punctuation and symbols U+2000-2BFF (quotes, dashes, ellipsis, arrows),
# CJK punctuation U+3000-303F, emoji U+1F000-1FFFF. Every other non-ASCII character counts as a letter.
_NON_WORD_SEQS = ((0xC2, 0xA0, 0xBF, 2), (0xE2, 0x80, 0xAF, 3), (0xE3, 0x80, 0x80, 3), (0xF0, 0x9F, 0x9F, 4))
_ALL_ONES = _M64(0xFFFFFFFFFFFFFFFF)
_SEP = 0xFF  # separates texts in a batch: the one byte value that never occurs in UTF-8
_SEP_BYTES = bytes([_SEP])


def _word_spans(buf: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the words (runs of letters/digits) in the first n bytes of a normalised UTF-8
    buffer that has at least 3 bytes of padding after them."""
    text = buf[:n]
    # Normalised text is case-folded, so ASCII word bytes are a-z and 0-9; uint8 arithmetic wraps below 0.
    isw = ((text - np.uint8(0x61)) < 26) | ((text - np.uint8(0x30)) < 10) | ((text >= 0x80) & (text != _SEP))
    for lead, lo, hi, width in _NON_WORD_SEQS:
        pos = np.flatnonzero(text == lead)
        if pos.size:
            second = buf[pos + 1]
            pos = pos[(second >= lo) & (second <= hi)]
            for j in range(width):
                isw[np.minimum(pos + j, n - 1)] = False
    padded = np.zeros(n + 2, dtype=bool)
    padded[1:-1] = isw
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges[0::2], edges[1::2]


def word_hashes(texts: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the words of normalised texts (`normalize_text` output), and each text's first word
    index (length n+1).

    Words are hashed 8 bytes at a time, so the work is a few NumPy passes per batch, never a Python loop per
    word. Punctuation (ASCII or typographic) separates words, so “curly” and "straight" quotes or em and en
    dashes give the same words.
    """
    joined = _SEP_BYTES.join(texts)
    raw = joined + b"\x00" * 8  # every 8-byte load stays inside the buffer
    buf = np.frombuffer(raw, dtype=np.uint8)
    # A uint64 view at every byte offset: NumPy gathers unaligned 8-byte loads from it directly.
    loads = np.ndarray(shape=(len(raw) - 7,), dtype="<u8", buffer=raw, strides=(1,))
    starts, ends = _word_spans(buf, len(joined))
    lengths = ends - starts
    h = np.zeros(starts.size, dtype=np.uint64)
    idx, off, rem = None, starts, lengths
    while off.size:
        chunk = loads[off]
        chunk &= _ALL_ONES >> ((8 - np.minimum(rem, 8)) * 8).astype(np.uint64)
        if idx is None:
            h = _mix(chunk)
        else:
            h[idx] = _mix(h[idx] * _K[0] ^ chunk)
        more = np.flatnonzero(rem > 8)
        idx = more if idx is None else idx[more]
        off, rem = off[more] + 8, rem[more] - 8
    h = _mix(h ^ (lengths.astype(np.uint64) * _K[1]))
    separators = np.flatnonzero(buf[: len(joined)] == _SEP)
    offsets = np.empty(len(texts) + 1, dtype=np.int64)
    offsets[0], offsets[-1] = 0, starts.size
    offsets[1:-1] = np.searchsorted(starts, separators[: len(texts) - 1])
    return h, offsets


def shingle_hashes(
    texts: Sequence[bytes], k: int = DEFAULT_SHINGLE, lead_words: int = 150, lead_weight: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the word k-shingles of normalised texts, with each hash's text index.

    The first `lead_words` shingles of each text are repeated `lead_weight - 1` more times with different salts,
    which makes the Jaccard estimate weigh the lead more (see the defaults' note). A text shorter than k words
    is one shingle; a text without words is one shingle of its own bytes. Hashes may repeat (the set is implied).
    """
    words, offsets = word_hashes(texts)
    n_texts = len(texts)
    counts = np.diff(offsets)
    word_doc = np.repeat(np.arange(n_texts), counts)
    n = words.size - k + 1
    if n > 0:
        s = words[:n] * _K[0]
        for j in range(1, k):
            s = s + words[j : j + n] * _K[j % len(_K)]
        valid = word_doc[:n] == word_doc[k - 1 :]
        pos = np.arange(n) - offsets[word_doc[:n]]
        shingles, doc, pos = _mix(s[valid]), word_doc[:n][valid], pos[valid]
    else:
        shingles, doc, pos = np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    short = np.flatnonzero(counts < k)
    if short.size:
        extra = []
        for d in short:
            w = words[offsets[d] : offsets[d + 1]]
            if w.size:
                acc = len(w)
                for j, x in enumerate(w.tolist()):
                    acc = (acc + x * int(_K[j % len(_K)])) & _M
                extra.append(int(_mix(np.array([acc], dtype=np.uint64))[0]))
            else:
                extra.append(int(hashlib.sha256(texts[d]).hexdigest()[:16], 16))
        shingles = np.concatenate([shingles, np.array(extra, dtype=np.uint64)])
        doc = np.concatenate([doc, short])
        pos = np.concatenate([pos, np.zeros(short.size, dtype=np.int64)])
    if lead_weight > 1 and lead_words > 0:
        lead = pos < lead_words
        parts, docs = [shingles], [doc]
        for r in range(1, lead_weight):
            parts.append(_mix(shingles[lead] ^ (_LEAD_SALT * _M64(r))))
            docs.append(doc[lead])
        shingles, doc = np.concatenate(parts), np.concatenate(docs)
    return shingles, doc


def _probe_table(num_perm: int) -> np.ndarray:
    """Deterministic probe sequence per bin for optimal densification (Shrivastava, ICML 2017)."""
    grid = np.arange(_PROBES, dtype=np.uint64)[:, None] * _M64(num_perm) + np.arange(num_perm, dtype=np.uint64)
    return ((_mix(grid + _K[2]) >> _M64(32)) * _M64(num_perm) >> _M64(32)).astype(np.int64)


_PROBE_CACHE: dict[int, np.ndarray] = {}


def minhash_from_shingles(shingles: np.ndarray, doc: np.ndarray, n_docs: int, num_perm: int) -> np.ndarray:
    """One-permutation MinHash: (n_docs, num_perm) uint16 signatures from shingle hashes.

    Each shingle is hashed once: its high 32 bits pick a bin, its low 32 bits are the value, and each bin keeps
    its minimum (Li, Owen & Zhang 2012). That is O(shingles), where classic MinHash is O(shingles x num_perm).
    Empty bins borrow from the first non-empty bin of a fixed probe sequence, the same for every text, so the
    share of equal bins still estimates the Jaccard similarity. Each minimum is kept to its high 16 bits
    (b-bit MinHash, Li & König 2010): two different minima then agree by chance with probability 2^-16, a bias
    far below the estimate's own error, and signatures cost half as much to shuffle and store.
    """
    sig = np.full(n_docs * num_perm, _EMPTY, dtype=np.uint32)
    if shingles.size:
        bins = ((shingles >> _M64(32)) * _M64(num_perm)) >> _M64(32)
        flat = doc.astype(np.int64) * num_perm + bins.astype(np.int64)
        np.minimum.at(sig, flat, (shingles & _M64(0xFFFFFFFF)).astype(np.uint32))
    sig = sig.reshape(n_docs, num_perm)
    empty = sig == _EMPTY
    if not empty.any():
        return (sig >> 16).astype(np.uint16)
    probes = _PROBE_CACHE.get(num_perm)
    if probes is None:
        probes = _PROBE_CACHE.setdefault(num_perm, _probe_table(num_perm))
    filled = sig.copy()
    rows, cols = np.nonzero(empty)
    for t in range(_PROBES):
        if not rows.size:
            break
        got = sig[rows, probes[t, cols]]
        ok = got != _EMPTY
        filled[rows[ok], cols[ok]] = got[ok]
        rows, cols = rows[~ok], cols[~ok]
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        # Rotation fallback (Shrivastava & Li 2014) for texts with a handful of shingles.
        nonempty = np.flatnonzero(sig[r] != _EMPTY)
        if nonempty.size:
            ahead = nonempty[nonempty > c]
            src = int(ahead[0] if ahead.size else nonempty[0])
            filled[r, c] = sig[r, src]
    return (filled >> 16).astype(np.uint16)


def signatures(texts: Sequence[bytes], cfg: DedupConfig = DedupConfig()) -> np.ndarray:
    """(len(texts), num_perm) uint16 MinHash signatures of normalised texts (`normalize_text` output)."""
    if not texts:
        return np.zeros((0, cfg.num_perm), dtype=np.uint16)
    sh, doc = shingle_hashes(texts, cfg.shingle_size, cfg.lead_words, cfg.lead_weight)
    return minhash_from_shingles(sh, doc, len(texts), cfg.num_perm)


def shingle_set(text: str, cfg: DedupConfig = DedupConfig()) -> set[int]:
    """The (lead-weighted) shingle set of one text, for exact Jaccard in tests and benchmarks."""
    sh, _ = shingle_hashes([normalize_text(text)], cfg.shingle_size, cfg.lead_words, cfg.lead_weight)
    return set(sh.tolist())


def exact_jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b| (1.0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def estimate_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Estimated Jaccard similarity: the share of equal signature bins (row-wise for 2-D inputs)."""
    eq = np.asarray(a) == np.asarray(b)
    return float(eq.mean()) if eq.ndim == 1 else eq.mean(axis=1)


def band_keys(sigs: np.ndarray, bands: int) -> np.ndarray:
    """(n, bands) uint64 LSH keys: a hash of each band's rows and of the band's index."""
    n, num_perm = sigs.shape
    rows = num_perm // bands
    block = sigs[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    acc = np.broadcast_to(np.arange(bands, dtype=np.uint64) * _K[7], (n, bands)).copy()
    for j in range(rows):
        acc = _mix(acc ^ (block[:, :, j] * _K[j % 7]))
    return acc


def bucket_pairs(keys: np.ndarray, uids: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Candidate pairs (a < b) of members sharing a band key, deduplicated, plus (capped buckets, skipped pairs).

    A bucket larger than `cap` is split into consecutive sub-buckets of `cap` members (in uid order), compared
    within each and chained by their first members, so a hot bucket costs O(n * cap), not O(n^2).
    """
    empty = np.zeros(0, np.uint64)
    if keys.size < 2:
        return empty, empty, 0, 0
    order = np.lexsort((uids, keys))
    k, u = keys[order], uids[order]
    distinct = np.concatenate(([True], (k[1:] != k[:-1]) | (u[1:] != u[:-1])))
    k, u = k[distinct], u[distinct]
    bounds = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1], [True])))
    starts, sizes = bounds[:-1], np.diff(bounds)
    a_parts, b_parts = [], []
    small = (sizes >= 2) & (sizes <= cap)
    for size in np.unique(sizes[small]).tolist():
        # All buckets of one size at once: a (buckets, size) member matrix, then its upper triangle.
        members = u[starts[small & (sizes == size)][:, None] + np.arange(size)]
        ia, ib = np.triu_indices(size, 1)
        a_parts.append(members[:, ia].ravel())
        b_parts.append(members[:, ib].ravel())
    capped = skipped = 0
    for start, size in zip(starts[sizes > cap].tolist(), sizes[sizes > cap].tolist(), strict=True):
        capped += 1
        members = u[start : start + size]
        compared = 0
        for s in range(0, size, cap):
            ia, ib = np.triu_indices(min(cap, size - s), 1)
            a_parts.append(members[s + ia])
            b_parts.append(members[s + ib])
            compared += ia.size
        heads = members[::cap]
        a_parts.append(heads[:-1])
        b_parts.append(heads[1:])
        skipped += size * (size - 1) // 2 - compared - (heads.size - 1)
    if not a_parts:
        return empty, empty, capped, skipped
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1], capped, skipped


def make_uid(article_id: str, ref: str, content_hash: str, shards: int, history: bool = False) -> int:
    """A 64-bit node id: the text's shard (so exact copies meet), a history flag, and a hash of its identity."""
    shard = int(content_hash[:8], 16) % shards
    h = int(stable_hash(f"{article_id}\x00{ref}\x00{content_hash}"), 16) & _HASH_MASK
    return (shard << 56) | (_HIST_BIT if history else 0) | h


_NO_DATE = _M  # sorts after every real timestamp
_TS_OFFSET = 1 << 62  # microseconds since 1970, shifted so that dates before 1970 stay positive
_LEN_MAX = (1 << 32) - 1


def node_key(
    uid: int, article_id: str, content_hash: str, published_at: dt.datetime | None, length: int, history: bool
) -> int:
    """One int whose order is the canonical order, and which carries what later steps need to know of a node.

    Bits, most significant first: history flag (0 = stored by a previous run, already published, so first),
    published_at in microseconds (None last), text length complemented (longest first), article_id, uid
    (breaks ties between identical records), content_hash. A graph step compares and hashes one int instead
    of a tuple of strings. Ids and hashes are the project's 16-hex-digit `stable_hash` values.
    """
    ts = _NO_DATE if published_at is None else round(published_at.timestamp() * 1_000_000) + _TS_OFFSET
    return (
        (0 if history else 1) << 288
        | (ts & _M) << 224
        | (_LEN_MAX - min(length, _LEN_MAX)) << 192
        | int(article_id, 16) << 128
        | uid << 64
        | int(content_hash, 16)
    )


def key_is_new(key: int) -> bool:
    """Whether a node key is an article of this run (not a stored signature)."""
    return bool(key >> 288)


def key_uid(key: int) -> int:
    """The node id inside a node key."""
    return (key >> 64) & _M


def key_article_id(key: int) -> str:
    """The article_id inside a node key."""
    return format((key >> 128) & _M, "016x")


def key_content_hash(key: int) -> str:
    """The content_hash inside a node key."""
    return format(key & _M, "016x")


def connected_components(edges: Iterable[tuple]) -> dict:
    """Union-find over edges of comparable nodes: {node: smallest node of its component} (reference for tests)."""
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra
    return {x: find(x) for x in parent}


def _groups(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Directed edges sorted by owner, deduplicated: (u, v, each owner's first index, each edge's owner index)."""
    pairs = np.unique(np.stack([u, v], axis=1), axis=0)
    u, v = pairs[:, 0], pairs[:, 1]
    starts = np.flatnonzero(np.concatenate(([True], u[1:] != u[:-1])))
    owner = np.repeat(np.arange(starts.size), np.diff(np.append(starts, u.size)))
    return u, v, starts, owner


def star_step(u: np.ndarray, v: np.ndarray, large: bool) -> tuple[np.ndarray, np.ndarray]:
    """One large-star or small-star step (Kiveris et al., 2014) over directed edges u -> v (both directions of
    every undirected edge of the owners u present), as arrays; returns the new undirected edges (a, b).

    Both steps keep every component connected and move each node towards the component's smallest id;
    alternating them turns every component into a star around that id in O(log n) rounds in practice.
    """
    empty = np.zeros(0, dtype=np.uint64)
    if not u.size:
        return empty, empty
    if large:
        # Each neighbour larger than u links to m(u) = min(N(u) + u).
        u, v, starts, owner = _groups(u, v)
        m = np.minimum(np.minimum.reduceat(v, starts), u[starts])[owner]
        sel = v > u
        return v[sel], m[sel]
    # u and its smaller neighbours all link to the smallest of them.
    sel = v < u
    if not sel.any():
        return empty, empty
    u, v, starts, owner = _groups(u[sel], v[sel])
    m = np.minimum.reduceat(v, starts)
    keep = v != m[owner]
    return np.concatenate([v[keep], u[starts]]), np.concatenate([m[owner][keep], m])


def star_roots(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Read a star forest from directed edges u -> v: (nodes, their root, nodes not in star form).

    A root's neighbours are all larger than it and it is its own root; any other node's root is its smallest
    neighbour. Once the steps have converged, such a node has exactly one neighbour; a node with more (the rounds
    ran out) is counted, and still points to a smaller node of its own cluster.
    """
    if not u.size:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64), 0
    u, v, starts, owner = _groups(u, v)
    nodes = u[starts]
    smallest = np.minimum.reduceat(v, starts)
    is_root = smallest > nodes
    degree = np.diff(np.append(starts, u.size))
    unconverged = int(np.count_nonzero(~is_root & (degree > 1)))
    return nodes, np.where(is_root, nodes, smallest), unconverged


# ---------------------------------------------------------------------------------------------------------------
# Beam plumbing: thin DoFns that route, batch and count. Between "Sign" and "Assign" every element is a pickled
# batch keyed by one of `cfg.shards` key ranges (a node's range is in its uid), so an article costs ~2 elements.
# ---------------------------------------------------------------------------------------------------------------


def _batch(tag: str, value) -> bytes:
    """A tagged batch, pickled here once. Shuffled as bytes, it is copied, not re-pickled, by the runner's grouping
    (the DirectRunner decodes and re-encodes every grouped value) and costs one pickle call instead of one per item."""
    return pickle.dumps((tag, value), protocol=pickle.HIGHEST_PROTOCOL)


@dataclasses.dataclass
class _Nodes:
    """Graph nodes of one shard: ids, canonical-order keys and signatures, rows aligned."""

    uids: np.ndarray
    keys: list
    sigs: np.ndarray

    @staticmethod
    def concat(batches: list[_Nodes], num_perm: int) -> _Nodes:
        if len(batches) == 1:
            return batches[0]
        if not batches:
            return _Nodes(np.zeros(0, np.uint64), [], np.zeros((0, num_perm), np.uint16))
        return _Nodes(
            np.concatenate([b.uids for b in batches]),
            [k for b in batches for k in b.keys],
            np.concatenate([b.sigs for b in batches]),
        )

    def take(self, rows: Sequence[int]) -> _Nodes:
        return _Nodes(self.uids[rows], [self.keys[i] for i in rows], self.sigs[rows])


# Beam infers element types from the DoFns' yields, and TaggedOutput confuses it: state the keyed type.
_KEYED = tuple[int, bytes]


def _shards(uids: np.ndarray) -> np.ndarray:
    return (uids >> _SHARD_SHIFT).astype(np.int64)


def _by_shard(shard_ids: np.ndarray) -> Iterator[tuple[int, list[int]]]:
    for shard in np.unique(shard_ids).tolist():
        yield shard, np.flatnonzero(shard_ids == shard).tolist()


def _tagged(values: Iterable[bytes]) -> dict[str, list]:
    out: dict[str, list] = collections.defaultdict(list)
    for data in values:
        tag, value = pickle.loads(data)
        out[tag].append(value)
    return out


@beam.typehints.with_output_types(_KEYED)
class _PrepareFn(beam.DoFn):
    """Per article: normalised text, node id and canonical-order key, keyed by the article's shard (exact copies
    share one); empty texts are rejected. Signing waits for the shard's group: a DoFn must not buffer across
    elements, as Beam 2.77's DaskRunner drops what finish_bundle emits."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def process(self, article: Article):
        norm = normalize_text(article.text or "")
        if not norm:
            yield reject(article.input_ref, STAGE, "empty_text", "no text left to compare", article.text)
            return
        chash = content_hash_of(norm)
        aid = article.article_id
        uid = make_uid(aid, article.input_ref, chash, self._cfg.shards)
        key = node_key(uid, aid, chash, article.published_at, len(article.text), False)
        yield uid >> 56, _batch("doc", (uid, key, norm))
        # The article itself waits for its decision in the last join: each text crosses one shuffle only.
        yield beam.pvalue.TaggedOutput("articles", (uid >> 56, _batch("article", (key, _pack(article)))))


def _signature_dir(output: str, day: dt.date) -> str:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(output, "signatures", f"run_date={day.isoformat()}")


def history_dates(cfg: DedupConfig) -> list[dt.date]:
    """The previous run dates whose signatures are loaded: [run_date - lookback, run_date - 1], never run_date.

    Days before `date.min` do not exist and are skipped, so no run date makes this raise OverflowError."""
    if not cfg.output or cfg.run_date is None:
        return []
    days = min(cfg.lookback_days, (cfg.run_date - dt.date.min).days)
    return [cfg.run_date - dt.timedelta(days=d) for d in range(days, 0, -1)]


def _is_id(value) -> bool:
    try:
        return isinstance(value, str) and len(value) == 16 and int(value, 16) >= 0
    except ValueError:
        return False


# Only these are read, so extra columns in a signatures file do no harm.
_HISTORY_COLUMNS = ("article_id", "content_hash", "minhash", "published_at")


def history_schema_problem(schema) -> str | None:
    """Why a signatures file with this Arrow schema cannot be read back (one line), or None when it can.

    Only what the reader relies on is checked (strings, a list of integers, a timestamp), not the exact types of
    SIGNATURES: other integer widths load the same, and out-of-range values are counted as incompatible rows."""
    import pyarrow as pa

    def is_str(t):
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    def is_int_list(t):
        return (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_integer(t.value_type)

    wanted = {
        "article_id": is_str,
        "content_hash": is_str,
        "minhash": is_int_list,
        "published_at": pa.types.is_timestamp,
    }
    problems = []
    for name, fits in wanted.items():
        found = schema.get_all_field_indices(name)
        if not found:
            problems.append(f"no {name} column")
        elif len(found) > 1:
            problems.append(f"{len(found)} {name} columns")
        elif not fits(schema.field(found[0]).type):
            problems.append(f"{name} is {schema.field(found[0]).type}")
    return "; ".join(problems) or None


def _one_line(error: Exception) -> str:
    """An exception as a short single line: Arrow's messages can run over several lines of internal detail."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _history_paths(output: str, day: dt.date) -> list[str]:
    """The signature files stored for one run date, sorted (none when the folder does not exist)."""
    from apache_beam.io.filesystems import FileSystems

    pattern = FileSystems.join(_signature_dir(output, day), "*.parquet")
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # noqa: BLE001 - Beam raises a bare error when the folder does not exist (first runs)
        return []


def _open(path: str):
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def check_history(cfg: DedupConfig) -> list[tuple[str, str]]:
    """(path, one-line reason) for each signatures file of the lookback window that a run cannot read.

    Driver-side, before a run: only footers are read, so it costs one small read per file. It never raises; a
    file listed here is skipped by the run (counted as `dedup.history_unreadable`), which can only miss
    duplicates of older articles, never drop an article. Damage inside the data pages, behind an intact footer,
    is found only when the run reads the file (and skipped the same way)."""
    import pyarrow.parquet as pq

    bad = []
    for day in history_dates(cfg):
        for path in _history_paths(cfg.output, day):
            try:
                with _open(path) as f:
                    problem = history_schema_problem(pq.read_metadata(f).schema.to_arrow_schema())
            except Exception as e:  # noqa: BLE001 - any damage is reported, none is fatal
                problem = _one_line(e)
            if problem:
                bad.append((path, problem))
    return bad


def _load_history_file(path: str, cfg: DedupConfig) -> tuple[_Nodes, int]:
    """The comparable stored signatures of one file as history nodes, and how many rows were incompatible.
    Raises on a file that cannot be read."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with _open(path) as f:
        table = pq.read_table(f, columns=list(_HISTORY_COLUMNS))
    problem = history_schema_problem(table.schema)
    if problem:
        raise ValueError(problem)
    none = _Nodes(np.zeros(0, np.uint64), [], np.zeros((0, cfg.num_perm), np.uint16))
    # A signature of another length or value range was made with other settings and cannot be compared.
    fits = pc.fill_null(pc.equal(pc.list_value_length(table["minhash"]), cfg.num_perm), False)
    good = table.filter(fits)
    flat = pc.list_flatten(good["minhash"].combine_chunks()).to_numpy(zero_copy_only=False)
    if not good.num_rows or flat.min() < 0 or flat.max() > 0xFFFF:
        return none, table.num_rows
    sigs = flat.astype(np.uint16).reshape(good.num_rows, cfg.num_perm)
    uids, keys, rows = [], [], []
    columns = (good[c].to_pylist() for c in ("article_id", "content_hash", "published_at"))
    for i, (aid, chash, published) in enumerate(zip(*columns, strict=True)):
        if _is_id(aid) and _is_id(chash):
            uid = make_uid(aid, "", chash, cfg.shards, history=True)
            uids.append(uid)
            keys.append(node_key(uid, aid, chash, published, 0, True))
            rows.append(i)
    return _Nodes(np.array(uids, dtype=np.uint64), keys, sigs[rows]), table.num_rows - len(rows)


def read_history(day: dt.date, cfg: DedupConfig) -> Iterator[tuple[int, bytes]]:
    """Stored signatures of one previous run date as per-shard node batches (nothing when none were written).

    A file that cannot be read is skipped, counted and logged with its path rather than failing the run: stored
    signatures only turn today's repeats into duplicates, so without them some repeats stay articles, and
    nothing is lost. A damaged file would otherwise fail every run of its lookback window."""
    for path in _history_paths(cfg.output, day):
        try:
            nodes, incompatible = _load_history_file(path, cfg)
        except Exception as e:  # noqa: BLE001 - truncated, garbage, empty or wrong-schema files all land here
            count("dedup.history_unreadable")
            _LOG.warning("dedup: skipped unreadable signatures file %s (%s)", path, _one_line(e))
            continue
        if incompatible:
            count("dedup.history_incompatible", incompatible)
        if not nodes.keys:
            continue
        count("dedup.history_loaded", len(nodes.keys))
        for shard, part in _by_shard(_shards(nodes.uids)):
            yield shard, _batch("nodes", nodes.take(part))


def _ticks(_, shards: int) -> list[tuple[int, bytes]]:
    tick = _batch("tick", None)
    return [(shard, tick) for shard in range(shards)]


def _signatures_in_batches(texts: list[bytes], cfg: DedupConfig) -> np.ndarray:
    """Signatures of many texts, `batch_size` at a time to bound NumPy's temporary arrays."""
    step = cfg.batch_size
    return np.concatenate([signatures(texts[i : i + step], cfg) for i in range(0, len(texts), step)])


class _CollapseFn(beam.DoFn):
    """Per shard: signs this run's articles, then exact copies join their best-ranked twin and the rest become the
    shard's node table and LSH keys."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def process(self, keyed, history):
        shard, values = keyed
        parts = _tagged(values)
        try:
            stored = list(history[shard])  # a lazy multimap on the FnApi runners, a dict elsewhere
        except KeyError:
            stored = []
        parts["nodes"].extend(_tagged(stored).get("nodes", []))
        docs = parts.get("doc", [])
        if docs:
            count("dedup.articles_in", len(docs))
            new = _Nodes(
                np.array([d[0] for d in docs], dtype=np.uint64),
                [d[1] for d in docs],
                _signatures_in_batches([d[2] for d in docs], self._cfg),
            )
            yield beam.pvalue.TaggedOutput("sigs", (shard, _batch("sigs", (new.uids, new.sigs))))
            parts["nodes"].append(new)
        nodes = _Nodes.concat(parts["nodes"], self._cfg.num_perm)
        # The same uid twice (a stored signature in two partitions): keep its best-ranked row.
        rows = sorted(range(len(nodes.keys)), key=nodes.keys.__getitem__)
        seen_uid, rep_of_text, reps, exact = set(), {}, [], []
        for i in rows:
            key = nodes.keys[i]
            uid = key_uid(key)
            if uid in seen_uid:
                continue
            seen_uid.add(uid)
            rep = rep_of_text.setdefault(key & _M, key)
            if rep == key:
                reps.append(i)
            elif key_is_new(key):  # two stored copies need no edge: neither is output
                exact.append((key, rep))
        if exact:
            count("dedup.exact_pairs", len(exact))
            dup, rep = (np.array([key_uid(k) for k in col], dtype=np.uint64) for col in zip(*exact, strict=True))
            yield beam.pvalue.TaggedOutput("edges", _batch("edges", (dup, rep)))
        yield beam.pvalue.TaggedOutput("keys", (shard, _batch("keys", (nodes.uids, nodes.keys))))
        table = nodes.take(sorted(reps))
        yield shard, _batch("table", table)
        if not reps:
            return
        keys = band_keys(table.sigs, self._cfg.bands)
        flat_keys = keys.ravel()
        flat_uids = np.repeat(table.uids, keys.shape[1])
        for band_shard, sel in _by_shard((flat_keys % _M64(self._cfg.shards)).astype(np.int64)):
            yield beam.pvalue.TaggedOutput("bands", (band_shard, _batch("bands", (flat_keys[sel], flat_uids[sel]))))


class _CandidatesFn(beam.DoFn):
    """Per band shard: members sharing a band key -> candidate pairs, routed to the first member's shard."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def process(self, keyed):
        _, values = keyed
        bands = _tagged(values)["bands"]
        keys = np.concatenate([b[0] for b in bands])
        uids = np.concatenate([b[1] for b in bands])
        a, b, capped, skipped = bucket_pairs(keys, uids, self._cfg.max_bucket_size)
        if capped:
            count("dedup.buckets_capped", capped)
            count("dedup.pairs_skipped", skipped)
        hist = _M64(_HIST_BIT)
        keep = ((a & hist) == 0) | ((b & hist) == 0)  # two stored articles need not be compared again
        a, b = a[keep], b[keep]
        for shard, sel in _by_shard(_shards(a)):
            yield shard, _batch("pairs", (a[sel], b[sel]))


def _table(parts: dict[str, list]) -> tuple[_Nodes, dict[int, int]]:
    tables = parts.get("table", [])
    table = _Nodes.concat(tables, tables[0].sigs.shape[1] if tables else 0)
    return table, {u: i for i, u in enumerate(table.uids.tolist())}


class _AttachFn(beam.DoFn):
    """Per shard: candidate pairs pick up their first member's signature and move to the second member's shard."""

    def process(self, keyed):
        _, values = keyed
        parts = _tagged(values)
        if not parts.get("pairs"):
            return
        table, index = _table(parts)
        a = np.concatenate([p[0] for p in parts["pairs"]])
        b = np.concatenate([p[1] for p in parts["pairs"]])
        ab = np.unique(np.stack([a, b], axis=1), axis=0)  # a pair found in several band shards is checked once
        rows = np.array([index[u] for u in ab[:, 0].tolist()], dtype=np.int64)
        for shard, sel in _by_shard(_shards(ab[:, 1])):
            yield shard, _batch("half", (ab[sel, 0], ab[sel, 1], table.sigs[rows[sel]]))


class _VerifyFn(beam.DoFn):
    """Per shard: estimated similarity of each candidate pair; pairs at or above the threshold become edges."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def process(self, keyed):
        _, values = keyed
        parts = _tagged(values)
        halves = parts.get("half")
        if not halves:
            return
        table, index = _table(parts)
        a = np.concatenate([h[0] for h in halves])
        b = np.concatenate([h[1] for h in halves])
        a_sigs = np.concatenate([h[2] for h in halves])
        rows = np.array([index[u] for u in b.tolist()], dtype=np.int64)
        sims = estimate_similarity(a_sigs, table.sigs[rows])
        ok = sims >= self._cfg.threshold
        count("dedup.pairs_compared", int(sims.size))
        count("dedup.pairs_verified", int(ok.sum()))
        if ok.any():
            yield _batch("edges", (a[ok], b[ok]))


def _graph_shards(uids: np.ndarray, shards: int) -> np.ndarray:
    return _shards(uids) % shards


def _route(a: np.ndarray, b: np.ndarray, shards: int) -> Iterator[tuple[int, bytes]]:
    """Each undirected edge to both endpoints' shards, so that every node sees all of its neighbours."""
    u, v = np.concatenate([a, b]), np.concatenate([b, a])
    for shard, sel in _by_shard(_graph_shards(u, shards)):
        yield shard, _batch("adjacent", (u[sel], v[sel]))


def _route_batch(data: bytes, shards: int) -> Iterator[tuple[int, bytes]]:
    _, (a, b) = pickle.loads(data)
    return _route(a, b, shards)


def _adjacent(values: Iterable[bytes]) -> tuple[np.ndarray, np.ndarray]:
    msgs = _tagged(values)["adjacent"]
    return np.concatenate([m[0] for m in msgs]), np.concatenate([m[1] for m in msgs])


def _star_and_route(keyed, large: bool, shards: int) -> Iterator[tuple[int, bytes]]:
    a, b = star_step(*_adjacent(keyed[1]), large)
    return _route(a, b, shards)


class _FinalizeFn(beam.DoFn):
    """Per graph shard of the star forest: each node's component (its root) goes to the node's own shard."""

    def process(self, keyed):
        nodes, roots, unconverged = star_roots(*_adjacent(keyed[1]))
        if unconverged:
            count("dedup.cc_unconverged", unconverged)
        for shard, sel in _by_shard(_shards(nodes)):
            yield shard, _batch("member", (nodes[sel], roots[sel]))


class _MembersFn(beam.DoFn):
    """Per shard: each clustered node brings its canonical-order key to its component's shard."""

    def process(self, keyed):
        parts = _tagged(keyed[1])
        if not parts.get("member"):
            return
        keys = {}
        for uids, node_keys in parts.get("keys", []):
            keys.update(zip(uids.tolist(), node_keys, strict=True))
        nodes = np.concatenate([m[0] for m in parts["member"]])
        comps = np.concatenate([m[1] for m in parts["member"]])
        for shard, sel in _by_shard(_shards(comps)):
            yield shard, _batch("candidate", (comps[sel], [keys[u] for u in nodes[sel].tolist()]))


class _CanonicalFn(beam.DoFn):
    """Per shard of components: the canonical member (smallest key); the others ask it for its signature."""

    def process(self, keyed):
        members: dict[int, list] = collections.defaultdict(list)
        for comps, keys in _tagged(keyed[1])["candidate"]:
            for comp, key in zip(comps.tolist(), keys, strict=True):
                members[comp].append(key)
        dups: dict[int, list] = collections.defaultdict(list)
        roots: dict[int, list] = collections.defaultdict(list)
        for keys in members.values():
            canonical = min(keys)
            home = key_uid(canonical) >> 56
            new = [k for k in keys if k != canonical and key_is_new(k)]  # stored articles stay as they are
            dups[home].extend((key_uid(k), canonical) for k in new)
            if key_is_new(canonical):
                roots[home].append((key_uid(canonical), len(new)))
        for shard in sorted(dups.keys() | roots.keys()):
            yield shard, _batch("want", (dups.get(shard, []), roots.get(shard, [])))


class _RootSigFn(beam.DoFn):
    """Per canonical's shard: attach its signature to each duplicate's decision and send it to the duplicate."""

    def process(self, keyed):
        shard, values = keyed
        parts = _tagged(values)
        if not parts.get("want"):
            return
        table, index = _table(parts)
        out: dict[int, list] = collections.defaultdict(list)
        roots = []
        for dups, counts in parts["want"]:
            for uid, canonical in dups:
                row = index.get(key_uid(canonical))
                out[uid >> 56].append((uid, canonical, None if row is None else table.sigs[row]))
            roots.extend(counts)
        for dup_shard, items in out.items():
            yield dup_shard, _batch("dup", items)
        if roots:
            yield shard, _batch("root", roots)


_FIELDS = tuple(f.name for f in dataclasses.fields(Article))
_pack = operator.attrgetter(*_FIELDS)  # an Article as a plain tuple: ~4x cheaper to pickle through a shuffle
_F = {name: i for i, name in enumerate(_FIELDS)}


class _AssignFn(beam.DoFn):
    """Per shard: every article becomes a canonical Article (+ its Signature) or a Duplicate of its cluster root."""

    def process(self, keyed):
        parts = _tagged(keyed[1])
        dups = {u: (root, sig) for items in parts.get("dup", []) for u, root, sig in items}
        roots = dict(item for items in parts.get("root", []) for item in items)
        sig_of = {}
        for uids, sigs in parts.get("sigs", []):
            sig_of.update(zip(uids.tolist(), sigs, strict=True))
        title, source, url = _F["title"], _F["source"], _F["url"]
        records = sorted(
            ((key_uid(key), key, values, sig_of[key_uid(key)]) for key, values in parts.get("article", [])),
            key=lambda r: (r[0], r[2][title] or "", r[2][source], r[2][url] or ""),
        )
        counts = collections.Counter()
        for uid, group in itertools.groupby(records, key=lambda r: r[0]):
            (_, key, values, sig), *same = group  # `same`: the identical record again (same id, ref and text)
            hit = dups.get(uid)
            if hit is None:
                canonical = key_article_id(key)
                fields = list(values)
                fields[_F["cluster_id"]] = canonical
                fields[_F["duplicate_count"]] = roots.get(uid, 0) + len(same)
                counts["canonical"] += 1
                yield Article(*fields)
                yield beam.pvalue.TaggedOutput(
                    "signatures",
                    Signature(canonical, key_content_hash(key), tuple(sig.tolist()), values[_F["published_at"]]),
                )
            else:
                root, root_sig = hit
                canonical = key_article_id(root)
                if (root ^ key) & _M == 0:  # same content_hash
                    similarity, match = 1.0, "exact"
                else:
                    similarity = round(float(estimate_similarity(sig, root_sig)), 4) if root_sig is not None else 0.0
                    match = "near"
                counts[f"duplicates.{match}"] += 1
                yield beam.pvalue.TaggedOutput("duplicates", _duplicate(key, values, canonical, similarity, match))
            for _, _, copy, _ in same:
                counts["duplicates.exact"] += 1
                yield beam.pvalue.TaggedOutput("duplicates", _duplicate(key, copy, canonical, 1.0, "exact"))
        for name, n in counts.items():
            count(f"dedup.{name}", n)


def _duplicate(key: int, values: tuple, of: str, similarity: float, match: str) -> Duplicate:
    return Duplicate(
        article_id=key_article_id(key),
        duplicate_of=of,
        similarity=similarity,
        match=match,
        source=values[_F["source"]],
        input_ref=values[_F["input_ref"]],
        url=values[_F["url"]],
        title=values[_F["title"]],
        published_at=values[_F["published_at"]],
    )


class Dedup(beam.PTransform):
    """Article -> {'articles': canonical Articles, 'duplicates': Duplicate, 'signatures': Signature,
    'rejects': Reject}. Every input article ends in exactly one of articles, duplicates or rejects."""

    def __init__(self, cfg: DedupConfig = DedupConfig()):
        super().__init__()
        self._cfg = cfg

    def expand(self, articles):
        cfg = self._cfg
        prepared, rejects, originals = run_guarded(
            articles, "Prepare", STAGE, _PrepareFn(cfg), tags=(REJECTS, "articles")
        )
        # Stored signatures join as a side input: visible from every window when the articles are windowed
        # (streaming), and read per shard.
        history = (
            articles.pipeline
            | "HistoryDates" >> beam.Create(history_dates(cfg))
            | "ReadHistory" >> beam.FlatMap(read_history, cfg).with_output_types(_KEYED)
        )
        # One tick per shard and window, so that every shard's stored signatures take part even where this run
        # has no article of that shard. Made from the data, the ticks are in the data's windows.
        ticks = (
            prepared
            | "AnyArticle" >> beam.combiners.Count.Globally().without_defaults()
            | "TickEveryShard" >> beam.FlatMap(_ticks, cfg.shards).with_output_types(_KEYED)
        )
        collapsed = (
            (prepared, ticks)
            | "WithTicks" >> beam.Flatten()
            | "GroupNodes" >> beam.GroupByKey()
            | "Collapse"
            >> TaggedParDo(
                _CollapseFn(cfg),
                *("sigs", "edges", "bands", "keys"),
                main="tables",
                kwargs={"history": beam.pvalue.AsMultiMap(history)},
                output_types={"tables": _KEYED},
            )
        )
        tables = collapsed["tables"]
        candidates = (
            collapsed["bands"]
            | "GroupBands" >> beam.GroupByKey()
            | "Candidates" >> beam.ParDo(_CandidatesFn(cfg)).with_output_types(_KEYED)
        )
        halves = (
            (tables, candidates)
            | "WithFirst" >> beam.Flatten()
            | "GroupFirst" >> beam.GroupByKey()
            | "AttachFirst" >> beam.ParDo(_AttachFn()).with_output_types(_KEYED)
        )
        near = (
            (tables, halves)
            | "WithSecond" >> beam.Flatten()
            | "GroupSecond" >> beam.GroupByKey()
            | "Verify" >> beam.ParDo(_VerifyFn(cfg))
        )
        adjacent = (
            (collapsed["edges"], near)
            | "AllEdges" >> beam.Flatten()
            | "RouteEdges" >> beam.FlatMap(_route_batch, cfg.graph_shards).with_output_types(_KEYED)
        )
        for i in range(2 * cfg.cc_rounds):
            step = f"{'Large' if i % 2 == 0 else 'Small'}Star{i // 2}"
            adjacent = (
                adjacent
                | f"Group{step}" >> beam.GroupByKey()
                | step >> beam.FlatMap(_star_and_route, i % 2 == 0, cfg.graph_shards).with_output_types(_KEYED)
            )
        members = (
            adjacent
            | "GroupForest" >> beam.GroupByKey()
            | "Components" >> beam.ParDo(_FinalizeFn()).with_output_types(_KEYED)
        )
        wants = (
            (members, collapsed["keys"])
            | "WithKeys" >> beam.Flatten()
            | "GroupMembers" >> beam.GroupByKey()
            | "MemberKeys" >> beam.ParDo(_MembersFn()).with_output_types(_KEYED)
            | "GroupComponents" >> beam.GroupByKey()
            | "Canonical" >> beam.ParDo(_CanonicalFn()).with_output_types(_KEYED)
        )
        decisions = (
            (tables, wants)
            | "WithCanonical" >> beam.Flatten()
            | "GroupCanonical" >> beam.GroupByKey()
            | "CanonicalSignature" >> beam.ParDo(_RootSigFn()).with_output_types(_KEYED)
        )
        assigned = (
            (originals, collapsed["sigs"], decisions)
            | "WithDecisions" >> beam.Flatten()
            | "GroupDocs" >> beam.GroupByKey()
            | "Assign" >> TaggedParDo(_AssignFn(), "duplicates", "signatures", main="articles")
        )
        return {
            "articles": assigned["articles"],
            "duplicates": assigned["duplicates"],
            "signatures": assigned["signatures"],
            "rejects": rejects,
        }
