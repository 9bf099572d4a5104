"""The anchor-poses on the torch side: buffers of the model, and the pose classes they define.

K anchor-poses (K-means on MoCap 3D poses, made by posebank's anchors stage) give 2K + 1 classes
(sec 3.1 and 4.2 "Dealing with truncation"):

    class 0          background
    class 1..K       full-body anchor k = c - 1: 2D normalised to the box around all joints
    class K+1..2K    upper-body anchor k = c - K - 1: the same 3D pose, 2D normalised to the box
                     around the upper-body joints only, so that the legs fall below the box

Both variants regress the full-body pose; only the 2D placement inside the box differs.
The anchors are buffers, so they are saved in (and restored from) the model's state dict.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from posebank.anchors import nearest_anchor_torch
from posebank.skeleton import Skeleton, upper_body_mask

from .poses import centre_poses, pose_boxes, to_box_coords


class PoseAnchors(nn.Module):
    """K anchor-poses and the 2K + 1 pose classes built on them.

    Buffers:
        poses_3d: (K, J, 3) metres, body-centred, camera frame (x right, y down, z forward).
        poses_2d_full: (K, J, 2) box coordinates in [0, 1] of the full-body pose box.
        poses_2d_upper: (K, J, 2) box coordinates of the upper-body box (lower-body joints fall outside).
    """

    poses_3d: torch.Tensor
    poses_2d_full: torch.Tensor
    poses_2d_upper: torch.Tensor

    def __init__(self, poses_3d: torch.Tensor, poses_2d_full: torch.Tensor, poses_2d_upper: torch.Tensor) -> None:
        super().__init__()
        if poses_3d.dim() != 3 or poses_3d.shape[-1] != 3:
            raise ValueError(f"anchors_3d must be (K, J, 3), got {tuple(poses_3d.shape)}")
        k, j = poses_3d.shape[:2]
        for name, t in (("anchors_2d_full", poses_2d_full), ("anchors_2d_upper", poses_2d_upper)):
            if tuple(t.shape) != (k, j, 2):
                raise ValueError(f"{name} must be ({k}, {j}, 2) to match anchors_3d, got {tuple(t.shape)}")
        self.register_buffer("poses_3d", poses_3d.float().clone())
        self.register_buffer("poses_2d_full", poses_2d_full.float().clone())
        self.register_buffer("poses_2d_upper", poses_2d_upper.float().clone())

    @classmethod
    def from_numpy(
        cls,
        anchors_3d: npt.NDArray[np.floating],
        anchors_2d_full: npt.NDArray[np.floating],
        anchors_2d_upper: npt.NDArray[np.floating],
    ) -> PoseAnchors:
        """Anchors from arrays as stored in anchors.parquet: (K, J, 3) metres, (K, J, 2) and (K, J, 2) box coords."""
        return cls(
            torch.as_tensor(np.asarray(anchors_3d, dtype=np.float32)),
            torch.as_tensor(np.asarray(anchors_2d_full, dtype=np.float32)),
            torch.as_tensor(np.asarray(anchors_2d_upper, dtype=np.float32)),
        )

    @property
    def num_anchors(self) -> int:
        """K."""
        return int(self.poses_3d.shape[0])

    @property
    def num_joints(self) -> int:
        """J."""
        return int(self.poses_3d.shape[1])

    @property
    def num_classes(self) -> int:
        """2K + 1, background included."""
        return 2 * self.num_anchors + 1

    def class_poses(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The anchor-pose of each class label.

        Args:
            labels: (N,) int64 classes in 0..2K (0, background, gives zeros).

        Returns:
            anchors_2d: (N, J, 2) box coordinates (full-body or upper-body normalisation by class).
            anchors_3d: (N, J, 3) metres, body-centred.
        """
        zeros_2d = self.poses_2d_full.new_zeros((1, self.num_joints, 2))
        zeros_3d = self.poses_3d.new_zeros((1, self.num_joints, 3))
        table_2d = torch.cat([zeros_2d, self.poses_2d_full, self.poses_2d_upper])
        table_3d = torch.cat([zeros_3d, self.poses_3d, self.poses_3d])
        return table_2d[labels], table_3d[labels]

    def assign_classes(self, poses_3d: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """Class of ground-truth poses: the nearest anchor in 3D, offset by K for upper-body boxes (sec 3.1, 4.2).

        Args:
            poses_3d: (M, J, 3) metres, body-centred, camera frame.
            upper: (M,) bool, True where the ground-truth box is an upper-body box.

        Returns:
            (M,) int64 labels in 1..2K: argmin_k D3D(A_k, P) + 1, plus K when `upper`.
        """
        if poses_3d.shape[0] == 0:
            return torch.zeros((0,), dtype=torch.int64, device=poses_3d.device)
        nearest = nearest_anchor_torch(poses_3d.to(self.poses_3d.dtype), self.poses_3d)
        return nearest + 1 + self.num_anchors * upper.to(torch.int64)


def upper_body_joints(skeleton: Skeleton) -> list[int]:
    """Indices of the upper-body joints (posebank.skeleton.upper_body_mask: hips and above)."""
    return np.flatnonzero(upper_body_mask(skeleton)).tolist()


def anchors_from_poses(poses_3d: torch.Tensor, skeleton: Skeleton, margin: float = 0.1) -> PoseAnchors:
    """Anchors built directly from K 3D poses (for tests and quick experiments; K-means lives in posebank).

    The 2D anchors are the orthographic projection (x, y) of the body-centred 3D pose, normalised
    into its joints' box (full body) or its upper-body joints' box, each grown by `margin`.

    Args:
        poses_3d: (K, J, 3) metres, camera frame.
        skeleton: the joint set of the poses (its torso and lower_body indices are used).
        margin: pose-box margin, the same as ModelConfig.box_margin.

    Returns:
        PoseAnchors with K anchors.
    """
    centred = centre_poses(poses_3d.float(), skeleton.torso)
    projected = centred[..., :2]
    full = to_box_coords(projected, pose_boxes(projected, margin))
    upper = to_box_coords(projected, pose_boxes(projected[:, upper_body_joints(skeleton)], margin))
    return PoseAnchors(centred, full, upper)
