"""Inference post-processing of pose proposals: rescoring (eq. 6), NMS, and pose proposal integration (sec 3.6).

All functions take the pose proposals of ONE image as tensors and return new tensors; they never
touch the network. NMS boxes are the pose boxes (joints' box grown by the model's box margin); PPI
groups with the release's boxes (joints' box clipped to the image, pixel-index areas).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import nms

from posebank.skeleton import Skeleton

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


@dataclass(frozen=True)
class PPIConfig:
    """Pose proposal integration settings (sec 3.6, and the LCR-Net release's choices where the paper is silent).

    iou_thresh: group proposals whose grouping boxes overlap the group's top one above this IoU
        (the paper: 0.12 for PCKh, 0.54 for AP; the release in the wild: 0.14).
    t3d_m: mode radius T_3D on D3D, metres (0.13 for PCKh, 0.03 for AP; the release: 0.04).
    iou_func: grouping boxes around every joint ("bbox") or hips, shoulders and head ("bbox_torsohead").
    selection: "best_mode" keeps one pose per group, its highest-scoring mode (the release);
        "all_modes" returns every mode as a pose (the paper's text).
    min_mode_score: once a group has a mode, no new mode opens from a proposal scoring below this.
    min_person_score: poses scoring at most this are dropped (the release's th_persondetect).
    upper_leg_weight: factor on the lower-body weights of upper-body proposals in the average.
    """

    iou_thresh: float = 0.12
    t3d_m: float = 0.13
    iou_func: str = "bbox"
    selection: str = "best_mode"
    min_mode_score: float = 0.05
    min_person_score: float = 0.0
    upper_leg_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.iou_func not in ("bbox", "bbox_torsohead"):
            raise ValueError(f"iou_func must be bbox or bbox_torsohead, got {self.iou_func!r}")
        if self.selection not in ("best_mode", "all_modes"):
            raise ValueError(f"selection must be best_mode or all_modes, got {self.selection!r}")


# Named settings compared by `posebank evaluate`: the paper's text at its PCKh thresholds (every mode
# is a pose), and the LCR-Net release's in-the-wild demo (lcr_net_ppi.py with its parameters).
PPI_PAPER = PPIConfig(iou_thresh=0.12, t3d_m=0.13, selection="all_modes", min_mode_score=0.0)
PPI_RELEASE = PPIConfig(iou_thresh=0.14, t3d_m=0.04, iou_func="bbox_torsohead", selection="best_mode",
                        min_mode_score=0.05, min_person_score=0.5)  # fmt: skip

TORSO_HEAD = ("right_hip", "left_hip", "right_shoulder", "left_shoulder", "head")


def grouping_boxes(poses_2d: torch.Tensor, image_size: tuple[int, int], joints: Sequence[int] | None = None) -> torch.Tensor:
    """PPI's grouping boxes: the joints' box (no margin) clipped to the image, as the LCR-Net release.

    Args:
        poses_2d: (N, J, 2) px.
        image_size: (H, W) px of the image the poses are in.
        joints: the joints the box goes around (None: all).

    Returns:
        (N, 4) x0, y0, x1, y1 px, inside [0, W-1] x [0, H-1].
    """
    h, w = image_size
    pts = poses_2d if joints is None else poses_2d[:, list(joints)]
    lo, hi = pts.amin(dim=1), pts.amax(dim=1)
    limit = torch.tensor([w - 1.0, h - 1.0], dtype=pts.dtype)
    lo = torch.minimum(lo.clamp(min=0), limit)
    hi = torch.minimum(hi.clamp(min=0), limit)
    return torch.cat([lo, hi], dim=1)


def pixel_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, M) IoU of boxes whose corners are pixel indices: a box covers x1 - x0 + 1 pixels across
    (the release's and Pascal VOC's convention), so a one-joint box has area 1, not 0."""
    lo = torch.maximum(a[:, None, :2], b[None, :, :2])
    hi = torch.minimum(a[:, None, 2:], b[None, :, 2:]) + 1
    inter = (hi - lo).clamp(min=0).prod(dim=-1)
    area_a = (a[:, 2:] - a[:, :2] + 1).prod(dim=-1)
    area_b = (b[:, 2:] - b[:, :2] + 1).prod(dim=-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def ppi(
    poses_2d: torch.Tensor,
    poses_3d: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    upper: torch.Tensor,
    *,
    config: PPIConfig,
    image_size: tuple[int, int],
    lower_body: Sequence[int],
    torso_head: Sequence[int],
) -> dict[str, torch.Tensor]:
    """Pose proposal integration (sec 3.6): group by 2D overlap, find 3D modes, average each mode.

    Groups: the top-scoring proposal not yet grouped takes every ungrouped proposal whose grouping
    box (`grouping_boxes`) has IoU > iou_thresh with its own; repeat until all are grouped. Modes
    (eq. 7): the top-scoring proposal P* of the group not yet covered by a mode takes every proposal
    of the whole group with D3D(P*, P) < T_3D (so a proposal may count in several modes, as eq. 7
    reads and the release does); repeat until the group is covered or the next P* scores below
    min_mode_score. Each mode's pose is the score-weighted average of its poses (eq. 8), scored by
    the sum S of its scores. `config.selection` keeps each group's best mode, or every mode.

    Upper-body proposals (classes K+1..2K) hallucinate the legs (sec 4.2): in the average their
    lower-body joints weigh `upper_leg_weight` times their score, so a full-body proposal in the same
    mode decides where the legs are (the factor cancels in a mode of upper-body proposals only).

    Args:
        poses_2d: (N, J, 2) px of the image.
        poses_3d: (N, J, 3) metres, body-centred (D3D compares centred poses).
        scores: (N,) (rescored) classification scores.
        labels: (N,) int64 pose classes.
        upper: (N,) bool, True for upper-body classes.
        config: thresholds and selection rules.
        image_size: (H, W) px, to clip the grouping boxes.
        lower_body: lower-body joint indices (posebank Skeleton.lower_body).
        torso_head: joint indices of the "bbox_torsohead" boxes (TORSO_HEAD by name).

    Returns:
        dict with pose_2d (M, J, 2), pose_3d (M, J, 3), scores (M,) (sums S), labels (M,) (class of
        each mode's top proposal), highest score first.
    """
    n, j = poses_2d.shape[:2]
    device = poses_2d.device
    # Sequential and branchy: run it on the CPU (at most pre_integration_top_n proposals per image).
    poses_2d, poses_3d, scores, labels = (t.detach().cpu() for t in (poses_2d, poses_3d, scores, labels))
    people: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    if n > 0:
        joints = torso_head if config.iou_func == "bbox_torsohead" else None
        boxes = grouping_boxes(poses_2d.float(), image_size, joints)
        overlaps = (pixel_iou(boxes, boxes) > config.iou_thresh).numpy()
        joint_factor = _leg_factors(upper, lower_body, (n, j), poses_2d.dtype, config.upper_leg_weight)
        for members in _groups(overlaps, scores):
            modes = _modes(members, poses_3d, scores, config)
            if config.selection == "best_mode":
                modes = [max(modes, key=lambda mode: float(scores[mode].sum()))]  # first of equals, as argmax
            for mode in modes:
                person = _average_mode(mode, poses_2d, poses_3d, scores, labels, joint_factor, config.min_person_score)
                if person is not None:
                    people.append(person)
    return {k: v.to(device) for k, v in _ranked(people, poses_2d, poses_3d, scores, labels).items()}


def _leg_factors(
    upper: torch.Tensor, lower_body: Sequence[int], shape: tuple[int, int], dtype: torch.dtype, weight: float
) -> torch.Tensor:
    """(N, J) factor of each proposal's joints in a mode's average: `weight` on the lower-body joints
    of upper-body proposals (their legs are hallucinated, sec 4.2), 1 elsewhere."""
    factor = torch.ones(shape, dtype=dtype)
    upper_rows = torch.where(upper.detach().cpu().bool())[0]
    factor[upper_rows[:, None], torch.tensor(list(lower_body), dtype=torch.int64)] = weight
    return factor


def _groups(overlaps: np.ndarray, scores: torch.Tensor) -> Iterator[np.ndarray]:
    """The groups of proposals, each as indices highest score first: the top-scoring proposal not yet
    grouped takes every ungrouped proposal it overlaps (overlaps: (N, N) bool), until all are grouped."""
    order = scores.argsort(descending=True, stable=True).numpy()
    ungrouped = np.ones(len(order), dtype=bool)
    for top in order:
        if not ungrouped[top]:
            continue
        group = ungrouped & overlaps[top]
        group[top] = True
        ungrouped &= ~group
        yield order[group[order]]


def _average_mode(
    mode: torch.Tensor, poses_2d: torch.Tensor, poses_3d: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
    joint_factor: torch.Tensor, min_person_score: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:  # fmt: skip
    """One person from a mode (eq. 8): (pose_2d (J, 2), pose_3d (J, 3), score sum S, label of its top
    proposal), its poses averaged with weights score x joint factor; None when S <= min_person_score."""
    weights = scores[mode, None] * joint_factor[mode]  # (m, J), eq. 8 with the leg factor
    norm = weights.sum(dim=0).clamp(min=torch.finfo(weights.dtype).tiny)
    total = scores[mode].sum()
    if float(total) <= min_person_score:
        return None
    pose_2d = (weights[..., None] * poses_2d[mode]).sum(dim=0) / norm[:, None]
    pose_3d = (weights[..., None] * poses_3d[mode]).sum(dim=0) / norm[:, None]
    return pose_2d, pose_3d, total, labels[mode[0]]


def _ranked(
    people: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]], poses_2d: torch.Tensor,
    poses_3d: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """The people as ppi's dict of stacked tensors, highest score first (empty tensors of the
    proposals' dtypes when there is nobody)."""
    j = poses_2d.shape[1]
    if not people:
        return {
            "pose_2d": poses_2d.new_zeros((0, j, 2)),
            "pose_3d": poses_3d.new_zeros((0, j, 3)),
            "scores": scores.new_zeros((0,)),
            "labels": labels.new_zeros((0,)),
        }
    out_2d, out_3d, out_scores, out_labels = zip(*people)
    merged_scores = torch.stack(out_scores)
    rank = merged_scores.argsort(descending=True, stable=True)
    return {
        "pose_2d": torch.stack(out_2d)[rank],
        "pose_3d": torch.stack(out_3d)[rank],
        "scores": merged_scores[rank],
        "labels": torch.stack(out_labels)[rank],
    }


def _modes(members: np.ndarray, poses_3d: torch.Tensor, scores: torch.Tensor, config: PPIConfig) -> list[torch.Tensor]:
    """The 3D modes of one group (eq. 7): each a tensor of proposal indices, its top proposal first.

    members: the group's proposal indices, highest score first.
    """
    group_3d = poses_3d[members]
    uncovered = np.ones(len(members), dtype=bool)
    modes: list[torch.Tensor] = []
    while uncovered.any():
        first = int(np.argmax(uncovered))  # members are sorted: the best uncovered proposal
        if modes and float(scores[members[first]]) < config.min_mode_score:
            break
        d3d = (group_3d - group_3d[first]).norm(dim=-1).mean(dim=-1).numpy()
        in_mode = d3d < config.t3d_m
        in_mode[first] = True
        # The mode's top proposal first (it names the mode's class), then the others by score.
        rows = np.concatenate([[first], np.flatnonzero(in_mode & (np.arange(len(members)) != first))])
        modes.append(torch.from_numpy(members[rows]))
        uncovered &= ~in_mode
    return modes


def integrate(
    poses_2d: torch.Tensor,
    poses_3d: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    upper: torch.Tensor,
    *,
    method: str,
    image_size: tuple[int, int],
    skeleton: Skeleton,
    margin: float,
    nms_iou_thresh: float = 0.5,
    ppi_config: PPIConfig | None = None,
) -> dict[str, torch.Tensor]:
    """One image's (rescored) pose proposals -> final poses by PPI, NMS or nothing, highest score first.

    The model applies this with its own config (LCRNet._postprocess); evaluation applies it to the
    same proposals with several settings (NMS, PPI settings: sec 3.6 tunes PPI per metric).

    Args:
        poses_2d: (N, J, 2) px of the image.
        poses_3d: (N, J, 3) metres, body-centred.
        scores: (N,) rescored classification scores.
        labels: (N,) int64 pose classes in 1..2K.
        upper: (N,) bool, True for upper-body classes (K+1..2K).
        method: "ppi", "nms" or "none" (all proposals, sorted).
        image_size: (H, W) px of the image (PPI clips its grouping boxes to it).
        skeleton: the joint set (lower-body and torso/head joints for PPI).
        margin: pose-box margin (NMS boxes).
        nms_iou_thresh: IoU of the NMS (method "nms").
        ppi_config: PPI settings (method "ppi"); None = PPIConfig().

    Returns:
        dict with pose_2d (M, J, 2), pose_3d (M, J, 3), scores (M,), labels (M,).
    """
    if method == "ppi":
        return ppi(
            poses_2d, poses_3d, scores, labels, upper, config=ppi_config or PPIConfig(), image_size=image_size,
            lower_body=skeleton.lower_body, torso_head=[skeleton.index(name) for name in TORSO_HEAD],
        )  # fmt: skip
    if method == "nms":
        keep = nms_poses(poses_2d, scores, nms_iou_thresh, margin)
    elif method == "none":
        keep = scores.argsort(descending=True)
    else:
        raise ValueError(f"integration must be ppi, nms or none, got {method!r}")
    return {"pose_2d": poses_2d[keep], "pose_3d": poses_3d[keep], "scores": scores[keep], "labels": labels[keep]}
