"""Deduplicate 3D poses: drop a pose within D mean per-joint distance of an already kept pose.

Greedy in the given order, so the result is deterministic. Poses are compared after their heading
(yaw about the up axis) is removed: the bank draws azimuths uniformly, so the same pose facing
another way adds nothing.

Not quadratic. The MPJPE is a metric (a sum of per-joint Euclidean norms), so with a few pivot
poses p_1..p_m the triangle inequality gives, for any two poses q and x,
    |MPJPE(q, p_i) - MPJPE(x, p_i)| <= MPJPE(q, x),
and MPJPE(q, x) <= D implies that their pivot embeddings (MPJPE to each pivot, m numbers) are within
D of each other in the max norm (LAESA, Mico et al. 1994). That low-dimensional box search runs in a
k-d tree, and the exact MPJPE is checked on its few candidates only. (A k-d tree on the raw 3J
coordinates is no better than brute force here: the only bound there, ||d||_1 <= sqrt(3) J D, is a
huge radius in 39 dimensions.) Poses are decided in chunks, each against the poses already *kept*;
kept poses are at least D apart, so few fall in any query's box (their number grows with how
densely the kept poses fill the query's neighbourhood, not with N as such). The kept set grows, so it
lives in trees of doubling sizes (Bentley and Saxe's logarithmic method): each kept pose is re-indexed
O(log N) times, and each chunk queries O(log N) trees (scipy's threads). Inside a chunk, the pairs are
found in a small tree of their own and the chunk is decided in order; only rows that this leaves
kept are searched among the earlier kept poses. bench/bench_dedup.py measures it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from ..geometry import remove_heading
from ..metrics import mpjpe
from ..progress import ProgressFactory, no_progress
from ..skeleton import Skeleton

_CHUNK = 512  # poses decided together
_BUFFER = 2048  # kept poses collected before they get a tree of their own
_ROUNDS = 4  # rounds of asking a chunk's provisionally kept rows before asking all the rest
_PAIR_BLOCK = 65536  # candidate pairs checked at a time (bounds the memory)
_LEAF = 128  # k-d tree leaf size: box queries ran 1.7x faster than with 16 (the default)
_PIVOTS = 12  # pivot poses (12: 152 s at 1M poses, 8: 177 s; 16 was slower at 300k)


def pivot_embedding(poses: npt.NDArray[np.float64], threshold: float, num_pivots: int = _PIVOTS) -> npt.NDArray[np.float64]:
    """(N, m) MPJPE of each pose (N, J, 3) to m pivot poses chosen to separate near non-duplicates.

    The box search returns, besides the duplicates, the pairs that no pivot separates (|MPJPE(q, p) -
    MPJPE(x, p)| <= threshold for every pivot p). So, on an evenly strided sample of at most 4096 poses,
    the pivots are picked greedily among 256 candidates to separate the most sample pairs that lie
    between 1 and 4 thresholds apart (the near pairs that would become false candidates): 20-40% fewer
    candidates than far-apart pivots (farthest-point traversal), which remain the fallback when the
    sample has no such pairs. Deterministic.
    """
    sample = poses[:: max(1, len(poses) // 4096)]
    candidates = sample[:: max(1, len(sample) // 256)]
    to_candidates = _mpjpe_table(sample, candidates)  # (S, C)
    near = _mpjpe_table(sample[:512], sample)
    rows, cols = np.nonzero((near > threshold) & (near <= 4 * threshold))
    stride = max(1, len(rows) // 65536)  # bounds the (P, C) table below
    rows, cols = rows[::stride], cols[::stride]
    separates = np.abs(to_candidates[rows] - to_candidates[cols]) > threshold  # (P, C)
    chosen: list[int] = []
    if len(rows):
        separated = np.zeros(len(rows), dtype=bool)
        for _ in range(min(num_pivots, len(candidates))):
            gain = (separates & ~separated[:, None]).sum(axis=0)
            gain[chosen] = -1
            chosen.append(int(np.argmax(gain)))
            separated |= separates[:, chosen[-1]]
    else:
        chosen = [0]
        nearest = mpjpe(candidates, candidates[0])
        for _ in range(1, min(num_pivots, len(candidates))):
            chosen.append(int(np.argmax(nearest)))
            nearest = np.minimum(nearest, mpjpe(candidates, candidates[chosen[-1]]))
    return np.stack([mpjpe(poses, candidates[c]) for c in chosen], axis=1)


def _mpjpe_table(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """(A, B) float32 MPJPE between every pose of a (A, J, 3) and of b (B, J, 3); for choosing pivots."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    out = np.empty((len(a), len(b)), dtype=np.float32)
    step = max(1, 2**20 // (len(b) * a.shape[1]))  # bounds the (step, B, J, 3) temporary to ~12 MB
    for start in range(0, len(a), step):
        diff = a32[start : start + step, None] - b32[None]
        out[start : start + step] = np.sqrt(np.einsum("abjc,abjc->abj", diff, diff)).mean(axis=2)
    return out


class _PairDistance:
    """Whether index pairs of poses lie within the threshold: float32 first, float64 where it is close.

    The float32 MPJPE is 2-3x faster (half the bytes gathered); its rounding error is far below 1e-6 of
    the poses' unit, so only pairs within that of the threshold are decided again in float64, which
    keeps the result identical to a float64 greedy.
    """

    def __init__(self, poses: npt.NDArray[np.float64], threshold: float) -> None:
        self.poses = poses
        self.poses_f32 = poses.astype(np.float32)
        self.threshold = threshold
        self.tolerance = 1e-6 * max(1.0, float(np.abs(poses).max(initial=0.0)))

    def within(self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """(P,) MPJPE(poses[a], poses[b]) <= threshold, for index arrays a, b of length P."""
        out = np.zeros(len(a), dtype=bool)
        for start in range(0, len(a), _PAIR_BLOCK):
            ab, bb = a[start : start + _PAIR_BLOCK], b[start : start + _PAIR_BLOCK]
            diff = self.poses_f32[ab] - self.poses_f32[bb]
            dist = np.sqrt(np.einsum("pjc,pjc->pj", diff, diff)).mean(axis=1)
            close = np.abs(dist - self.threshold) <= self.tolerance
            inside = dist <= self.threshold
            if close.any():
                inside[close] = mpjpe(self.poses[ab[close]], self.poses[bb[close]]) <= self.threshold
            out[start : start + _PAIR_BLOCK] = inside
        return out


class _KeptIndex:
    """The kept poses, searchable by a max-norm box in the pivot embedding: trees of doubling sizes
    plus a small buffer."""

    def __init__(self, embedding: npt.NDArray[np.float64], radius: float) -> None:
        self.embedding = embedding
        self.radius = radius
        self.workers = max(1, min(8, os.cpu_count() or 1))  # threads of one tree query (scipy's own)
        self.trees: list[tuple[object, npt.NDArray[np.int64]]] = []  # (cKDTree, pose indices)
        self.buffer: list[int] = []

    def candidates(self, query: npt.NDArray[np.int64]) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (position in `query`, kept pose) within the box, as two index arrays."""
        from scipy.spatial import cKDTree

        groups = list(self.trees)
        if self.buffer:
            members = np.asarray(self.buffer, dtype=np.int64)
            groups.append((cKDTree(self.embedding[members], leafsize=_LEAF), members))
        points = self.embedding[query]
        qs, ks = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for tree, members in groups:
            found = tree.query_ball_point(points, self.radius, p=np.inf, workers=self.workers, return_sorted=False)
            counts = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
            qs.append(np.repeat(np.arange(len(found)), counts))
            ks.append(members[np.fromiter(itertools.chain.from_iterable(found), dtype=np.int64, count=int(counts.sum()))])
        return np.concatenate(qs), np.concatenate(ks)

    def add(self, rows: npt.NDArray[np.int64]) -> None:
        from scipy.spatial import cKDTree

        self.buffer.extend(rows.tolist())
        if len(self.buffer) < _BUFFER:
            return
        members = np.asarray(self.buffer, dtype=np.int64)
        self.buffer = []
        # Merge equal-sized trees, like carrying in a binary counter.
        while self.trees and len(self.trees[-1][1]) <= len(members):
            members = np.concatenate([self.trees.pop()[1], members])
        self.trees.append((cKDTree(self.embedding[members], leafsize=_LEAF), members))


def greedy_keep_mask(poses: npt.NDArray[np.floating], threshold: float, progress: ProgressFactory = no_progress,
                     description: str = "deduplicating") -> npt.NDArray[np.bool_]:  # fmt: skip
    """(N,) keep-mask: pose i is kept unless a kept pose h < i lies within `threshold` MPJPE.

    Args:
        poses: (N, J, 3) poses (any unit; `threshold` in the same unit).
        threshold: the duplicate distance (inclusive).
        progress: reports the chunks of _CHUNK poses as they are decided (under `description`).
    """
    n = len(poses)
    poses = np.asarray(poses, dtype=np.float64)
    embedding = np.ascontiguousarray(pivot_embedding(poses, threshold))
    # A hair of slack so that float rounding never loses a pair at the exact bound.
    radius = threshold * (1 + 1e-9) + 1e-12
    keep = np.zeros(n, dtype=bool)
    starts = range(0, n, _CHUNK)
    chunks = progress(starts, f"{description} ({n} poses, chunks of {_CHUNK})", len(starts))
    _decide_chunks(embedding, _PairDistance(poses, threshold), radius, keep, _KeptIndex(embedding, radius), chunks)
    return keep


def _decide_chunks(
    embedding: npt.NDArray[np.float64],
    distance: _PairDistance,
    radius: float,
    keep: npt.NDArray[np.bool_],
    kept: _KeptIndex,
    starts: Iterable[int],
) -> None:
    """The greedy pass of `greedy_keep_mask`, chunk by chunk (first rows `starts`), filling `keep` in place."""
    n = len(embedding)
    for start in starts:
        rows = np.arange(start, min(n, start + _CHUNK))
        later_close = _close_pairs_in_chunk(embedding, distance, rows, radius)
        # Whether a row duplicates a pose kept before the chunk (the expensive query) matters only
        # for rows that no kept row of the chunk already drops. So decide the chunk as if the rows
        # not asked yet had no such duplicate, ask just the rows kept that way, and repeat while an
        # answer changes the picture (a row found to be a duplicate frees the rows it dropped).
        # Such chains can be long (a take replaying an earlier one), so after a few rounds every row
        # left is asked at once. Measured: 2.4k of 85k asked rows have a duplicate before the chunk.
        dup_before = np.zeros(len(rows), dtype=bool)
        asked = np.zeros(len(rows), dtype=bool)
        for round_ in range(_ROUNDS + 1):
            ask = ~asked if round_ == _ROUNDS else _greedy_in_chunk(later_close, dup_before) & ~asked
            if not ask.any():
                break
            dup_before[ask] = _has_kept_duplicate(rows[ask], distance, kept)
            asked |= ask
            if not dup_before[ask].any():
                break  # every row kept by the decision below has been asked
        keep[rows] = _greedy_in_chunk(later_close, dup_before)
        kept.add(rows[keep[rows]])


def _close_pairs_in_chunk(
    embedding: npt.NDArray[np.float64], distance: _PairDistance, rows: npt.NDArray[np.int64], radius: float
) -> npt.NDArray[np.bool_]:
    """(C, C) bool: [h, i] is True when row i > h of the chunk lies within the threshold of row h."""
    from scipy.spatial import cKDTree

    later_close = np.zeros((len(rows), len(rows)), dtype=bool)
    pairs = cKDTree(embedding[rows]).query_pairs(radius, p=np.inf, output_type="ndarray")
    if len(pairs):
        lo, hi = pairs.min(axis=1), pairs.max(axis=1)
        close = distance.within(rows[lo], rows[hi])
        later_close[lo[close], hi[close]] = True
    return later_close


def _greedy_in_chunk(later_close: npt.NDArray[np.bool_], dup_before: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """(C,) the greedy decision inside a chunk, given which rows duplicate a pose kept before it."""
    alive = ~dup_before
    for h in range(len(alive)):
        if alive[h]:
            alive &= ~later_close[h]
    return alive


def _has_kept_duplicate(query: npt.NDArray[np.int64], distance: _PairDistance, kept: _KeptIndex) -> npt.NDArray[np.bool_]:
    """(Q,) whether each query pose lies within the threshold of a pose kept so far."""
    found = np.zeros(len(query), dtype=bool)
    if len(query):
        q, k = kept.candidates(query)
        found[q[distance.within(query[q], k)]] = True
    return found


def deduplicate(poses_m: npt.NDArray[np.floating], skeleton: Skeleton, threshold_mm: float, *,
                progress: ProgressFactory = no_progress, description: str = "deduplicating") -> npt.NDArray[np.bool_]:  # fmt: skip
    """Keep-mask (N,) of body-centred world poses (N, J, 3) in metres; `threshold_mm` <= 0 keeps all.
    `progress` reports the chunks of poses as they are decided."""
    n = len(poses_m)
    if threshold_mm <= 0 or n < 2:
        return np.ones(n, dtype=bool)
    aligned = remove_heading(
        np.asarray(poses_m, dtype=np.float64), skeleton.index("left_hip"), skeleton.index("right_hip")
    )
    return greedy_keep_mask(aligned, threshold_mm / 1000.0, progress, description)
