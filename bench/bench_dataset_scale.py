"""Dataset-scale `posebank annotate`: a bank of 1e7 rows and 200,000 people on this machine's cores.

    .venv/bin/python bench/bench_dataset_scale.py --source cmu=DATA/cmu/subjects --source hdm05=DATA/hdm05 \\
        --annotations DATA/mpii/valid_a.h5 --work /tmp/scale --json bench/out/dataset_scale.json
    .venv/bin/python bench/bench_dataset_scale.py ... --smoke     # 1e5 rows, 3,000 people: checks that it runs

Bank: build-bank of the MoCap samples given, with as many views per kept pose as reach --bank-rows
(a real bank's rows, shards and manifest; few distinct poses seen from many cameras). People: the MPII
file's people repeated to --people, each copy's annotated joints moved by 1% of its size (seeded), written
as a Stacked-Hourglass h5 (the layout `annotate mpii` reads); so many distinct queries, MPII's masks.

Runs, each `posebank annotate mpii` in a fresh process (wall time, and peak resident memory from wait4):
1. faiss-ivf over all --people with nothing stored beside the bank: the index build, the prepared bank, the
   gather table and the training of lifted-fit's network (--lifter-steps) are inside (first run);
2. faiss-ivf again into another folder: all of those are reused (what later runs and datasets pay);
3. exact (blas) over the first --exact-people people only; its rate, projected to --people, is reported
   as a projection, not a measurement. It labels with fused-fit: the search is what is compared, and
   lifted-fit would first train a network for these people's visibility patterns (a one-off cost that
   the projection must not scale);
4. recall@1 of run 2 against run 3 on those people (a hit: the same top-1 distance, ties within 2e-6).
--memory-gb is passed to annotate (the bank side's budget: blocks and one stored index per block).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_annotate import top1_distances  # noqa: E402 -- the sibling script
from bench_search import SQ_TIE  # noqa: E402
from machine import emit_json, machine_description, round_or_none, run_measured, user_env  # noqa: E402

from posebank.bank import open_bank  # noqa: E402
from posebank.bank.build import build_bank  # noqa: E402
from posebank.config import BankConfig, ViewConfig  # noqa: E402
from posebank.search.ivf_store import INDEX_DIR  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", action="append", required=True, help="NAME=PATH, as build-bank --source")
    ap.add_argument("--annotations", type=Path, required=True, help="an MPII .h5 (Stacked-Hourglass layout) to repeat")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--bank-rows", type=int, default=10_000_000)
    ap.add_argument("--people", type=int, default=200_000)
    ap.add_argument("--exact-people", type=int, default=20_000)
    ap.add_argument("--memory-gb", type=float, default=8.0)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--lifter-steps", type=int, default=None, help="annotate --lifter-steps (default: annotate's)")
    ap.add_argument("--smoke", action="store_true", help="1e5 rows, 3,000 people, 500 exact, 200 lifter batches")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.smoke:
        args.bank_rows, args.people, args.exact_people, args.lifter_steps = 100_000, 3_000, 500, 200
    return args


def repeat_people(src: Path, dst: Path, count: int, seed: int = 0) -> None:
    """`count` people from the h5 `src`, repeated, annotated joints moved by 1% of the person's size."""
    import h5py

    rng = np.random.default_rng(seed)
    with h5py.File(src, "r") as f:
        data = {k: f[k][()] for k in f}
    n = len(data["part"])
    take = np.arange(count) % n
    out = {k: v[take] for k, v in data.items()}
    vis = out["visible"] > 0
    size = np.array([np.ptp(p[v], axis=0).max() if v.sum() > 1 else 0.0 for p, v in zip(out["part"], vis)])
    jitter = rng.normal(scale=0.01, size=out["part"].shape) * size[:, None, None]
    jitter[take < n] = 0.0  # the first copy of each person is the original
    annotated = (out["part"] != 0).any(-1)  # the h5 marks a missing joint as (0, 0)
    out["part"] = np.where(annotated[..., None], np.maximum(out["part"] + jitter, 1.0), 0.0)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp.h5")
    with h5py.File(tmp, "w") as f:
        for k, v in out.items():
            f.create_dataset(k, data=v)
    os.replace(tmp, dst)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    sources = tuple((s.split("=", 1)[0], str(Path(s.split("=", 1)[1]).resolve())) for s in args.source)
    probe = build_bank(BankConfig(sources=sources, out=str(work / "bank-1view"), view=ViewConfig(views=1)))
    poses = probe.rows
    views = -(-args.bank_rows // poses)
    bank_dir = work / f"bank-{views}views"
    t = time.perf_counter()
    build_bank(BankConfig(sources=sources, out=str(bank_dir), view=ViewConfig(views=views)))
    build_s = time.perf_counter() - t
    rows = open_bank(bank_dir, verify=False).num_rows
    people_all = work / f"people-{args.people}.h5"
    people_exact = work / f"people-{args.exact_people}.h5"
    for path, count in ((people_all, args.people), (people_exact, args.exact_people)):
        if not path.is_file():
            repeat_people(args.annotations, path, count)
    result: dict[str, Any] = {
        "machine": machine_description(), "date": time.strftime("%Y-%m-%d %H:%M"), "load_start": os.getloadavg()[0],
        "bank_rows": rows, "bank_poses": poses, "views": views, "bank_build_or_resume_s": round(build_s, 1),
        "people": args.people, "exact_people": args.exact_people, "memory_gb": args.memory_gb, "k": args.k,
    }  # fmt: skip
    print(f"# {result}", file=sys.stderr, flush=True)
    cli = str(REPO / ".venv" / "bin" / "posebank")

    env = user_env()
    lifter = ["--lifter-steps", str(args.lifter_steps)] if args.lifter_steps else []

    def annotate(people: Path, out: str, engine: str, *options: str) -> dict[str, Any]:
        shutil.rmtree(work / out, ignore_errors=True)
        row = run_measured([cli, "annotate", "mpii", str(people), "--bank", str(bank_dir), "--out", str(work / out),
                            "--engine", engine, "--k", str(args.k), "--memory-gb", str(args.memory_gb), "-q", *options],
                           env)  # fmt: skip
        print(f"# {out}: {row}", file=sys.stderr, flush=True)
        return row

    shutil.rmtree(bank_dir / INDEX_DIR, ignore_errors=True)
    runs = {"faiss-ivf, first run (index built, lifter trained)": annotate(people_all, "ivf-first", "faiss-ivf", *lifter)}
    runs["faiss-ivf, stored index"] = annotate(people_all, "ivf", "faiss-ivf", *lifter)
    runs["exact (blas), fused-fit labels"] = exact = annotate(people_exact, "exact", "blas", "--label-mode", "fused-fit")
    exact["projected_seconds_for_all_people"] = exact["seconds"] * args.people / args.exact_people
    d_exact = top1_distances(work / "exact")
    d_ivf = top1_distances(work / "ivf")[: args.exact_people]
    matched = np.isfinite(d_exact)
    hit = d_ivf[matched].astype(np.float64) ** 2 <= d_exact[matched].astype(np.float64) ** 2 + SQ_TIE
    result["recall_at_1_ivf_vs_exact"] = float(hit.mean())
    for row in runs.values():
        for key in list(row):
            if isinstance(row[key], float):
                row[key] = round_or_none(row[key], 3)
        row["people_per_s"] = round_or_none(
            (args.exact_people if row is exact else args.people) / row["seconds"], 1
        )
    result["runs"] = runs
    result["stored_indices"] = len(list((bank_dir / INDEX_DIR).glob("ivf-*")))
    result["load_end"] = os.getloadavg()[0]
    emit_json(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
