"""Training-time mirroring of an image and its pose target (the paper doubles its training set this way, sec 4.2).

A horizontal flip mirrors the pixels and x coordinates AND swaps the left/right joint labels
(posebank Skeleton.flip_permutation): the mirrored left wrist is the new right wrist.
"""

from __future__ import annotations

import torch

from posebank.skeleton import Skeleton


def hflip(
    image: torch.Tensor, target: dict[str, torch.Tensor], skeleton: Skeleton
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mirror an image and its target left-right.

    Args:
        image: (C, H, W).
        target: dict with pose_2d (N, J, 2) px (origin at the top-left corner of the image, so a
            point at x maps to W - x), visible (N, J) bool and pose_3d (N, J, 3) metres in the camera
            frame (x right, so x maps to -x). Other keys are copied unchanged, except `boxes`,
            which is dropped (the model derives boxes from the poses).
        skeleton: the joint set of the poses.

    Returns:
        The flipped image (C, H, W) and a new target dict.
    """
    width = image.shape[-1]
    perm = list(skeleton.flip_permutation)
    out = {k: v for k, v in target.items() if k not in ("pose_2d", "visible", "pose_3d", "boxes")}
    pose_2d = target["pose_2d"][:, perm].clone()
    pose_2d[..., 0] = width - pose_2d[..., 0]
    pose_3d = target["pose_3d"][:, perm].clone()
    pose_3d[..., 0] = -pose_3d[..., 0]
    out.update(pose_2d=pose_2d, visible=target["visible"][:, perm].clone(), pose_3d=pose_3d)
    return image.flip(-1), out
