"""Checkpoints: one dict per file, written atomically, read back with torch's weights-only loader.

Layout (TV train.py `save_on_master({...})`, NG train.py `checkpoint = {..., 'config': config}`):

    model          the LCRNet state dict (anchors included, as buffers)
    optimizer      SGD state (momentum buffers), None in an inference-only checkpoint
    lr_scheduler   LambdaLR state (iterations done), or None
    scaler         GradScaler state (empty when AMP is off), or None
    iteration      SGD iterations done
    config         {"model": ModelConfig as a dict, "train": TrainConfig as a dict (or None)}
    anchors        {"pose_3d" (K, J, 3) m, "pose_2d_full" (K, J, 2), "pose_2d_upper" (K, J, 2)}: float32
                   tensors (numpy arrays in files of earlier versions)
    version        the posebank package version that wrote it
    format         CHECKPOINT_FORMAT

A checkpoint alone rebuilds the model (`model_from_checkpoint`): no anchors file, no config file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from posebank.errors import InputError
from posebank.provenance import atomic_path, package_version

from .anchors import PoseAnchors
from .config import ModelConfig
from .model import LCRNet, build_model

CHECKPOINT_FORMAT = 1
LAST = "last.pt"  # the checkpoint a training run keeps updating in its --out
MODEL = "model.pt"  # beside it: the same weights without optimizer state (evaluate, predict, sharing)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model  # DistributedDataParallel


def anchors_to_tensors(anchors: PoseAnchors) -> dict[str, torch.Tensor]:
    """The anchor-poses as float32 CPU tensors: pose_3d (K, J, 3) m, pose_2d_full / pose_2d_upper (K, J, 2)
    box coords. Tensors, not numpy arrays, so that torch.load(weights_only=True) reads a checkpoint as is."""
    return {
        "pose_3d": anchors.poses_3d.detach().cpu().float().clone(),
        "pose_2d_full": anchors.poses_2d_full.detach().cpu().float().clone(),
        "pose_2d_upper": anchors.poses_2d_upper.detach().cpu().float().clone(),
    }


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    iteration: int,
    train_config: dict[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """Write a checkpoint of `model` (LCRNet, or DDP around it) to `path` atomically (temp file + rename).

    Args:
        path: the .pt file.
        model: the model; its ModelConfig and anchors are saved with it.
        iteration: SGD iterations done.
        train_config: the TrainConfig as a dict (lcrnet.job_config.to_dict), or None.
        optimizer, lr_scheduler, scaler: training state to resume from (None: not saved).
    """
    net = _unwrap(model)
    assert isinstance(net, LCRNet)
    checkpoint = {
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "lr_scheduler": lr_scheduler.state_dict() if lr_scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "iteration": int(iteration),
        "config": {"model": _json(dataclasses.asdict(net.cfg)), "train": train_config},
        "anchors": anchors_to_tensors(net.anchors),
        "version": package_version(),
        "format": CHECKPOINT_FORMAT,
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def _json(values: dict[str, Any]) -> dict[str, Any]:
    from posebank.config import to_dict

    return to_dict(values)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with torch.load(weights_only=True) (no arbitrary code), numpy arrays allowed.

    Raises:
        InputError: no such file, or not a checkpoint of this format.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such checkpoint")
    allowed = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.Float32DType]  # type: ignore[attr-defined]
    try:
        with torch.serialization.safe_globals(allowed):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 -- any unreadable file is reported the same way
        # Not torch's own message: it suggests weights_only=False, which would unpickle the file
        # and could run any code in it. posebank never does that.
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "weights only load failed" in reason.lower() or "weights_only" in reason:
            reason = "it holds objects other than tensors, numbers, strings and numpy arrays"
        raise InputError(path, f"cannot read checkpoint: not a posebank checkpoint ({reason}); posebank never "
                         "unpickles a file (that could run code from it)") from None  # fmt: skip
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, f"not an LCR-Net++ checkpoint of format {CHECKPOINT_FORMAT}")
    return checkpoint


def anchors_from_checkpoint(checkpoint: dict[str, Any]) -> PoseAnchors:
    """The checkpoint's anchor-poses as PoseAnchors."""
    a = {k: np.asarray(v.numpy() if isinstance(v, torch.Tensor) else v, np.float32) for k, v in checkpoint["anchors"].items()}
    return PoseAnchors.from_numpy(a["pose_3d"], a["pose_2d_full"], a["pose_2d_upper"])


def model_config_from_checkpoint(checkpoint: dict[str, Any]) -> ModelConfig:
    """The checkpoint's ModelConfig."""
    return ModelConfig.from_dict(checkpoint["config"]["model"])


def model_from_checkpoint(
    checkpoint: dict[str, Any] | str | Path, *, device: str | torch.device = "cpu", **overrides: Any
) -> LCRNet:
    """Rebuild a trained model for inference (eval mode) from a checkpoint alone.

    Args:
        checkpoint: a loaded checkpoint or its path.
        device: where to put the model.
        overrides: ModelConfig fields to change for inference (e.g. integration="nms",
            detections_per_img=1000); architecture fields must not change.

    The backbone is rebuilt without reading `backbone_weights` (that file may not exist where the
    checkpoint is used: the checkpoint holds the trained weights). Such a backbone was trained with
    frozen batch norm; it is rebuilt with ordinary batch norm, which computes the same thing in eval
    mode from the same statistics (only num_batches_tracked, unused in eval mode, is missing).
    """
    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(checkpoint)
    cfg = dataclasses.replace(model_config_from_checkpoint(checkpoint), **overrides)
    model = build_model(dataclasses.replace(cfg, backbone_weights=None), anchors_from_checkpoint(checkpoint))
    missing, unexpected = model.load_state_dict(checkpoint["model"], strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise InputError("checkpoint", f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.cfg = cfg  # the config as trained (with its backbone_weights), plus the overrides
    return model.to(device).eval()
