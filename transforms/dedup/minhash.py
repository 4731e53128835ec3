"""MinHash kernel in NumPy: text normalisation, word and shingle hashes, signatures, LSH band keys, similarity."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence

import numpy as np

from transforms.batching import bounded_batches
from transforms.dedup.config import DedupConfig
from transforms.dedup.profiles import Profiles

_D = DedupConfig()
_M64 = np.uint64
_M = (1 << 64) - 1
_EMPTY = np.uint32(0xFFFFFFFF)
_PROBES = 64  # optimal-densification probes before the rotation fallback (only very short texts need it)
_K = [
    _M64(x)
    for x in (
        0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x27D4EB2F165667C5, 0x85EBCA77C2B2AE63,
    )
]  # fmt: skip
_LEAD_SALT = _M64(0x5851F42D4C957F2D)

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


def _base_shingles(
    words: np.ndarray, offsets: np.ndarray, texts: Sequence[bytes], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unweighted k-shingle hashes of each text with their text index and word position, in text order.

    A text shorter than k words is one shingle; a text without words is one shingle of its own bytes."""
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
    return shingles, doc, pos


def _weigh_lead(
    shingles: np.ndarray, doc: np.ndarray, pos: np.ndarray, lead_words: int, lead_weight: int
) -> tuple[np.ndarray, np.ndarray]:
    if lead_weight > 1 and lead_words > 0:
        lead = pos < lead_words
        parts, docs = [shingles], [doc]
        for r in range(1, lead_weight):
            parts.append(_mix(shingles[lead] ^ (_LEAD_SALT * _M64(r))))
            docs.append(doc[lead])
        shingles, doc = np.concatenate(parts), np.concatenate(docs)
    return shingles, doc


def shingle_hashes(
    texts: Sequence[bytes], k: int = _D.shingle_size, lead_words: int = _D.lead_words, lead_weight: int = _D.lead_weight
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the word k-shingles of normalised texts, with each hash's text index.

    The first `lead_words` shingles of each text are repeated `lead_weight - 1` more times with different salts,
    which makes the Jaccard estimate weigh the lead more (see the defaults' note). A text shorter than k words
    is one shingle; a text without words is one shingle of its own bytes. Hashes may repeat (the set is implied).
    """
    words, offsets = word_hashes(texts)
    shingles, doc, pos = _base_shingles(words, offsets, texts, k)
    return _weigh_lead(shingles, doc, pos, lead_words, lead_weight)


def _ragged(values: np.ndarray, doc: np.ndarray, n_docs: int, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Values grouped by text (doc ascending, order kept), at most `cap` per text: (flat values, offsets n+1)."""
    if doc.size and np.any(doc[1:] < doc[:-1]):
        order = np.argsort(doc, kind="stable")
        values, doc = values[order], doc[order]
    starts = np.searchsorted(doc, np.arange(n_docs))
    keep = (np.arange(doc.size) - starts[doc]) < cap
    values, doc = values[keep], doc[keep]
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(doc, minlength=n_docs))
    return values, offsets


def profile_items(
    shingles: np.ndarray,
    doc: np.ndarray,
    pos: np.ndarray,
    n_docs: int,
    dense: np.ndarray,
    rate_bits: int,
    cap: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each text's profile: 16 bits (32-47) of the hashes of its first `dense[text]` shingles, then of a
    content-defined sample of the rest (those whose kept bits end in `rate_bits` zeros: the same shingles in every
    text), in text order, at most `cap` per text. So the first min(dense, size) entries are the dense start, an
    entry's index orders it in the text, and the sample criterion can be applied to a stored profile.

    Profiles are only looked up in each other (a few hundred entries against a few hundred), where 16 bits match
    by chance in ~0.3% of lookups, far below what the decision thresholds can feel; 32 bits cost the stage ~20 MB
    and a few percent of its time per 10k articles, shuffled twice."""
    sel = (pos < dense[doc]) | (((shingles >> _M64(32)) & _M64((1 << rate_bits) - 1)) == 0)
    return _ragged(((shingles[sel] >> _M64(32)) & _M64(0xFFFF)).astype(np.uint16), doc[sel], n_docs, cap)


ANCHOR_BIT = _M64(1 << 63)  # set in anchor keys, clear in LSH band keys: the two never share a bucket


def anchor_keys(
    shingles: np.ndarray, doc: np.ndarray, n_docs: int, k: int, length: int, rate_bits: int, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of a content-defined sample of each text's word `length`-grams (ANCHOR_BIT set), at most `cap`.

    A `length`-gram is hashed from the two k-shingles at its ends (so it costs one pass over the shingles). A run
    of text reused verbatim by another article shares about one anchor per 2**rate_bits words with it, while
    long n-grams shared by chance are rare: candidates for follow-ups, whose overall similarity is low."""
    gap = max(length - k, 0)
    n = shingles.size - gap
    if n <= 0:
        return np.zeros(0, np.uint64), np.zeros(n_docs + 1, np.int64)
    # Sampled on the first shingle's bits (content-defined, and independent of the profile's sample), so only the
    # sampled n-grams are hashed.
    at = np.flatnonzero(((shingles[:n] >> _M64(8)) & _M64((1 << rate_bits) - 1)) == 0)
    at = at[doc[at] == doc[at + gap]]
    s = _mix(shingles[at] * _K[3] + shingles[at + gap] * _K[4])
    return _ragged(s | ANCHOR_BIT, doc[at], n_docs, cap)


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


def signatures(texts: Sequence[bytes], cfg: DedupConfig = _D) -> np.ndarray:
    """(len(texts), num_perm) uint16 MinHash signatures of normalised texts (`normalize_text` output)."""
    if not texts:
        return np.zeros((0, cfg.num_perm), dtype=np.uint16)
    sh, doc = shingle_hashes(texts, cfg.shingle_size, cfg.lead_words, cfg.lead_weight)
    return minhash_from_shingles(sh, doc, len(texts), cfg.num_perm)


def shingle_set(text: str, cfg: DedupConfig = _D) -> set[int]:
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


def _batches(texts: Sequence[bytes], cfg: DedupConfig) -> list[tuple[int, int]]:
    """[start, end) ranges of texts hashed together: about `batch_bytes` of text each."""
    return bounded_batches([len(t) for t in texts], len(texts), cfg.batch_bytes)


def sketches(
    texts: Sequence[bytes], cfg: DedupConfig = _D, leads: Sequence[tuple[int, int]] | None = None
) -> tuple[np.ndarray, Profiles]:
    """Signatures and verification profiles (dense lead, shingle sample, anchors) of normalised texts, from one
    pass over their words; `leads`: each text's lead (where it starts, its paragraph's words; profiles.lead_span;
    default (0, 0))."""
    n = len(texts)
    if not n:
        return np.zeros((0, cfg.num_perm), dtype=np.uint16), Profiles.empty()
    lead = np.zeros((n, 2), np.int64) if leads is None else np.asarray(leads, dtype=np.int64).reshape(n, 2)
    words, offsets = word_hashes(texts)
    shingles, doc, pos = _base_shingles(words, offsets, texts, cfg.shingle_size)
    dense = lead[:, 0] + cfg.dense_words
    items, i_off = profile_items(shingles, doc, pos, n, dense, cfg.sample_bits, cfg.max_samples)
    anchors, a_off = anchor_keys(shingles, doc, n, cfg.shingle_size, cfg.anchor_words, cfg.anchor_bits, cfg.max_anchors)
    sh, sdoc = _weigh_lead(shingles, doc, pos, cfg.lead_words, cfg.lead_weight)
    return minhash_from_shingles(sh, sdoc, n, cfg.num_perm), Profiles(items, i_off, anchors, a_off, lead)


def sketches_in_batches(
    texts: list[bytes], cfg: DedupConfig, leads: list[tuple[int, int]]
) -> tuple[np.ndarray, Profiles]:
    """`sketches` of many texts, a few at a time (_batches)."""
    parts = [sketches(texts[lo:hi], cfg, leads[lo:hi]) for lo, hi in _batches(texts, cfg)]
    if not parts:
        return sketches([], cfg)
    return np.concatenate([p[0] for p in parts]), Profiles.concat([p[1] for p in parts])
