"""The training and inference loops, as torchvision's references/detection/engine.py, counted in iterations.

`train_iterations` is TV's train_one_epoch for an iteration-based schedule (the paper counts
iterations, 500k, not epochs): one SGD step per batch, the loss being the sum of the model's named
losses, with a finite-loss guard that raises instead of exiting, optional AMP, and one record per
step for the caller to log. `evaluate` is TV's evaluate without the COCO evaluator: it yields each
image's detections with its target, and lcrnet/metrics.py scores them.

No files, no printing, no checkpoints here (lcrnet/train.py does those).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

Batch = tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite (TV's engine would sys.exit; we raise, the CLI reports it)."""

    def __init__(self, iteration: int, losses: dict[str, float]) -> None:
        self.iteration = iteration
        self.losses = losses
        parts = ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
        super().__init__(f"loss is not finite at iteration {iteration}: {parts}")


@dataclass(frozen=True)
class StepRecord:
    """What one training step did.

    iteration: the number of steps done after this one (1-based). lr: the learning rate of the
    step. loss: the summed loss, averaged over processes. losses: each named loss, likewise.
    images: images in the step over all processes. seconds: wall time of the step, data loading included.
    """

    iteration: int
    lr: float
    loss: float
    losses: dict[str, float]
    images: int
    seconds: float


def iteration_seed(seed: int, iteration: int, rank: int = 0) -> int:
    """Seed of torch's generators for one step: proposal sampling and the transform's random min_size
    then depend on (seed, iteration, rank) only, so a resumed run repeats an uninterrupted one."""
    return int(np.random.SeedSequence([seed, iteration, rank]).generate_state(1)[0])


def _to_device(batch: Batch, device: torch.device) -> Batch:
    images, targets = batch
    non_blocking = device.type == "cuda"
    return (
        [image.to(device, non_blocking=non_blocking) for image in images],
        [{k: v.to(device, non_blocking=non_blocking) for k, v in t.items()} for t in targets],
    )


def _reduce(values: torch.Tensor) -> torch.Tensor:
    """Mean over processes (identity without torch.distributed), for logging and the finite guard."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        values = values.clone()
        dist.all_reduce(values)
        values /= dist.get_world_size()
    return values


def train_iterations(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: Iterable[Batch],
    device: torch.device,
    *,
    start: int,
    seed: int,
    scaler: torch.amp.GradScaler | None = None,
    rank: int = 0,
    clip_grad_norm: float = 0.0,
) -> Iterator[StepRecord]:
    """One SGD step per batch of `loader`, from iteration `start`; yields a StepRecord after each step.

    Args:
        model: LCRNet (or DDP around it): train mode returns a dict of scalar losses.
        optimizer, lr_scheduler: stepped once per iteration (the scheduler counts iterations).
        loader: batches (images list of (3, H, W) float [0, 1], targets list of dicts), e.g. a
            DataLoader over lcrnet.data.PoseShardDataset with lcrnet.data.collate.
        device: where the model is.
        start: iterations already done (0, or the resumed checkpoint's iteration).
        seed: the run's seed (see `iteration_seed`).
        scaler: a GradScaler for float16 autocast on CUDA; None = full precision.
        rank: this process's rank under torchrun.
        clip_grad_norm: clip the global L2 norm of the gradients to this (0: no clipping).

    Raises:
        NonFiniteLossError: the summed loss is NaN or infinite (the same on every process).
    """
    model.train()
    amp = scaler is not None and scaler.is_enabled()
    iteration = start
    tick = time.perf_counter()
    for batch in loader:
        torch.manual_seed(iteration_seed(seed, iteration, rank))
        images, targets = _to_device(batch, device)
        lr = optimizer.param_groups[0]["lr"]
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            loss_dict = model(images, targets)
        # Sum in float32: under autocast some losses are float16.
        loss = sum(v.float() for v in loss_dict.values())
        assert isinstance(loss, torch.Tensor)
        names = list(loss_dict)
        logged = _reduce(torch.stack([loss.detach(), *(loss_dict[k].detach().float() for k in names)]))
        values = logged.tolist()
        iteration += 1
        if not math.isfinite(values[0]):
            raise NonFiniteLossError(iteration, dict(zip(names, values[1:])))
        optimizer.zero_grad(set_to_none=True)
        if amp:
            assert scaler is not None
            scaler.scale(loss).backward()
            if clip_grad_norm > 0:
                scaler.unscale_(optimizer)  # clip true gradients, not scaled ones
                _clip(optimizer, clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if clip_grad_norm > 0:
                _clip(optimizer, clip_grad_norm)
            optimizer.step()
        lr_scheduler.step()
        now = time.perf_counter()
        world = _world_size()
        yield StepRecord(iteration, lr, values[0], dict(zip(names, values[1:])), len(images) * world, now - tick)
        tick = now


def _clip(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, max_norm)


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: Iterable[Batch], device: torch.device
) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """Run the model in eval mode over `loader`; yield (detections, target) per image, both on the CPU.

    Detections are LCRNet's eval outputs (boxes, scores, labels, pose_2d px of the input image,
    pose_3d metres body-centred); targets are the dataset's, unchanged.
    """
    model.eval()
    for batch in loader:
        images, targets = batch
        outputs = model([image.to(device) for image in images])
        for out, target in zip(outputs, targets):
            yield {k: v.detach().cpu() for k, v in out.items()}, target
