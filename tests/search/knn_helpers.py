"""Test helpers for masked search: seeded pose-like data, the literal distance, a tie-aware check.

The literal distance here is written from the definition (docs/design.md, paper eq. 9) without any code
from posebank.search, so it checks the reference engine independently.
"""

from __future__ import annotations

import numpy as np

from posebank.search.synthetic import random_masks, random_poses_2d, random_queries

ATOL = 1e-5  # a returned distance vs the literal distance of the returned row (both ~float64)
# Ties: engines rank by float32 cosines, whose resolution near cos = 1 is ~6e-8 (and a few times that
# after rounding), i.e. d^2 = 2 - 2 cos to ~1e-7..1e-6. Rows closer than that in d^2 are ties: with
# 2-joint masks a 20k bank has many rows at d ~ 1e-5..1e-4 of a query, in any order (measured).
SQ_TOL = 2e-6


def literal_distance(bank_pose: np.ndarray, query: np.ndarray, mask: np.ndarray, eps: float = 1e-3) -> float:
    """||n_S(q) - n_S(b)|| for one pair, from the definition; inf when b is degenerate on the mask."""
    q = query[mask].astype(np.float64)
    b = bank_pose[mask].astype(np.float64)
    q = q - q.mean(axis=0)
    b = b - b.mean(axis=0)
    full = bank_pose.astype(np.float64)
    full_spread = np.linalg.norm(full - full.mean(axis=0))
    if np.linalg.norm(b) <= eps * full_spread:
        return float("inf")
    return float(np.linalg.norm(q / np.linalg.norm(q) - b / np.linalg.norm(b)))


def brute_force(bank: np.ndarray, queries: np.ndarray, masks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair by literal_distance, then a full sort: (Q, k) distances and ids (-1 where inf)."""
    dist = np.array([[literal_distance(b, q, m) for b in bank] for q, m in zip(queries, masks)])
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    d = np.take_along_axis(dist, order, axis=1)
    return d, np.where(np.isfinite(d), order, -1)


def assert_knn_matches(
    bank: np.ndarray,
    queries: np.ndarray,
    masks: np.ndarray,
    distances: np.ndarray,
    ids: np.ndarray,
    ref_distances: np.ndarray,
    ref_ids: np.ndarray,
    atol: float = ATOL,
    sq_tol: float = SQ_TOL,
) -> None:
    """Tie-aware equality of a kNN result with a reference computed with at least k + 1 neighbours.

    - squared distances equal the reference's first k within sq_tol (inf where it has no row);
    - each returned id really is at its reported distance (literal check, atol) and appears once;
    - ids equal the reference's wherever the reference's squared distance is apart from its
      neighbours' (position j is compared only if both gaps exceed sq_tol).
    """
    q, k = distances.shape
    assert ids.shape == (q, k) and ids.dtype == np.int64 and distances.dtype == np.float32
    assert ref_distances.shape[1] >= k + 1 or ref_distances.shape[1] == len(bank)
    np.testing.assert_array_equal(np.isinf(distances), np.isinf(ref_distances[:, :k]))
    finite = np.isfinite(distances)
    ref_sq = ref_distances.astype(np.float64) ** 2
    np.testing.assert_allclose(distances[finite].astype(np.float64) ** 2, ref_sq[:, :k][finite], atol=sq_tol, rtol=0)
    assert np.all(np.diff(distances, axis=1)[np.isfinite(distances[:, 1:])] >= 0), "rows not sorted"
    for i in range(q):
        valid = ids[i][ids[i] >= 0]
        assert len(set(valid.tolist())) == len(valid), f"query {i}: duplicate ids {ids[i]}"
        assert np.array_equal(ids[i] >= 0, np.isfinite(distances[i])), f"query {i}: id/-1 and inf disagree"
        for j in range(k):
            if ids[i, j] < 0:
                continue
            true = literal_distance(bank[ids[i, j]], queries[i], masks[i])
            assert abs(true - distances[i, j]) <= atol, f"query {i} slot {j}: id {ids[i, j]} is at {true}"
            ref = ref_sq[i]
            before = ref[j] - ref[j - 1] if j > 0 else np.inf
            after = ref[j + 1] - ref[j] if j + 1 < len(ref) else np.inf
            if before > sq_tol and after > sq_tol:
                assert ids[i, j] == ref_ids[i, j], f"query {i} slot {j}: {ids[i, j]} != {ref_ids[i, j]}"


def masks_with_every_size(num: int, num_joints: int, rng: np.random.Generator) -> np.ndarray:
    """(num, J) masks cycling through 2 .. J joints, joints chosen at random."""
    masks = np.zeros((num, num_joints), dtype=bool)
    for i in range(num):
        size = 2 + i % (num_joints - 1)
        masks[i, rng.choice(num_joints, size=size, replace=False)] = True
    return masks


def pose_data(
    n: int, q: int, seed: int = 0, degenerate_rows: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A pose-like bank (n, 13, 2) float32, queries (q, 13, 2) in pixels, and mixed masks (q, 13).

    Half the masks are MPII-like (random_masks), half cycle through every size 2..13. With
    degenerate_rows, row 3 is all zeros and row 7 has its two ankles and knees on one point (so
    it is degenerate for masks within those joints) to exercise the "never wins" rule.
    """
    rng = np.random.default_rng(seed)
    bank = random_poses_2d(n, rng)
    queries = random_queries(q, rng)
    masks = np.concatenate((random_masks(q - q // 2, rng), masks_with_every_size(q // 2, 13, rng)))
    if degenerate_rows:
        bank[3] = 0.0
        bank[7, :4] = bank[7, 0]
    return bank, queries, masks
