"""Small torch helpers on pose tensors shared by targets, anchors and post-processing.

Pose boxes (sec 3.1) and body-centring (docs/design.md frames); the 3D pose distance D3D and the
nearest anchor live in posebank.anchors (nearest_anchor_torch), where the anchors stage uses them too.
Pure functions, vectorised over leading dimensions; no model state here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pose_boxes(poses_2d: torch.Tensor, margin: float) -> torch.Tensor:
    """Boxes around 2D poses, grown by `margin` of their size in total, half on each side (the
    paper's 10%, sec 3.1): the torch twin of posebank.boxes.pose_box, so that annotation shards,
    anchors and training targets share one box.

    Args:
        poses_2d: (..., J, 2) joint positions (px or any 2D unit).
        margin: fraction of the joints' box width (height) added in total, half each side.

    Returns:
        (..., 4) boxes x0, y0, x1, y1 in the unit of `poses_2d`.
    """
    if poses_2d.shape[-1] != 2:
        raise ValueError(f"poses_2d must be (..., J, 2), got {tuple(poses_2d.shape)}")
    lo = poses_2d.amin(dim=-2)
    hi = poses_2d.amax(dim=-2)
    pad = (hi - lo) * (margin / 2.0)
    return torch.cat([lo - pad, hi + pad], dim=-1)


def centre_poses(poses_3d: torch.Tensor, torso: Sequence[int]) -> torch.Tensor:
    """Subtract the body centre (mean of the `torso` joints: both hips and both shoulders).

    Args:
        poses_3d: (..., J, 3) metres, camera frame.
        torso: joint indices whose mean is the body centre (posebank Skeleton.torso).

    Returns:
        (..., J, 3) body-centred poses, same frame and unit.
    """
    if poses_3d.shape[-1] != 3:
        raise ValueError(f"poses_3d must be (..., J, 3), got {tuple(poses_3d.shape)}")
    return poses_3d - poses_3d[..., list(torso), :].mean(dim=-2, keepdim=True)


def _origin_size(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # Clamped so that a degenerate box cannot divide by zero; encode and decode share this clamp,
    # which keeps them exact inverses.
    origin = boxes[..., None, :2]
    size = (boxes[..., None, 2:] - boxes[..., None, :2]).clamp(min=1e-3)
    return origin, size


def to_box_coords(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Express 2D points in box coordinates: (0, 0) is the box's top-left corner, (1, 1) its bottom-right.

    Args:
        points: (..., J, 2) in the unit of `boxes` (px).
        boxes: (..., 4) x0, y0, x1, y1.

    Returns:
        (..., J, 2) box-normalised points (outside [0, 1] when a joint is outside the box).
    """
    origin, size = _origin_size(boxes)
    return (points - origin) / size


def from_box_coords(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Inverse of `to_box_coords`: (..., J, 2) box-normalised points -> (..., J, 2) in the boxes' unit."""
    origin, size = _origin_size(boxes)
    return points * size + origin
