"""Benchmark of the bank build: read + FK + canonical mapping + projection, on the real CMU sample.

    .venv/bin/python bench/bench_build.py [--data DATA] [--views 20] [--json out.json]

Reports frames/s per stage against a straightforward baseline (per-frame, per-bone forward
kinematics) in the same run, the end-to-end `build_bank` time with 1 and 2 workers, and the time
projected for the whole CMU archive (about 2,600 AMC files, 4M frames at 120 Hz).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import machine_description  # the sibling module bench/machine.py
from posebank.bank.build import build_bank
from posebank.bank.canonical import joint_table, resample_indices
from posebank.config import BankConfig, ViewConfig
from posebank.bank.dedup import deduplicate
from posebank.geometry import euler_to_matrix
from posebank.mocap.asf_amc import forward_kinematics, read_amc, read_asf, read_motion
from posebank.skeleton import body_centre, get_skeleton, to_canonical
from posebank.mocap.sources import discover
from posebank.bank.views import draw_views, hash_ids, project_views

CMU_FRAMES = 4_000_000  # the whole archive at 120 Hz (the figure)
CMU_FILES = 2_600


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def naive_fk(skeleton, channels) -> np.ndarray:
    """The straightforward baseline: a Python loop over frames and bones, one 3x3 product at a time."""
    names = skeleton.joint_names
    t_count = len(channels["root"])
    out = np.zeros((t_count, len(names), 3))
    axes = skeleton.axis_matrices
    deg = np.pi / 180.0
    for t in range(t_count):
        root = channels["root"][t]
        out[t, 0] = root[:3] * skeleton.metres_per_unit
        rot = [None] * len(names)
        rot[0] = axes[0] @ euler_to_matrix(root[3:][::-1] * deg, "zyx") @ axes[0].T
        for b in skeleton.fk_order:
            bone, j = skeleton.bones[b], b + 1
            p = skeleton.parents[j]
            if bone.dof:
                vals = channels[bone.name][t] * deg
                m = euler_to_matrix(vals[::-1], "".join(d[1] for d in bone.dof[::-1]))
            else:
                m = np.eye(3)
            rot[j] = rot[p] @ axes[j] @ m @ axes[j].T
            out[t, j] = out[t, p] + bone.length_m * rot[j] @ np.asarray(bone.direction)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--views", type=int, default=20)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--dedup-mm", type=float, default=20.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cmu = args.data / "cmu" / "subjects"
    jobs = discover("cmu", cmu)[0]
    sk = get_skeleton("j13")

    frames = 0
    t_read = t_map = 0.0
    canon = []
    for job in jobs:
        asf, amc = job.paths
        t_read += _best(lambda: read_motion(asf, amc, source="cmu", subject=job.subject, sequence=job.sequence))
        motion = read_motion(asf, amc, source="cmu", subject=job.subject, sequence=job.sequence)
        frames += motion.num_frames
        table = joint_table(motion)

        def step(motion=motion, table=table):
            keep = resample_indices(motion.num_frames, motion.fps, args.fps)
            poses = to_canonical(motion.positions_m[keep], motion.joint_names, table, sk)
            return poses - body_centre(poses, sk)[:, None]

        t_map += _best(step)
        canon.append(step())
    poses = np.concatenate(canon)

    # Baseline FK on the longest file (09_12), against the vectorised FK on the same channels.
    asf, amc = next(j.paths for j in jobs if j.sequence == "09_12")
    skeleton, channels = read_asf(asf), read_amc(amc, read_asf(asf))
    n09 = channels.num_frames
    t_fk = _best(lambda: forward_kinematics(skeleton, channels.channels))
    t_fk_naive = _best(lambda: naive_fk(skeleton, channels.channels), repeat=1)
    np.testing.assert_allclose(naive_fk(skeleton, channels.channels), forward_kinematics(skeleton, channels.channels), atol=1e-9)

    t_dedup = _best(lambda: deduplicate(poses, sk, args.dedup_mm))
    kept = poses[deduplicate(poses, sk, args.dedup_mm)]
    ids = hash_ids(["x"] * len(kept), np.arange(len(kept)))
    view_cfg = ViewConfig(views=args.views)
    t_proj = _best(lambda: project_views(kept, draw_views(0, ids, view_cfg)))

    # Parquet: the same table build + zstd write + rename that build_bank does per shard.
    from posebank.shards import bank_schema, make_table, write_table_atomic

    def write_shard(path: Path) -> None:
        views = draw_views(0, ids, view_cfg)
        p3, p2 = project_views(kept, views)
        n = p3.shape[0] * p3.shape[1]
        cols = {"pose_id": np.repeat(ids, args.views), "view_id": np.tile(np.arange(args.views), len(kept)),
                "source": ["cmu"] * n, "subject": ["09"] * n, "sequence": ["09_12"] * n, "frame": np.zeros(n),
                "azimuth_deg": views.azimuth_deg.ravel(), "elevation_deg": views.elevation_deg.ravel(),
                "roll_deg": views.roll_deg.ravel(), "pose_3d": p3, "pose_2d": p2}  # fmt: skip
        write_table_atomic(make_table(bank_schema(13), cols, {"kind": "bank"}), path)

    with tempfile.TemporaryDirectory() as tmp:
        t_proj_write = _best(lambda: write_shard(Path(tmp) / "shard.parquet"))

    e2e, stages = {}, {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as out:
            cfg = BankConfig(sources=(("cmu", str(cmu)),), out=out, view=view_cfg, workers=workers, fps=args.fps, dedup_mm=args.dedup_mm)
            t = time.perf_counter()
            report = build_bank(cfg)
            e2e[workers] = time.perf_counter() - t
            stages[workers] = dict(report.seconds)

    read_fps = frames / t_read
    map_fps = frames / t_map
    # Whole CMU: every frame is read and mapped; resampling keeps fps/120 of them for dedup and views.
    kept_ratio = len(kept) / len(poses)
    cmu_poses = CMU_FRAMES * args.fps / 120.0
    # Reading and mapping run in --workers processes (per file); dedup is one pass per source; views,
    # projection and Parquet writing run in the main process (measured together: t_proj_write).
    per_file = CMU_FRAMES / read_fps + CMU_FRAMES / map_fps
    serial = cmu_poses / (len(poses) / t_dedup) + cmu_poses * kept_ratio / (len(kept) / t_proj_write)
    projected_1core = per_file + serial
    projected_2 = per_file / 2 + serial
    result = {
        "machine": machine_description(),
        "sample": {"files": len(jobs), "frames_120hz": frames, "poses_after_resampling": len(poses), "kept_after_dedup": len(kept)},
        "read_fk_frames_per_s": read_fps,
        "fk_only_frames_per_s_09_12": n09 / t_fk,
        "fk_naive_baseline_frames_per_s_09_12": n09 / t_fk_naive,
        "fk_speedup_vs_naive": t_fk_naive / t_fk,
        "canonical_map_resample_centre_frames_per_s": map_fps,
        "dedup_poses_per_s": len(poses) / t_dedup,
        "views_projection_poses_per_s": len(kept) / t_proj,
        "views_projection_rows_per_s": len(kept) * args.views / t_proj,
        "views_projection_parquet_write_rows_per_s": len(kept) * args.views / t_proj_write,
        "build_bank_seconds": {f"workers={w}": s for w, s in e2e.items()},
        "build_bank_rows": report.rows,
        "projected_whole_cmu_seconds_1_worker": projected_1core,
        "projected_whole_cmu_seconds_2_workers": projected_2,
        "build_bank_stage_seconds": stages,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
