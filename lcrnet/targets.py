"""Training targets of LCR-Net++: ground-truth pose boxes, proposal labels, and the regression coding.

Sec 3.1: a proposal box B is background when its IoU with every ground-truth pose box is below 0.5;
otherwise it takes the ground truth of highest IoU, whose class is the nearest anchor in 3D, and the
regression target t = (p~ - a~_c, P - A_c), where p~ and a~_c are the 2D pose and the anchor's 2D pose
in B's box coordinates. Sec 4.2: every annotated person has an upper-body box (classes K+1..2K) and,
when a lower-limb joint is annotated, a full-body box (classes 1..K).

People without a training target (no pseudo-3D pose: too few joints to match) are still people:
their boxes are "ignore boxes", and a proposal that would be background but overlaps one of them as
much as a positive would (IoU >= the matcher's high threshold) is left out of the head's sample
instead of being taught as background. (The RPN, torchvision's own, still sees them as background.)

This module is pure tensor code: no network, no sampling (the heads do that).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import box_iou

from posebank.skeleton import Skeleton

from .anchors import PoseAnchors, upper_body_joints
from .poses import centre_poses, from_box_coords, pose_boxes, to_box_coords

MIN_BOX_PX = 1.0  # a ground-truth box thinner than this carries no learnable pose and is dropped


@dataclass(frozen=True)
class PoseGroundTruth:
    """The ground-truth pose boxes of one image (M boxes; a person gives one or two).

    Attributes:
        boxes: (M, 4) float x0, y0, x1, y1 px of the network input (pose box with margin).
        labels: (M,) int64 class in 1..2K (K+1..2K for upper-body boxes).
        person: (M,) int64 index of the person in the image's target.
        poses_2d: (M, J, 2) float px of the network input (completed poses).
        poses_3d: (M, J, 3) float metres, body-centred, camera frame.
        ignore_boxes: (I, 4) float x0, y0, x1, y1 px of the network input: people without a training
            target (see the module docstring); None when there are none.
    """

    boxes: torch.Tensor
    labels: torch.Tensor
    person: torch.Tensor
    poses_2d: torch.Tensor
    poses_3d: torch.Tensor
    ignore_boxes: torch.Tensor | None = None


def build_ground_truth(
    poses_2d: torch.Tensor,
    visible: torch.Tensor,
    poses_3d: torch.Tensor,
    anchors: PoseAnchors,
    skeleton: Skeleton,
    margin: float,
    ignore_boxes: torch.Tensor | None = None,
) -> PoseGroundTruth:
    """Ground-truth boxes and classes of one image (sec 3.1, sec 4.2 "Dealing with truncation").

    Every person with at least one annotated joint gets an upper-body box (around the upper-body
    joints); a person with at least one annotated lower-limb joint (skeleton.lower_body) also gets
    a full-body box (around all joints). Both boxes carry the full 2D and 3D pose as target.

    Args:
        poses_2d: (N, J, 2) px, completed 2D poses (all joints finite), in network-input pixels.
        visible: (N, J) bool, True where the joint was annotated in the source.
        poses_3d: (N, J, 3) metres, camera frame (re-centred here on the body centre).
        anchors: the anchor-poses (for the class of each box).
        skeleton: joint set (lower_body and torso indices).
        margin: pose-box margin (ModelConfig.box_margin).
        ignore_boxes: (I, 4) px of the network input, boxes of people without a target (or None).

    Returns:
        PoseGroundTruth with full-body boxes first, then upper-body boxes.
    """
    n, j = poses_2d.shape[:2]
    if tuple(visible.shape) != (n, j) or tuple(poses_3d.shape) != (n, j, 3):
        raise ValueError(
            f"target shapes disagree: pose_2d {tuple(poses_2d.shape)}, visible {tuple(visible.shape)}, "
            f"pose_3d {tuple(poses_3d.shape)}"
        )
    visible = visible.bool()
    annotated = visible.any(dim=1)
    has_legs = visible[:, list(skeleton.lower_body)].any(dim=1)
    centred_3d = centre_poses(poses_3d.to(poses_2d.dtype), skeleton.torso)

    full_boxes = pose_boxes(poses_2d, margin)
    upper_boxes = pose_boxes(poses_2d[:, upper_body_joints(skeleton)], margin)
    boxes = torch.cat([full_boxes, upper_boxes])
    is_upper = torch.cat([torch.zeros(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)]).to(poses_2d.device)
    person = torch.arange(n, device=poses_2d.device).repeat(2)
    sizes = boxes[:, 2:] - boxes[:, :2]
    keep = torch.cat([has_legs, annotated]) & (sizes >= MIN_BOX_PX).all(dim=1)

    boxes, is_upper, person = boxes[keep], is_upper[keep], person[keep]
    labels = anchors.assign_classes(centred_3d[person], is_upper)
    if ignore_boxes is not None:
        ignore_boxes = ignore_boxes.to(poses_2d).reshape(-1, 4)
    return PoseGroundTruth(boxes, labels, person, poses_2d[person], centred_3d[person], ignore_boxes)


def label_proposals(
    proposals: torch.Tensor, gt: PoseGroundTruth, matcher: det_utils.Matcher
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class label of each proposal box and the ground-truth box it regresses to (sec 3.1).

    Args:
        proposals: (P, 4) px boxes.
        gt: the image's ground truth.
        matcher: torchvision Matcher(0.5, 0.5): below 0.5 IoU with all GT boxes is background,
            otherwise the GT of highest IoU.

    Returns:
        labels: (P,) int64 in -1..2K (0 = background; -1 = not sampled: a would-be background
            proposal on an ignore box, or between the matcher's thresholds when they differ).
        matched: (P,) int64 index into gt (0 for background proposals: ignore it there).
    """
    num = proposals.shape[0]
    if gt.boxes.shape[0] == 0:
        labels = torch.zeros((num,), dtype=torch.int64, device=proposals.device)
        matched = labels.clone()
    else:
        matched = matcher(box_iou(gt.boxes, proposals))
        labels = gt.labels[matched.clamp(min=0)]  # advanced indexing copies
        labels[matched == matcher.BELOW_LOW_THRESHOLD] = 0
        labels[matched == matcher.BETWEEN_THRESHOLDS] = -1
        matched = matched.clamp(min=0)
    if gt.ignore_boxes is not None and gt.ignore_boxes.shape[0] > 0 and num > 0:
        on_ignored = box_iou(gt.ignore_boxes.to(proposals), proposals).amax(dim=0) >= matcher.high_threshold
        labels[(labels == 0) & on_ignored] = -1
    return labels, matched


def encode(
    poses_2d: torch.Tensor,
    poses_3d: torch.Tensor,
    boxes: torch.Tensor,
    anchors_2d: torch.Tensor,
    anchors_3d: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """Regression target t = scale * (p~ - a~, P - A) of poses placed in boxes (sec 3.1, eq. 4).

    Args:
        poses_2d: (N, J, 2) px.
        poses_3d: (N, J, 3) metres, body-centred.
        boxes: (N, 4) px proposal boxes B (the box that normalises the 2D pose).
        anchors_2d: (N, J, 2) anchor 2D poses in box coordinates (for each row's class).
        anchors_3d: (N, J, 3) anchor 3D poses, metres, body-centred.
        scale: ModelConfig.reg_scale (5, as the LCR-Net release).

    Returns:
        (N, 5J) targets: the first 2J values are the 2D offsets (joint-major: x0, y0, x1, y1, ...),
        the last 3J the 3D offsets (x0, y0, z0, x1, ...).
    """
    n = poses_2d.shape[0]
    d2 = (to_box_coords(poses_2d, boxes) - anchors_2d) * scale
    d3 = (poses_3d - anchors_3d) * scale
    return torch.cat([d2.reshape(n, -1), d3.reshape(n, -1)], dim=1)


def decode(
    deltas: torch.Tensor,
    boxes: torch.Tensor,
    anchors_2d: torch.Tensor,
    anchors_3d: torch.Tensor,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `encode`: regression outputs placed on anchors in boxes -> 2D (px) and 3D (metres) poses.

    Args:
        deltas: (N, 5J) as laid out by `encode`.
        boxes: (N, 4) px.
        anchors_2d: (N, J, 2) box coordinates.
        anchors_3d: (N, J, 3) metres.
        scale: ModelConfig.reg_scale.

    Returns:
        poses_2d: (N, J, 2) px in the boxes' image.
        poses_3d: (N, J, 3) metres, body-centred up to the regression error.
    """
    n, j = anchors_2d.shape[:2]
    if deltas.shape != (n, 5 * j):
        raise ValueError(f"deltas must be ({n}, {5 * j}), got {tuple(deltas.shape)}")
    d2 = deltas[:, : 2 * j].reshape(n, j, 2)
    d3 = deltas[:, 2 * j :].reshape(n, j, 3)
    poses_2d = from_box_coords(anchors_2d + d2 / scale, boxes)
    poses_3d = anchors_3d + d3 / scale
    return poses_2d, poses_3d
