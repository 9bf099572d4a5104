"""GPU check of LCR-Net++ training: synthesise, train, evaluate against the anchor-only baseline, time it.

    .venv/bin/python bench/gpu_check.py [--json result.json]       # one H100/H200, about 4 minutes
    .venv/bin/python bench/gpu_check.py --smoke                    # the same steps, tiny, on the CPU
    .venv/bin/python bench/gpu_check.py --device cpu --threads 2 --images 1500 --size 128 --batch 4 \
        --train-seconds 1500 --eval-images 100 --bench-steps 4 --workers 2   # a CPU-sized run, ~35 min

One run, one process, no downloads, no faiss (anchors by the numpy K-means):
1. data: a bank from the bundled CMU sample (tests/fixtures/demo/cmu, 5 takes), K anchor-poses,
   `posebank synth` images (train / val split by posebank synth's val_fraction);
2. throughput: training images/s of LCR-Net++ (ResNet-50 FPN, random init, all layers trained) and
   of torchvision's fasterrcnn_resnet50_fpn (weights=None, weights_backbone=None; with its default
   512 sampled RoIs per image, and with LCR-Net++'s 32) on the same GPU,
   the same batches (already on the device, so data loading is not timed), the same image size
   and batch size, AMP on CUDA; SGD steps, forward + backward;
3. training: lcrnet.train.train for as many iterations as the measured speed allows in
   --train-seconds (the paper's schedule scaled to them), from random weights;
4. evaluation on held-out (val) images: PCK@0.5 (estimated head size, lcrnet/metrics.py), MPJPE,
   AP for NMS, PPI and the upper bound, against the anchor-only baseline (the same trained
   network with its last regression zeroed: each detected person is its class's anchor-pose
   placed in its box).
Prints one JSON object (and writes it to --json).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import emit_json, round_or_none as _round  # noqa: E402

DEMO_CMU = REPO / "tests" / "fixtures" / "demo" / "cmu"

FULL = dict(images=3000, size=256, people="1-4", k=20, batch=8, train_seconds=120.0, max_iterations=20_000,
            eval_images=100, bench_steps=20, warmup_steps=5, views=4, workers=8)  # fmt: skip
SMOKE = dict(images=24, size=96, people="1-2", k=6, batch=2, train_seconds=0.0, max_iterations=4,
             eval_images=4, bench_steps=2, warmup_steps=1, views=2, workers=0)  # fmt: skip


def build_data(work: Path, *, images: int, size: int, people: tuple[int, int], k: int, views: int, workers: int,
               smoke: bool, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Bank (CMU sample) -> K anchors (numpy K-means) -> synthetic images. Returns paths and seconds."""
    from posebank.anchors import AnchorConfig
    from posebank.anchors.build import build_anchors
    from posebank.bank.build import build_bank
    from posebank.config import BankConfig, ViewConfig
    from posebank.synth import SynthConfig, synthesize

    t0 = time.perf_counter()
    cmu = DEMO_CMU
    if smoke:  # one take is enough to exercise the code
        cmu = work / "cmu"
        (cmu / "subjects" / "135").mkdir(parents=True, exist_ok=True)
        for name in ("135.asf", "135_08.amc"):
            shutil.copy(DEMO_CMU / "subjects" / "135" / name, cmu / "subjects" / "135")
    # The smoke bank keeps every frame of its one take (dedup 0); the full one dedups at 20 mm (656 of 1407 poses).
    bank = build_bank(BankConfig(sources=(("cmu", str(cmu)),), out=str(work / "bank"), view=ViewConfig(views=views),
                                 dedup_mm=0.0 if smoke else 20.0, seed=seed), overwrite=True)  # fmt: skip
    t_bank = time.perf_counter()
    anchors = build_anchors(AnchorConfig(bank=str(work / "bank"), out=str(work / "anchors"), k=k, engine="numpy",
                                         seed=seed, sample=0), overwrite=True)  # fmt: skip
    t_anchors = time.perf_counter()
    synth = synthesize(SynthConfig(images=images, size=(size, size), people=people, seed=seed, val_fraction=0.1,
                                   workers=max(1, workers), images_per_shard=1000), work / "bank", work / "synth",
                       overwrite=True)  # fmt: skip
    t_synth = time.perf_counter()
    return {
        "bank": work / "bank", "anchors": work / "anchors", "synth": work / "synth",
        "bank_rows": bank.rows, "k": anchors.anchors.k, "images": synth.images, "people": synth.people,
        "splits": synth.splits,
        "seconds": {"bank": t_bank - t0, "anchors": t_anchors - t_bank, "synth": t_synth - t_anchors},
    }  # fmt: skip


def model_config(size: int, smoke: bool, norm: str = "auto"):  # noqa: ANN201 -- lcrnet.config.ModelConfig
    """LCR-Net++ with a ResNet-50 FPN backbone from random weights, every stage trained, at `size` px;
    norm: ModelConfig.backbone_norm."""
    from lcrnet.config import ModelConfig

    # torchvision's box anchor sizes (32..512 px) suit 256 px images; smaller images get them scaled down.
    extra: dict[str, Any] = {"rpn_anchor_sizes": tuple(max(16, round(s * size / 256)) for s in (32, 64, 128, 256, 512))}
    if smoke:
        extra = dict(head_fc_dim=128, refine_embed_dim=128, rpn_post_nms_top_n_train=100, rpn_post_nms_top_n_test=20,
                     rpn_anchor_sizes=(16, 32, 48, 64, 96))  # fmt: skip
    return ModelConfig(backbone="resnet50_fpn", min_size=(size,), max_size=size, trainable_layers=5, backbone_norm=norm,
                       **extra)  # fmt: skip


def throughput(model, batches, device, *, steps: int, warmup: int, amp: bool) -> float:  # noqa: ANN001
    """Training images/s of a torchvision-style detector: SGD steps on `batches` (cycled), already on `device`."""
    import torch

    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    images_done = 0
    t = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
        images, targets = batches[i % len(batches)]
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            losses = model(images, targets)
        loss = sum(v.float() for v in losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if i >= warmup:
            images_done += len(images)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return images_done / (time.perf_counter() - t)


def detector_batches(dataset, batch: int, count: int, device):  # noqa: ANN001, ANN201
    """`count` batches of (images, LCR-Net targets, Faster R-CNN targets) on `device`, from the dataset's first images."""
    import torch

    out = []
    for b in range(count):
        items = [dataset[(b * batch + i) % len(dataset)] for i in range(batch)]
        images = [image.to(device) for image, _ in items]
        pose_targets = [{k: v.to(device) for k, v in t.items()} for _, t in items]
        box_targets = []
        for _, t in items:
            visible = t["pose_2d"]
            lo, hi = visible.amin(dim=1), visible.amax(dim=1)
            boxes = torch.cat([lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)], dim=1)
            box_targets.append({"boxes": boxes.to(device), "labels": torch.ones(len(boxes), dtype=torch.int64, device=device)})
        out.append((images, pose_targets, box_targets))
    return out


def compare_throughput(data: dict[str, Any], size: int, batch: int, steps: int, warmup: int, device, smoke: bool,
                       norm: str = "auto") -> dict[str, float]:  # noqa: ANN001
    """LCR-Net++ against fasterrcnn_resnet50_fpn: same device, size, batch, images, precision."""
    import torch
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    from lcrnet.data import PoseShardDataset, resolve_sources
    from lcrnet.model import build_model
    from lcrnet.train import _load_anchors
    from posebank.skeleton import get_skeleton

    amp = device.type == "cuda"
    cfg = model_config(size, smoke, norm)
    anchors = _load_anchors(str(data["anchors"]), cfg.num_joints)
    cfg = dataclasses.replace(cfg, num_anchors=anchors.num_anchors)
    dataset = PoseShardDataset(resolve_sources([data["synth"]]), get_skeleton(cfg.skeleton), split="train")
    batches = detector_batches(dataset, batch, 4, device)
    torch.manual_seed(0)
    lcrnet = build_model(cfg, anchors)
    ours = throughput(lcrnet, [(im, t) for im, t, _ in batches], device, steps=steps, warmup=warmup, amp=amp)
    del lcrnet
    theirs = {}
    for rois in (512, 32):  # torchvision's default RoI sample, and LCR-Net++'s (sec 3.5: 32 per image)
        torch.manual_seed(0)
        frcnn = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=2, min_size=size,
                                        max_size=size, box_batch_size_per_image=rois)  # fmt: skip
        theirs[rois] = throughput(frcnn, [(im, t) for im, _, t in batches], device, steps=steps, warmup=warmup, amp=amp)
        del frcnn
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"lcrnet_images_per_s": ours, "fasterrcnn_images_per_s": theirs[512], "ratio": ours / theirs[512],
            "fasterrcnn_32rois_images_per_s": theirs[32], "ratio_32rois": ours / theirs[32],
            "image_size": size, "batch": batch, "amp": amp, "timed_steps": steps}  # fmt: skip


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of lcrnet.evaluate metrics, rounded (also used by bench/learn_cpu.py)."""
    keep = ("pck", "pck_detected", "mpjpe_mm", "mpjpe_aligned_mm", "detected", "recall", "precision", "ap")
    methods = [m for m in ("nms", "ppi", "ppi_paper", "ppi_release", "upper_bound") if m in metrics]
    out: dict[str, Any] = {m: {k: _round(metrics[m].get(k)) for k in keep if k in metrics[m]} for m in methods}
    if "anchor_only" in metrics:
        out["anchor_only"] = summary(metrics["anchor_only"])
    if "images" in metrics:
        out.update(images=metrics["images"], people=metrics["people"], pck_normaliser=metrics["pck_normaliser"],
                   proposals_per_image=_round(metrics["proposals_per_image"]))  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and a few iterations (runs on the CPU)")
    parser.add_argument("--work", type=Path, help="folder for the bank, anchors, images and checkpoint (default: temporary)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backbone-norm", default="auto", choices=("auto", "batchnorm", "groupnorm"),
                        help="ModelConfig.backbone_norm (groupnorm: batch-independent features from scratch)")  # fmt: skip
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 with --smoke, faster on small shared CPUs)")
    for key, value in FULL.items():
        if key != "people":
            parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None,
                                help=f"default {value} ({SMOKE[key]} with --smoke)")  # fmt: skip
    args = parser.parse_args()
    preset = dict(SMOKE if args.smoke else FULL)
    for key in preset:
        if getattr(args, key, None) is not None:
            preset[key] = getattr(args, key)
    t_start = time.perf_counter()

    import torch

    from lcrnet.checkpoint import model_from_checkpoint
    from lcrnet.data import PoseShardDataset, resolve_sources
    from lcrnet.evaluate import evaluate_model
    from lcrnet.job_config import EvalConfig, TrainConfig, resolve_device
    from lcrnet.train import train

    threads = args.threads or (1 if args.smoke else None)
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(resolve_device(args.device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every image has the same size
    workers = min(preset["workers"], len(os.sched_getaffinity(0)))
    tmp = None if args.work else tempfile.TemporaryDirectory()
    work = args.work or Path(tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "smoke": args.smoke, "preset": preset}
    try:
        lo, hi = (int(v) for v in str(preset["people"]).split("-"))
        # The data first: synth's render processes fork before this process touches the GPU.
        data = build_data(work, images=preset["images"], size=preset["size"], people=(lo, hi), k=preset["k"],
                          views=preset["views"], workers=workers, smoke=args.smoke)  # fmt: skip
        result["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
        result["data"] = {k: v for k, v in data.items() if k not in ("bank", "anchors", "synth")}

        speed = compare_throughput(data, preset["size"], preset["batch"], preset["bench_steps"], preset["warmup_steps"],
                                   device, args.smoke, args.backbone_norm)  # fmt: skip
        result["throughput"] = {k: _round(v) if isinstance(v, float) else v for k, v in speed.items()}

        # As many iterations as the measured speed allows in the time budget (the schedule scales with them).
        its_per_s = speed["lcrnet_images_per_s"] / preset["batch"]
        iterations = max(1, min(preset["max_iterations"], int(preset["train_seconds"] * its_per_s))) if not args.smoke \
            else preset["max_iterations"]  # fmt: skip
        cfg = TrainConfig(
            data=(str(data["synth"]),), anchors=str(data["anchors"]), out=str(work / "train"), iterations=iterations,
            batch_size=preset["batch"], lr=0.005, warmup_iters=min(300, iterations // 5), clip_grad_norm=10.0,
            workers=workers,
            device=str(device), checkpoint_every=max(iterations, 1), log_every=max(1, iterations // 20),
            overwrite=True, seed=0,
        )  # fmt: skip
        report = train(cfg, model_config(preset["size"], args.smoke, args.backbone_norm))
        history = report.history
        result["train"] = {
            "iterations": report.iteration, "seconds": _round(report.seconds),
            "images_per_s": _round(report.images_per_second), "lr": cfg.lr, "lr_step_at": cfg.lr_step_iteration,
            "loss_first": _round(history[0]["loss"]) if history else None,
            "loss_last": _round(history[-1]["loss"]) if history else None,
            "images": report.images, "people": report.people,
        }  # fmt: skip

        t_eval = time.perf_counter()
        # Every proposal up to the top 1000 (score_thresh 0): a short run from random weights may still
        # score people below the default 0.05 over 2K+1 classes, and the upper bound wants them all.
        model = model_from_checkpoint(work / "train" / "model.pt", device=device, score_thresh=0.0)
        val = PoseShardDataset(resolve_sources([data["synth"]]), model.skeleton, split="val",
                               max_images=preset["eval_images"])  # fmt: skip
        eval_cfg = EvalConfig(workers=workers, batch_size=preset["batch"])
        trained = evaluate_model(model, val, eval_cfg, device)
        baseline = trained["anchor_only"]  # the same network's proposals with the regression removed
        result["eval"] = {"lcrnet": summary(trained), "anchor_only": summary(baseline),
                          "pck_normaliser": trained["pck_normaliser"], "seconds": _round(time.perf_counter() - t_eval)}  # fmt: skip
        result["verdict"] = {
            "ppi_beats_anchor_only_pck": trained["ppi"]["pck"] > baseline["ppi"]["pck"],
            "ppi_vs_nms_pck": _round(trained["ppi"]["pck"] - trained["nms"]["pck"]),
            "upper_bound_gap_pck": _round(trained["upper_bound"]["pck"] - trained["ppi"]["pck"]),
            "lcrnet_vs_fasterrcnn_speed": _round(speed["ratio"]),
        }
    finally:
        result["seconds_total"] = _round(time.perf_counter() - t_start)
        if tmp is not None:
            tmp.cleanup()
        emit_json(result, args.json)


if __name__ == "__main__":
    main()
