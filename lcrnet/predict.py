"""`posebank predict`: detect people with their 2D and 3D poses in image files.

For each image, in `out`:
    <name>.json          the people, best first: score, class, box, pose_2d (px), pose_3d (m)
    <name>.png           overlay: 2D skeletons on the image and a small 3D view (lcrnet/visualize.py)
and, for all images, predictions.parquet (one row per person, PREDICTIONS_SCHEMA). <name> is the
image's file stem, suffixed by its position in the list when two images share a stem.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from posebank.errors import InputError
from posebank.provenance import package_version, write_json_atomic
from posebank.skeleton import Skeleton, get_skeleton

from .checkpoint import load_checkpoint, model_from_checkpoint
from .job_config import PredictConfig, resolve_device, to_dict
from .model import LCRNet

PARQUET_FILE = "predictions.parquet"
FRAME = "pose_2d: image px, origin top-left, x right, y down; pose_3d: camera frame (x right, y down, z forward), body-centred"

T = TypeVar("T")
ProgressFactory = Callable[[Iterable[T], str, int], Iterator[T]]


@dataclass
class PredictReport:
    """What a predict run wrote."""

    out: Path
    images: int = 0
    people: int = 0
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    best_score: float = float("nan")  # the best person score seen, kept or not (NaN: no proposal passed score_thresh)
    warnings: list[str] = field(default_factory=list)  # why nobody was found, with the option to change


def load_image(path: str | Path) -> tuple[torch.Tensor, np.ndarray]:
    """An image file -> ((3, H, W) float32 in [0, 1], (H, W, 3) uint8 RGB)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (FileNotFoundError, OSError) as err:
        raise InputError(path, f"cannot read image: {err}") from None
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0), rgb


@torch.no_grad()
def detect(model: LCRNet, image: torch.Tensor, *, min_score: float, max_people: int) -> tuple[dict[str, torch.Tensor], float]:
    """The model's detections on one (3, H, W) [0, 1] image, kept when score >= min_score, best max_people,
    on the CPU; and the best score before that cut (NaN when no proposal passed the model's score_thresh)."""
    device = next(model.parameters()).device
    out = model.eval()([image.to(device)])[0]
    best = float(out["scores"].max()) if out["scores"].numel() else float("nan")
    keep = torch.where(out["scores"] >= min_score)[0][:max_people]
    return {k: v[keep].cpu() for k, v in out.items()}, best


def _names(images: list[str]) -> list[str]:
    stems = [Path(p).stem for p in images]
    return [s if stems.count(s) == 1 else f"{s}_{i}" for i, s in enumerate(stems)]


def _person_json(det: dict[str, torch.Tensor], m: int) -> dict[str, Any]:
    return {
        "score": float(det["scores"][m]),
        "label": int(det["labels"][m]),
        "box": [round(float(v), 2) for v in det["boxes"][m]],
        "pose_2d": [[round(float(x), 2), round(float(y), 2)] for x, y in det["pose_2d"][m].tolist()],
        "pose_3d": [[round(float(v), 4) for v in xyz] for xyz in det["pose_3d"][m].tolist()],
    }


def predict(cfg: PredictConfig, *, progress: ProgressFactory | None = None) -> PredictReport:
    """Detect the people of cfg.images with cfg.checkpoint; write JSON, overlay PNGs and Parquet into cfg.out.

    Raises:
        InputError: unreadable checkpoint or image.
    """
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    checkpoint = load_checkpoint(cfg.checkpoint)
    overrides: dict[str, Any] = {"integration": cfg.integration} if cfg.integration is not None else {}
    if cfg.score_thresh is not None:
        overrides["score_thresh"] = cfg.score_thresh
    model = model_from_checkpoint(checkpoint, device=resolve_device(cfg.device), **overrides)
    skeleton = get_skeleton(model.cfg.skeleton)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    report = PredictReport(out)
    rows: dict[str, list[Any]] = {k: [] for k in ("image", "image_width", "image_height", "person", "score", "label")}
    arrays: dict[str, list[np.ndarray]] = {"box": [], "pose_2d": [], "pose_3d": []}
    items: Iterable[tuple[str, str]] = zip(cfg.images, _names(list(cfg.images)))
    if progress is not None:
        items = progress(items, "detecting", len(cfg.images))
    for path, name in items:
        image, rgb = load_image(path)
        det, best = detect(model, image, min_score=cfg.min_score, max_people=cfg.max_people)
        if not math.isnan(best):
            report.best_score = best if math.isnan(report.best_score) else max(report.best_score, best)
        h, w = rgb.shape[:2]
        m = int(det["scores"].shape[0])
        record = {
            "image": str(path), "width": w, "height": h, "joint_names": list(skeleton.joint_names),
            "units": {"pose_2d": "px", "pose_3d": "m"}, "frame": FRAME,
            "people": [_person_json(det, i) for i in range(m)],
        }  # fmt: skip
        write_json_atomic(out / f"{name}.json", record)
        report.files.append(out / f"{name}.json")
        if cfg.overlay:
            from .visualize import draw_overlay

            report.files.append(draw_overlay(rgb, det["pose_2d"].numpy(), det["pose_3d"].numpy(),
                                             det["scores"].numpy(), skeleton, out / f"{name}.png"))  # fmt: skip
        rows["image"] += [str(path)] * m
        rows["image_width"] += [w] * m
        rows["image_height"] += [h] * m
        rows["person"] += list(range(m))
        rows["score"] += det["scores"].tolist()
        rows["label"] += det["labels"].tolist()
        arrays["box"].append(det["boxes"].numpy())
        arrays["pose_2d"].append(det["pose_2d"].numpy())
        arrays["pose_3d"].append(det["pose_3d"].numpy())
        report.images += 1
        report.people += m
    report.files.append(_write_parquet(out / PARQUET_FILE, rows, arrays, skeleton, model, cfg, checkpoint))
    if report.people == 0 and report.images:
        if math.isnan(report.best_score):
            report.warnings.append(f"no pose proposal scored above score_thresh {model.cfg.score_thresh:g}: lower it "
                                   "with --score-thresh (e.g. 0); the model may not be trained enough")  # fmt: skip
        else:
            report.warnings.append(f"nobody scored at least --min-score {cfg.min_score:g} (best {report.best_score:.3g}): "
                                   "lower --min-score")  # fmt: skip
    report.seconds = time.perf_counter() - t0
    return report


def _write_parquet(
    path: Path,
    rows: dict[str, list[Any]],
    arrays: dict[str, list[np.ndarray]],
    skeleton: Skeleton,
    model: LCRNet,
    cfg: PredictConfig,
    checkpoint: dict[str, Any],
) -> Path:
    from posebank.shards import make_table, predictions_schema, write_table_atomic

    j = skeleton.num_joints
    shapes = {"box": (4,), "pose_2d": (j, 2), "pose_3d": (j, 3)}
    columns: dict[str, Any] = {
        "image": rows["image"],
        "image_width": np.asarray(rows["image_width"], np.int32),
        "image_height": np.asarray(rows["image_height"], np.int32),
        "person": np.asarray(rows["person"], np.int32),
        "score": np.asarray(rows["score"], np.float32),
        "label": np.asarray(rows["label"], np.int32),
    }
    for k, shape in shapes.items():
        columns[k] = np.concatenate(arrays[k]) if arrays[k] else np.zeros((0, *shape), np.float32)
    metadata = {
        "kind": "predictions",
        "skeleton": skeleton.name,
        "joint_names": list(skeleton.joint_names),
        "units": {"pose_2d": "px", "box": "px", "pose_3d": "m"},
        "frame": FRAME,
        "config": to_dict(cfg),
        "model": json.loads(json.dumps(dataclasses.asdict(model.cfg))),
        "checkpoint_iteration": int(checkpoint["iteration"]),
        "version": package_version(),
    }
    write_table_atomic(make_table(predictions_schema(j), columns, metadata), path)
    return path
