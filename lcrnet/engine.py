"""The training and inference loops, as torchvision's references/detection/engine.py, counted in iterations.

`train_iterations` is TV's train_one_epoch for an iteration-based schedule (the paper counts
iterations, 500k, not epochs): one SGD step per batch, the loss being the sum of the model's named
losses, optional AMP, gradient clipping, and one record per step for the caller to log. A step whose
loss or gradient is not finite is skipped (no weight update) and recorded as such; only several in a
row stop the run (TV's engine exits at the first; from random weights one bad batch should not end
it). `evaluate` is TV's evaluate without the COCO evaluator: it yields each image's detections (or
raw proposals) with its target, and lcrnet/evaluate.py scores them.

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
    """The loss or the gradient stayed NaN or infinite for several steps in a row (the CLI reports it)."""

    def __init__(self, iteration: int, losses: dict[str, float], in_a_row: int = 1) -> None:
        self.iteration = iteration
        self.losses = losses
        parts = ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
        super().__init__(
            f"loss or gradient not finite for {in_a_row} steps in a row, up to iteration {iteration} ({parts}); "
            "the training diverged: lower --lr (e.g. by 2-5x), or --clip-grad-norm, or lengthen --warmup-iters"
        )


@dataclass(frozen=True)
class StepRecord:
    """What one training step did.

    iteration: the number of steps done after this one (1-based). lr: the learning rate of the
    step. loss: the summed loss, averaged over processes. losses: each named loss, likewise.
    images: images in the step over all processes. seconds: wall time of the step, data loading included.
    skipped: the loss or the gradient was not finite and the weights were left unchanged.
    grad_norm: global L2 norm of the gradients before clipping (NaN when not computed).
    """

    iteration: int
    lr: float
    loss: float
    losses: dict[str, float]
    images: int
    seconds: float
    skipped: bool = False
    grad_norm: float = float("nan")


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
    cpu_bf16: bool = False,
    rank: int = 0,
    clip_grad_norm: float = 0.0,
    max_nonfinite_steps: int = 5,
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
        cpu_bf16: bfloat16 autocast when `device` is the CPU (TrainConfig.cpu_bf16).
        rank: this process's rank under torchrun.
        clip_grad_norm: clip the global L2 norm of the gradients to this (0: no clipping).
        max_nonfinite_steps: stop after this many skipped steps in a row.

    Raises:
        NonFiniteLossError: max_nonfinite_steps steps in a row had a NaN or infinite loss or gradient
            (decided on the reduced values, so every process agrees).
    """
    model.train()
    amp = scaler is not None and scaler.is_enabled()
    # float16 needs the scaler; bfloat16 has float32's exponent range and does not.
    autocast_dtype = torch.bfloat16 if cpu_bf16 and device.type == "cpu" else torch.float16
    autocast_on = amp or autocast_dtype is torch.bfloat16
    iteration = start
    in_a_row = 0
    tick = time.perf_counter()
    for batch in loader:
        torch.manual_seed(iteration_seed(seed, iteration, rank))
        images, targets = _to_device(batch, device)
        lr = optimizer.param_groups[0]["lr"]
        with torch.autocast(device_type=device.type, dtype=autocast_dtype, enabled=autocast_on):
            loss_dict = model(images, targets)
        # Sum in float32: under autocast some losses are float16 or bfloat16.
        loss = sum(v.float() for v in loss_dict.values())
        assert isinstance(loss, torch.Tensor)
        names = list(loss_dict)
        iteration += 1
        optimizer.zero_grad(set_to_none=True)
        (scaler.scale(loss) if amp else loss).backward()  # type: ignore[union-attr]
        if amp:
            scaler.unscale_(optimizer)  # type: ignore[union-attr]  # clip and check true gradients, not scaled ones
        grad_norm = _grad_norm(optimizer, clip_grad_norm)
        logged = _reduce(torch.stack([loss.detach(), grad_norm.to(loss.device), *(loss_dict[k].detach().float() for k in names)]))
        values = logged.tolist()
        skipped = not (math.isfinite(values[0]) and math.isfinite(values[1]))
        if amp:
            # GradScaler skips the step itself on inf/NaN gradients (and lowers its scale): that is
            # float16 overflow, not divergence, so it is not counted as a skipped step.
            scaler.step(optimizer)  # type: ignore[union-attr]
            scaler.update()  # type: ignore[union-attr]
            skipped = not math.isfinite(values[0])
        elif not skipped:
            optimizer.step()
        in_a_row = in_a_row + 1 if skipped else 0
        if in_a_row >= max_nonfinite_steps:
            raise NonFiniteLossError(iteration, dict(zip(names, values[2:])), in_a_row)
        lr_scheduler.step()
        now = time.perf_counter()
        world = _world_size()
        yield StepRecord(iteration, lr, values[0], dict(zip(names, values[2:])), len(images) * world, now - tick,
                         skipped=skipped, grad_norm=values[1])  # fmt: skip
        tick = now


def _grad_norm(optimizer: torch.optim.Optimizer, max_norm: float) -> torch.Tensor:
    """Global L2 norm of the gradients (before clipping), clipped to max_norm in place when max_norm > 0."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not params:
        return torch.zeros(())
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_norm).detach().float().cpu()
    return torch.nn.utils.get_total_norm([p.grad for p in params]).detach().float().cpu()


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
