"""Inference post-processing of pose proposals: rescoring (eq. 6), NMS, and pose proposal integration (sec 3.6).

All functions take the pose proposals of ONE image as tensors and return new tensors; they never
touch the network. Pose boxes (for IoUs) are the joints' boxes grown by the model's box margin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou, nms

from .poses import pose_boxes


def rescore(scores: torch.Tensor, poses_2d: torch.Tensor, boxes: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Penalise proposals with joints outside their box: s' = s * mean_i f(p_i, B) (eq. 6).

    f(p_i, B) = 1 for a joint inside the box B and exp(-D^2 / sigma^2) outside, with D the Euclidean
    distance from the joint to the box. A pose entirely inside its box keeps its score.

    Args:
        scores: (N,) classification scores u(c).
        poses_2d: (N, J, 2) px.
        boxes: (N, 4) px proposal boxes B, same pixels as the poses.
        sigma_px: sigma_b in px (25 in the paper).

    Returns:
        (N,) rescored scores.
    """
    x, y = poses_2d[..., 0], poses_2d[..., 1]
    x0, y0, x1, y1 = (boxes[:, i, None] for i in range(4))
    # Distance to the box along each axis: 0 inside the box's extent on that axis.
    dx = (x0 - x).clamp(min=0) + (x - x1).clamp(min=0)
    dy = (y0 - y).clamp(min=0) + (y - y1).clamp(min=0)
    inside = torch.exp(-(dx**2 + dy**2) / sigma_px**2)
    return scores * inside.mean(dim=1)


def nms_poses(poses_2d: torch.Tensor, scores: torch.Tensor, iou_thresh: float, margin: float) -> torch.Tensor:
    """Non-maximum suppression on the boxes of the 2D poses (the baseline of sec 3.6).

    Args:
        poses_2d: (N, J, 2) px.
        scores: (N,).
        iou_thresh: a pose is suppressed when its box overlaps a higher-scoring kept one above this IoU.
        margin: pose-box margin.

    Returns:
        (M,) int64 indices of the kept poses, highest score first.
    """
    return nms(pose_boxes(poses_2d, margin), scores, iou_thresh)


def ppi(
    poses_2d: torch.Tensor,
    poses_3d: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    upper: torch.Tensor,
    *,
    iou_thresh: float,
    t3d_m: float,
    lower_body: Sequence[int],
    upper_leg_weight: float,
    margin: float,
) -> dict[str, torch.Tensor]:
    """Pose proposal integration (sec 3.6): group by 2D overlap, split groups into 3D modes, average each mode.

    Groups: the top-scoring proposal not yet grouped takes every ungrouped proposal whose pose box
    has IoU > iou_thresh with its own; repeat until all are grouped. Modes (eq. 7): in a group, the
    top-scoring proposal P* not yet in a mode takes the group's remaining proposals with
    D3D(P*, P) < t3d_m; repeat until the group is covered. Each mode gives one pose, the
    score-weighted average of its 2D and 3D poses (eq. 8), with score S = the sum of its scores.

    Upper-body proposals (classes K+1..2K) hallucinate the legs, usually outside the image
    (sec 4.2). In the average their lower-body joints weigh `upper_leg_weight` times their score,
    so a full-body proposal in the same mode decides where the legs are. When a mode holds only
    upper-body proposals the factor cancels and the plain eq. 8 average is kept.

    Args:
        poses_2d: (N, J, 2) px.
        poses_3d: (N, J, 3) metres, body-centred (D3D compares centred poses).
        scores: (N,) (rescored) classification scores.
        labels: (N,) int64 pose classes.
        upper: (N,) bool, True for upper-body classes.
        iou_thresh: 2D threshold (0.12 for PCKh, 0.54 for AP in the paper).
        t3d_m: 3D threshold T_3D in metres (0.13 for PCKh, 0.03 for AP).
        lower_body: lower-body joint indices (posebank Skeleton.lower_body).
        upper_leg_weight: the factor above.
        margin: pose-box margin.

    Returns:
        dict with pose_2d (M, J, 2), pose_3d (M, J, 3), scores (M,) (sums), labels (M,) (class of
        each mode's top proposal), highest score first.
    """
    n, j = poses_2d.shape[:2]
    device = poses_2d.device
    # Sequential and branchy: run it on the CPU (at most pre_integration_top_n proposals per image).
    poses_2d, poses_3d, scores, labels = (t.detach().cpu() for t in (poses_2d, poses_3d, scores, labels))
    out_2d, out_3d, out_scores, out_labels = [], [], [], []
    if n > 0:
        boxes = pose_boxes(poses_2d, margin)
        overlaps = (box_iou(boxes, boxes) > iou_thresh).numpy()
        joint_factor = torch.ones((n, j), dtype=poses_2d.dtype)
        upper_rows = torch.where(upper.detach().cpu().bool())[0]
        joint_factor[upper_rows[:, None], torch.tensor(list(lower_body), dtype=torch.int64)] = upper_leg_weight
        order = scores.argsort(descending=True).numpy()
        ungrouped = np.ones(n, dtype=bool)
        for top in order:
            if not ungrouped[top]:
                continue
            group = ungrouped & overlaps[top]
            group[top] = True  # a degenerate (zero-area) box has IoU 0 even with itself
            ungrouped &= ~group
            left = order[group[order]]  # the group, highest score first
            while left.size:
                mode_top = left[0]
                d3d = (poses_3d[left] - poses_3d[mode_top]).norm(dim=-1).mean(dim=-1).numpy()
                in_mode = d3d < t3d_m
                in_mode[0] = True
                mode = torch.from_numpy(left[in_mode])
                left = left[~in_mode]
                weights = scores[mode, None] * joint_factor[mode]  # (m, J), eq. 8 with the leg factor
                norm = weights.sum(dim=0).clamp(min=torch.finfo(weights.dtype).tiny)
                out_2d.append((weights[..., None] * poses_2d[mode]).sum(dim=0) / norm[:, None])
                out_3d.append((weights[..., None] * poses_3d[mode]).sum(dim=0) / norm[:, None])
                out_scores.append(scores[mode].sum())
                out_labels.append(labels[mode_top])
    if not out_scores:
        merged = {
            "pose_2d": poses_2d.new_zeros((0, j, 2)),
            "pose_3d": poses_3d.new_zeros((0, j, 3)),
            "scores": scores.new_zeros((0,)),
            "labels": labels.new_zeros((0,)),
        }
    else:
        merged_scores = torch.stack(out_scores)
        rank = merged_scores.argsort(descending=True, stable=True)
        merged = {
            "pose_2d": torch.stack(out_2d)[rank],
            "pose_3d": torch.stack(out_3d)[rank],
            "scores": merged_scores[rank],
            "labels": torch.stack(out_labels)[rank],
        }
    return {k: v.to(device) for k, v in merged.items()}


def integrate(
    poses_2d: torch.Tensor,
    poses_3d: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    upper: torch.Tensor,
    *,
    method: str,
    lower_body: Sequence[int],
    margin: float,
    nms_iou_thresh: float,
    ppi_iou_thresh: float,
    ppi_t3d_m: float,
    upper_leg_weight: float,
) -> dict[str, torch.Tensor]:
    """One image's (rescored) pose proposals -> final poses by PPI, NMS or nothing, highest score first.

    The model applies this with its own config (LCRNet._postprocess); evaluation applies it to the
    same proposals with several settings (NMS, PPI for PCKh, PPI for AP: sec 3.6 tunes PPI per metric).

    Args:
        poses_2d: (N, J, 2) px.
        poses_3d: (N, J, 3) metres, body-centred.
        scores: (N,) rescored classification scores.
        labels: (N,) int64 pose classes in 1..2K.
        upper: (N,) bool, True for upper-body classes (K+1..2K).
        method: "ppi", "nms" or "none" (all proposals, sorted).
        lower_body, margin, upper_leg_weight: as for `ppi`.
        nms_iou_thresh: IoU of the NMS (method "nms").
        ppi_iou_thresh, ppi_t3d_m: the two PPI thresholds (method "ppi").

    Returns:
        dict with pose_2d (M, J, 2), pose_3d (M, J, 3), scores (M,), labels (M,).
    """
    if method == "ppi":
        return ppi(
            poses_2d, poses_3d, scores, labels, upper, iou_thresh=ppi_iou_thresh, t3d_m=ppi_t3d_m,
            lower_body=lower_body, upper_leg_weight=upper_leg_weight, margin=margin,
        )  # fmt: skip
    if method == "nms":
        keep = nms_poses(poses_2d, scores, nms_iou_thresh, margin)
    elif method == "none":
        keep = scores.argsort(descending=True)
    else:
        raise ValueError(f"integration must be ppi, nms or none, got {method!r}")
    return {"pose_2d": poses_2d[keep], "pose_3d": poses_3d[keep], "scores": scores[keep], "labels": labels[keep]}
