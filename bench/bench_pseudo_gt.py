"""Label-quality benchmark of pseudo ground truth (paper section 3.7) on realistic queries of MoCap
subjects held out of every source of the bank.

    nice -n 19 .venv/bin/python bench/bench_pseudo_gt.py [--data DATA] [--views 12] [--json out.json] [--work DIR]

DATA is the sample-data folder (cmu/, hdm05/, poseprior/, mpii/valid_a.h5).

Protocol (leave-one-subject-out where the sample allows):
- Folds: the sample holds three CMU subjects (09, 131, 135) and three HDM05 actors (bd, bk, dg). Fold i
  holds out CMU subject i and HDM05 actor i; its bank is built from the other CMU subjects, the other
  HDM05 actors and the Pose Prior set (which has no held-out people), `--views` random views per pose
  at `--fps`. Every subject is queried once, against a bank that never saw them.
- Queries: `--query-views` random views of every held-out pose (at most `--max-poses` poses per subject,
  evenly spaced; 16 views give 23,088 people, of whom about 7,500 have a hidden joint: with 2 views the
  median hidden-joint error moved by up to 0.018 torso between draws of the queries), in two kinds:
  * perspective (the realistic one): a pinhole camera of focal f in [1000, 1500] px, the person at
    distance d in [2.5, 7] m, off the optical axis by up to 0.25 d; Gaussian 2D noise of sigma 1% of
    the person's height in px on the annotated joints. The true pose is the camera-frame pose turned
    so that the person's viewing ray (camera -> body centre) becomes the optical axis: that is what
    the image shows, and without the camera's intrinsics no label can know more;
  * orthographic, exact 2D (the earlier protocol, for continuity): the bank's own projector, no noise.
  Joints are hidden with the visibility patterns of the real MPII annotations (people with >= 3
  annotated joints, the ones `annotate` matches).
- Metrics, per person then median (and mean) over people: MPJPE (mm, body-centred) without and with
  rigid alignment (Kabsch, rotation + translation); per-joint mean errors; the 2D error of the completed
  hidden joints in torso units (true 3D mid-hip to mid-shoulder length, projected at the person's
  depth), per person and per joint over the people who lack it; the eq. 9 matching distance. Every
  label mode is computed from the same matches; `lifted-fit`'s network is trained on each fold's bank
  (timed apart, as `lifter_train_s`).
- The merged-bank effect: the same folds with CMU-only banks (`--cmu-only`): matching distance and
  MPJPE of top1, merged against CMU-only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from machine import machine_description  # the sibling module bench/machine.py
from posebank.bank import MANIFEST, open_bank
from posebank.bank.build import build_bank
from posebank.bank.canonical import canonical_poses
from posebank.annotate.complete import complete_2d
from posebank.config import BankConfig, ViewConfig
from posebank.datasets2d import read_annotations, to_canonical_2d
from posebank.geometry import ray_to_axis
from posebank.metrics import rigid_align
from posebank.annotate.labels import LABEL_MODES, LabelConfig, label_poses
from posebank.annotate.lifter import LifterConfig, random_view_rotations, stored_lifter, visibility_patterns
from posebank.annotate.matching import gather_matches, search_bank
from posebank.search import SearchConfig
from posebank.skeleton import get_skeleton
from posebank.mocap.sources import discover

SK = get_skeleton("j13")
CMU_SUBJECTS = ("09", "131", "135")
HDM05_ACTORS = ("bd", "bk", "dg")
FOLDS = tuple(zip(CMU_SUBJECTS, HDM05_ACTORS))  # fold i: (CMU subject, HDM05 actor) held out


@dataclass(frozen=True)
class QueryConfig:
    """How the realistic (perspective) queries are drawn."""

    focal_px: tuple[float, float] = (1000.0, 1500.0)  # focal length range, px
    distance_m: tuple[float, float] = (2.5, 7.0)  # camera to body centre along the optical axis, m
    off_axis: float = 0.25  # body centre up to this x distance from the optical axis (radially)
    noise_height: float = 0.01  # 2D noise sigma as a fraction of the person's height (px)
    image_size: tuple[int, int] = (1920, 1080)  # principal point at the centre


def subject_poses(data: Path, fps: float) -> dict[str, np.ndarray]:
    """Body-centred world poses (T, J, 3) m of every CMU subject and HDM05 actor of the sample."""
    out: dict[str, np.ndarray] = {}
    for source, folder, names in (("cmu", data / "cmu/subjects", CMU_SUBJECTS), ("hdm05", data / "hdm05", HDM05_ACTORS)):
        jobs = discover(source, folder)[0]
        for name in names:
            mine = [j for j in jobs if j.subject == name]
            out[f"{source}-{name}"] = np.concatenate([canonical_poses(j, SK, fps).poses_m for j in mine]).astype(np.float64)
    return out


def make_queries(poses: np.ndarray, masks: np.ndarray, views: int, rng: np.random.Generator,
                 cfg: QueryConfig) -> dict[str, dict[str, np.ndarray]]:  # fmt: skip
    """Perspective and orthographic queries of body-centred world poses (P, J, 3), `views` each.

    Returns {"perspective": ..., "orthographic": ...}, each with pose_3d (N, J, 3) the truth (m,
    body-centred, ray-aligned camera frame), px (N, J, 2) the annotated pixels (NaN where hidden),
    true_px (N, J, 2) noise-free pixels, mask (N, J), torso_px (N,) the torso length in px.
    """
    p = np.repeat(poses, views, axis=0)
    n = len(p)
    rot = random_view_rotations(rng, n, ViewConfig())
    oriented = np.einsum("nij,nkj->nki", rot, p)  # camera orientation, body-centred
    mask = masks[rng.integers(0, len(masks), n)]
    hips, shoulders = [SK.index("right_hip"), SK.index("left_hip")], [SK.index("right_shoulder"), SK.index("left_shoulder")]
    torso_m = np.linalg.norm(p[:, shoulders].mean(1) - p[:, hips].mean(1), axis=-1)
    height_m = np.ptp(p[..., 1], axis=1)  # world +Y up: the vertical extent of the joints

    # Perspective: body centre at t = (r cos phi, r sin phi, d), then the pinhole projection.
    d = rng.uniform(*cfg.distance_m, n)
    r = cfg.off_axis * d * np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(0, 2 * np.pi, n)
    t = np.stack([r * np.cos(phi), r * np.sin(phi), d], axis=1)
    f = rng.uniform(*cfg.focal_px, n)
    cam = oriented + t[:, None]
    centre = np.array(cfg.image_size, np.float64) / 2
    true_px = f[:, None, None] * cam[..., :2] / cam[..., 2:] + centre
    px_per_m = f / np.linalg.norm(t, axis=1)  # at the person's distance
    noisy = true_px + rng.normal(size=true_px.shape) * (cfg.noise_height * height_m * px_per_m)[:, None, None]
    persp = {"pose_3d": np.einsum("nij,nkj->nki", ray_to_axis(t), oriented), "true_px": true_px,
             "px": np.where(mask[..., None], noisy, np.nan), "mask": mask, "torso_px": torso_m * px_per_m}  # fmt: skip

    # Orthographic, exact: the bank's projector at a random scale and offset.
    scale = rng.uniform(150.0, 450.0, n)  # px per metre
    ortho_px = oriented[..., :2] * scale[:, None, None] + rng.uniform(200, 800, (n, 1, 2))
    ortho = {"pose_3d": oriented, "true_px": ortho_px, "px": np.where(mask[..., None], ortho_px, np.nan),
             "mask": mask, "torso_px": torso_m * scale}  # fmt: skip
    return {"perspective": persp, "orthographic": ortho}


def build(data: Path, out: Path, held_out: tuple[str, str], merged: bool, views: int, fps: float) -> Path:
    """A bank without the held-out CMU subject and HDM05 actor (+ HDM05 and Pose Prior when merged)."""
    bank_dir = out / ("merged" if merged else "cmu")
    if (bank_dir / MANIFEST).exists():  # kept by --work from an earlier run with the same views and fps
        return bank_dir
    src = out / "src"
    for subject in CMU_SUBJECTS:
        if subject != held_out[0]:
            shutil.copytree(data / "cmu/subjects" / subject, src / "cmu/subjects" / subject, dirs_exist_ok=True)
    sources = [("cmu", str(src / "cmu"))]
    if merged:
        (src / "hdm05").mkdir(parents=True, exist_ok=True)
        for f in (data / "hdm05").iterdir():
            if f"_{held_out[1]}" not in f.name:
                shutil.copy(f, src / "hdm05")
        sources += [("hdm05", str(src / "hdm05")), ("poseprior", str(data / "poseprior"))]
    build_bank(BankConfig(sources=tuple(sources), out=str(bank_dir), fps=fps, view=ViewConfig(views=views), workers=2))
    return bank_dir


def score(q: dict[str, np.ndarray], pose_3d: np.ndarray, pose_2d: np.ndarray, distance: np.ndarray) -> dict[str, np.ndarray]:
    """Per-person errors of labels against the truth of queries `q`."""
    true = q["pose_3d"]
    per_joint = 1000.0 * np.linalg.norm(pose_3d - true, axis=-1)  # (N, J) mm
    aligned = 1000.0 * np.linalg.norm(rigid_align(pose_3d, true) - true, axis=-1)
    hidden = ~q["mask"]
    err_2d = np.linalg.norm(pose_2d - q["true_px"], axis=-1) / q["torso_px"][:, None]
    hidden_2d = np.where(hidden.any(1), np.where(hidden, err_2d, 0).sum(1) / np.maximum(hidden.sum(1), 1), np.nan)
    return {"mpjpe": per_joint.mean(1), "aligned": aligned.mean(1), "per_joint": per_joint,
            "per_joint_aligned": aligned, "hidden_2d": hidden_2d, "hidden_2d_per_joint": np.where(hidden, err_2d, np.nan),
            "distance": distance}  # fmt: skip


def summarise(s: dict[str, np.ndarray]) -> dict[str, object]:
    h = s["hidden_2d"][np.isfinite(s["hidden_2d"])]
    return {
        "people": int(len(s["mpjpe"])),
        "mpjpe_mm_median": float(np.median(s["mpjpe"])), "mpjpe_mm_mean": float(np.mean(s["mpjpe"])),
        "aligned_mm_median": float(np.median(s["aligned"])), "aligned_mm_mean": float(np.mean(s["aligned"])),
        "hidden_2d_torso_median": float(np.median(h)) if len(h) else None,
        "hidden_2d_torso_mean": float(np.mean(h)) if len(h) else None,
        "people_with_hidden_joints": int(len(h)),
        # Each joint's 2D error (torso units) over the people in whom it is hidden, and how many they are.
        "hidden_2d_per_joint": {n: float(np.nanmean(v)) if np.isfinite(v).any() else None
                                for n, v in zip(SK.joint_names, s["hidden_2d_per_joint"].T)},  # fmt: skip
        "hidden_per_joint_people": {n: int(np.isfinite(v).sum()) for n, v in zip(SK.joint_names, s["hidden_2d_per_joint"].T)},
        "matching_distance_median": float(np.median(s["distance"])),
        "per_joint_mm": {n: float(v) for n, v in zip(SK.joint_names, s["per_joint"].mean(0))},
        "per_joint_aligned_mm": {n: float(v) for n, v in zip(SK.joint_names, s["per_joint_aligned"].mean(0))},
        "error_estimate": estimate_quality(s["estimate"], s["aligned"]),
    }  # fmt: skip


def estimate_quality(estimate: np.ndarray, aligned: np.ndarray, worst: float = 0.1) -> dict[str, float]:
    """How well the per-person error estimate (N,) mm ranks the true aligned MPJPE (N,) mm: Spearman
    correlation, and the precision and recall of flagging the `worst` fraction by the estimate."""
    from scipy.stats import spearmanr

    n = max(1, int(round(worst * len(aligned))))
    flagged = np.argsort(-estimate, kind="stable")[:n]
    truly = np.argsort(-aligned, kind="stable")[:n]
    hit = len(np.intersect1d(flagged, truly))
    return {"spearman_aligned": float(spearmanr(estimate, aligned).statistic), "flagged": n,
            "flag_precision": hit / n,  # = recall here: as many flagged as truly worst
            "flagged_aligned_mm_median": float(np.median(aligned[flagged])),
            "estimate_mm_median": float(np.median(estimate)), "aligned_mm_median": float(np.median(aligned))}  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, object]:
    t0 = time.perf_counter()
    canon = to_canonical_2d(read_annotations("mpii", args.data / "mpii/valid_a.h5"))
    masks = canon.visible[canon.visible.sum(1) >= 3]
    poses = subject_poses(args.data, args.fps)
    rng = np.random.default_rng(args.seed)
    queries: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for name, p in poses.items():
        keep = np.unique(np.linspace(0, len(p) - 1, min(args.max_poses, len(p))).round().astype(int))
        queries[name] = make_queries(p[keep], masks, args.query_views, rng, QueryConfig())
    modes = tuple(args.modes)
    banks = ("merged", "cmu") if args.cmu_only else ("merged",)
    # scores[bank][kind][mode] = per-person arrays, concatenated over the folds' subjects
    scores: dict[str, dict[str, dict[str, list[dict[str, np.ndarray]]]]] = {}
    rows: dict[str, list[int]] = {b: [] for b in banks}
    search = SearchConfig(engine=args.engine)
    lifter_config = config_with(LifterConfig, args.lifter_option, "--lifter-option")
    label_config = config_with(LabelConfig, args.label_option, "--label-option")
    timing = {"build_s": 0.0, "search_s": 0.0, "lifter_train_s": 0.0, "labels_s": {m: 0.0 for m in modes}}
    with contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory() as tmp:
        for i, held in enumerate(FOLDS):
            for bank_name in banks:
                t = time.perf_counter()
                fold = Path(tmp) / f"fold{i}-views{args.views}-fps{args.fps:g}"
                bank = open_bank(build(args.data, fold, held, bank_name == "merged", args.views, args.fps))
                timing["build_s"] += time.perf_counter() - t
                rows[bank_name].append(bank.num_rows)
                lifter = None
                if "lifted-fit" in modes and bank_name == "merged":
                    # As annotate does: trained once per bank on the annotation's visibility patterns.
                    t = time.perf_counter()
                    lifter, _ = stored_lifter(bank, visibility_patterns(masks, 3), lifter_config)
                    timing["lifter_train_s"] += time.perf_counter() - t
                for name in (f"cmu-{held[0]}", f"hdm05-{held[1]}"):
                    for kind, q in queries[name].items():
                        t = time.perf_counter()
                        matches = search_bank(bank, q["px"], q["mask"], args.k, config=search)
                        got = gather_matches(bank, matches.rows)
                        timing["search_s"] += time.perf_counter() - t
                        for mode in modes if bank_name == "merged" else ("top1",):
                            t = time.perf_counter()
                            lifted = lifter.lift(q["px"], q["mask"]) if mode == "lifted-fit" else None
                            labels = label_poses(mode, q["px"], q["mask"], matches.distances, got, SK, label_config,
                                                 lifted=lifted)  # fmt: skip
                            pose_2d = complete_2d(q["px"], q["mask"], labels.completion_2d)
                            timing["labels_s"][mode] += time.perf_counter() - t
                            s = score(q, labels.pose_3d, pose_2d, matches.distances[:, 0])
                            s["estimate"] = labels.error_estimate_mm
                            scores.setdefault(bank_name, {}).setdefault(kind, {}).setdefault(mode, []).append(s)
    results: dict[str, object] = {
        "machine": machine_description(), "views": args.views, "fps": args.fps, "k": args.k, "seed": args.seed,
        "query_views": args.query_views, "max_poses": args.max_poses, "lifter_options": args.lifter_option,
        "label_options": args.label_option,
        "mpii_masks": int(len(masks)),
        "fraction_hidden": float(1 - masks.mean()), "bank_rows_per_fold": rows,
        "queries_per_subject": {n: int(len(q["perspective"]["mask"])) for n, q in queries.items()},
    }  # fmt: skip
    table = {}
    for bank_name, kinds in scores.items():
        for kind, by_mode in kinds.items():
            for mode, parts in by_mode.items():
                merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
                table[f"{bank_name}/{kind}/{mode}"] = summarise(merged)
    results["results"] = table
    if args.cmu_only:
        for kind in ("perspective", "orthographic"):
            a, b = table[f"cmu/{kind}/top1"], table[f"merged/{kind}/top1"]
            results[f"merged_vs_cmu_only/{kind}"] = {
                "matching_distance_reduction": 1 - b["matching_distance_median"] / a["matching_distance_median"],
                "mpjpe_reduction": 1 - b["mpjpe_mm_median"] / a["mpjpe_mm_median"],
                "aligned_reduction": 1 - b["aligned_mm_median"] / a["aligned_mm_median"],
            }
    timing["total_s"] = time.perf_counter() - t0
    results["timing"] = timing
    return results


def markdown(results: dict[str, object]) -> str:
    """The summary table (median per person) in the layout of BENCHMARKS.md."""
    lines = ["| bank | queries | label mode | MPJPE mm | aligned mm | hidden-joint 2D (torso) | match dist "
             "| estimate: Spearman | worst-10% precision |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for key, r in results["results"].items():  # type: ignore[union-attr]
        bank, kind, mode = key.split("/")
        h = r["hidden_2d_torso_median"]
        lines.append(f"| {bank} | {kind} | {mode} | {r['mpjpe_mm_median']:.0f} | {r['aligned_mm_median']:.0f} | "
                     f"{'-' if h is None else f'{h:.3f}'} | {r['matching_distance_median']:.3f} | "
                     f"{r['error_estimate']['spearman_aligned']:.2f} | {r['error_estimate']['flag_precision']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def config_with(cls: type, options: list[str], flag: str) -> Any:
    """cls() with FIELD=VALUE overrides (each value parsed as the field's default type)."""
    fields: dict[str, Any] = {}
    defaults = cls()
    for option in options:
        name, _, value = option.partition("=")
        if not hasattr(defaults, name):
            raise SystemExit(f"{flag}: {cls.__name__} has no field {name!r}")
        kind = type(getattr(defaults, name))
        fields[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return cls(**fields)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--views", type=int, default=12, help="bank views per pose")
    ap.add_argument("--fps", type=float, default=30.0, help="bank and query frame rate")
    ap.add_argument("--k", type=int, default=20, help="matches per query")
    ap.add_argument("--query-views", type=int, default=16,
                    help="random views of each held-out pose (2 in runs before 2026-12-05: noisier medians)")
    ap.add_argument("--max-poses", type=int, default=400, help="held-out poses per subject (evenly spaced)")
    ap.add_argument("--modes", nargs="+", default=list(LABEL_MODES))
    ap.add_argument("--cmu-only", action="store_true", help="also CMU-only banks (the merged-bank effect)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lifter-option", action="append", default=[], metavar="FIELD=VALUE",
                    help="a LifterConfig field for lifted-fit (repeatable), e.g. steps=1600")
    ap.add_argument("--label-option", action="append", default=[], metavar="FIELD=VALUE",
                    help="a LabelConfig field (repeatable), e.g. lifter_weight=0.5; with --work, a run takes seconds")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--work", type=Path, help="keep the folds' banks, and the lifters stored beside them, in this "
                    "folder (default: a temporary one): a later run reuses them, so label-side changes take seconds")
    args = ap.parse_args()
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "results"}, indent=2))
    print(markdown(results))


if __name__ == "__main__":
    main()
