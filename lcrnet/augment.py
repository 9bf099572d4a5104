"""Training-time augmentation of an image and its pose target: mirroring and zoom.

A horizontal flip (the paper doubles its training set this way, sec 4.2) mirrors the pixels and x
coordinates AND swaps the left/right joint labels (posebank Skeleton.flip_permutation): the mirrored
left wrist is the new right wrist. A zoom rescales the content inside a fixed canvas (scale
augmentation). Pure functions of their arguments: the random draws are the caller's (lcrnet/data.py).
"""

from __future__ import annotations

import math

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
            frame (x right, so x maps to -x). Optional ignore_boxes (I, 4) px x0, y0, x1, y1 are
            mirrored too. Other keys are copied unchanged, except `boxes`, which is dropped (the
            model derives boxes from the poses).
        skeleton: the joint set of the poses.

    Returns:
        The flipped image (C, H, W) and a new target dict.
    """
    width = image.shape[-1]
    perm = list(skeleton.flip_permutation)
    out = {k: v for k, v in target.items() if k not in ("pose_2d", "visible", "pose_3d", "boxes", "ignore_boxes")}
    if "ignore_boxes" in target:
        ignore = target["ignore_boxes"]
        # x0' = W - x1 and x1' = W - x0: the mirrored box keeps x0 <= x1.
        out["ignore_boxes"] = torch.stack(
            [width - ignore[:, 2], ignore[:, 1], width - ignore[:, 0], ignore[:, 3]], dim=1
        )
    pose_2d = target["pose_2d"][:, perm].clone()
    pose_2d[..., 0] = width - pose_2d[..., 0]
    pose_3d = target["pose_3d"][:, perm].clone()
    pose_3d[..., 0] = -pose_3d[..., 0]
    out.update(pose_2d=pose_2d, visible=target["visible"][:, perm].clone(), pose_3d=pose_3d)
    return image.flip(-1), out


def zoom(
    image: torch.Tensor, target: dict[str, torch.Tensor], size: tuple[int, int], offset: tuple[int, int]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scale augmentation: resize the image content to `size` and paste it at `offset` on a canvas of the old size.

    The model resizes every input to its min_size, so resizing a whole image changes nothing it
    sees; zooming inside a fixed canvas does change how large people are in the image (and cuts
    some of them at the border, the truncation the upper-body classes are for, sec 4.2).

    Args:
        image: (C, H, W) float in [0, 1].
        target: pose_2d (N, J, 2) px, visible (N, J) bool, pose_3d (N, J, 3) m; optional
            ignore_boxes (I, 4) px and head_size (N,) px. Other keys are copied unchanged.
        size: (width, height) px of the resized content.
        offset: (x, y) px of the content's top-left corner on the canvas (negative: cropped).

    Returns:
        The (C, H, W) canvas (uncovered pixels take the ImageNet mean colour, which normalises to 0)
        and the new target: 2D poses and boxes mapped by x' = x * sx + ox (pixel-corner
        convention, as `hflip`), head sizes scaled, and joints that leave the canvas no longer
        visible (annotated). 3D poses are unchanged.
    """
    import torch.nn.functional as F

    c, h, w = image.shape
    new_w, new_h = size
    ox, oy = offset
    resized = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)[0]
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=image.dtype)[:c] if c == 3 else torch.full((c,), 0.5)
    canvas = mean.to(image)[:, None, None].expand(c, h, w).clone()
    # Intersection of the pasted content with the canvas, in canvas and in content coordinates.
    x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + new_w, w), min(oy + new_h, h)
    if x1 > x0 and y1 > y0:
        canvas[:, y0:y1, x0:x1] = resized[:, y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    sx, sy = new_w / w, new_h / h
    factor = torch.tensor([sx, sy])
    shift = torch.tensor([float(ox), float(oy)])
    out = dict(target)
    pose_2d = target["pose_2d"] * factor + shift
    inside = (pose_2d[..., 0] >= 0) & (pose_2d[..., 0] < w) & (pose_2d[..., 1] >= 0) & (pose_2d[..., 1] < h)
    out["pose_2d"] = pose_2d
    out["visible"] = target["visible"] & inside
    if "ignore_boxes" in target:
        out["ignore_boxes"] = target["ignore_boxes"] * factor.repeat(2) + shift.repeat(2)
    if "head_size" in target:
        out["head_size"] = target["head_size"] * math.sqrt(sx * sy)
    return canvas, out
