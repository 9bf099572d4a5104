"""Prepared GPU check of masked search (issue: >= 4x the per-mask torch baseline at a 1e7 bank) and of
K-means anchors (K=200 on 1e6 poses), for a session that has an H100/H200. No faiss, no downloads.

    .venv/bin/python bench/gpu_search_anchors.py            # on the GPU machine, a few minutes
    .venv/bin/python bench/gpu_search_anchors.py --smoke    # tiny sizes, runs on a CPU

Prints JSON: pairs/s of the per-mask torch baseline (normalise the bank for each mask, one GEMM,
argmax) and of posebank's torch engine on the same data (both warmed up, both the best of --repeats
runs, both moving the bank to the device once per run and preparing it inside the timed run), with both kernels (torch.matmul tiles and
the fused Triton kernel), their ratio to the baseline, whether their top-1 distances agree, and the K-means seconds and inertia of posebank's torch Lloyd against the CPU faiss
engine when faiss is installed.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from posebank.anchors import kmeans
from posebank.search import SearchConfig, masked_knn, prepare_bank
from posebank.search.synthetic import random_masks, random_poses_2d, random_queries


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def baseline_per_mask(bank: torch.Tensor, queries: np.ndarray, masks: np.ndarray, block: int) -> np.ndarray:
    """Top-1 distances the straightforward way: per distinct mask, normalise the whole bank on it.

    bank: (N, J, 2) float32 already on the device (as the engine's tables are during its search).
    """
    device = bank.device
    out = np.empty(len(queries), np.float32)
    uniq, inverse = np.unique(masks, axis=0, return_inverse=True)
    for m_idx, mask in enumerate(uniq):
        sel = np.flatnonzero(inverse.ravel() == m_idx)
        joints = torch.from_numpy(np.flatnonzero(mask)).to(device)
        q = torch.from_numpy(queries[sel][:, mask]).to(device)
        q = q - q.mean(1, keepdim=True)
        q = (q / torch.linalg.vector_norm(q, dim=(1, 2), keepdim=True)).reshape(len(sel), -1)
        best = torch.full((len(sel),), -2.0, device=device)
        for s in range(0, len(bank), block):
            b = bank[s : s + block].index_select(1, joints)
            b = b - b.mean(1, keepdim=True)
            b = (b / torch.linalg.vector_norm(b, dim=(1, 2), keepdim=True).clamp_min(1e-12)).reshape(len(b), -1)
            best = torch.maximum(best, (q @ b.T).amax(1))
        out[sel] = torch.sqrt(torch.clamp(2 - 2 * best, min=0)).cpu().numpy()
    return out


def timed(fn, repeats: int) -> tuple[float, object]:  # noqa: ANN001 -- a no-argument callable
    """(best wall seconds of `repeats` runs, the last result), synchronising the device around each run."""
    best, result = float("inf"), None
    for _ in range(repeats):
        _sync()
        t = time.perf_counter()
        result = fn()
        _sync()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CPU)")
    ap.add_argument("--bank-size", type=int, default=10_000_000)
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument("--kmeans-poses", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each side after its warm-up; the best is kept")
    args = ap.parse_args()
    if args.smoke:
        args.bank_size, args.queries, args.kmeans_poses = 20_000, 200, 20_000
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(0)
    bank = random_poses_2d(args.bank_size, rng)
    queries, masks = random_queries(args.queries, rng), random_masks(args.queries, rng)
    result: dict[str, object] = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                                 "torch": torch.__version__, "bank": args.bank_size, "queries": args.queries}  # fmt: skip
    pairs = float(args.bank_size) * args.queries

    # Like with like: both sides start from the bank in host memory and end with top-1 distances on the
    # host; both move the bank to the device once per run (the baseline its raw poses, the engine its
    # prepared tables, inside masked_knn), and both bear their preparation (the baseline normalises per
    # mask on the device; the engine's prepare_bank runs on the CPU and is timed with it). Both are warmed
    # up first (CUDA context, cuBLAS handles, kernels, allocator) and both take the best of --repeats runs.
    warm = slice(0, min(64, args.queries))
    baseline_per_mask(torch.from_numpy(bank[:4096]).to(device), queries[warm], masks[warm], 1 << 21)

    def run_baseline() -> np.ndarray:
        on_device = torch.from_numpy(bank).to(device)  # once per run, not once per mask
        return baseline_per_mask(on_device, queries, masks, block=1 << 21)

    t_base, base = timed(run_baseline, args.repeats)
    t = time.perf_counter()
    prepared = prepare_bank(bank)
    t_prepare = time.perf_counter() - t
    searches = {}
    # The smoke run on a CPU uses Triton's interpreter, far too slow for 20k x 200: matmul only there.
    kernels = ("matmul", "triton") if device == "cuda" else ("matmul",)
    for kernel in kernels:
        config = SearchConfig(engine="torch", device=device, torch_kernel=kernel)
        try:
            masked_knn(prepare_bank(bank[:4096]), queries[warm], masks[warm], 1, config=config)  # warm-up
            t_engine, (d, _) = timed(lambda: masked_knn(prepare_bank(bank), queries, masks, 1, config=config), args.repeats)
        except Exception as err:  # noqa: BLE001 - one failing kernel must not lose the other numbers
            searches[kernel] = {"failed": f"{type(err).__name__}: {err}"[:2000]}
            continue
        searches[kernel] = {
            "engine_seconds": t_engine, "engine_gpairs_per_s": pairs / t_engine / 1e9,
            "speedup": t_base / t_engine, "target": 4.0,
            "top1_distance_max_abs_diff": float(np.abs(d[:, 0] - base).max()),
        }  # fmt: skip
    result["search"] = {"baseline_seconds": t_base, "baseline_gpairs_per_s": pairs / t_base / 1e9,
                        "prepare_bank_seconds": t_prepare, "repeats": args.repeats,
                        "timing": "best of repeats after a warm-up, each side from host arrays: bank upload and "
                                  "preparation included for both (engine_seconds includes prepare_bank)",
                        **searches}  # fmt: skip
    print(json.dumps(result, indent=1), flush=True)  # partial results first, in case K-means fails

    x = random_poses_2d(args.kmeans_poses, rng).reshape(args.kmeans_poses, -1)  # 2D stand-in for 3D poses
    x = np.concatenate([x, x[:, :13]], axis=1).astype(np.float32)  # 39 dims, as j13 3D poses
    kres = {}
    for engine in ("torch", "faiss"):
        try:
            t = time.perf_counter()
            centres, stats = kmeans(x, 200, niter=25, seed=0, engine=engine)
            _sync()
            kres[engine] = {"seconds": time.perf_counter() - t, "objective": stats[-1]["obj"]}
        except ImportError as err:
            kres[engine] = {"skipped": str(err)}
    result["kmeans_k200"] = kres
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
