"""From matches to labels (paper section 3.7): completed 2D poses and pseudo-3D poses. Numpy only.

A query q (J, 2) px with mask S was matched to bank poses b (J, 2) (orthographic, metres) under the
normalisation of eq. 9: centre on the mean of the joints in S, scale to unit norm over S. The match
completes the missing joints once brought back into the image with the query's own centre and scale:

    q_j = c_q + s_q (b_j - c_b) / s_b        for j not in S,

and annotated joints keep their coordinates exactly. The pseudo-3D pose is the match's 3D pose
(camera frame, body-centred, metres), or one of the variants below; labels.py chooses by `label_mode`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..geometry import masked_centre_scale  # also the search's (one normalisation)
from ..metrics import mpjpe
from ..skeleton import Skeleton, body_centre


def complete_2d(
    query_2d: npt.NDArray[np.floating], mask: npt.NDArray[np.bool_], match_2d: npt.NDArray[np.floating]
) -> npt.NDArray[np.float64]:
    """Fill the joints outside `mask` from the match (see the module docstring).

    Args:
        query_2d: (Q, J, 2) px; joints outside the mask are ignored (may be NaN).
        mask: (Q, J) bool, the annotated joints.
        match_2d: (Q, J, 2) the matched bank 2D poses (any units).

    Returns:
        (Q, J, 2) float64 px: the query's joints where annotated, the de-normalised match elsewhere.
    """
    c_q, s_q = masked_centre_scale(query_2d, mask)
    c_b, s_b = masked_centre_scale(match_2d, mask)
    filled = c_q[:, None] + (s_q / np.maximum(s_b, 1e-12))[:, None, None] * (np.asarray(match_2d, np.float64) - c_b[:, None])
    return np.where(np.asarray(mask, bool)[..., None], np.asarray(query_2d, np.float64), filled)


def match_spread(matches_3d: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Top-k disagreement (Q,) in metres: mean per-joint distance of matches 2..k to the first.

    Args:
        matches_3d: (Q, k, J, 3) body-centred 3D poses of the k matches, best first.
    Returns:
        (Q,) float64; 0 when k == 1.
    """
    matches_3d = np.asarray(matches_3d, dtype=np.float64)
    if matches_3d.shape[1] < 2:
        return np.zeros(len(matches_3d))
    return mpjpe(matches_3d[:, 1:], matches_3d[:, :1]).mean(axis=1)


def topk_weighted_3d(
    matches_3d: npt.NDArray[np.floating], distances: npt.NDArray[np.floating], temperature: float = 0.02
) -> npt.NDArray[np.float64]:
    """Score-weighted average (Q, J, 3) of the k matches: weights softmax(-d / temperature).

    Distances are eq. 9's (unit-normalised 2D, in [0, 2]); a small temperature trusts the best match.
    """
    d = np.asarray(distances, dtype=np.float64)
    d = np.where(np.isfinite(d), d, np.inf)
    w = np.exp(-(d - d[:, :1]) / temperature)
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("qk,qkjc->qjc", w, np.asarray(matches_3d, dtype=np.float64))


def depth_transfer_3d(
    query_2d: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_],
    match_2d: npt.NDArray[np.floating],
    match_3d: npt.NDArray[np.floating],
    skeleton: Skeleton,
) -> npt.NDArray[np.float64]:
    """A 2D-consistent pseudo-3D pose (Q, J, 3): annotated joints keep their own image x, y, brought
    to metres with the match's centre and scale, and take only depth from the match (as Chen &
    Ramanan transfer depth); missing joints are the match's. Re-centred on the body centre.

    Args:
        query_2d: (Q, J, 2) px. mask: (Q, J) annotated joints.
        match_2d: (Q, J, 2) matched bank 2D (metres, orthographic: = match_3d[..., :2]).
        match_3d: (Q, J, 3) matched bank 3D (metres, camera frame).
    """
    c_q, s_q = masked_centre_scale(query_2d, mask)
    c_b, s_b = masked_centre_scale(match_2d, mask)
    xy = c_b[:, None] + (s_b / np.maximum(s_q, 1e-12))[:, None, None] * (np.asarray(query_2d, np.float64) - c_q[:, None])
    out = np.array(match_3d, dtype=np.float64)
    m = np.asarray(mask, bool)
    out[..., :2] = np.where(m[..., None], xy, out[..., :2])
    return out - body_centre(out, skeleton)[:, None]
