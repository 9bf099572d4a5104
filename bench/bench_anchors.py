"""Benchmark of `posebank anchors`: K-means with K=200 on 1e6 oriented 3D poses.

    .venv/bin/python bench/bench_anchors.py [--data DATA] [--poses 1000000] [--k 200] [--niter 25]

The poses are real: every canonical pose of the shared MoCap sample (CMU, HDM05, Pose Prior),
deduplicated, seen from enough random views to make --poses rows (as a bank holds them). Engines:
faiss (posebank's CPU default), posebank's numpy and torch Lloyd, scikit-learn's KMeans (Lloyd, one
init) and MiniBatchKMeans, all with the same K and iteration budget; the final inertia (sum of
squared distances, m^2) of each is computed the same way after a final assignment.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from machine import machine_description  # the sibling module bench/machine.py
from posebank.anchors import _nearest_l2, kmeans
from posebank.bank.canonical import canonical_poses
from posebank.config import ViewConfig
from posebank.bank.dedup import deduplicate
from posebank.skeleton import get_skeleton
from posebank.mocap.sources import discover
from posebank.bank.views import draw_views, hash_ids, project_views


def real_poses(data: Path, rows: int, seed: int) -> np.ndarray:
    sk = get_skeleton("j13")
    world = []
    for source, folder in (("cmu", "cmu/subjects"), ("hdm05", "hdm05"), ("poseprior", "poseprior")):
        poses = np.concatenate([canonical_poses(j, sk, 30.0).poses_m for j in discover(source, data / folder)[0]])
        world.append(poses[deduplicate(poses, sk, 20.0)])
    world = np.concatenate(world)
    views = -(-rows // len(world))
    ids = hash_ids(["bench"] * len(world), np.arange(len(world)))
    pose_3d, _ = project_views(world, draw_views(seed, ids, ViewConfig(views=views)))
    return pose_3d.reshape(-1, 39)[:rows].astype(np.float32)


def inertia(x: np.ndarray, centres: np.ndarray) -> float:
    a = _nearest_l2(x, centres.astype(np.float32))
    return float(((x - centres[a]) ** 2).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--poses", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--niter", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", nargs="*", default=[], help="engines to skip")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    x = real_poses(args.data, args.poses, args.seed)
    results = {"machine": machine_description(), "poses": len(x), "k": args.k, "niter": args.niter}
    runs = {
        "posebank faiss": lambda: kmeans(x, args.k, niter=args.niter, seed=args.seed, engine="faiss")[0],
        "posebank torch (cpu)": lambda: kmeans(x, args.k, niter=args.niter, seed=args.seed, engine="torch")[0],
        "posebank numpy": lambda: kmeans(x, args.k, niter=args.niter, seed=args.seed, engine="numpy")[0],
    }

    def sklearn_kmeans() -> np.ndarray:
        from sklearn.cluster import KMeans

        return KMeans(args.k, init="random", n_init=1, max_iter=args.niter, tol=0.0, random_state=args.seed,
                      algorithm="lloyd").fit(x).cluster_centers_  # fmt: skip

    def sklearn_minibatch() -> np.ndarray:
        from sklearn.cluster import MiniBatchKMeans

        return MiniBatchKMeans(args.k, init="random", n_init=1, max_iter=args.niter, batch_size=4096,
                               random_state=args.seed).fit(x).cluster_centers_  # fmt: skip

    runs["scikit-learn KMeans (lloyd)"] = sklearn_kmeans
    runs["scikit-learn MiniBatchKMeans"] = sklearn_minibatch
    for name, run in runs.items():
        if any(s in name for s in args.skip):
            continue
        t = time.perf_counter()
        centres = run()
        seconds = time.perf_counter() - t
        results[name] = {"seconds": seconds, "inertia_m2": inertia(x, centres)}
        print(f"{name:32s} {seconds:8.1f} s  inertia {results[name]['inertia_m2']:.1f} m^2", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
