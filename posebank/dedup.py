"""Deduplicate 3D poses: drop a pose within D mean per-joint distance of an already kept pose.

Greedy in the given order, so the result is deterministic. Poses are compared after their heading
(yaw about the up axis) is removed: the bank draws azimuths uniformly, so the same pose facing
another way adds nothing.

Not quadratic: candidate pairs come from a k-d tree under the L1 norm. The mean per-joint distance
(MPJPE) bounds the L1 distance of the flattened poses, since for each joint ||d_j||_1 <= sqrt(3) ||d_j||_2:
    MPJPE <= D  =>  ||d||_1 <= sqrt(3) * J * D,
so a radius query with that bound finds every duplicate, and the exact MPJPE is checked on the
candidates only. The L1 ball is far smaller than the L2 ball of the same guarantee (radius J * D).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .geometry import remove_heading
from .skeleton import Skeleton

_PAIR_CHUNK = 1 << 20


def mpjpe(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """Mean per-joint position error (...) between poses (..., J, 3), in their units."""
    return np.linalg.norm(a - b, axis=-1).mean(axis=-1)


def duplicate_pairs(
    poses_m: npt.NDArray[np.floating], threshold_m: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """All pairs (i < j) of poses (N, J, 3) with MPJPE <= threshold_m, as two (M,) index arrays."""
    from scipy.spatial import cKDTree  # scipy is heavy; only the bank build needs it

    n, j, _ = poses_m.shape
    flat = np.ascontiguousarray(poses_m.reshape(n, j * 3), dtype=np.float64)
    tree = cKDTree(flat)
    # A hair of slack so that float rounding in the tree never loses a pair at the exact bound.
    pairs = tree.query_pairs(r=np.sqrt(3.0) * j * threshold_m * (1 + 1e-9) + 1e-12, p=1, output_type="ndarray")
    keep_i, keep_j = [], []
    for start in range(0, len(pairs), _PAIR_CHUNK):
        chunk = pairs[start : start + _PAIR_CHUNK]
        close = mpjpe(poses_m[chunk[:, 0]], poses_m[chunk[:, 1]]) <= threshold_m
        keep_i.append(chunk[close, 0])
        keep_j.append(chunk[close, 1])
    if not keep_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, jj = np.concatenate(keep_i).astype(np.int64), np.concatenate(keep_j).astype(np.int64)
    lo, hi = np.minimum(i, jj), np.maximum(i, jj)
    return lo, hi


def greedy_keep(num_poses: int, lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Greedy selection in index order: pose i is kept unless a kept pose h < i is its duplicate.

    Args:
        num_poses: N.
        lo, hi: (M,) duplicate pairs with lo < hi.

    Returns:
        (N,) bool mask of kept poses.
    """
    keep = np.ones(num_poses, dtype=bool)
    if len(lo) == 0:
        return keep
    order = np.argsort(hi, kind="stable")
    lo, hi = lo[order], hi[order]
    starts = np.searchsorted(hi, np.arange(num_poses + 1))
    # Only poses with an earlier duplicate need a decision; the others are kept.
    for i in np.unique(hi):
        if keep[lo[starts[i] : starts[i + 1]]].any():
            keep[i] = False
    return keep


def deduplicate(poses_m: npt.NDArray[np.floating], skeleton: Skeleton, threshold_mm: float) -> npt.NDArray[np.bool_]:
    """Keep-mask (N,) of body-centred world poses (N, J, 3) in metres; `threshold_mm` <= 0 keeps all."""
    n = len(poses_m)
    if threshold_mm <= 0 or n < 2:
        return np.ones(n, dtype=bool)
    aligned = remove_heading(
        np.asarray(poses_m, dtype=np.float64), skeleton.index("left_hip"), skeleton.index("right_hip")
    )
    lo, hi = duplicate_pairs(aligned, threshold_mm / 1000.0)
    return greedy_keep(n, lo, hi)
