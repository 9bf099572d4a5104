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
    .job.json     the job's identity and the sha256 of every file above (posebank.jobs; `posebank verify`)

The folder follows the output-folder contract (posebank.jobs.OutputFolder, docs/design.md): the
job is every setting that changes the weights (TrainConfig.job_identity and the ModelConfig) and the
data and anchors by content (their manifests' sha256); the output folder, device, workers and log
and checkpoint intervals are not part of it. Another job's folder is refused, naming the settings
that differ and both values, unless --overwrite (which replaces it). The same job's folder holds a
run to continue (--resume) or to replace (--overwrite); a last.pt whose bytes are not the ones
recorded when it was written is never resumed from.

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

import contextlib
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
from posebank.jobs import JobSpec, OutputFolder
from posebank.provenance import atomic_path, write_json_atomic
from posebank.verify import input_sha256
from posebank.skeleton import get_skeleton

from .anchors import PoseAnchors
from .checkpoint import LAST, MODEL, load_checkpoint, save_checkpoint
from .config import ModelConfig
from .data import PoseShardDataset, ResumableBatchSampler, collate, no_split_message, resolve_sources
from .engine import StepRecord, train_iterations
from .job_config import TrainConfig, resolve_device, to_dict
from .model import LCRNet, build_model

LOG = logging.getLogger(__name__)
METRICS_FILE = "metrics.csv"
CONFIG_FILE = "config.json"
TB_DIR = "tb"

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
    # The fused kernels update each tensor in one pass. On the CPU, AdamW's default per-tensor path took
    # 0.22 s of a 0.61 s step of the "cpu" preset (22.6M parameters, 2 threads); fused, 0.015 s, with the
    # same updates to float rounding (BENCHMARKS.md).
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    optimizer: torch.optim.Optimizer
    if cfg.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    else:
        optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=fused)
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

            self.tb = SummaryWriter(str(out / TB_DIR), purge_step=start + 1 if start else None)
        except ImportError:  # tensorboard is optional
            pass

    def write(self, row: dict[str, float]) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("iteration", "epoch"):
                    self.tb.add_scalar(f"train/{k}", v, int(row["iteration"]))

    def files(self) -> list[str]:
        """metrics.csv and the TensorBoard files as they stand (flushed), relative to the folder."""
        if self.tb is not None:
            self.tb.flush()
        tb = self.path.parent / TB_DIR
        found = sorted(p for p in tb.rglob("*") if p.is_file()) if tb.is_dir() else []
        return [METRICS_FILE, *(str(p.relative_to(self.path.parent)) for p in found)]

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _load_anchors(path: str, skeleton_joints: int) -> PoseAnchors:
    from posebank.anchors.build import load_anchors

    a = load_anchors(path)
    if a.pose_3d.shape[1] != skeleton_joints:
        raise InputError(path, f"anchors have {a.pose_3d.shape[1]} joints, the model's skeleton {skeleton_joints}")
    return PoseAnchors.from_numpy(np.array(a.pose_3d), np.array(a.pose_2d_full), np.array(a.pose_2d_upper))


TRAIN_OUTPUTS = (LAST, MODEL, CONFIG_FILE, METRICS_FILE, TB_DIR)


def train_job_spec(cfg: TrainConfig, model_cfg: ModelConfig) -> JobSpec:
    """The identity of a training run's --out (posebank.jobs): every TrainConfig field that decides
    the weights (TrainConfig.job_identity, paths of the inputs left out), the ModelConfig, and the
    data and anchors by content (the manifests of the outputs that hold them)."""
    settings = {k: v for k, v in cfg.job_identity().items() if k not in ("data", "anchors")}
    settings["model"] = to_dict(model_cfg)
    inputs = {}
    for i, d in enumerate(cfg.data):
        what, sha = input_sha256(d)
        inputs[f"data[{i}] {what}"] = sha
    what, sha = input_sha256(cfg.anchors)
    inputs[f"anchors {what}"] = sha
    return JobSpec("train", settings, inputs, outputs=TRAIN_OUTPUTS)


def _resume_from(job: OutputFolder, cfg: TrainConfig) -> bool:
    """Whether this run continues the checkpoint in the folder (True) or starts afresh (False).

    The folder already holds this same job (OutputFolder refused or cleared any other). Without
    cfg.resume its checkpoint is refused, unless cfg.overwrite (then the run starts over); a
    checkpoint whose bytes are not those recorded when it was written is never trusted.
    """
    if not job.path(LAST).is_file():
        if job.resumed and job.files:
            job.clear()  # a run stopped before its first checkpoint: nothing to continue from
        return False
    if not cfg.resume:
        if cfg.overwrite:
            job.clear()
            return False
        raise OutputConflictError(f"{job.out} holds a training run; use --resume to continue it, or --overwrite")
    if job.reusable(LAST):
        return True
    LOG.warning("%s is not the checkpoint this job recorded: training starts over", job.path(LAST))
    job.clear()
    return False


def _agree(dist_info: _Dist, decide: Callable[[], T]) -> T:
    """`decide()` on rank 0, its result (or its exception) on every rank (torchrun)."""
    if dist_info.world_size <= 1:
        return decide()
    import torch.distributed as dist

    box: list[Any] = [None]
    if dist_info.rank == 0:
        try:
            box[0] = ("ok", decide())
        except Exception as err:  # noqa: BLE001 -- re-raised below, on every rank
            box[0] = ("error", err)
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value  # type: ignore[no-any-return]


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
        OutputConflictError: out holds another job (the message names the settings that differ), or
            this job's checkpoint without cfg.resume (see TrainConfig.resume / overwrite).
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
    anchors = _load_anchors(cfg.anchors, model_cfg.num_joints)
    model_cfg = dataclasses.replace(model_cfg, num_anchors=anchors.num_anchors)
    dataset = _open_dataset(cfg, model_cfg)
    spec = _agree(dist_info, lambda: train_job_spec(cfg, model_cfg))
    # Rank 0 alone owns the folder (its lock, journal and files); the others follow its decisions.
    folder = OutputFolder(out, spec, overwrite=cfg.overwrite) if dist_info.rank == 0 else contextlib.nullcontext()
    with folder as job:
        resume = _agree(dist_info, lambda: _resume_from(job, cfg))
        checkpoint = load_checkpoint(out / LAST) if resume else None
        start = int(checkpoint["iteration"]) if checkpoint is not None else 0
        stop = min(cfg.iterations, stop_at) if stop_at is not None else cfg.iterations
        report = TrainReport(out, str(device), len(dataset), dataset.num_people, start, start, dist_info.world_size)
        state = _build_state(cfg, model_cfg, anchors, device, dist_info, checkpoint)
        if job is not None:
            write_json_atomic(out / CONFIG_FILE, {"train": to_dict(cfg), "model": to_dict(model_cfg),
                                                  "world_size": dist_info.world_size})  # fmt: skip
            job.record(CONFIG_FILE)
        if start < stop:
            _run_steps(cfg, state, dataset, device, dist_info, job, report, (start, stop), progress, on_log, t0)
    report.checkpoint = out / LAST
    report.seconds = time.perf_counter() - t0
    return report


def _open_dataset(cfg: TrainConfig, model_cfg: ModelConfig) -> PoseShardDataset:
    """The training rows of cfg.data (cfg.split), checked against their manifests; refuses an empty set."""
    sources = resolve_sources(cfg.data, cfg.images_root, allow_outside_images_root=cfg.allow_outside_images_root)
    dataset = PoseShardDataset(sources, get_skeleton(model_cfg.skeleton), split=cfg.split, flip=cfg.flip,
                               scale_range=tuple(cfg.scale_range), seed=cfg.seed)  # fmt: skip
    if len(dataset) == 0:
        raise InputError(cfg.data[0] if cfg.data else ".", no_split_message(dataset.sources, cfg.split))
    return dataset


@dataclass
class _State:
    """What a training step updates: the model (DDP-wrapped on several processes), its optimizer,
    lr schedule and AMP scaler; `net` is the LCRNet inside `model`."""

    model: torch.nn.Module
    net: LCRNet
    optimizer: torch.optim.Optimizer
    lr_scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler


def _build_state(
    cfg: TrainConfig, model_cfg: ModelConfig, anchors: PoseAnchors, device: torch.device, dist_info: _Dist,
    checkpoint: dict[str, Any] | None,
) -> _State:  # fmt: skip
    """The model, optimizer, schedule and scaler: seeded initial weights, or the checkpoint's state."""
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
    return _State(model, net, optimizer, lr_scheduler, scaler)


def _run_steps(
    cfg: TrainConfig, state: _State, dataset: PoseShardDataset, device: torch.device, dist_info: _Dist,
    job: OutputFolder | None, report: TrainReport, span: tuple[int, int], progress: ProgressFactory | None,
    on_log: Callable[[dict[str, float]], None] | None, t0: float,
) -> None:  # fmt: skip
    """Iterations span[0]+1 .. span[1]: a metrics row every log_every, a checkpoint every checkpoint_every
    and at the end (rank 0 writes; `job` is None on the other ranks). Fills `report`."""
    start, stop = span
    sampler = ResumableBatchSampler(
        len(dataset), cfg.batch_size, seed=cfg.seed, start=start, stop=stop,
        num_replicas=dist_info.world_size, rank=dist_info.rank,
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=cfg.workers, collate_fn=collate,
        pin_memory=device.type == "cuda",
    )  # fmt: skip
    columns = ["iteration", "epoch", "lr", "loss", *state.net.loss_names(), "grad_norm", "skipped_steps",
               "images_per_s", "elapsed_s"]  # fmt: skip
    log = _MetricsLog(job.out, columns, start) if job is not None else None
    steps = train_iterations(
        state.model, state.optimizer, state.lr_scheduler, loader, device, start=start, seed=cfg.seed,
        scaler=state.scaler if state.scaler.is_enabled() else None, cpu_bf16=cfg.cpu_bf16, rank=dist_info.rank,
        clip_grad_norm=cfg.clip_grad_norm, max_nonfinite_steps=cfg.max_nonfinite_steps,
    )  # fmt: skip
    if job is not None and progress is not None:
        steps = progress(steps, "training", stop - start)
    window: list[StepRecord] = []
    images, busy = 0, 0.0
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
                if job is not None and on_log is not None:
                    on_log(row)
                window = []
            if job is not None and (record.iteration % cfg.checkpoint_every == 0 or record.iteration == stop):
                _save(job, state, record.iteration, to_dict(cfg), log)
    finally:
        if log is not None:
            log.close()
            job.record_many(log.files())  # type: ignore[union-attr]  # the rows written since the last checkpoint
    report.images_per_second = images / busy if busy > 0 else 0.0


def _save(job: OutputFolder, state: _State, iteration: int, train_cfg: dict[str, Any], log: _MetricsLog | None) -> None:
    """last.pt (resumable), model.pt (weights only), then the journal: the checkpoint and the logs as they
    stand, so that a resume trusts exactly this checkpoint."""
    save_checkpoint(job.path(LAST), model=state.model, iteration=iteration, train_config=train_cfg,
                    optimizer=state.optimizer, lr_scheduler=state.lr_scheduler, scaler=state.scaler)  # fmt: skip
    save_checkpoint(job.path(MODEL), model=state.model, iteration=iteration, train_config=train_cfg)
    job.record_many([LAST, MODEL, *(log.files() if log is not None else [])])


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
