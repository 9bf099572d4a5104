"""`posebank train`: LCR-Net++ on annotation shards, SGD with the paper's schedule, checkpoints, resume, DDP.

The paper trains 500k iterations, 300k at lr 1e-3 then 200k at 1e-4 (sec 4.2, 5): here the lr
drops by `lr_gamma` after `lr_step_fraction` (60%) of `--iterations`, after a short linear warm-up
(torchvision's detection references). One run writes to its `out` folder:

    last.pt       the checkpoint (lcrnet/checkpoint.py), every checkpoint_every iterations and at the end
    model.pt      the same without the optimizer state (a third of the size): for evaluate, predict, sharing
    metrics.csv   one row per log_every iterations: iteration, epoch, lr, loss, each loss_*, gradient
                  norm, skipped steps, images/s
    config.json   the resolved TrainConfig and ModelConfig
    tb/           TensorBoard scalars, when the tensorboard package is installed

Resume: the data order (lcrnet.data.ResumableBatchSampler), the augmentation draws and torch's
generators (lcrnet.engine.iteration_seed) are functions of (seed, iteration), and the checkpoint holds
the weights, optimizer, scheduler and scaler states, so a run resumed from last.pt ends with the
weights an uninterrupted run would have (up to floating-point non-determinism of the kernels).

Several GPUs: launch with `torchrun --nproc-per-node N -m cli.main train ...`. When WORLD_SIZE > 1
each process joins the process group (NCCL on CUDA, gloo on the CPU), takes its share of every
epoch (DistributedSampler), wraps the model in DistributedDataParallel; rank 0 alone writes files.
--batch-size is per process.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from posebank.errors import InputError, OutputConflictError
from posebank.provenance import atomic_path, write_json_atomic
from posebank.skeleton import get_skeleton

from .anchors import PoseAnchors
from .checkpoint import LAST, MODEL, load_checkpoint, save_checkpoint
from .config import ModelConfig
from .data import PoseShardDataset, ResumableBatchSampler, collate, no_split_message, resolve_sources
from .engine import StepRecord, train_iterations
from .job_config import TrainConfig, from_dict, resolve_device, to_dict
from .model import LCRNet, build_model

LOG = logging.getLogger(__name__)
METRICS_FILE = "metrics.csv"
CONFIG_FILE = "config.json"

T = TypeVar("T")
ProgressFactory = Callable[[Iterable[T], str, int], Iterator[T]]


@dataclass
class TrainReport:
    """What a training run did. `seconds` counts this call only."""

    out: Path
    device: str
    images: int
    people: int
    start_iteration: int
    iteration: int
    world_size: int = 1
    last_loss: float = float("nan")
    images_per_second: float = 0.0
    seconds: float = 0.0
    skipped_steps: int = 0
    checkpoint: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)


class PaperSchedule:
    """lr factor of iteration i: linear warm-up, then 1, then `gamma` from `step_at` on (LambdaLR).

    A class, not a closure, so that LambdaLR's state_dict records its fields.
    """

    def __init__(self, warmup_iters: int, warmup_factor: float, step_at: int, gamma: float) -> None:
        self.warmup_iters = warmup_iters
        self.warmup_factor = warmup_factor
        self.step_at = step_at
        self.gamma = gamma

    def __call__(self, iteration: int) -> float:
        factor = self.gamma if iteration >= self.step_at else 1.0
        if iteration < self.warmup_iters:
            alpha = iteration / self.warmup_iters
            factor *= self.warmup_factor * (1 - alpha) + alpha
        return factor


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """SGD (or AdamW) over the trainable parameters and its per-iteration LambdaLR (PaperSchedule)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer: torch.optim.Optimizer
    if cfg.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    schedule = PaperSchedule(cfg.warmup_iters, cfg.warmup_factor, cfg.lr_step_iteration, cfg.lr_gamma)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


@dataclass(frozen=True)
class _Dist:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    initialised_here: bool = False


def _init_distributed(device_name: str) -> tuple[_Dist, torch.device]:
    """Join the torchrun process group when WORLD_SIZE > 1; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), torch.device(resolve_device(device_name))
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = resolve_device(device_name).startswith("cuda")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    initialised_here = not dist.is_initialized()
    if initialised_here:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(world, rank, local_rank, initialised_here), device


class _MetricsLog:
    """metrics.csv (rows kept up to the resumed iteration, then appended) and optional TensorBoard."""

    def __init__(self, out: Path, columns: list[str], start: int) -> None:
        self.path = out / METRICS_FILE
        self.columns = columns
        kept: list[dict[str, str]] = []
        if start > 0 and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                kept = [row for row in csv.DictReader(f) if int(row["iteration"]) <= start]
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"), purge_step=start + 1 if start else None)
        except ImportError:  # tensorboard is optional
            pass

    def write(self, row: dict[str, float]) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("iteration", "epoch"):
                    self.tb.add_scalar(f"train/{k}", v, int(row["iteration"]))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _load_anchors(path: str, skeleton_joints: int) -> PoseAnchors:
    from posebank.anchors.build import load_anchors

    a = load_anchors(path)
    if a.pose_3d.shape[1] != skeleton_joints:
        raise InputError(path, f"anchors have {a.pose_3d.shape[1]} joints, the model's skeleton {skeleton_joints}")
    return PoseAnchors.from_numpy(np.array(a.pose_3d), np.array(a.pose_2d_full), np.array(a.pose_2d_upper))


def _check_resume(path: Path, cfg: TrainConfig, model_cfg: ModelConfig) -> dict[str, Any] | None:
    """The checkpoint to resume from (None: start afresh), or refuse another job's output."""
    if not path.is_file():
        return None
    if not cfg.resume:
        if cfg.overwrite:
            return None
        raise OutputConflictError(f"{path.parent} holds a training run; use --resume to continue it, or --overwrite")
    checkpoint = load_checkpoint(path)
    saved = checkpoint["config"]
    saved_train = from_dict(TrainConfig, saved["train"] or {})
    if saved_train.job_identity() != cfg.job_identity() or saved["model"] != to_dict(model_cfg):
        if cfg.overwrite:
            return None
        raise OutputConflictError(
            f"{path} was written by another job (other data or settings); use another --out, or --overwrite"
        )
    return checkpoint


def train(
    cfg: TrainConfig,
    model_cfg: ModelConfig | None = None,
    *,
    progress: ProgressFactory | None = None,
    stop_at: int | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> TrainReport:
    """Train (or resume training) LCR-Net++ as `cfg` says.

    Args:
        cfg: data, anchors, schedule, augmentation, device, output folder, ...
        model_cfg: the architecture; None = ModelConfig() defaults. Its num_anchors is set to the
            number of anchors in cfg.anchors.
        progress: wraps the step loop (iterable, description, total) -> iterator (rank 0 only).
        stop_at: stop after this iteration (checkpoint written), as if the job were interrupted;
            a later call with cfg.resume continues it.
        on_log: called with each metrics.csv row (every cfg.log_every iterations, rank 0 only),
            e.g. to print it.

    Returns:
        A TrainReport; out/last.pt, out/metrics.csv and out/config.json hold the rest.

    Raises:
        InputError: unreadable shards, images, anchors or checkpoint.
        OutputConflictError: out holds another run (see TrainConfig.resume / overwrite).
        lcrnet.engine.NonFiniteLossError: the loss diverged (cfg.max_nonfinite_steps bad steps in a row).
    """
    t0 = time.perf_counter()
    dist_info, device = _init_distributed(cfg.device)
    try:
        return _train(cfg, model_cfg or ModelConfig(), dist_info, device, progress, stop_at, on_log, t0)
    finally:
        if dist_info.initialised_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    dist_info: _Dist,
    device: torch.device,
    progress: ProgressFactory | None,
    stop_at: int | None,
    on_log: Callable[[dict[str, float]], None] | None,
    t0: float,
) -> TrainReport:
    out = Path(cfg.out)
    main = dist_info.rank == 0
    anchors = _load_anchors(cfg.anchors, model_cfg.num_joints)
    model_cfg = dataclasses.replace(model_cfg, num_anchors=anchors.num_anchors)
    checkpoint = _check_resume(out / LAST, cfg, model_cfg)
    start = int(checkpoint["iteration"]) if checkpoint is not None else 0

    dataset = PoseShardDataset(
        resolve_sources(cfg.data, cfg.images_root, allow_outside_images_root=cfg.allow_outside_images_root), get_skeleton(model_cfg.skeleton), split=cfg.split,
        flip=cfg.flip, scale_range=tuple(cfg.scale_range), seed=cfg.seed,
    )  # fmt: skip
    if len(dataset) == 0:
        raise InputError(cfg.data[0] if cfg.data else ".", no_split_message(dataset.sources, cfg.split))
    stop = min(cfg.iterations, stop_at) if stop_at is not None else cfg.iterations
    report = TrainReport(out, str(device), len(dataset), dataset.num_people, start, start, dist_info.world_size)

    torch.manual_seed(cfg.seed)  # the initial weights
    model: torch.nn.Module = build_model(model_cfg, anchors).to(device)
    optimizer, lr_scheduler = build_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        lr_scheduler.load_state_dict(checkpoint["lr_scheduler"])
        if checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
    if dist_info.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    net = model.module if dist_info.world_size > 1 else model
    assert isinstance(net, LCRNet)

    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / CONFIG_FILE, {"train": to_dict(cfg), "model": to_dict(model_cfg),
                                              "world_size": dist_info.world_size})  # fmt: skip
    if start >= stop:
        report.checkpoint = out / LAST
        report.seconds = time.perf_counter() - t0
        return report

    sampler = ResumableBatchSampler(
        len(dataset), cfg.batch_size, seed=cfg.seed, start=start, stop=stop,
        num_replicas=dist_info.world_size, rank=dist_info.rank,
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=cfg.workers, collate_fn=collate,
        pin_memory=device.type == "cuda",
    )  # fmt: skip
    columns = ["iteration", "epoch", "lr", "loss", *net.loss_names(), "grad_norm", "skipped_steps", "images_per_s", "elapsed_s"]
    log = _MetricsLog(out, columns, start) if main else None
    steps = train_iterations(
        model, optimizer, lr_scheduler, loader, device, start=start, seed=cfg.seed,
        scaler=scaler if scaler.is_enabled() else None, rank=dist_info.rank, clip_grad_norm=cfg.clip_grad_norm,
        max_nonfinite_steps=cfg.max_nonfinite_steps,
    )  # fmt: skip
    if main and progress is not None:
        steps = progress(steps, "training", stop - start)
    train_cfg = to_dict(cfg)
    window: list[StepRecord] = []
    images = 0
    busy = 0.0

    def checkpoint_now(iteration: int) -> None:
        if main:
            save_checkpoint(out / LAST, model=model, iteration=iteration, train_config=train_cfg,
                            optimizer=optimizer, lr_scheduler=lr_scheduler, scaler=scaler)  # fmt: skip
            save_checkpoint(out / MODEL, model=model, iteration=iteration, train_config=train_cfg)

    try:
        for record in steps:
            window.append(record)
            images += record.images
            busy += record.seconds
            report.iteration, report.last_loss = record.iteration, record.loss
            report.skipped_steps += record.skipped
            if record.iteration % cfg.log_every == 0 or record.iteration == stop:
                row = _window_row(window, sampler.epoch_of(record.iteration - 1), time.perf_counter() - t0)
                row["skipped_steps"] = report.skipped_steps
                report.history.append(row)
                if log is not None:
                    log.write(row)
                if main and on_log is not None:
                    on_log(row)
                window = []
            if record.iteration % cfg.checkpoint_every == 0 or record.iteration == stop:
                checkpoint_now(record.iteration)
    finally:
        if log is not None:
            log.close()
    report.checkpoint = out / LAST
    report.images_per_second = images / busy if busy > 0 else 0.0
    report.seconds = time.perf_counter() - t0
    return report


def _window_row(window: list[StepRecord], epoch: int, elapsed: float) -> dict[str, float]:
    """Means over the finite steps since the last row (a smoother curve than single steps)."""
    last = window[-1]
    finite = [r for r in window if not r.skipped] or window
    n = len(finite)
    row: dict[str, float] = {"iteration": last.iteration, "epoch": epoch, "lr": last.lr,
                             "loss": sum(r.loss for r in finite) / n}  # fmt: skip
    for k in last.losses:
        row[k] = sum(r.losses[k] for r in finite) / n
    row["grad_norm"] = sum(r.grad_norm for r in finite) / n
    seconds = sum(r.seconds for r in window)
    row["images_per_s"] = sum(r.images for r in window) / seconds if seconds > 0 else 0.0
    row["elapsed_s"] = elapsed
    return row
