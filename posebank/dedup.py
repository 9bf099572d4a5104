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
kept poses are at least D apart, so few fall in any query's box. The kept set grows, so it lives in
trees of doubling sizes (Bentley and Saxe's logarithmic method): each kept pose is re-indexed
O(log N) times, and each chunk queries O(log N) trees, in parallel threads.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from .geometry import remove_heading
from .skeleton import Skeleton

_CHUNK = 512  # poses decided together
_BUFFER = 2048  # kept poses collected before they get a tree of their own
_PIVOTS = 8  # pivot poses of the embedding (8 measured fastest of 6-24 on 100k poses)


def mpjpe(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """Mean per-joint position error (...) between poses (..., J, 3), in their units."""
    return np.linalg.norm(a - b, axis=-1).mean(axis=-1)


def pivot_embedding(poses: npt.NDArray[np.float64], num_pivots: int = _PIVOTS) -> npt.NDArray[np.float64]:
    """(N, m) MPJPE of each pose (N, J, 3) to m pivots chosen by farthest-point traversal.

    Deterministic: the traversal starts at pose 0 and runs on an evenly strided sample of at most
    4096 poses; far-apart pivots spread the embedding, which is what makes the box search selective.
    """
    sample = poses[:: max(1, len(poses) // 4096)]
    chosen = [0]
    nearest = mpjpe(sample, sample[0])
    for _ in range(1, min(num_pivots, len(sample))):
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, mpjpe(sample, sample[chosen[-1]]))
    pivots = sample[chosen]
    return np.stack([mpjpe(poses, p) for p in pivots], axis=1)


class _KeptIndex:
    """The kept poses, searchable by a max-norm box in the pivot embedding: trees of doubling sizes
    plus a small buffer."""

    def __init__(self, flat: npt.NDArray[np.float64], radius: float, pool: Executor) -> None:
        self.flat = flat
        self.radius = radius
        self.pool = pool  # the trees are searched in parallel (scipy releases the GIL while it searches)
        self.trees: list[tuple[object, npt.NDArray[np.int64]]] = []  # (cKDTree, pose indices)
        self.buffer: list[int] = []

    def candidates(self, query_tree: object, query_rows: npt.NDArray[np.int64]) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (query pose, kept pose) within the box, as two index arrays."""
        from scipy.spatial import cKDTree

        groups = list(self.trees)
        if self.buffer:
            members = np.asarray(self.buffer, dtype=np.int64)
            groups.append((cKDTree(self.flat[members]), members))
        def search(group: tuple[object, npt.NDArray[np.int64]]) -> tuple[np.ndarray, np.ndarray]:
            tree, members = group
            pairs = query_tree.sparse_distance_matrix(tree, self.radius, p=np.inf, output_type="ndarray")
            return query_rows[pairs["i"]], members[pairs["j"]]

        found = list(self.pool.map(search, groups)) if len(groups) > 1 else [search(g) for g in groups]
        qs = [q for q, _ in found]
        ks = [k for _, k in found]
        if not qs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
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
        self.trees.append((cKDTree(self.flat[members]), members))


def greedy_keep_mask(poses: npt.NDArray[np.floating], threshold: float) -> npt.NDArray[np.bool_]:
    """(N,) keep-mask: pose i is kept unless a kept pose h < i lies within `threshold` MPJPE.

    Args:
        poses: (N, J, 3) poses (any unit; `threshold` in the same unit).
        threshold: the duplicate distance (inclusive).
    """
    n = len(poses)
    poses = np.asarray(poses, dtype=np.float64)
    flat = np.ascontiguousarray(pivot_embedding(poses))
    # A hair of slack so that float rounding never loses a pair at the exact bound.
    radius = threshold * (1 + 1e-9) + 1e-12
    keep = np.zeros(n, dtype=bool)
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        _decide_chunks(poses, flat, threshold, radius, keep, _KeptIndex(flat, radius, pool))
    return keep


def _decide_chunks(
    poses: npt.NDArray[np.float64],
    flat: npt.NDArray[np.float64],
    threshold: float,
    radius: float,
    keep: npt.NDArray[np.bool_],
    kept: _KeptIndex,
) -> None:
    """The greedy pass of `greedy_keep_mask`, chunk by chunk, filling `keep` in place."""
    from scipy.spatial import cKDTree

    n = len(poses)
    for start in range(0, n, _CHUNK):
        rows = np.arange(start, min(n, start + _CHUNK))
        chunk_tree = cKDTree(flat[rows])
        # Duplicate pairs inside the chunk (cheap: a small tree).
        pairs = chunk_tree.query_pairs(radius, p=np.inf, output_type="ndarray")
        earlier_of: dict[int, list[int]] = {}
        if len(pairs):
            a, b = rows[pairs[:, 0]], rows[pairs[:, 1]]
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            close = mpjpe(poses[lo], poses[hi]) <= threshold
            for h, l in zip(hi[close].tolist(), lo[close].tolist()):
                earlier_of.setdefault(h, []).append(l)
        # Whether a row duplicates a pose kept before the chunk (the expensive query) matters only
        # for rows that no kept row of the chunk already drops. So decide the chunk in order,
        # treating unknown rows as kept, query just those, and repeat while a query changes the
        # picture (a row found to be a duplicate may free later rows): each row is queried once.
        dup_before: dict[int, bool] = {}
        while True:
            kept_here: dict[int, bool] = {}
            unknown = []
            for i in rows.tolist():
                if any(kept_here[e] for e in earlier_of.get(i, ())):
                    kept_here[i] = False
                elif i in dup_before:
                    kept_here[i] = not dup_before[i]
                else:
                    kept_here[i] = True
                    unknown.append(i)
            if not unknown:
                break
            query = np.asarray(unknown, dtype=np.int64)
            q, k = kept.candidates(cKDTree(flat[query]), query)
            hit = set(q[mpjpe(poses[q], poses[k]) <= threshold].tolist()) if len(q) else set()
            dup_before.update((i, i in hit) for i in unknown)
        for i, is_kept in kept_here.items():
            keep[i] = is_kept
        kept.add(rows[keep[rows]])


def deduplicate(poses_m: npt.NDArray[np.floating], skeleton: Skeleton, threshold_mm: float) -> npt.NDArray[np.bool_]:
    """Keep-mask (N,) of body-centred world poses (N, J, 3) in metres; `threshold_mm` <= 0 keeps all."""
    n = len(poses_m)
    if threshold_mm <= 0 or n < 2:
        return np.ones(n, dtype=bool)
    aligned = remove_heading(
        np.asarray(poses_m, dtype=np.float64), skeleton.index("left_hip"), skeleton.index("right_hip")
    )
    return greedy_keep_mask(aligned, threshold_mm / 1000.0)
