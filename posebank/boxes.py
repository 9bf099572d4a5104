"""Pose boxes: the box around a pose's joints with a margin, and coordinates normalised to a box.

One definition for the whole project (anchors, annotations, synthetic data, training targets):
the joints' tight box enlarged by `margin` of its size in total (half on each side), as the paper's
"bounding box around all joints of the pose, with a fixed additional margin of 10%".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BOX_MARGIN = 0.10


def pose_box(
    pose_2d: npt.NDArray[np.floating], mask: npt.NDArray[np.bool_] | None = None, margin: float = BOX_MARGIN
) -> npt.NDArray[np.float64]:
    """Boxes (..., 4) = (x0, y0, x1, y1) around poses (..., J, 2), using only joints in `mask` (..., J).

    The tight box grows by `margin` x its width and height (half each side). A box of a single
    point has zero size.
    """
    pose_2d = np.asarray(pose_2d, dtype=np.float64)
    if pose_2d.shape[-1] != 2:
        raise ValueError(f"need (..., J, 2) poses, got {pose_2d.shape}")
    if mask is None:
        lo, hi = pose_2d.min(axis=-2), pose_2d.max(axis=-2)
    else:
        m = np.asarray(mask, dtype=bool)[..., None]
        lo = np.where(m, pose_2d, np.inf).min(axis=-2)
        hi = np.where(m, pose_2d, -np.inf).max(axis=-2)
    pad = (hi - lo) * (margin / 2.0)
    return np.concatenate([lo - pad, hi + pad], axis=-1)


def normalise_to_box(pose_2d: npt.NDArray[np.floating], box: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Poses (..., J, 2) in box coordinates: (0, 0) the box's top-left corner, (1, 1) its bottom-right."""
    box = np.asarray(box, dtype=np.float64)
    size = np.maximum(box[..., 2:] - box[..., :2], 1e-12)
    return (np.asarray(pose_2d, dtype=np.float64) - box[..., None, :2]) / size[..., None, :]


def denormalise_from_box(pose_01: npt.NDArray[np.floating], box: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Inverse of `normalise_to_box`."""
    box = np.asarray(box, dtype=np.float64)
    return np.asarray(pose_01, dtype=np.float64) * (box[..., None, 2:] - box[..., None, :2]) + box[..., None, :2]
