"""`posebank evaluate`: score a checkpoint on annotation shards, NMS against PPI against the upper bound.

The model runs once per image with integration "none" (every rescored pose proposal, eq. 6); the
integrations are then applied to those same proposals (lcrnet.postprocess.integrate), as the
paper's tables compare them:

    nms          NMS on pose boxes (EvalConfig.nms_iou_thresh)
    ppi          PPI with the single-person thresholds (IoU 0.12, T_3D 0.13 m: sec 5.3, for PCKh)
                 for PCK and MPJPE, and with the multi-person ones (IoU 0.54, T_3D 0.03 m) for AP
    upper_bound  the oracle: for each ground-truth person, the pose with the best PCK (then the
                 smallest normalised 2D error) among every rescored proposal and every NMS / PPI
                 output (sec 5.1, Fig. 10 and 14a: "the pose proposal closest to ground truth";
                 the integrated poses are included so that the bound holds by construction: an
                 average of proposals can beat each of them)

Single-person metrics (pck, mpjpe_mm, mpjpe_aligned_mm) score, for each ground-truth person, the
prediction matched to it by pose-box IoU (lcrnet.metrics.match_by_iou); a person left without one
has all its joints wrong and no MPJPE (`detected` is the matched fraction). PCK counts the annotated
joints; MPJPE all J joints of the body-centred poses, in mm; "aligned" after the best rotation and
translation (lcrnet.metrics.rigid_align). Normalisers: lcrnet.metrics (the shard's head_size, i.e.
PCKh, where it has one; the estimated head size elsewhere, e.g. synthetic data). AP: MPII multi-person
protocol (lcrnet.metrics.MultiPersonAP). The joints are the model's J (13), not MPII's 14 or 16.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from posebank.errors import InputError
from posebank.provenance import atomic_path, package_version, write_json_atomic
from posebank.skeleton import get_skeleton

from .checkpoint import load_checkpoint, model_from_checkpoint
from .data import PoseShardDataset, collate, resolve_sources
from .engine import evaluate as run_inference
from .heads import PoseRefinement
from .job_config import EvalConfig, resolve_device, to_dict
from .metrics import (
    MultiPersonAP,
    estimated_head_size,
    match_by_iou,
    mpjpe,
    pck_correct,
    rigid_align,
)
from .model import LCRNet
from .poses import pose_boxes
from .postprocess import integrate

METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
METHODS = ("nms", "ppi", "upper_bound")
KEYS = ("pck", "mpjpe_mm", "mpjpe_aligned_mm", "detected", "ap")  # the upper bound has no AP

T = TypeVar("T")
ProgressFactory = Callable[[Iterable[T], str, int], Iterator[T]]


@dataclass
class EvalReport:
    """The metrics (as in metrics.json) and where they were written."""

    out: Path | None
    metrics: dict[str, Any]
    seconds: float = 0.0


@dataclass
class _Scores:
    """Per-method accumulators of the single-person metrics."""

    correct: int = 0
    joints: int = 0
    people: int = 0
    detected: int = 0
    errors_mm: list[float] = field(default_factory=list)
    aligned_mm: list[float] = field(default_factory=list)

    def add(self, correct: np.ndarray, visible: np.ndarray, pred_3d: np.ndarray | None, gt_3d: np.ndarray) -> None:
        """One matched (pred_3d given) or missed (None) person: correct/visible (J,) bool, 3D (J, 3) m."""
        self.correct += int(correct.sum())
        self.joints += int(visible.sum())
        self.people += 1
        if pred_3d is not None:
            self.detected += 1
            self.errors_mm.append(1000.0 * float(mpjpe(pred_3d[None], gt_3d[None])[0]))
            aligned = rigid_align(pred_3d[None], gt_3d[None])
            self.aligned_mm.append(1000.0 * float(mpjpe(aligned, gt_3d[None])[0]))

    def result(self) -> dict[str, float]:
        return {
            "pck": self.correct / self.joints if self.joints else float("nan"),
            "mpjpe_mm": float(np.mean(self.errors_mm)) if self.errors_mm else float("nan"),
            "mpjpe_aligned_mm": float(np.mean(self.aligned_mm)) if self.aligned_mm else float("nan"),
            "detected": self.detected / self.people if self.people else float("nan"),
        }


@contextlib.contextmanager
def all_proposals(model: LCRNet) -> Iterator[LCRNet]:
    """The model temporarily set to return every rescored proposal (integration "none", no cap)."""
    saved = model.cfg
    model.cfg = dataclasses.replace(saved, integration="none", detections_per_img=max(saved.pre_integration_top_n, 1))
    try:
        yield model
    finally:
        model.cfg = saved


def anchor_only(model: LCRNet) -> LCRNet:
    """A copy of `model` whose last estimate regresses nothing: each pose proposal is its class's
    anchor-pose placed in the proposal box (the classification-only baseline of bench/gpu_check.py)."""
    import copy

    baseline = copy.deepcopy(model)
    with torch.no_grad():
        stage = baseline.roi_heads.stages[-1]
        last = stage.estimate if isinstance(stage, PoseRefinement) else stage  # the estimate used at test time
        last.pose_reg.weight.zero_()
        last.pose_reg.bias.zero_()
    return baseline


def evaluate_model(
    model: LCRNet,
    dataset: PoseShardDataset,
    cfg: EvalConfig,
    device: torch.device,
    *,
    progress: ProgressFactory | None = None,
) -> dict[str, Any]:
    """Metrics of `model` on `dataset` (module docstring): {"nms": {...}, "ppi": {...}, "upper_bound": {...}, ...}."""
    skeleton = get_skeleton(model.cfg.skeleton)
    mcfg = model.cfg
    j = skeleton.num_joints
    num_anchors = model.anchors.num_anchors
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers, collate_fn=collate
    )
    scores = {m: _Scores() for m in METHODS}
    ap = {m: MultiPersonAP(j, cfg.pck_alpha) for m in ("nms", "ppi")}
    normalisers: set[str] = set()
    proposals_total = 0
    images = 0
    common = dict(lower_body=skeleton.lower_body, margin=mcfg.box_margin, upper_leg_weight=mcfg.ppi_upper_leg_weight)
    with all_proposals(model):
        pairs = run_inference(model.to(device), loader, device)
        if progress is not None:
            pairs = progress(pairs, "evaluating", len(dataset))
        for det, target in pairs:
            images += 1
            proposals_total += int(det["scores"].shape[0])
            args = (det["pose_2d"], det["pose_3d"], det["scores"], det["labels"], det["labels"] > num_anchors)
            nms = integrate(*args, method="nms", nms_iou_thresh=cfg.nms_iou_thresh, ppi_iou_thresh=0.0, ppi_t3d_m=0.0, **common)
            ppi = integrate(*args, method="ppi", nms_iou_thresh=0.0, ppi_iou_thresh=cfg.ppi_pck_iou,
                            ppi_t3d_m=cfg.ppi_pck_t3d_m, **common)  # fmt: skip
            ppi_ap = integrate(*args, method="ppi", nms_iou_thresh=0.0, ppi_iou_thresh=cfg.ppi_ap_iou,
                               ppi_t3d_m=cfg.ppi_ap_t3d_m, **common)  # fmt: skip
            gt_2d = target["pose_2d"].numpy().astype(np.float64)
            gt_3d = target["pose_3d"].numpy().astype(np.float64)
            visible = target["visible"].numpy().astype(bool)
            norm, kinds = _normalisers(target, gt_2d, gt_3d)
            normalisers |= kinds
            gt_boxes = pose_boxes(target["pose_2d"].float(), mcfg.box_margin).numpy()
            ignore = target.get("ignore_boxes", torch.zeros(0, 4)).numpy()
            for name, result in (("nms", nms), ("ppi", ppi)):
                pred_2d, pred_3d = result["pose_2d"].numpy(), result["pose_3d"].numpy()
                match = match_by_iou(gt_boxes, pose_boxes(result["pose_2d"], mcfg.box_margin).numpy())
                for g, p in enumerate(match):
                    if p >= 0:
                        correct = pck_correct(pred_2d[p], gt_2d[g], visible[g], norm[g], cfg.pck_alpha)
                        scores[name].add(correct, visible[g], pred_3d[p], gt_3d[g])
                    else:
                        scores[name].add(np.zeros(j, bool), visible[g], None, gt_3d[g])
            for name, result in (("nms", nms), ("ppi", ppi_ap)):
                ap[name].add(result["pose_2d"].numpy(), result["scores"].numpy(), gt_2d, visible, norm,
                             pred_boxes=pose_boxes(result["pose_2d"], mcfg.box_margin).numpy(), ignore_boxes=ignore)  # fmt: skip
            candidates_2d = torch.cat([det["pose_2d"], nms["pose_2d"], ppi["pose_2d"]]).numpy()
            candidates_3d = torch.cat([det["pose_3d"], nms["pose_3d"], ppi["pose_3d"]]).numpy()
            for g in range(len(gt_2d)):
                best = _oracle(candidates_2d, gt_2d[g], visible[g], norm[g], cfg.pck_alpha)
                if best < 0:
                    scores["upper_bound"].add(np.zeros(j, bool), visible[g], None, gt_3d[g])
                    continue
                correct = pck_correct(candidates_2d[best], gt_2d[g], visible[g], norm[g], cfg.pck_alpha)
                scores["upper_bound"].add(correct, visible[g], candidates_3d[best], gt_3d[g])
    metrics: dict[str, Any] = {m: scores[m].result() for m in METHODS}
    for name in ("nms", "ppi"):
        result = ap[name].result()
        metrics[name]["ap"] = result["ap"]
        metrics[name]["ap_per_joint"] = result["ap_per_joint"]
    metrics.update(
        images=images,
        people=scores["nms"].people,
        joints=scores["nms"].joints,
        pck_alpha=cfg.pck_alpha,
        pck_normaliser="mixed" if len(normalisers) > 1 else (normalisers.pop() if normalisers else "none"),
        proposals_per_image=proposals_total / images if images else 0.0,
    )
    return metrics


def _normalisers(target: dict[str, torch.Tensor], gt_2d: np.ndarray, gt_3d: np.ndarray) -> tuple[np.ndarray, set[str]]:
    """(N,) px: the shard's head size where known (PCKh), else the estimate from the 3D-2D scale."""
    estimate = estimated_head_size(gt_2d, gt_3d) if len(gt_2d) else np.zeros(0)
    head = target.get("head_size")
    head = head.numpy().astype(np.float64) if head is not None else np.full(len(gt_2d), np.nan)
    known = np.isfinite(head) & (head > 0)
    kinds = ({"head_size"} if known.any() else set()) | ({"estimated"} if (~known).any() else set())
    return np.where(known, head, estimate), kinds


def _oracle(candidates_2d: np.ndarray, gt_2d: np.ndarray, visible: np.ndarray, norm: float, alpha: float) -> int:
    """Index of the candidate with the most correct joints, ties to the smallest mean normalised error; -1 if none."""
    if len(candidates_2d) == 0:
        return -1
    errors = np.linalg.norm(candidates_2d - gt_2d[None], axis=-1) / norm  # (C, J)
    vis = visible[None]
    correct = ((errors <= alpha) & vis).sum(axis=1)
    mean_error = np.where(vis, errors, 0.0).sum(axis=1) / max(int(visible.sum()), 1)
    return int(np.lexsort((mean_error, -correct))[0])


def evaluate(cfg: EvalConfig, *, progress: ProgressFactory | None = None) -> EvalReport:
    """Evaluate cfg.checkpoint on cfg.data; write metrics.json and metrics.csv into cfg.out.

    Raises:
        InputError: unreadable checkpoint, shards or images, or no image of cfg.split.
    """
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    device = torch.device(resolve_device(cfg.device))
    checkpoint = load_checkpoint(cfg.checkpoint)
    overrides = {"score_thresh": cfg.score_thresh} if cfg.score_thresh is not None else {}
    model = model_from_checkpoint(checkpoint, device=device, **overrides)
    dataset = PoseShardDataset(
        resolve_sources(cfg.data, cfg.images_root), get_skeleton(model.cfg.skeleton), split=cfg.split,
        max_images=cfg.max_images,
    )  # fmt: skip
    if len(dataset) == 0:
        raise InputError(cfg.data[0] if cfg.data else ".", f"no images of split {cfg.split!r} in the data")
    metrics = evaluate_model(model, dataset, cfg, device, progress=progress)
    metrics["checkpoint"] = {"path": str(cfg.checkpoint), "iteration": int(checkpoint["iteration"])}
    metrics["config"] = to_dict(cfg)
    metrics["version"] = package_version()
    out = Path(cfg.out)
    write_metrics(out, metrics)
    return EvalReport(out, metrics, time.perf_counter() - t0)


def write_metrics(out: Path, metrics: dict[str, Any]) -> None:
    """metrics.json (everything; NaN written as null) and metrics.csv (one row per method)."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / METRICS_JSON, _nan_to_none(metrics))
    with atomic_path(out / METRICS_CSV) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["method", *KEYS])
        for m in METHODS:
            writer.writerow([m, *(_fmt(metrics[m].get(k)) for k in KEYS)])


def _fmt(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6g}"


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value
