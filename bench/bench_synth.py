"""Benchmark of `posebank synth`: images per second at 512x512, and the drawing against a baseline.

    .venv/bin/python bench/bench_synth.py [--bank DIR] [--images 400] [--workers 2]

Measures, in one run:
1. drawing only (scene + background + rasterise + shade, no encoding), one process: the bounding-box
   rasteriser against the plain baseline that evaluates every primitive over the whole image
   (`clip_to_bbox=False`, same numpy code otherwise; both give identical buffers);
2. end to end: `synthesize` writing JPEG images and annotation shards with --workers processes.
Without --bank it builds a bank from the bundled CMU sample (subject 135, takes 04 and 08).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from posebank.bank import open_bank
from posebank.synth import BodyModel, SynthConfig, body_model, render_scene, sample_scene, synthesize
from posebank.synth.backgrounds import make_background
from posebank.synth.writer import configure_render_process, image_rngs

from machine import machine_description  # the sibling module bench/machine.py

REPO = Path(__file__).resolve().parents[1]
DEMO_135 = REPO / "tests" / "fixtures" / "demo" / "cmu" / "subjects" / "135"


def _build_bank(tmp: Path) -> Path:
    from posebank.bank.build import build_bank
    from posebank.config import BankConfig, ViewConfig

    subject = tmp / "cmu" / "subjects" / "135"
    subject.mkdir(parents=True)
    for name in ("135.asf", "135_04.amc", "135_08.amc"):
        shutil.copy(DEMO_135 / name, subject)
    out = tmp / "bank"
    build_bank(BankConfig(sources=(("cmu", str(tmp / "cmu")),), out=str(out), dedup_mm=0.0, view=ViewConfig(views=4)))
    return out


def _draw(pool: np.ndarray, body: BodyModel, config: SynthConfig, indices: range, clip_to_bbox: bool) -> float:
    """Seconds per image to draw images `indices` in this process."""
    t = time.perf_counter()
    for i in indices:
        scene_rng, background_rng = image_rngs(config.seed, i)
        scene = sample_scene(scene_rng, pool, config)
        background = make_background(background_rng, scene.height, scene.width)
        render_scene(scene, body, background, clip_to_bbox=clip_to_bbox)
    return (time.perf_counter() - t) / len(indices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, help="a bank folder (default: build one from the CMU sample)")
    parser.add_argument("--images", type=int, default=400, help="images of the end-to-end run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-images", type=int, default=5, help="images drawn by the (slow) baseline")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        bank_path = args.bank or _build_bank(tmp)
        bank = open_bank(bank_path)
        body = body_model(bank.skeleton)
        (pool,) = bank.poses(columns=("pose_3d",))
        config = SynthConfig(images=args.images, size=(512, 512), workers=args.workers, images_per_shard=200)
        print(f"machine: {machine_description()}")
        print(f"bank: {bank_path} ({len(pool)} poses); images 512x512, people {config.people[0]}-{config.people[1]}")

        # This script owns its process: give it the settings of the render workers.
        configure_render_process()
        _draw(pool, body, config, range(3), True)  # warm-up
        fast = _draw(pool, body, config, range(100), True)
        base = _draw(pool, body, config, range(args.baseline_images), False)
        same = _draw(pool, body, config, range(args.baseline_images), True)
        print(f"draw, 1 process, bbox rasteriser:       {1 / fast:7.1f} images/s ({fast * 1e3:.1f} ms/image, 100 images)")
        print(f"draw, 1 process, whole-image baseline:  {1 / base:7.1f} images/s ({base * 1e3:.1f} ms/image, "
              f"{args.baseline_images} images; bbox on the same images: {same * 1e3:.1f} ms) -> x{base / same:.0f}")  # fmt: skip

        report = synthesize(config, bank_path, tmp / "synth")
        wall = report.seconds["total"]
        print(f"synthesize, {args.workers} workers, JPEG q{config.jpeg_quality} + shards: "
              f"{report.images_per_second:7.1f} images/s (render stage), {args.images / wall:.1f} images/s "
              f"overall ({args.images} images in {wall:.1f} s, {report.people} people)")  # fmt: skip


if __name__ == "__main__":
    main()
