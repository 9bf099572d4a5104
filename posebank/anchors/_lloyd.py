"""Lloyd's K-means in numpy or torch (CUDA when present): the engine for GPUs without faiss-gpu."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt


def cluster_sums(x: npt.NDArray[np.floating], assign: npt.NDArray[np.integer], k: int) -> npt.NDArray[np.float64]:
    """(k, D) float64 sums of the rows of x (N, D) per cluster; one bincount per dimension (np.add.at
    is an order of magnitude slower)."""
    return np.stack([np.bincount(assign, weights=x[:, d], minlength=k) for d in range(x.shape[1])], axis=1)


def lloyd(
    points: npt.NDArray[np.float32], k: int, *, niter: int, seed: int, use_torch: bool, block: int = 262_144
) -> tuple[npt.NDArray[np.float32], list[dict[str, Any]]]:
    """K-means by Lloyd's iterations from k distinct seeded random points.

    The assignment step is a blocked GEMM (||c||^2 - 2 x.c), the update a scatter-add. An empty
    cluster is re-seeded with the point farthest from its centre (as faiss splits clusters).

    Returns:
        centres (k, D) float32 and per-iteration stats [{"obj", "time", "nsplit"}].
    """
    rng = np.random.default_rng(seed)
    init = points[rng.choice(len(points), size=k, replace=False)]
    if use_torch:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        xp, x = torch, torch.from_numpy(points).to(device)
        c = torch.from_numpy(init.copy()).to(device)
    else:
        xp, x, c = np, points, init.copy()
    stats = []
    for _ in range(niter):
        t0 = time.perf_counter()
        assign_parts, dist_parts = [], []
        for s in range(0, len(points), block):
            xb = x[s : s + block]
            d = (c * c).sum(1)[None] - 2.0 * (xb @ c.T)
            best = d.argmin(1)
            assign_parts.append(best)
            dist_parts.append(d[xp.arange(len(xb)), best] + (xb * xb).sum(1))
        assign = xp.concatenate(assign_parts) if xp is np else torch.cat(assign_parts)
        dist = xp.concatenate(dist_parts) if xp is np else torch.cat(dist_parts)
        if xp is np:
            counts = np.bincount(assign, minlength=k)
            sums = cluster_sums(x, assign, k)
        else:
            counts = torch.bincount(assign, minlength=k)
            sums = torch.zeros_like(c, dtype=torch.float64).index_add_(0, assign, x.double())
        nsplit = 0
        new = sums / xp.clip(counts, 1, None)[:, None] if xp is np else sums / counts.clamp(min=1)[:, None]
        empty = np.flatnonzero((counts == 0) if xp is np else (counts == 0).cpu().numpy())
        far_order = np.argsort(-(dist.cpu().numpy() if xp is not np else dist), kind="stable")
        for e, far in zip(empty, far_order):
            new[e] = x[int(far)]
            nsplit += 1
        c = new.astype(np.float32) if xp is np else new.float()
        obj = float(dist.sum())
        stats.append({"obj": obj, "time": time.perf_counter() - t0, "nsplit": nsplit})
    centres = c if xp is np else c.cpu().numpy()
    return np.ascontiguousarray(centres, dtype=np.float32), stats
