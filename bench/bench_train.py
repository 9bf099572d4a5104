"""Benchmark of LCR-Net++ training on the CPU: images/s against torchvision's Faster R-CNN, same run.

    .venv/bin/python bench/bench_train.py [--size 128] [--batch 2] [--steps 10] [--k 20] [--threads 1]

Builds a bank from the bundled CMU sample, K anchor-poses and a few synthetic images (the data
steps of bench/gpu_check.py), then times SGD training steps (forward + backward + step, batches
already in memory, so data loading is not timed) of:
    lcrnet_fpn      LCR-Net++ on ResNet-50 FPN (the same backbone as the baseline)
    lcrnet_c4       LCR-Net++ on ResNet-50 C4 (ModelConfig's default: res5 runs on every RoI)
    fasterrcnn_fpn  torchvision fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    fasterrcnn_fpn_32  the same with box_batch_size_per_image=32 (LCR-Net++'s RoI sample, sec 3.5)
all from random weights with every ResNet stage trained, at the same image size and batch.
The LCR-Net++ heads are ModelConfig's defaults (1024-d FCs, 2048-d refinement embedding, one
refinement); Faster R-CNN keeps torchvision's defaults (512 sampled RoIs per image, ours 32), and
fasterrcnn_fpn_32 separates that sampling choice from the rest of the cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_check import build_data, detector_batches, throughput  # noqa: E402 -- the sibling script
from machine import machine_description  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="image side, px (images are square; min_size = max_size)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--k", type=int, default=20, help="anchor-poses (the paper: 200 for MPII)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1 by default: on small shared VMs more threads were slower)")  # fmt: skip
    args = parser.parse_args()

    import torch
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    from lcrnet.config import ModelConfig
    from lcrnet.data import PoseShardDataset, resolve_sources
    from lcrnet.model import build_model
    from lcrnet.train import _load_anchors
    from posebank.skeleton import get_skeleton

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    print(f"machine: {machine_description()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        data = build_data(Path(tmp), images=4 * args.batch, size=args.size, people=(1, 3), k=args.k, views=4,
                          workers=1, smoke=False)  # fmt: skip
        print(f"data: {data['bank_rows']} bank rows, K={data['k']}, {data['images']} images {args.size}x{args.size} "
              f"({data['people']} people) in {time.perf_counter() - t:.1f} s")  # fmt: skip
        base = ModelConfig(min_size=(args.size,), max_size=args.size, trainable_layers=5)
        anchors = _load_anchors(str(data["anchors"]), base.num_joints)
        base = dataclasses.replace(base, num_anchors=anchors.num_anchors)
        dataset = PoseShardDataset(resolve_sources([data["synth"]]), get_skeleton(base.skeleton))
        batches = detector_batches(dataset, args.batch, 4, device)
        results = {}
        for name in ("lcrnet_fpn", "lcrnet_c4", "fasterrcnn_fpn", "fasterrcnn_fpn_32"):
            torch.manual_seed(0)
            if name.startswith("fasterrcnn"):
                rois = 32 if name.endswith("_32") else 512  # 512: torchvision's default
                model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=2, min_size=args.size,
                                                max_size=args.size, box_batch_size_per_image=rois)  # fmt: skip
                pairs = [(im, boxes) for im, _, boxes in batches]
            else:
                backbone = "resnet50_fpn" if name == "lcrnet_fpn" else "resnet50_c4"
                model = build_model(dataclasses.replace(base, backbone=backbone), anchors)
                pairs = [(im, poses) for im, poses, _ in batches]
            params = sum(p.numel() for p in model.parameters()) / 1e6
            results[name] = throughput(model, pairs, device, steps=args.steps, warmup=args.warmup, amp=False)
            print(f"{name:18s} {results[name]:7.2f} images/s  ({1000 * args.batch / results[name]:7.0f} ms/step, "
                  f"{params:.1f} M parameters)")  # fmt: skip
        ours = results["lcrnet_fpn"]
        print(f"lcrnet_fpn / fasterrcnn_fpn: x{ours / results['fasterrcnn_fpn']:.2f}; "
              f"lcrnet_fpn / fasterrcnn_fpn_32: x{ours / results['fasterrcnn_fpn_32']:.2f}; "
              f"lcrnet_c4 / fasterrcnn_fpn: x{results['lcrnet_c4'] / results['fasterrcnn_fpn']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
