"""Pseudo-3D labels from the k best matches of a person (paper section 3.7 and beyond). Numpy only.

The paper's label is the best match's 3D pose (`top1`). The other modes use what the annotation
says and the match ignores: the annotated 2D joints themselves (measured in bench/bench_pseudo_gt.py).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .annotate.complete import depth_transfer_3d, topk_weighted_3d
from .annotate.matching import MatchedPoses
from .skeleton import Skeleton

LABEL_MODES = ("top1", "topk-mean", "depth-transfer")


def label_poses_3d(
    mode: str,
    query_2d: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_],
    distances: npt.NDArray[np.floating],
    matched: MatchedPoses,
    skeleton: Skeleton,
) -> npt.NDArray[np.float64]:
    """The pseudo-3D poses (Q, J, 3) m, body-centred, camera frame of the matches, of one label mode.

    Args:
        mode: one of LABEL_MODES.
        query_2d: (Q, J, 2) px; NaN (or anything) outside the mask.
        mask: (Q, J) bool, the annotated joints.
        distances: (Q, k) eq. 9 distances of the matches, best first.
        matched: the matches' poses, (Q, k, J, 2|3), best first.
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"unknown label mode {mode!r}; choose from {', '.join(LABEL_MODES)}")
    best_2d = matched.pose_2d[:, 0].astype(np.float64)
    best_3d = matched.pose_3d[:, 0].astype(np.float64)
    if mode == "top1":
        return best_3d
    if mode == "topk-mean":
        return topk_weighted_3d(matched.pose_3d, distances)
    return depth_transfer_3d(query_2d, mask, best_2d, best_3d, skeleton)
