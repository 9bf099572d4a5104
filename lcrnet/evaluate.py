"""`posebank evaluate`: score a checkpoint on annotation shards, and say why a number is low.

The network runs once per image; its raw pose proposals are then rescored (eq. 6) and integrated in
several ways, as the paper's tables compare them, and the same proposals with their regression
removed give the anchor-only baseline of the same network:

    nms          NMS on pose boxes (EvalConfig.nms_iou_thresh)
    ppi          the model's PPI (its selection rules; the PCKh thresholds of EvalConfig, IoU 0.12 and
                 T_3D 0.13 m, sec 5.3, for the single-person metrics; IoU 0.54, T_3D 0.03 m for AP)
    ppi_paper    PPI as the paper's text reads: every 3D mode is a pose (lcrnet.postprocess.PPI_PAPER)
    ppi_release  PPI as the LCR-Net release's in-the-wild demo (lcrnet.postprocess.PPI_RELEASE)
    upper_bound  the oracle: for each ground-truth person, the pose with the best PCK (then the
                 smallest normalised 2D error) among every rescored proposal and every integrated
                 output (sec 5.1, Fig. 10 and 14a: "the pose proposal closest to ground truth")
    anchor_only  NMS and PPI on the proposals of the same network whose last regression outputs
                 zeros: each pose is its class's anchor-pose placed in its box (what classification
                 alone gives; the regression has to beat it)

Per method: `pck` scores, for each ground-truth person, the prediction matched to it by pose-box IoU
(lcrnet.metrics.match_by_iou; a person without one has all its joints wrong), `pck_detected` the
same over the matched people only, `pck_per_joint` per joint; `detected` the matched fraction;
`recall` and `precision` of the predictions scoring at least EvalConfig.min_score at pose-box IoU
>= 0.5 (one-to-one); MPJPE over all J joints of the body-centred poses, in mm, raw and "aligned"
(best rotation and translation, lcrnet.metrics.rigid_align); AP by the MPII multi-person protocol
(lcrnet.metrics.MultiPersonAP). Normalisers: the shard's head_size (PCKh; posebank synth writes the
true head size of its bodies), estimated from the 3D-2D scale where a shard has none. The joints are
the model's J (13), not MPII's 14 or 16. With EvalConfig.protocol (Human3.6M P1, P2, P3: shards of
`posebank annotate h36m --protocol`), each method also gets `h36m`: MPJPE raw and aligned per action
in the paper's table layout (lcrnet.h36m_protocols; `h36m_13j` beside it for a 17-joint model). `warnings` lists what makes the numbers meaningless (no
proposal, nobody above min_score) with the option to change.
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
from posebank.jobs import JobSpec, OutputFolder
from posebank.metrics import mpjpe, rigid_align
from posebank.provenance import atomic_path, package_version, sha256_file, write_json_atomic
from posebank.skeleton import get_skeleton
from posebank.verify import input_sha256

from .checkpoint import load_checkpoint, model_from_checkpoint
from .data import PoseShardDataset, collate, no_split_message, resolve_sources
from .engine import evaluate as run_inference
from .h36m_protocols import ProtocolScores, check_shards_protocol
from .job_config import EvalConfig, resolve_device, to_dict
from .metrics import MultiPersonAP, estimated_head_size, match_by_iou, pck_correct
from .model import LCRNet, anchor_only_proposals
from .poses import pose_boxes
from .postprocess import PPI_PAPER, PPI_RELEASE, PPIConfig

METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
METHODS = ("nms", "ppi", "ppi_paper", "ppi_release", "upper_bound")
BASELINE_METHODS = ("nms", "ppi")  # of the anchor-only baseline: metrics["anchor_only"][method]
KEYS = ("pck", "pck_detected", "detected", "recall", "precision", "mpjpe_mm", "mpjpe_aligned_mm", "ap")
DETECTION_IOU = 0.5  # a prediction detects a person at pose-box IoU >= this (recall, precision)

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
    """Per-method accumulators of the single-person and detection metrics (J joints)."""

    num_joints: int
    correct: np.ndarray = field(init=False)  # (J,) correct annotated joints, all people
    joints: np.ndarray = field(init=False)  # (J,) annotated joints, all people
    correct_detected: int = 0
    joints_detected: int = 0
    people: int = 0
    detected: int = 0
    recalled: int = 0
    predictions: int = 0  # predictions scoring >= min_score
    true_predictions: int = 0  # ... of which detect a person
    errors_mm: list[float] = field(default_factory=list)
    aligned_mm: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.correct = np.zeros(self.num_joints, np.int64)
        self.joints = np.zeros(self.num_joints, np.int64)

    def add(self, correct: np.ndarray, visible: np.ndarray, pred_3d: np.ndarray | None, gt_3d: np.ndarray) -> None:
        """One matched (pred_3d given) or missed (None) person: correct/visible (J,) bool, 3D (J, 3) m."""
        self.correct += correct & visible
        self.joints += visible
        self.people += 1
        if pred_3d is not None:
            self.detected += 1
            self.correct_detected += int((correct & visible).sum())
            self.joints_detected += int(visible.sum())
            self.errors_mm.append(1000.0 * float(mpjpe(pred_3d[None], gt_3d[None])[0]))
            aligned = rigid_align(pred_3d[None], gt_3d[None])
            self.aligned_mm.append(1000.0 * float(mpjpe(aligned, gt_3d[None])[0]))

    def add_detections(self, gt_boxes: np.ndarray, pred_boxes: np.ndarray, scores: np.ndarray, min_score: float) -> None:
        """One image's detection counts: predictions scoring >= min_score against the ground-truth boxes."""
        kept = pred_boxes[scores >= min_score]
        match = match_by_iou(gt_boxes, kept, min_iou=DETECTION_IOU - 1e-9)
        self.recalled += int((match >= 0).sum())
        self.predictions += len(kept)
        self.true_predictions += int((match >= 0).sum())

    def result(self, joint_names: tuple[str, ...]) -> dict[str, Any]:
        def ratio(a: float, b: float) -> float:
            return float(a / b) if b else float("nan")  # plain floats: JSON and comparisons stay Python

        return {
            "pck": ratio(self.correct.sum(), self.joints.sum()),
            "pck_detected": ratio(self.correct_detected, self.joints_detected),
            "detected": ratio(self.detected, self.people),
            "recall": ratio(self.recalled, self.people),
            "precision": ratio(self.true_predictions, self.predictions),
            "mpjpe_mm": float(np.mean(self.errors_mm)) if self.errors_mm else float("nan"),
            "mpjpe_aligned_mm": float(np.mean(self.aligned_mm)) if self.aligned_mm else float("nan"),
            "pck_per_joint": {n: ratio(c, t) for n, c, t in zip(joint_names, self.correct, self.joints)},
            "predictions_per_image": float("nan"),  # set by evaluate_model
        }


@contextlib.contextmanager
def raw_proposals(model: LCRNet) -> Iterator[LCRNet]:
    """The model temporarily set to return its raw pose proposals (LCRNet.return_raw_proposals)."""
    model.return_raw_proposals = True
    try:
        yield model
    finally:
        model.return_raw_proposals = False


def _ppi_settings(model: LCRNet, cfg: EvalConfig) -> dict[str, tuple[PPIConfig, PPIConfig]]:
    """(PCK settings, AP settings) of each PPI method."""
    own = model.cfg.ppi_config()
    return {
        "ppi": (dataclasses.replace(own, iou_thresh=cfg.ppi_pck_iou, t3d_m=cfg.ppi_pck_t3d_m),
                dataclasses.replace(own, iou_thresh=cfg.ppi_ap_iou, t3d_m=cfg.ppi_ap_t3d_m)),
        "ppi_paper": (dataclasses.replace(PPI_PAPER, iou_thresh=cfg.ppi_pck_iou, t3d_m=cfg.ppi_pck_t3d_m),
                      dataclasses.replace(PPI_PAPER, iou_thresh=cfg.ppi_ap_iou, t3d_m=cfg.ppi_ap_t3d_m)),
        "ppi_release": (PPI_RELEASE, PPI_RELEASE),
    }  # fmt: skip


def evaluate_model(
    model: LCRNet,
    dataset: PoseShardDataset,
    cfg: EvalConfig,
    device: torch.device,
    *,
    progress: ProgressFactory | None = None,
) -> dict[str, Any]:
    """Metrics of `model` on `dataset` (module docstring).

    Returns:
        {"nms": {...}, "ppi": {...}, "ppi_paper": {...}, "ppi_release": {...}, "upper_bound": {...},
        "anchor_only": {"nms": {...}, "ppi": {...}}, "images", "people", "warnings", ...}; each method's
        dict holds KEYS, pck_per_joint and predictions_per_image (AP: not for the upper bound).
    """
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers, collate_fn=collate
    )
    evaluation = _Evaluation(model, cfg)
    with raw_proposals(model):
        pairs = run_inference(model.to(device), loader, device)
        if progress is not None:
            pairs = progress(pairs, "evaluating", len(dataset))
        for raw, target in pairs:
            evaluation.add(raw, target, image_name=dataset.images[int(target["image_id"])][1])
    return evaluation.metrics()


class _Evaluation:
    """The accumulators of one evaluation: `add` each image's raw proposals and target, then `metrics`."""

    def __init__(self, model: LCRNet, cfg: EvalConfig) -> None:
        self.model, self.cfg = model, cfg
        self.skeleton = get_skeleton(model.cfg.skeleton)
        j = self.j = self.skeleton.num_joints
        self.ppi_settings = _ppi_settings(model, cfg)
        # Human3.6M protocols: MPJPE per action of the same matched poses (a j17 model also gives the 13-joint row).
        self.protocol_joints = [j, 13] if cfg.protocol and j == 17 else [j] if cfg.protocol else []
        self.protocol = {(m, n): ProtocolScores(cfg.protocol) for m in METHODS for n in self.protocol_joints}  # type: ignore[arg-type]
        self.scores = {m: _Scores(j) for m in METHODS}
        self.baseline = {m: _Scores(j) for m in BASELINE_METHODS}
        self.ap = {m: MultiPersonAP(j, cfg.pck_alpha) for m in METHODS if m != "upper_bound"}
        self.outputs = dict.fromkeys([*METHODS[:-1], *(f"anchor_only/{m}" for m in BASELINE_METHODS)], 0)
        self.normalisers: set[str] = set()
        self.proposals = 0
        self.top_score = 0.0
        self.images = 0

    def integrations(self, raw: dict[str, torch.Tensor]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        """One image's candidates and their integrations: (candidates, for the single-person metrics
        per method, for AP per method, of the anchor-only baseline per method)."""
        model, cfg = self.model, self.cfg
        size = (int(raw["image_size"][0]), int(raw["image_size"][1]))
        candidates = model.candidates(raw)
        single = {"nms": model.integrate(candidates, size, method="nms", nms_iou_thresh=cfg.nms_iou_thresh)}
        multi = {"nms": single["nms"]}
        for name, (pck_cfg, ap_cfg) in self.ppi_settings.items():
            single[name] = model.integrate(candidates, size, method="ppi", ppi_config=pck_cfg)
            multi[name] = single[name] if ap_cfg == pck_cfg else model.integrate(candidates, size, method="ppi", ppi_config=ap_cfg)
        plain = model.candidates(anchor_only_proposals(raw, model.anchors))
        base = {"nms": model.integrate(plain, size, method="nms", nms_iou_thresh=cfg.nms_iou_thresh),
                "ppi": model.integrate(plain, size, method="ppi", ppi_config=self.ppi_settings["ppi"][0])}  # fmt: skip
        return candidates, single, multi, base

    def add(self, raw: dict[str, torch.Tensor], target: dict[str, torch.Tensor], *, image_name: str) -> None:
        """One image: its raw proposals (LCRNet.return_raw_proposals) and the dataset's target."""
        cfg, margin = self.cfg, self.model.cfg.box_margin
        self.images += 1
        self.proposals += int(raw["scores"].shape[0])
        candidates, single, multi, base = self.integrations(raw)
        # PPI scores are sums over a mode: the best person may outscore every single proposal.
        best = [float(r["scores"].max()) for r in (candidates, *single.values()) if r["scores"].numel()]
        self.top_score = max([self.top_score, *best])
        gt = _GroundTruth.of(target, margin)
        self.normalisers |= gt.normaliser_kinds
        for name, result in single.items():
            matched_3d = _score_people(self.scores[name], result, gt, cfg, margin)
            self.outputs[name] += len(result["scores"])
            for n in self.protocol_joints:
                for pred, true in zip(matched_3d, gt.pose_3d):
                    self.protocol[name, n].add(image_name, None if pred is None else pred[:n], true[:n])
        for name, result in multi.items():
            self.ap[name].add(result["pose_2d"].numpy(), result["scores"].numpy(), gt.pose_2d, gt.visible, gt.norm,
                              pred_boxes=pose_boxes(result["pose_2d"], margin).numpy(), ignore_boxes=gt.ignore)  # fmt: skip
        for name, result in base.items():
            _score_people(self.baseline[name], result, gt, cfg, margin)
            self.outputs[f"anchor_only/{name}"] += len(result["scores"])
        self._add_upper_bound([candidates, *single.values()], gt, image_name)

    def _add_upper_bound(self, pool: list[dict[str, torch.Tensor]], gt: _GroundTruth, image_name: str) -> None:
        candidates_2d = torch.cat([c["pose_2d"] for c in pool]).numpy()
        candidates_3d = torch.cat([c["pose_3d"] for c in pool]).numpy()
        acc, alpha = self.scores["upper_bound"], self.cfg.pck_alpha
        for g in range(len(gt.pose_2d)):
            best = _oracle(candidates_2d, gt.pose_2d[g], gt.visible[g], gt.norm[g], alpha)
            for n in self.protocol_joints:
                self.protocol["upper_bound", n].add(image_name, None if best < 0 else candidates_3d[best][:n], gt.pose_3d[g][:n])
            if best < 0:
                acc.add(np.zeros(self.j, bool), gt.visible[g], None, gt.pose_3d[g])
                continue
            correct = pck_correct(candidates_2d[best], gt.pose_2d[g], gt.visible[g], gt.norm[g], alpha)
            acc.add(correct, gt.visible[g], candidates_3d[best], gt.pose_3d[g])

    def metrics(self) -> dict[str, Any]:
        names, images = self.skeleton.joint_names, self.images
        metrics: dict[str, Any] = {m: self.scores[m].result(names) for m in METHODS}
        metrics["upper_bound"].update(recall=float("nan"), precision=float("nan"))  # the oracle has no scores
        metrics["anchor_only"] = {m: self.baseline[m].result(names) for m in BASELINE_METHODS}
        for name, acc in self.ap.items():
            result = acc.result()
            metrics[name]["ap"] = result["ap"]
            metrics[name]["ap_per_joint"] = result["ap_per_joint"]
        for (name, n), acc in self.protocol.items():
            metrics[name]["h36m" if n == self.j else f"h36m_{n}j"] = acc.result()
        for name, count in self.outputs.items():
            group, _, method = name.rpartition("/")
            (metrics[group] if group else metrics)[method]["predictions_per_image"] = count / images if images else 0.0
        kinds = self.normalisers
        metrics.update(
            images=images,
            people=self.scores["nms"].people,
            joints=int(self.scores["nms"].joints.sum()),
            pck_alpha=self.cfg.pck_alpha,
            min_score=self.cfg.min_score,
            pck_normaliser="mixed" if len(kinds) > 1 else (next(iter(kinds)) if kinds else "none"),
            proposals_per_image=self.proposals / images if images else 0.0,
            warnings=_warnings(self.proposals, self.top_score, self.model.cfg.score_thresh, self.cfg.min_score),
        )
        return metrics


@dataclass(frozen=True)
class _GroundTruth:
    """One image's ground truth as numpy: poses (N, J, 2) px / (N, J, 3) m, visible (N, J), PCK
    normalisers (N,) px, pose boxes (N, 4) px, ignore boxes (I, 4) px."""

    pose_2d: np.ndarray
    pose_3d: np.ndarray
    visible: np.ndarray
    norm: np.ndarray
    normaliser_kinds: set[str]
    boxes: np.ndarray
    ignore: np.ndarray

    @classmethod
    def of(cls, target: dict[str, torch.Tensor], margin: float) -> _GroundTruth:
        pose_2d = target["pose_2d"].numpy().astype(np.float64)
        pose_3d = target["pose_3d"].numpy().astype(np.float64)
        norm, kinds = _normalisers(target, pose_2d, pose_3d)
        return cls(pose_2d, pose_3d, target["visible"].numpy().astype(bool), norm, kinds,
                   pose_boxes(target["pose_2d"].float(), margin).numpy(),
                   target.get("ignore_boxes", torch.zeros(0, 4)).numpy())  # fmt: skip


def _score_people(
    acc: _Scores, result: dict[str, torch.Tensor], gt: _GroundTruth, cfg: EvalConfig, margin: float
) -> list[np.ndarray | None]:
    """Single-person metrics (each person against its IoU-matched prediction) and detection counts;
    returns each person's matched 3D pose (J, 3) m, or None when missed."""
    pred_2d, pred_3d = result["pose_2d"].numpy(), result["pose_3d"].numpy()
    pred_boxes = pose_boxes(result["pose_2d"], margin).numpy()
    match = match_by_iou(gt.boxes, pred_boxes)
    for g, p in enumerate(match):
        if p >= 0:
            correct = pck_correct(pred_2d[p], gt.pose_2d[g], gt.visible[g], gt.norm[g], cfg.pck_alpha)
            acc.add(correct, gt.visible[g], pred_3d[p], gt.pose_3d[g])
        else:
            acc.add(np.zeros(len(gt.visible[g]), bool), gt.visible[g], None, gt.pose_3d[g])
    acc.add_detections(gt.boxes, pred_boxes, result["scores"].numpy(), cfg.min_score)
    return [pred_3d[p] if p >= 0 else None for p in match]


def _warnings(proposals: int, top_score: float, score_thresh: float, min_score: float) -> list[str]:
    """What makes the numbers meaningless, with the option that changes it."""
    if proposals == 0:
        return [f"no pose proposal scored above the checkpoint's score_thresh {score_thresh:g} on any image: "
                "the network detects nothing yet (train longer), or lower it with --score-thresh (e.g. 0)"]  # fmt: skip
    if top_score < min_score:
        return [f"no person scored at least --min-score {min_score:g} by any method (best {top_score:.3g}): recall "
                f"and precision are 0; lower --min-score"]  # fmt: skip
    return []


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


EVAL_OUTPUTS = (METRICS_JSON, METRICS_CSV)


def eval_job_spec(cfg: EvalConfig) -> JobSpec:
    """The identity of an evaluation's --out (posebank.jobs): the settings that change the metrics
    (where and how fast it runs left out), the checkpoint by its sha256 and the data by content."""
    settings = {k: v for k, v in to_dict(cfg).items() if k not in ("out", "workers", "device", "checkpoint", "data")}
    inputs = {"checkpoint": sha256_file(cfg.checkpoint)}
    for i, d in enumerate(cfg.data):
        what, sha = input_sha256(d)
        inputs[f"data[{i}] {what}"] = sha
    return JobSpec("evaluate", settings, inputs, outputs=EVAL_OUTPUTS)


def evaluate(cfg: EvalConfig, *, progress: ProgressFactory | None = None, overwrite: bool = False) -> EvalReport:
    """Evaluate cfg.checkpoint on cfg.data; write metrics.json and metrics.csv into cfg.out.

    The output folder follows posebank.jobs: a rerun of the same evaluation recomputes the metrics
    in place; another evaluation's folder is refused (naming the settings that differ) unless
    `overwrite`. It is opened before the evaluation runs, so a refusal comes at once.

    Raises:
        InputError: unreadable checkpoint, shards or images, or no image of cfg.split.
        OutputConflictError: cfg.out holds another evaluation and `overwrite` is False.
    """
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    device = torch.device(resolve_device(cfg.device))
    checkpoint = load_checkpoint(cfg.checkpoint)
    with OutputFolder(Path(cfg.out), eval_job_spec(cfg), overwrite=overwrite) as job:
        metrics = _evaluate_checkpoint(cfg, checkpoint, device, progress)
        write_metrics(job.out, metrics)
        job.record_many(EVAL_OUTPUTS)
    return EvalReport(job.out, metrics, time.perf_counter() - t0)


def _evaluate_checkpoint(
    cfg: EvalConfig, checkpoint: dict[str, Any], device: torch.device, progress: ProgressFactory | None
) -> dict[str, Any]:
    """The metrics of `checkpoint` on cfg.data (evaluate_model), with the checkpoint, config and version."""
    overrides = {"score_thresh": cfg.score_thresh} if cfg.score_thresh is not None else {}
    model = model_from_checkpoint(checkpoint, device=device, **overrides)
    if cfg.protocol:
        from posebank.shards import open_dataset, read_metadata

        for source in resolve_sources(cfg.data, cfg.images_root, allow_outside_images_root=cfg.allow_outside_images_root):
            for f in open_dataset(source.data).files:
                check_shards_protocol(cfg.protocol, read_metadata(f), path=str(f))
    dataset = PoseShardDataset(
        resolve_sources(cfg.data, cfg.images_root, allow_outside_images_root=cfg.allow_outside_images_root), get_skeleton(model.cfg.skeleton), split=cfg.split,
        max_images=cfg.max_images,
    )  # fmt: skip
    if len(dataset) == 0:
        raise InputError(cfg.data[0] if cfg.data else ".", no_split_message(dataset.sources, cfg.split))
    metrics = evaluate_model(model, dataset, cfg, device, progress=progress)
    metrics["checkpoint"] = {"path": str(cfg.checkpoint), "iteration": int(checkpoint["iteration"])}
    metrics["config"] = to_dict(cfg)
    metrics["version"] = package_version()
    return metrics


def write_metrics(out: Path, metrics: dict[str, Any]) -> None:
    """metrics.json (everything; NaN written as null) and metrics.csv (one row per method)."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / METRICS_JSON, _nan_to_none(metrics))
    with atomic_path(out / METRICS_CSV) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["method", *KEYS])
        for m in METHODS:
            writer.writerow([m, *(_fmt(metrics[m].get(k)) for k in KEYS)])
        for m in BASELINE_METHODS:
            writer.writerow([f"anchor_only/{m}", *(_fmt(metrics["anchor_only"][m].get(k)) for k in KEYS)])


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
