"""Label-quality benchmark of pseudo ground truth (paper section 3.7) on held-out MoCap subjects.

    .venv/bin/python bench/bench_pseudo_gt.py [--data ../shared/data] [--views 40] [--json out.json]

MoCap subjects held out of the bank (CMU 131, HDM05 actor dg) are seen from random views and
projected to pixels; joints are hidden with the visibility patterns of the real MPII annotations
(../shared/data/mpii/valid_a.h5); the people are annotated against a bank, and the labels are
compared with the truth:
- MPJPE (mm) of the pseudo-3D pose, body-centred, without and with rigid alignment (rotation and
  translation, Kabsch);
- the 2D error of the completed hidden joints, in mm at the subject (px divided by the px-per-metre
  scale of the projection) and in px;
- the matching error (eq. 9 distance of the best match);
for a CMU-only bank against CMU + HDM05 + Pose Prior, and for the label modes top1 (the paper),
topk-mean (score-weighted top-k average) and depth-transfer (annotated x, y kept, depth from the match).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import machine_description  # the sibling module bench/machine.py
from posebank.annotate import label_people
from posebank.bank import open_bank
from posebank.bank_build import build_bank
from posebank.canonical import canonical_poses
from posebank.config import BankConfig, ViewConfig
from posebank.datasets2d import read_annotations, to_canonical_2d
from posebank.search import SearchConfig
from posebank.skeleton import get_skeleton
from posebank.sources import discover
from posebank.views import draw_views, hash_ids, project_views

SK = get_skeleton("j13")


def rigid_align(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """pred (N, J, 3) rotated and translated onto true (Kabsch, proper rotations only)."""
    mp, mt = pred.mean(1, keepdims=True), true.mean(1, keepdims=True)
    h = np.einsum("nji,njk->nik", pred - mp, true - mt)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    u[:, :, -1] *= d[:, None]
    r = np.einsum("nij,njk->nik", u, vt)
    return np.einsum("nji,nik->njk", pred - mp, r) + mt


def mpjpe_mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1000.0 * np.linalg.norm(a - b, axis=-1).mean(-1)


def held_out_people(data: Path, views: int, seed: int, masks: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Queries from the held-out subjects: true 3D (camera frame), pixels, masks, px-per-metre scale."""
    rng = np.random.default_rng(seed)
    sets = {}
    for name, source, folder, keep in (("cmu-131", "cmu", data / "cmu/subjects/131", None),
                                       ("hdm05-dg", "hdm05", data / "hdm05", "dg")):  # fmt: skip
        jobs = [j for j in discover(source, folder)[0] if keep is None or j.subject == keep]
        poses = np.concatenate([canonical_poses(j, SK, 30.0).poses_m for j in jobs])
        ids = hash_ids([name] * len(poses), np.arange(len(poses)))
        pose_3d, pose_2d = project_views(poses, draw_views(seed + 1, ids, ViewConfig(views=1)))
        pose_3d, pose_2d = pose_3d[:, 0].astype(np.float64), pose_2d[:, 0].astype(np.float64)
        scale = rng.uniform(150.0, 450.0, size=len(poses))  # px per metre
        px = pose_2d * scale[:, None, None] + rng.uniform(200, 800, size=(len(poses), 1, 2))
        mask = masks[rng.integers(0, len(masks), size=len(poses))]
        sets[name] = {"pose_3d": pose_3d, "px": px, "mask": mask, "scale": scale}
    return sets


def build(data: Path, out: Path, merged: bool, views: int) -> Path:
    """A bank without the held-out subjects: CMU 09 + 135 (+ HDM05 bd, bk + Pose Prior when merged)."""
    src = out / "src"
    for subject in ("09", "135"):
        shutil.copytree(data / "cmu/subjects" / subject, src / "cmu/subjects" / subject, dirs_exist_ok=True)
    sources = [("cmu", str(src / "cmu"))]
    if merged:
        (src / "hdm05").mkdir(parents=True, exist_ok=True)
        for f in (data / "hdm05").iterdir():
            if "_dg" not in f.name:
                shutil.copy(f, src / "hdm05")
        sources += [("hdm05", str(src / "hdm05")), ("poseprior", str(data / "poseprior"))]
    bank_dir = out / ("merged" if merged else "cmu")
    build_bank(BankConfig(sources=tuple(sources), out=str(bank_dir), view=ViewConfig(views=views), workers=2))
    return bank_dir


def evaluate(bank_dir: Path, people: dict[str, np.ndarray], mode: str, k: int) -> dict[str, float]:
    hidden = np.where(people["mask"][..., None], people["px"], np.nan)
    t = time.perf_counter()
    labels = label_people(open_bank(bank_dir), hidden, people["mask"], k=k, label_mode=mode,
                          search=SearchConfig(engine="auto"))  # fmt: skip
    seconds = time.perf_counter() - t
    true = people["pose_3d"]
    miss = ~people["mask"]
    err_px = np.linalg.norm(labels.pose_2d - people["px"], axis=-1)
    err_mm = 1000.0 * err_px / people["scale"][:, None]
    return {
        "people": int(len(true)),
        "mpjpe_mm": float(mpjpe_mm(labels.pose_3d, true).mean()),
        "mpjpe_rigid_mm": float(mpjpe_mm(rigid_align(labels.pose_3d, true), true).mean()),
        "hidden_2d_error_mm": float(err_mm[miss].mean()),
        "hidden_2d_error_px": float(err_px[miss].mean()),
        "matching_error": float(np.mean(labels.match_distance)),
        "seconds": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--views", type=int, default=40)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    canon = to_canonical_2d(read_annotations("mpii", args.data / "mpii/valid_a.h5"))
    masks = canon.visible[canon.visible.sum(1) >= 3]
    people = held_out_people(args.data, args.views, args.seed, masks)
    results: dict[str, dict] = {"machine": machine_description(), "views": args.views,
                                "k": args.k, "mpii_masks": int(len(masks)),
                                "fraction_hidden": float(1 - masks.mean())}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        banks = {"cmu": build(args.data, Path(tmp), False, args.views), "merged": build(args.data, Path(tmp), True, args.views)}
        results["bank_rows"] = {name: open_bank(b).num_rows for name, b in banks.items()}
        for bank_name, bank_dir in banks.items():
            for mode in ("top1", "topk-mean", "depth-transfer"):
                for set_name, p in people.items():
                    results[f"{bank_name}/{mode}/{set_name}"] = evaluate(bank_dir, p, mode, args.k)
    for set_name in people:
        a, b = results[f"cmu/top1/{set_name}"]["matching_error"], results[f"merged/top1/{set_name}"]["matching_error"]
        results[f"matching_error_reduction_merged_vs_cmu/{set_name}"] = 1.0 - b / a
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
