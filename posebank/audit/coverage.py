"""Pose-space coverage: how far the poses of one source are from the nearest pose of another.

Bank poses are seen from random views, so two sources compared in the camera frame would differ by
their views as much as by their poses. Here every pose is first turned into its own body frame
(hips along x, spine along -y: the view and the heading are gone), so what is left is the
articulation. The distance of a pose to a set is the mean per-joint distance (MPJPE, mm) to its
nearest member. "CMU -> CMU" (leave-one-out) is the spacing of a source's own sample: a pose of
HDM05 much farther from CMU than that is a pose CMU lacks.

Sizes: both sides are seeded samples of at most `sample` poses per source, so with a source larger
than its sample every distance is an upper bound of the distance to the whole source; comparisons
at equal sample sizes stay fair. The nearest member is searched by L2 on the flattened pose
(a matrix product), and the best `candidates` by L2 are re-ranked by MPJPE (L2 and MPJPE rank
almost alike, so this is the exact MPJPE-nearest up to rare misses, which can only overestimate).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..progress import ProgressFactory, no_progress
from ..skeleton import Skeleton
from .numeric import summarise


def body_frame_poses(poses_3d: npt.NDArray[np.floating], skeleton: Skeleton) -> npt.NDArray[np.float32]:
    """Poses (N, J, 3) m turned into their own body frame, centred on the body centre.

    Axes: x from the right hip to the left hip, y from the shoulders' midpoint to the hips' midpoint
    (down the spine), z = x cross y; x is made orthogonal to y (Gram-Schmidt), y is kept exact.
    A pose seen from any camera gives the same result (up to float rounding).
    """
    p = np.asarray(poses_3d, dtype=np.float64)
    rh, lh, rs, ls = (skeleton.index(n) for n in ("right_hip", "left_hip", "right_shoulder", "left_shoulder"))
    centre = p[:, [rh, lh, rs, ls]].mean(axis=1)
    down = 0.5 * (p[:, rh] + p[:, lh]) - 0.5 * (p[:, rs] + p[:, ls])
    y = down / np.maximum(np.linalg.norm(down, axis=-1, keepdims=True), 1e-9)
    across = p[:, lh] - p[:, rh]
    x = across - (across * y).sum(-1, keepdims=True) * y
    x /= np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)
    z = np.cross(x, y)
    rot = np.stack([x, y, z], axis=1)  # (N, 3, 3): rows are the body axes in camera coordinates
    return np.einsum("nij,nkj->nki", rot, p - centre[:, None]).astype(np.float32)


def nearest_mpjpe(
    queries: npt.NDArray[np.floating], references: npt.NDArray[np.floating], *, candidates: int = 8,
    exclude_self: bool = False, block: int = 256,
) -> npt.NDArray[np.float64]:  # fmt: skip
    """Mean per-joint distance (N,) in the poses' units from each query (N, J, 3) to its nearest
    reference (M, J, 3): the MPJPE-best of the `candidates` L2-nearest references.

    Args:
        exclude_self: queries and references are the same array; a pose is not its own neighbour.
        block: queries per matrix product (memory: block x M float32 and int64 for the candidate search).
    """
    n, j, _ = queries.shape
    q = np.ascontiguousarray(queries.reshape(n, j * 3), dtype=np.float32)
    r = np.ascontiguousarray(references.reshape(len(references), j * 3), dtype=np.float32)
    m = len(r) - (1 if exclude_self else 0)
    out = np.full(n, np.nan)
    if m <= 0 or n == 0:
        return out
    kk = min(candidates, m)
    r_sq = (r.astype(np.float64) ** 2).sum(1).astype(np.float32)
    for s in range(0, n, block):
        qb = q[s : s + block]
        # ||q||^2 is the same for every reference of a query: ranking needs only ||r||^2 - 2 q.r.
        # float32 is enough to pick candidates: the distances are then recomputed in float64.
        d = qb @ r.T
        d *= -2.0
        d += r_sq[None]
        if exclude_self:
            d[np.arange(len(qb)), np.arange(s, s + len(qb))] = np.inf
        cand = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        diff = queries[s : s + block, None].astype(np.float64) - references[cand].astype(np.float64)
        out[s : s + block] = np.linalg.norm(diff, axis=-1).mean(-1).min(1)
    return out


def coverage_report(
    samples: dict[str, npt.NDArray[np.float32]], *, reference: str | None, candidates: int,
    thresholds_mm: tuple[float, ...], progress: ProgressFactory = no_progress,
) -> dict[str, Any]:  # fmt: skip
    """Nearest-neighbour distances between the samples of every pair of sources.

    Args:
        samples: source -> (n, J, 3) body-frame poses, metres (`body_frame_poses`).
        reference: the source the others are measured against in `added` (cmu when present).
        progress: counts the source pairs searched.

    Returns:
        {"pairs": [{"from", "to", "summary_mm": summarise(...), "share_over_<t>mm": ...}, ...],
         "matrix_median_mm": {from: {to: median}}, "added": {source: share of its poses farther from
         the reference than each threshold}, "histograms": per pair, the distances in 5-mm bins.}
    """
    sources = list(samples)
    pairs, matrix, hist = [], {}, {}
    edges = np.arange(0.0, 305.0, 5.0)
    source_pairs = [(a, b) for a in sources for b in sources]
    for a, b in progress(source_pairs, "3D pose-space coverage: source pairs", len(source_pairs)):
        d_mm = 1000.0 * nearest_mpjpe(samples[a], samples[b], candidates=candidates, exclude_self=a == b)
        entry: dict[str, Any] = {"from": a, "to": b, "summary_mm": summarise(d_mm)}
        finite = d_mm[np.isfinite(d_mm)]
        for t in thresholds_mm:
            entry[f"share_over_{t:g}mm"] = float((finite > t).mean()) if len(finite) else None
        pairs.append(entry)
        matrix.setdefault(a, {})[b] = entry["summary_mm"].get("q50")
        counts, _ = np.histogram(np.clip(finite, 0, edges[-1]), bins=edges)
        hist[f"{a}->{b}"] = [int(c) for c in counts]
    added = {}
    if reference in samples:
        for e in pairs:
            if e["to"] == reference:
                added[e["from"]] = {f"share_over_{t:g}mm": e[f"share_over_{t:g}mm"] for t in thresholds_mm}
    return {
        "sources": sources,
        "sample_sizes": {s: len(v) for s, v in samples.items()},
        "reference": reference if reference in samples else None,
        "candidates": candidates,
        "pairs": pairs,
        "matrix_median_mm": matrix,
        "added": added,
        "histogram_edges_mm": [float(e) for e in edges],
        "histograms": hist,
    }


COVERAGE_2D_MEANING = (
    "The same question in the image: for each pair of sources A -> B, the eq. 9 distance (all joints, "
    "unitless, 0 to 2) from each sampled bank row (pose and view) of A to its nearest sampled row of B. "
    "This is what annotate's matching sees: a 2D pose far from every row of the bank gets a poor match, "
    "whatever the 3D coverage."
)


def normalised_2d(poses_2d: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """(N, J*2) poses centred on their mean joint and scaled to unit norm (eq. 9 with every joint)."""
    p = np.asarray(poses_2d, dtype=np.float64)
    p = p - p.mean(axis=1, keepdims=True)
    flat = p.reshape(len(p), -1)
    return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)


def nearest_eq9(queries: npt.NDArray[np.float64], references: npt.NDArray[np.float64], *, exclude_self: bool = False,
                block: int = 512) -> npt.NDArray[np.float64]:  # fmt: skip
    """Eq. 9 distance (N,) from each normalised query (N, D) to its nearest normalised reference (M, D):
    sqrt(2 - 2 cos), the largest cosine found by matrix products in blocks of queries."""
    out = np.full(len(queries), np.nan)
    if len(references) - (1 if exclude_self else 0) <= 0:
        return out
    for s in range(0, len(queries), block):
        cos = queries[s : s + block] @ references.T
        if exclude_self:
            cos[np.arange(len(cos)), np.arange(s, s + len(cos))] = -np.inf
        out[s : s + block] = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * cos.max(axis=1)))
    return out


def coverage_2d_report(
    samples: dict[str, npt.NDArray[np.floating]], progress: ProgressFactory = no_progress
) -> dict[str, Any]:
    """Nearest-row eq. 9 distances between the 2D samples (n, J, 2) of every pair of sources
    (`progress` counts the pairs).

    Returns:
        {"sources", "sample_sizes", "pairs": [{"from", "to", "summary": summarise(...)}],
         "matrix_median": {from: {to: median}}, "meaning"}.
    """
    sources = list(samples)
    normed = {s: normalised_2d(v) for s, v in samples.items()}
    pairs, matrix = [], {}
    source_pairs = [(a, b) for a in sources for b in sources]
    for a, b in progress(source_pairs, "2D pose-space coverage: source pairs", len(source_pairs)):
        d = nearest_eq9(normed[a], normed[b], exclude_self=a == b)
        entry = {"from": a, "to": b, "summary": summarise(d)}
        pairs.append(entry)
        matrix.setdefault(a, {})[b] = entry["summary"].get("q50")
    return {"sources": sources, "sample_sizes": {s: len(v) for s, v in samples.items()}, "pairs": pairs,
            "matrix_median": matrix, "meaning": COVERAGE_2D_MEANING}  # fmt: skip
