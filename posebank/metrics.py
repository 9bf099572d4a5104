"""Errors between 3D poses: MPJPE and rigid (Procrustes) alignment, one implementation for every user.

The bank's deduplication (posebank.bank.dedup), evaluation of the model (lcrnet.metrics,
lcrnet.h36m_protocols) and the pseudo-ground-truth benchmark (bench/bench_pseudo_gt.py) all measure
poses with these two functions, so that "MPJPE" and "aligned MPJPE" mean the same thing everywhere.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]


def mpjpe(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Mean per-joint position error between poses, in their unit (metres for 3D poses).

    Args:
        a, b: (..., J, 3) poses in the same frame (e.g. body-centred); their leading dimensions
            broadcast against each other (one pose against many: a (N, J, 3), b (J, 3)).

    Returns:
        (...) float64: the mean over joints of the Euclidean distance, computed in float64.

    Raises:
        ValueError: the poses do not have the same (J, 3) trailing shape.
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.ndim < 2 or y.ndim < 2 or x.shape[-2:] != y.shape[-2:] or x.shape[-1] != 3:
        raise ValueError(f"expected poses (..., J, 3) of one joint count, got {x.shape} and {y.shape}")
    return np.linalg.norm(x - y, axis=-1).mean(axis=-1)


def rigid_align(pred_3d: npt.ArrayLike, gt_3d: npt.ArrayLike, *, scale: bool = False) -> npt.NDArray[np.float64]:
    """Align each predicted pose onto its ground truth by the best rotation and translation (Kabsch).

    With `scale` the best similarity instead (Umeyama; "Procrustes-aligned" MPJPE). Reflections are
    excluded (det R = +1): a mirrored pose is an error, not a pose to be aligned away.

    Args:
        pred_3d, gt_3d: (N, J, 3), in one unit (metres).

    Returns:
        (N, J, 3) float64 the aligned predictions, in the ground truth's frame and unit.
    """
    p = np.asarray(pred_3d, np.float64)
    g = np.asarray(gt_3d, np.float64)
    if p.ndim != 3 or p.shape != g.shape or p.shape[-1] != 3:
        raise ValueError(f"expected two (N, J, 3) arrays of one shape, got {p.shape} and {g.shape}")
    mu_p, mu_g = p.mean(axis=1, keepdims=True), g.mean(axis=1, keepdims=True)
    p0, g0 = p - mu_p, g - mu_g
    h = np.einsum("nji,njk->nik", p0, g0)  # (N, 3, 3) cross-covariance
    u, s, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", vt.transpose(0, 2, 1), u.transpose(0, 2, 1))))
    fix = np.ones_like(s)
    fix[:, -1] = d
    rot = np.einsum("nij,nj,njk->nik", vt.transpose(0, 2, 1), fix, u.transpose(0, 2, 1))  # R = V diag(1,1,d) U^T
    factor = np.ones((len(p), 1, 1))
    if scale:
        factor = ((s * fix).sum(axis=1) / np.maximum((p0**2).sum(axis=(1, 2)), 1e-12))[:, None, None]
    return factor * np.einsum("nik,njk->nji", rot, p0) + mu_g
