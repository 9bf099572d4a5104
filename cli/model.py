"""`posebank train | evaluate | predict`: the LCR-Net++ detector's commands.

cli/main.py adds them with `register(app)`. Each parses its options into a config dataclass
(lcrnet.job_config), calls one library function, prints a summary. torch is imported inside the
commands, so `posebank --help` stays fast.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .console import DEFAULT_WORKERS, Backbone, fail, progress_bar, stderr_console, workers_option


def _split(value: str) -> str | None:
    return None if value.lower() == "all" else value


def _parse_range(value: str, hint: str) -> tuple[float, float]:
    lo, sep, hi = value.partition("-")
    try:
        return (float(lo), float(hi)) if sep else (float(value), float(value))
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected MIN-MAX or a single number", param_hint=hint) from None


def _model_options(values: list[str]) -> dict[str, Any]:
    """--model-option KEY=VALUE pairs (lcrnet.config.parse_model_options), a usage error when malformed."""
    from lcrnet.config import parse_model_options

    try:
        return parse_model_options(values)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--model-option") from None


_DATA_HELP = "Annotation shard folder (posebank annotate or synth --out), repeatable: all are read together."
_ROOT_HELP = ("Images root for every --data (the shards' `image` paths are relative to it). Default: the "
              "shards' own images_root (synth writes one), relative to the --data folder.")  # fmt: skip
_DEVICE_HELP = "auto (CUDA when present), cpu, cuda or cuda:N."
_OUTSIDE_HELP = "Accept shard image paths that leave the images root (absolute paths, '..'); refused by default."


def train_command(
    data: Annotated[list[Path], typer.Option("--data", exists=True, resolve_path=True, help=_DATA_HELP)],
    anchors: Annotated[Path, typer.Option(exists=True, resolve_path=True, help="anchors.parquet or its folder (posebank anchors --out).")],
    out: Annotated[Path, typer.Option(help="Output folder: last.pt, metrics.csv, config.json (tb/ with TensorBoard).")],
    images_root: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, resolve_path=True, help=_ROOT_HELP)] = None,
    allow_outside_images_root: Annotated[bool, typer.Option("--allow-outside-images-root", help=_OUTSIDE_HELP)] = False,
    iterations: Annotated[int, typer.Option(min=1, help="SGD iterations (the paper: 500k). The lr drops x0.1 after 60% of them.")] = 500_000,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per iteration and process (the paper: 8).")] = 8,
    lr: Annotated[float, typer.Option(min=0.0, help="Base learning rate (the paper: 1e-3, then 1e-4).")] = 1e-3,
    optimizer: Annotated[str, typer.Option(help="sgd (the paper's, momentum 0.9) or adamw.")] = "sgd",
    lr_step_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Fraction of the iterations before the lr drop.")] = 0.6,
    warmup_iters: Annotated[int, typer.Option(min=0, help="Linear lr warm-up iterations.")] = 500,
    clip_grad_norm: Annotated[
        float, typer.Option(min=0.0, help="Clip the gradients' global L2 norm to this (0: off). Guards runs from random weights.")
    ] = 10.0,
    max_nonfinite_steps: Annotated[
        int, typer.Option(min=1, help="Steps with a NaN/inf loss or gradient are skipped; this many in a row stop the run.")
    ] = 5,
    split: Annotated[str, typer.Option(help="Train on rows of this split ('all': every row).")] = "train",
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Mirror half of the images (left/right joints swapped).")] = True,
    scale_range: Annotated[str, typer.Option(help="Zoom augmentation MIN-MAX (1: none).")] = "0.75-1.25",
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA.")] = True,
    cpu_bf16: Annotated[
        bool, typer.Option("--cpu-bf16", help="bfloat16 autocast on the CPU: 1.35-1.5x faster training on CPUs "
                                              "with AVX512-BF16 or AMX, slower where bfloat16 is emulated.")
    ] = False,
    device: Annotated[str, typer.Option(help=_DEVICE_HELP)] = "auto",
    workers: Annotated[int, workers_option("load and augment images")] = DEFAULT_WORKERS,
    seed: Annotated[int, typer.Option(help="Seeds weights, data order, augmentation and sampling.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Write last.pt every this many iterations.")] = 1000,
    log_every: Annotated[int, typer.Option(min=1, help="One metrics.csv row and one printed line every this many iterations.")] = 20,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from last.pt.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start afresh over another run in --out.")] = False,
    preset: Annotated[
        str, typer.Option(help="Model preset: 'paper' (ResNet-50 C4 at 800 px, as the release) or 'cpu' (ResNet-18 FPN "
                               "at 128 px, trains from random weights on a CPU). The options below override it.")
    ] = "paper",
    backbone: Annotated[
        Optional[Backbone], typer.Option(help="Network under the heads: resnet50_c4 is the release's; the FPN and MobileNet "
                                              "ones are lighter, for CPUs. Default: the preset's.")
    ] = None,
    backbone_weights: Annotated[
        Optional[Path], typer.Option(exists=True, dir_okay=False, resolve_path=True,
                                     help="Local torchvision state dict of the backbone network, e.g. ImageNet resnet18 "
                                          "(nothing is downloaded; default: random init, GroupNorm).")
    ] = None,
    min_size: Annotated[
        Optional[list[int]], typer.Option(help="Shorter image side after resizing, px (repeatable: random choice). "
                                               "Default: the preset's (paper 800, cpu 128).")
    ] = None,
    max_size: Annotated[Optional[int], typer.Option(min=16, help="Cap on the longer side, px. Default: the preset's.")] = None,
    trainable_layers: Annotated[
        Optional[int], typer.Option(min=0, max=5, help="Backbone stages trained, from the top down (5: all; use 5 from "
                                                       "random weights). Default: the preset's (paper 3, cpu 5).")
    ] = None,
    refine_iters: Annotated[Optional[int], typer.Option(min=0, help="Refinement stages (sec 3.4; 0 = plain LCR-Net).")] = None,
    model_option: Annotated[
        list[str], typer.Option(help="Any other ModelConfig field, KEY=VALUE (repeatable), e.g. head_fc_dim=512.")
    ] = [],  # noqa: B006
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train LCR-Net++ on annotation shards (SGD, the paper's schedule scaled to --iterations).

    Several GPUs: torchrun --nproc-per-node N -m cli.main train ... (DDP; --batch-size is per GPU).
    """
    from rich.console import Console

    from lcrnet.config import model_config_from_preset
    from lcrnet.engine import NonFiniteLossError
    from lcrnet.job_config import TrainConfig
    from lcrnet.train import train
    from posebank.errors import PosebankError

    try:
        given = {"backbone": backbone, "backbone_weights": str(backbone_weights) if backbone_weights else None,
                 "min_size": tuple(min_size) if min_size else None, "max_size": max_size,
                 "trainable_layers": trainable_layers, "refine_iters": refine_iters}  # fmt: skip
        fields = {k: v for k, v in given.items() if v is not None}
        model_cfg = model_config_from_preset(preset, **{**fields, **_model_options(model_option)})
        cfg = TrainConfig(
            data=tuple(str(d) for d in data), images_root=str(images_root) if images_root else None,
            allow_outside_images_root=allow_outside_images_root, anchors=str(anchors), out=str(out), split=_split(split),
            iterations=iterations, batch_size=batch_size,
            lr=lr, optimizer=optimizer, lr_step_fraction=lr_step_fraction, warmup_iters=warmup_iters, clip_grad_norm=clip_grad_norm,
            max_nonfinite_steps=max_nonfinite_steps, flip=flip, scale_range=_parse_range(scale_range, "--scale-range"),
            amp=amp, cpu_bf16=cpu_bf16, device=device, workers=workers, seed=seed, checkpoint_every=checkpoint_every, log_every=log_every,
            resume=resume, overwrite=overwrite,
        )  # fmt: skip
        console = stderr_console()
        report = train(cfg, model_cfg, progress=progress_bar(console, quiet),
                       on_log=None if quiet else lambda row: console.print(_log_line(row), markup=False, highlight=False,
                                                                     soft_wrap=True))  # fmt: skip
    except (PosebankError, ValueError, TypeError, NonFiniteLossError) as err:
        raise fail(err) from None
    Console().print(
        f"trained iterations {report.start_iteration} -> {report.iteration} on {report.images} images "
        f"({report.people} people), {report.device} x{report.world_size}; last loss {report.last_loss:.4f}; "
        f"{report.skipped_steps} steps skipped (loss or gradient not finite); "
        f"{report.images_per_second:.1f} images/s; {report.seconds:.1f} s -> {report.checkpoint} (and model.pt: weights only)",
        highlight=False, markup=False, soft_wrap=True,
    )  # fmt: skip


def _log_line(row: dict[str, float]) -> str:
    """One training log line: iteration, lr, total loss and its parts (short names), gradient norm."""
    parts = " ".join(
        f"{k.removeprefix('loss_').replace('objectness', 'obj').replace('rpn_box_reg', 'rpn_box')}={v:.3f}"
        for k, v in row.items() if k.startswith("loss_")
    )  # fmt: skip
    skipped = f" skipped={int(row['skipped_steps'])}" if row.get("skipped_steps") else ""
    return (f"it {int(row['iteration'])} lr {row['lr']:.2e} loss {row['loss']:.3f} [{parts}] "
            f"grad {row.get('grad_norm', float('nan')):.2f}{skipped} {row['images_per_s']:.1f} img/s")  # fmt: skip


def evaluate_command(
    checkpoint: Annotated[Path, typer.Option(exists=True, dir_okay=False, resolve_path=True, help="A checkpoint of train (last.pt).")],
    data: Annotated[list[Path], typer.Option("--data", exists=True, resolve_path=True, help=_DATA_HELP)],
    out: Annotated[Path, typer.Option(help="Output folder: metrics.json and metrics.csv.")],
    images_root: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, resolve_path=True, help=_ROOT_HELP)] = None,
    allow_outside_images_root: Annotated[bool, typer.Option("--allow-outside-images-root", help=_OUTSIDE_HELP)] = False,
    split: Annotated[str, typer.Option(help="Evaluate rows of this split ('all': every row).")] = "val",
    max_images: Annotated[int, typer.Option(min=0, help="Evaluate the first this many images (0: all).")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 2,
    score_thresh: Annotated[
        Optional[float], typer.Option(min=0.0, max=1.0, help="Proposal score threshold (default: the checkpoint's).")
    ] = None,
    pck_alpha: Annotated[float, typer.Option(min=0.0, help="PCK threshold in head sizes (PCKh@0.5).")] = 0.5,
    min_score: Annotated[
        float, typer.Option(min=0.0, help="Predictions scoring at least this count in recall and precision.")
    ] = 0.5,
    protocol: Annotated[
        Optional[str], typer.Option(help="Human3.6M protocol h36m-p1|h36m-p2|h36m-p3 (shards of posebank annotate h36m "
                                         "--protocol): scores their test rows, MPJPE per action as the paper's tables.")
    ] = None,  # fmt: skip
    device: Annotated[str, typer.Option(help=_DEVICE_HELP)] = "auto",
    workers: Annotated[int, workers_option("load images")] = DEFAULT_WORKERS,
    seed: Annotated[int, typer.Option(help="Seeds torch (evaluation draws nothing).")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace another evaluation's output in --out instead of refusing.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Evaluate a checkpoint: PCK(h)@0.5, detection, MPJPE, multi-person AP; NMS vs PPI vs upper bound vs anchor-only.

    The anchor-only rows are the same network with its regression removed: the trained model must beat them.
    """
    from rich.console import Console
    from rich.table import Table

    from lcrnet.evaluate import BASELINE_METHODS, KEYS, METHODS, evaluate
    from lcrnet.job_config import EvalConfig
    from posebank.errors import PosebankError

    try:
        cfg = EvalConfig(
            checkpoint=str(checkpoint), data=tuple(str(d) for d in data), images_root=str(images_root) if images_root else None,
            allow_outside_images_root=allow_outside_images_root, out=str(out), split="test" if protocol else _split(split),
            max_images=max_images, batch_size=batch_size,
            workers=workers, device=device, seed=seed, score_thresh=score_thresh, pck_alpha=pck_alpha,
            min_score=min_score, protocol=protocol,
        )  # fmt: skip
        report = evaluate(cfg, progress=progress_bar(stderr_console(), quiet), overwrite=overwrite)
    except (PosebankError, ValueError) as err:
        raise fail(err) from None
    m = report.metrics
    table = Table(title=f"{m['images']} images, {m['people']} people; PCK normaliser: {m['pck_normaliser']}; "
                        f"recall/precision at score >= {m['min_score']:g}, IoU >= 0.5")  # fmt: skip
    labels = {"pck": f"PCK@{m['pck_alpha']:g} %", "pck_detected": "PCK det. %", "detected": "detected %",
              "recall": "recall %", "precision": "precision %", "mpjpe_mm": "MPJPE mm",
              "mpjpe_aligned_mm": "aligned mm", "ap": "AP %"}  # fmt: skip
    table.add_column("method")
    for k in KEYS:
        table.add_column(labels[k], justify="right")
    rows = [(method, m[method]) for method in METHODS]
    rows += [(f"anchor-only {method}", m["anchor_only"][method]) for method in BASELINE_METHODS]
    for name, values in rows:
        cells = []
        for k in KEYS:
            v = values.get(k)
            percent = k not in ("mpjpe_mm", "mpjpe_aligned_mm")
            cells.append("-" if v is None or math.isnan(v) else f"{100 * v:.1f}" if percent else f"{v:.1f}")
        table.add_row(name, *cells)
    console = Console()
    if not console.is_terminal:  # a file or pipe: no terminal width to fit, keep every column whole
        console = Console(width=max(console.width, 120))
    console.print(table)
    per_joint = "  ".join(f"{n} {100 * v:.0f}" for n, v in m["ppi"]["pck_per_joint"].items() if not math.isnan(v))
    console.print(f"ppi PCK per joint %: {per_joint}", highlight=False, markup=False, soft_wrap=True)
    for method in ("nms", "ppi"):
        for key in ("h36m", "h36m_13j"):
            if "table" in m[method].get(key, {}):
                console.print(f"{method}:\n{m[method][key]['table']}", highlight=False, markup=False, soft_wrap=True)
    for warning in m["warnings"]:
        stderr_console().print(f"warning: {warning}", style="yellow", highlight=False, markup=False, soft_wrap=True)
    console.print(f"-> {report.out}/metrics.json, metrics.csv ({report.seconds:.1f} s)", highlight=False, markup=False,
                  soft_wrap=True)  # fmt: skip


def predict_command(
    images: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, resolve_path=True, help="Image files.")],
    checkpoint: Annotated[Path, typer.Option(exists=True, dir_okay=False, resolve_path=True, help="A checkpoint of train (last.pt).")],
    out: Annotated[Path, typer.Option(help="Output folder: <image>.json, <image>.png, predictions.parquet.")],
    integration: Annotated[Optional[str], typer.Option(help="ppi, nms or none (default: the checkpoint's).")] = None,
    min_score: Annotated[float, typer.Option(min=0.0, help="Keep people scoring at least this (PPI scores are sums).")] = 0.5,
    score_thresh: Annotated[
        Optional[float], typer.Option(min=0.0, max=1.0, help="Proposal score threshold (default: the checkpoint's).")
    ] = None,
    max_people: Annotated[int, typer.Option(min=1, help="At most this many people per image.")] = 50,
    overlay: Annotated[bool, typer.Option("--overlay/--no-overlay", help="Write the overlay PNGs.")] = True,
    device: Annotated[str, typer.Option(help=_DEVICE_HELP)] = "auto",
    seed: Annotated[int, typer.Option(help="Seeds torch (inference draws nothing).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Detect people with 2D and 3D poses in images: JSON and Parquet, and overlay PNGs."""
    from rich.console import Console

    from lcrnet.job_config import PredictConfig
    from lcrnet.predict import predict
    from posebank.errors import PosebankError

    try:
        cfg = PredictConfig(
            checkpoint=str(checkpoint), images=tuple(str(p) for p in images), out=str(out), device=device,
            integration=integration, min_score=min_score, score_thresh=score_thresh, max_people=max_people,
            overlay=overlay, seed=seed,
        )  # fmt: skip
        report = predict(cfg, progress=progress_bar(stderr_console(), quiet))
    except (PosebankError, ValueError) as err:
        raise fail(err) from None
    for warning in report.warnings:
        stderr_console().print(f"warning: {warning}", style="yellow", highlight=False, markup=False, soft_wrap=True)
    Console().print(
        f"{report.people} people in {report.images} images ({report.seconds:.1f} s) -> {report.out}",
        highlight=False, markup=False, soft_wrap=True,
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the `train`, `evaluate` and `predict` commands to the `posebank` app."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("predict")(predict_command)
