"""The whole `annotate` command against the per-mask faiss-cpu baseline, exact and faiss-ivf, first run and reuse.

    .venv/bin/python bench/bench_annotate.py --source cmu=DATA/cmu/subjects --source hdm05=DATA/hdm05 \\
        --views 1600 --annotations DATA/mpii/valid_a.h5 --work /tmp/bench_annotate --json bench/out/annotate.json
    .venv/bin/python bench/bench_annotate.py ... --smoke      # 20 views, 1 repeat, a 200-batch lifter: checks that it runs

The bank is built once into --work (build-bank, resumed when present): the MoCap samples given, --views
views per pose. People: the MPII annotation file's people that annotate matches (>= 3 annotated joints).

Rows, all in this one process (so imports and page cache are warm for every row alike):
- baseline: the searches the command makes, done the straightforward faiss-cpu way
  (bench_search.baseline_per_mask: per distinct mask, a normalised copy of the whole bank and an
  IndexFlatIP): the people's top-k (--k, as annotate) and their left/right-exchanged top-1. The bank is
  handed to it as an array already in memory (reading it is not timed), and it neither labels nor writes:
  a floor for any tool built that way. One warm-up call, then the best of --repeats.
- exact (blas): posebank.annotate.annotate, the library call behind `posebank annotate`, end to end
  (opens and verifies the bank, reads the annotation file, searches, labels with the default label mode,
  writes shards and manifest) into a fresh folder each time. First run with nothing stored beside the bank
  (it stores the prepared bank, the gather table and lifted-fit's network, trained then; it is also the
  warm-up), then the best of --repeats, which load them.
- faiss-ivf, first run: the same with the approximate engine after removing the bank's stored index,
  so the index build is inside the time (the gather table from the exact runs stays); then faiss-ivf,
  reuse: the best of --repeats with the index stored by the first run. recall@1: share of people whose
  top-1 distance equals the exact run's (ties, squared distances within 2e-6, count as hits).
- cli: each engine as the command line a user types (a fresh interpreter each time: start-up and imports
  included), for the fixed share the library rows leave out: one warm-up run (shown apart), then the best of
  --repeats, as the other rows; wall and CPU seconds and peak memory (wait4). Python caches bytecode, as it
  does for a user (PYTHONDONTWRITEBYTECODE is removed from the command's environment).
x_baseline compares wall seconds; on a machine shared with other jobs compare the CPU seconds too.
"""

from __future__ import annotations

import argparse
import os
import resource
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

from bench_search import SQ_TIE, baseline_per_mask  # noqa: E402 -- the sibling script: one baseline
from machine import emit_json, machine_description, round_or_none, run_measured, user_env  # noqa: E402

from posebank.annotate import FLAG_SWAP, AnnotateConfig, annotate  # noqa: E402
from posebank.annotate.lifter import LifterConfig  # noqa: E402
from posebank.bank import open_bank  # noqa: E402
from posebank.bank.build import build_bank  # noqa: E402
from posebank.config import BankConfig, ViewConfig  # noqa: E402
from posebank.datasets2d import read_annotations, to_canonical_2d  # noqa: E402
from posebank.geometry import masked_centre_scale  # noqa: E402
from posebank.search.ivf_store import INDEX_DIR  # noqa: E402
from posebank.shards import read_table  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", action="append", required=True, help="NAME=PATH, as build-bank --source")
    ap.add_argument("--views", type=int, default=1600)
    ap.add_argument("--annotations", type=Path, required=True, help="MPII annotation file (.h5, .json or .mat)")
    ap.add_argument("--work", type=Path, required=True, help="folder for the bank and the runs' outputs")
    ap.add_argument("--k", type=int, default=20, help="annotate --k (matches per person)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-baseline", action="store_true", help="leave the (slow) baseline out")
    ap.add_argument("--lifter-steps", type=int, default=LifterConfig().steps, help="annotate --lifter-steps")
    ap.add_argument("--smoke", action="store_true", help="20 views, 1 repeat, 200 lifter batches")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.smoke:
        args.views, args.repeats, args.lifter_steps = 20, 1, 200
    return args


def best_of(fn: Any, repeats: int) -> tuple[float, float, Any]:
    """(best wall s, its CPU s, the last result) of `repeats` calls."""
    best, cpu, result = float("inf"), float("nan"), None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return best, cpu, result


def top1_distances(out: Path) -> np.ndarray:
    files = sorted((out / "annotations").glob("part-*.parquet"))
    d = [np.array([np.nan if v is None else v for v in read_table(f, columns=["match_distance"]).column(0).to_pylist()])
         for f in files]  # fmt: skip
    return np.concatenate(d)


def swap_flags(out: Path) -> np.ndarray:
    """(people,) bool: the left_right_swap flag of every person of an annotate output, in file order."""
    files = sorted((out / "annotations").glob("part-*.parquet"))
    return np.array([FLAG_SWAP in f for p in files for f in read_table(p, columns=["flags"]).column(0).to_pylist()])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    sources = tuple((s.split("=", 1)[0], str(Path(s.split("=", 1)[1]).resolve())) for s in args.source)
    bank_dir = work / f"bank-{args.views}views"
    t = time.perf_counter()
    build_bank(BankConfig(sources=sources, out=str(bank_dir), view=ViewConfig(views=args.views)))
    build_s = time.perf_counter() - t
    bank = open_bank(bank_dir)
    people = read_annotations("mpii", args.annotations)
    canon = to_canonical_2d(people, bank.skeleton.name)
    _, scale = masked_centre_scale(canon.pose_2d, canon.visible)
    keep = (canon.visible.sum(1) >= 3) & (scale > 1e-6)  # the people annotate matches
    q, m = canon.pose_2d[keep], canon.visible[keep]
    flip = list(bank.skeleton.flip_permutation)
    masks = len(np.unique(np.packbits(m, axis=1), axis=0))
    masks_all = len(np.unique(np.packbits(np.concatenate([m, m[:, flip]]), axis=1), axis=0))
    result: dict[str, Any] = {
        "machine": machine_description(), "date": time.strftime("%Y-%m-%d %H:%M"), "load_start": os.getloadavg()[0],
        "bank_rows": bank.num_rows, "views": args.views, "people_file": len(people), "people_matched": int(keep.sum()),
        "distinct_masks": masks, "distinct_masks_with_left_right": masks_all, "k": args.k, "repeats": args.repeats,
        "bank_build_or_resume_s": round(build_s, 2),
    }  # fmt: skip
    print(f"# {result}", file=sys.stderr, flush=True)
    rows: dict[str, dict[str, Any]] = {}

    if not args.skip_baseline:
        bank_2d = bank.poses(columns=("pose_2d",))[0]  # in memory before the clock starts

        def baseline() -> None:
            baseline_per_mask(bank_2d, q, m, args.k)
            baseline_per_mask(bank_2d, q[:, flip], m[:, flip], 1)

        baseline_per_mask(bank_2d[: min(len(bank_2d), 50_000)], q[:64], m[:64], args.k)  # warm-up
        wall, cpu, _ = best_of(baseline, args.repeats)
        rows["baseline"] = {"seconds": wall, "cpu_seconds": cpu}
        del bank_2d
        print(f"# baseline {wall:.2f} s", file=sys.stderr, flush=True)

    def run(engine: str, name: str) -> AnnotateConfig:
        out = work / "runs" / name
        shutil.rmtree(out, ignore_errors=True)
        config = AnnotateConfig(dataset="mpii", annotation_file=str(args.annotations), bank=str(bank_dir), out=str(out),
                                engine=engine, k=args.k, lifter=LifterConfig(steps=args.lifter_steps))  # fmt: skip
        annotate(config)
        return config

    shutil.rmtree(bank_dir / INDEX_DIR, ignore_errors=True)  # nothing stored: the first run's cost
    wall, cpu, _ = best_of(lambda: run("blas", "exact-first"), 1)  # also the warm-up of the exact rows
    rows["exact (blas), first run (stores prepared bank + gather table)"] = {"seconds": wall, "cpu_seconds": cpu}
    counter = iter(range(1000))
    wall, cpu, exact = best_of(lambda: run("blas", f"exact-{next(counter)}"), args.repeats)
    rows["exact (blas)"] = {"seconds": wall, "cpu_seconds": cpu}
    exact_d = top1_distances(Path(exact.out))
    print(f"# exact {wall:.2f} s", file=sys.stderr, flush=True)

    # The index and the prepared bank it re-ranks from are the first run's to build; the gather table stays
    # (the exact runs made it, and it does not depend on the engine).
    for stored in [*(bank_dir / INDEX_DIR).glob("ivf-*"), *(bank_dir / INDEX_DIR).glob("prepared-*")]:
        shutil.rmtree(stored)
    wall, cpu, first = best_of(lambda: run("faiss-ivf", "ivf-first"), 1)
    stored = sorted((bank_dir / INDEX_DIR).glob("ivf-*"))
    rows["faiss-ivf, first run (index built and stored)"] = {"seconds": wall, "cpu_seconds": cpu,
                                                             "indices_stored": len(stored)}  # fmt: skip
    counter = iter(range(1000))
    wall, cpu, ivf = best_of(lambda: run("faiss-ivf", f"ivf-{next(counter)}"), args.repeats)
    d = top1_distances(Path(ivf.out))
    matched = np.isfinite(exact_d)
    hit = d[matched].astype(np.float64) ** 2 <= exact_d[matched].astype(np.float64) ** 2 + SQ_TIE
    # The left/right check scans fewer cells (SearchConfig.ivf_nprobe_check): its flags against exact's.
    flags_exact, flags_ivf = swap_flags(Path(exact.out)), swap_flags(Path(ivf.out))
    rows["faiss-ivf, reuse (stored index)"] = {
        "seconds": wall, "cpu_seconds": cpu, "recall_at_1": float(hit.mean()), "swap_flags": int(flags_ivf.sum()),
        "swap_flags_exact": int(flags_exact.sum()), "swap_flags_differing": int((flags_ivf != flags_exact).sum()),
    }  # fmt: skip
    print(f"# faiss-ivf {wall:.2f} s, recall@1 {hit.mean():.4f}, swap flags {flags_ivf.sum()} (exact {flags_exact.sum()}, "
          f"{(flags_ivf != flags_exact).sum()} differ)", file=sys.stderr, flush=True)  # fmt: skip

    cli = REPO / ".venv" / "bin" / "posebank"
    env = user_env()
    for engine in ("blas", "faiss-ivf"):
        out = work / "runs" / f"cli-{engine}"

        def command() -> dict[str, Any]:
            shutil.rmtree(out, ignore_errors=True)
            return run_measured([str(cli), "annotate", "mpii", str(args.annotations), "--bank", str(bank_dir), "--out",
                                 str(out), "--engine", engine, "--k", str(args.k), "--lifter-steps", str(args.lifter_steps), "-q"],
                                env)  # fmt: skip

        first = command()  # the warm-up every row gets (page cache, bytecode cache); its time is shown apart
        best = min((command() for _ in range(args.repeats)), key=lambda r: r["seconds"])
        rows[f"cli {engine} (fresh interpreter)"] = {**{k: best[k] for k in ("seconds", "cpu_seconds", "peak_rss_gib")},
                                                     "first_run_seconds": first["seconds"]}  # fmt: skip

    base = rows.get("baseline", {}).get("seconds")
    for row in rows.values():
        row["x_baseline"] = round_or_none(base / row["seconds"], 2) if base else None
        for key in ("seconds", "cpu_seconds", "peak_rss_gib", "first_run_seconds"):
            if key in row:
                row[key] = round_or_none(row[key], 3)
    result["rows"] = rows
    result["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    result["load_end"] = os.getloadavg()[0]
    emit_json(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
