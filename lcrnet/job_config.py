"""TrainConfig, EvalConfig, PredictConfig: the jobs run on an LCR-Net++ model, one frozen dataclass each.

ModelConfig (lcrnet/config.py) describes the network; these describe what is done with it. The CLI
(cli/model.py) parses its options into them and calls one library function (lcrnet.train.train,
lcrnet.evaluate.evaluate, lcrnet.predict.predict). Both TrainConfig and ModelConfig are saved in
every checkpoint (dataclasses.asdict) and read back with `from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

C = TypeVar("C", "TrainConfig", "EvalConfig", "PredictConfig")

# Fields that say how or where a training job runs, not what it computes: a resumed run may change them.
RUNTIME_FIELDS = ("out", "resume", "device", "workers", "log_every", "checkpoint_every", "overwrite")


@dataclass(frozen=True)
class TrainConfig:
    """Training of LCR-Net++ on annotation shards (posebank annotate or synth) with SGD (sec 4.2, 5)."""

    version: int = 1  # bump when a field changes meaning
    data: tuple[str, ...] = ()  # annotation shard folders or files (annotate / synth --out), read together
    images_root: str | None = None  # images root of every data folder; None: each folder's metadata images_root, relative to it
    allow_outside_images_root: bool = False  # accept shard image paths that leave the images root (absolute, "..")
    anchors: str = ""  # anchors.parquet or its folder (posebank anchors --out); K sets ModelConfig.num_anchors
    out: str = "train"  # output folder: last.pt, model.pt, metrics.csv, config.json (and tb/ with TensorBoard)
    split: str | None = "train"  # train on rows of this split only; None = every row
    iterations: int = 500_000  # SGD iterations (the paper: 500k)
    batch_size: int = 8  # images per iteration and process (the paper: 8 images, 32 RoIs each)
    lr: float = 1e-3  # base learning rate (the paper: 1e-3, then 1e-4)
    lr_step_fraction: float = 0.6  # the lr drops after this fraction of the iterations (the paper: 300k of 500k)
    lr_gamma: float = 0.1  # factor of that drop (1e-3 -> 1e-4)
    optimizer: str = "sgd"  # "sgd" (the paper's) or "adamw" (decoupled weight decay; often faster from random weights)
    momentum: float = 0.9  # SGD momentum (Faster R-CNN's, which the paper keeps); ignored by adamw
    weight_decay: float = 1e-4  # L2 on the weights (torchvision detection references)
    warmup_iters: int = 500  # linear warm-up of the lr from warmup_factor x lr (torchvision references); 0 = none
    warmup_factor: float = 1e-3  # starting fraction of the lr during warm-up
    clip_grad_norm: float = 10.0  # clip the gradients' global L2 norm to this (0 = off, as the paper); guards runs from random weights
    max_nonfinite_steps: int = 5  # a step with a NaN/inf loss or gradient is skipped; this many in a row stop the run
    flip: bool = True  # mirror half of the images left-right, swapping left/right joints (the paper's mirroring, sec 5)
    scale_range: tuple[float, float] = (0.75, 1.25)  # zoom factor drawn log-uniformly; the canvas keeps its size (crop or pad)
    amp: bool = True  # float16 autocast + GradScaler on CUDA; ignored on the CPU
    # bfloat16 autocast on the CPU (no scaler: bfloat16 has float32's range). Measured with AVX512-BF16: steps
    # 1.45-1.5x faster, training loops 1.35x, learning as float32 does; slower on CPUs that emulate it (BENCHMARKS.md).
    cpu_bf16: bool = False
    device: str = "auto"  # "auto" (cuda when present), "cpu", "cuda", "cuda:1"; torchrun: cuda:LOCAL_RANK
    workers: int = 2  # DataLoader worker processes (0: load in the main process); the data do not depend on it
    seed: int = 0  # seeds the weights, the data order, the augmentation and the proposal sampling
    checkpoint_every: int = 1000  # write out/last.pt every this many iterations (and at the end)
    log_every: int = 20  # one metrics.csv row (and progress update) every this many iterations
    resume: bool = False  # continue from out/last.pt (same job: same results as an uninterrupted run)
    overwrite: bool = False  # replace another job's out/last.pt instead of refusing

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError(f"iterations and batch_size must be >= 1, got {self.iterations}, {self.batch_size}")
        if not 0.0 < self.lr_step_fraction <= 1.0:
            raise ValueError(f"lr_step_fraction must be in (0, 1], got {self.lr_step_fraction}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range must be 0 < MIN <= MAX, got {self.scale_range}")
        if self.clip_grad_norm < 0:
            raise ValueError(f"clip_grad_norm must be >= 0, got {self.clip_grad_norm}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be sgd or adamw, got {self.optimizer!r}")
        if self.max_nonfinite_steps < 1:
            raise ValueError(f"max_nonfinite_steps must be >= 1, got {self.max_nonfinite_steps}")
        if self.checkpoint_every < 1 or self.log_every < 1 or self.workers < 0 or self.warmup_iters < 0:
            raise ValueError("checkpoint_every and log_every must be >= 1, workers and warmup_iters >= 0")

    @property
    def lr_step_iteration(self) -> int:
        """The iteration from which the lr is lr x lr_gamma (300k of 500k in the paper: 60%)."""
        return max(1, round(self.lr_step_fraction * self.iterations))

    def job_identity(self) -> dict[str, Any]:
        """The fields that decide the trained weights (RUNTIME_FIELDS left out), as a resume compares them."""
        d = to_dict(self)
        for k in RUNTIME_FIELDS:
            d.pop(k, None)
        return d


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation of a checkpoint on annotation shards: PCK(h), MPJPE, multi-person AP; NMS vs PPI vs upper bound."""

    version: int = 1  # bump when a field changes meaning
    checkpoint: str = ""  # a checkpoint written by train (last.pt)
    data: tuple[str, ...] = ()  # annotation shard folders or files
    images_root: str | None = None  # as TrainConfig.images_root
    allow_outside_images_root: bool = False  # as TrainConfig.allow_outside_images_root
    out: str = "eval"  # output folder: metrics.json, metrics.csv
    split: str | None = "val"  # evaluate rows of this split only; None = every row
    max_images: int = 0  # evaluate the first this many images (0: all)
    batch_size: int = 2  # images per forward pass
    workers: int = 2  # DataLoader worker processes
    device: str = "auto"  # as TrainConfig.device
    seed: int = 0  # seeds torch (evaluation itself draws nothing)
    score_thresh: float | None = None  # drop (box, class) proposals below this score; None = the checkpoint's ModelConfig.score_thresh
    pck_alpha: float = 0.5  # a joint is correct within pck_alpha x head size (PCKh@0.5)
    min_score: float = 0.5  # predictions scoring at least this count in recall and precision (as predict's --min-score)
    protocol: str | None = None  # Human3.6M protocol "h36m-p1" | "h36m-p2" | "h36m-p3": per-action MPJPE tables too
    nms_iou_thresh: float = 0.5  # NMS on pose boxes (the paper's baseline)
    ppi_pck_iou: float = 0.12  # PPI 2D threshold for the single-person metrics (sec 5.3: PCKh)
    ppi_pck_t3d_m: float = 0.13  # PPI T_3D in metres for the single-person metrics
    ppi_ap_iou: float = 0.54  # PPI 2D threshold for multi-person AP (sec 5.3)
    ppi_ap_t3d_m: float = 0.03  # PPI T_3D in metres for multi-person AP

    def __post_init__(self) -> None:
        if self.max_images < 0 or self.batch_size < 1 or self.workers < 0:
            raise ValueError("max_images and workers must be >= 0 and batch_size >= 1")
        if self.pck_alpha <= 0:
            raise ValueError(f"pck_alpha must be > 0, got {self.pck_alpha}")
        if self.protocol not in (None, "h36m-p1", "h36m-p2", "h36m-p3"):
            raise ValueError(f"protocol must be h36m-p1, h36m-p2 or h36m-p3, got {self.protocol!r}")


@dataclass(frozen=True)
class PredictConfig:
    """Detection on image files: people with 2D and 3D poses (JSON, Parquet) and overlay PNGs."""

    version: int = 1  # bump when a field changes meaning
    checkpoint: str = ""  # a checkpoint written by train
    images: tuple[str, ...] = ()  # image files (anything Pillow reads)
    out: str = "predictions"  # output folder: <image>.json, <image>.png, predictions.parquet
    device: str = "auto"  # as TrainConfig.device
    integration: str | None = None  # "ppi", "nms" or "none"; None = the checkpoint's ModelConfig.integration
    score_thresh: float | None = None  # drop (box, class) proposals below this before integration; None = the checkpoint's
    min_score: float = 0.5  # keep people scoring at least this (PPI scores are sums over a mode, they may exceed 1)
    max_people: int = 50  # at most this many people per image, best first
    overlay: bool = True  # write the overlay PNG (2D skeletons + a small 3D view)
    seed: int = 0  # seeds torch (inference itself draws nothing)

    def __post_init__(self) -> None:
        if self.integration not in (None, "ppi", "nms", "none"):
            raise ValueError(f"integration must be ppi, nms or none, got {self.integration!r}")
        if self.max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {self.max_people}")


def to_dict(config: Any) -> dict[str, Any]:
    """A config as plain JSON-able data (tuples become lists), as saved in checkpoints and JSON files."""
    from posebank.config import to_dict as _to_dict

    return _to_dict(config)


def from_dict(cls: type[C], values: dict[str, Any]) -> C:
    """Inverse of `to_dict` (lists back to tuples); unknown fields are refused."""
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def resolve_device(name: str) -> str:
    """"auto" -> "cuda" when a CUDA device is present, else "cpu"; other names unchanged."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
