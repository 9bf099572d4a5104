"""Benchmark of the exact greedy deduplication (posebank.bank.dedup) at bank scale.

    .venv/bin/python bench/bench_dedup.py [--sizes 30000 100000 300000 1000000] [--dedup-mm 20]
                                          [--baseline-max 30000] [--json out.json]

The shared sample holds about 10k poses at 30 fps, too few to show how dedup scales, so the poses
are synthetic takes made from the real ones: each is a real CMU or HDM05 sample take played by a body
of another size (scale x N(1, 0.05)), at another speed (0.7-1.4x, nearest 120 Hz frames on a 30 fps
clock) and with a constant posture offset (2 cm per joint on average). Deterministic (seed 0).

Reports seconds and kept poses per size, against the straightforward baseline in the same run: the
greedy loop that compares each pose with every kept pose (vectorised over the kept ones), run up to
--baseline-max poses; both must keep the same poses.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from machine import machine_description  # the sibling module bench/machine.py
from posebank.bank.canonical import canonical_poses
from posebank.bank.dedup import deduplicate, mpjpe
from posebank.geometry import remove_heading
from posebank.skeleton import get_skeleton
from posebank.mocap.sources import discover

SOURCE_FPS = 120.0
BANK_FPS = 30.0


def real_takes(data: Path, skeleton) -> list[np.ndarray]:
    """The CMU and HDM05 sample takes at 120 Hz, canonical, body-centred: a list of (T, J, 3) m."""
    takes = []
    for source, root in (("cmu", data / "cmu" / "subjects"), ("hdm05", data / "hdm05")):
        for job in discover(source, root)[0]:
            takes.append(canonical_poses(job, skeleton, SOURCE_FPS).poses_m.astype(np.float64))
    return takes


def synthetic_poses(takes: list[np.ndarray], size: int, offset_m: float = 0.02, seed: int = 0) -> np.ndarray:
    """(size, J, 3) poses in metres: synthetic takes (see the module docstring), in take order."""
    rng = np.random.default_rng(seed)
    out, total = [], 0
    while total < size:
        take = takes[rng.integers(len(takes))]
        speed = rng.uniform(0.7, 1.4)
        frames = np.arange(0.0, len(take) - 1, speed * SOURCE_FPS / BANK_FPS)
        offset = rng.normal(0.0, offset_m / np.sqrt(3), size=take.shape[1:])
        poses = take[np.rint(frames).astype(np.int64)] * rng.normal(1.0, 0.05) + offset
        out.append(poses)
        total += len(poses)
    return np.concatenate(out)[:size]


def greedy_baseline(poses: np.ndarray, threshold: float) -> np.ndarray:
    """The straightforward greedy: each pose against every kept pose (vectorised over the kept)."""
    kept = np.empty_like(poses)
    count = 0
    keep = np.zeros(len(poses), dtype=bool)
    for i, pose in enumerate(poses):
        if count == 0 or mpjpe(kept[:count], pose).min() > threshold:
            kept[count] = pose
            count += 1
            keep[i] = True
    return keep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--sizes", type=int, nargs="+", default=[30_000, 100_000, 300_000, 1_000_000])
    ap.add_argument("--dedup-mm", type=float, default=20.0)
    ap.add_argument("--baseline-max", type=int, default=30_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    skeleton = get_skeleton("j13")
    takes = real_takes(args.data, skeleton)
    rows = []
    for size in args.sizes:
        poses = synthetic_poses(takes, size)
        t = time.perf_counter()
        keep = deduplicate(poses, skeleton, args.dedup_mm)
        seconds = time.perf_counter() - t
        row = {"poses": size, "kept": int(keep.sum()), "seconds": round(seconds, 2)}
        if size <= args.baseline_max:
            aligned = remove_heading(poses, skeleton.index("left_hip"), skeleton.index("right_hip"))
            t = time.perf_counter()
            base = greedy_baseline(aligned, args.dedup_mm / 1000.0)
            row["baseline_seconds"] = round(time.perf_counter() - t, 2)
            row["same_as_baseline"] = bool((base == keep).all())
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"machine": machine_description(), "dedup_mm": args.dedup_mm, "rows": rows}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
