"""Probe for issue 13: a lifting MLP trained on each fold's bank, as the prior of the fused-fit Gauss-Newton fit.

    .venv/bin/python bench/probe_lifter.py [--data ../shared/data] [--train-steps 1600]    # about 6 minutes

The protocol of bench/bench_pseudo_gt.py (leave one subject out, 12 views, perspective noisy queries with the
MPII visibility patterns, seed 0), perspective queries only. In each fold an MLP (3J -> 1024 -> 1024 -> 3J)
learns, from that fold's bank alone, the normalised 3D pose from the normalised masked 2D pose and its mask, in
the frame of paper eq. 9 (2D centred and scaled on the annotated joints, depth centred on them; the frame
`posebank.annotate.labels.fuse_matches` brings the matches into). Its output is then used, like the fused
matches of the `fused-fit` label mode, as the prior of `fit_to_annotation`. Prints the median MPJPE, aligned
MPJPE and hidden-joint 2D error of six labels: {fused matches, MLP, their mean} x {raw, fitted}.
Not yet a label mode: this measures whether it is worth one (BENCHMARKS.md, "Pseudo-3D labels").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_pseudo_gt as protocol  # noqa: E402 -- the sibling script: folds, queries, scoring
from posebank.annotate.complete import complete_2d  # noqa: E402
from posebank.annotate.labels import LabelConfig, fit_to_annotation, fuse_matches  # noqa: E402
from posebank.geometry import masked_centre_scale  # noqa: E402
from posebank.skeleton import body_centre  # noqa: E402

SK = protocol.SK
J = SK.num_joints


def normalised_input(pose_2d: npt.NDArray, mask: npt.NDArray) -> tuple[npt.NDArray, npt.NDArray, npt.NDArray]:
    """(N, 3J) network input (masked 2D in the eq. 9 frame, zero where hidden, then the mask), centre (N, 2), scale (N,)."""
    centre, scale = masked_centre_scale(pose_2d, mask)
    scale = np.maximum(scale, 1e-9)
    x = np.where(mask[..., None], (pose_2d - centre[:, None]) / scale[:, None, None], 0.0)
    return np.concatenate([x.reshape(len(x), -1), mask.astype(np.float64)], axis=1), centre, scale


def normalised_target(pose_3d: npt.NDArray, mask: npt.NDArray, centre: npt.NDArray, scale: npt.NDArray) -> npt.NDArray:
    """(N, 3J) the 3D pose (camera frame, m) in the same frame: x, y as the 2D, depth centred on the masked joints."""
    z = pose_3d[..., 2] - np.where(mask, pose_3d[..., 2], 0.0).sum(1, keepdims=True) / np.maximum(mask.sum(1, keepdims=True), 1)
    xy = (pose_3d[..., :2] - centre[:, None]) / scale[:, None, None]
    return np.concatenate([xy, (z / scale[:, None])[..., None]], axis=-1).reshape(len(pose_3d), -1)


def train_lifter(bank_2d: npt.NDArray, bank_3d: npt.NDArray, masks: npt.NDArray, steps: int) -> torch.nn.Module:
    """An MLP trained for `steps` batches of 512 on bank rows (N, J, 2) m / (N, J, 3) m, each batch with fresh MPII masks
    and 2D noise of 1% of the pose's height."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(3 * J, 1024), torch.nn.ReLU(), torch.nn.Dropout(0.2),
        torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(1024, 3 * J),
    )  # fmt: skip
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4, fused=True)
    start = time.perf_counter()
    for _ in range(steps):
        rows = rng.integers(0, len(bank_2d), 512)
        mask = masks[rng.integers(0, len(masks), 512)]
        height = np.ptp(bank_2d[rows, :, 1], axis=1)
        noisy = bank_2d[rows] + rng.normal(size=(512, J, 2)) * 0.01 * height[:, None, None]
        inp, centre, scale = normalised_input(noisy, mask)
        target = normalised_target(bank_3d[rows], mask, centre, scale)
        loss = (net(torch.tensor(inp, dtype=torch.float32)) - torch.tensor(target, dtype=torch.float32)).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"# lifter: {steps} steps in {time.perf_counter() - start:.0f} s, last L1 {loss.item():.4f}", file=sys.stderr, flush=True)
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--train-steps", type=int, default=1600, help="batches of 512 (about 60 s on 2 cores)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    canon = protocol.to_canonical_2d(protocol.read_annotations("mpii", args.data / "mpii/valid_a.h5"))
    masks = canon.visible[canon.visible.sum(1) >= 3]
    poses = protocol.subject_poses(args.data, 30.0)
    rng = np.random.default_rng(0)
    queries = {}
    for name, p in poses.items():
        keep = np.unique(np.linspace(0, len(p) - 1, min(400, len(p))).round().astype(int))
        queries[name] = protocol.make_queries(p[keep], masks, 2, rng, protocol.QueryConfig())["perspective"]
    cfg = LabelConfig()
    scores: dict[str, list[dict[str, npt.NDArray]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, held in enumerate(protocol.FOLDS):
            bank = protocol.open_bank(protocol.build(args.data, Path(tmp) / f"fold{i}", held, True, 12, 30.0))
            batches = list(bank.iter_poses(columns=("pose_2d", "pose_3d"), batch_size=1 << 20))
            bank_2d = np.concatenate([b["pose_2d"] for b in batches]).reshape(-1, J, 2).astype(np.float64)
            bank_3d = np.concatenate([b["pose_3d"] for b in batches]).reshape(-1, J, 3).astype(np.float64)
            lifter = train_lifter(bank_2d, bank_3d, masks, args.train_steps)
            for name in (f"cmu-{held[0]}", f"hdm05-{held[1]}"):
                q = queries[name]
                matches = protocol.search_bank(bank, q["px"], q["mask"], 20, config=protocol.SearchConfig(engine="blas"))
                got = protocol.gather_matches(bank, matches.rows)
                d = matches.distances
                fused = fuse_matches(q["px"], q["mask"], d, got, SK, cfg.temperature)
                with torch.no_grad():
                    inp = torch.tensor(normalised_input(np.nan_to_num(q["px"]), q["mask"])[0], dtype=torch.float32)
                    lifted = lifter(inp).double().numpy().reshape(-1, J, 3)
                for prior_name, prior in {"fused matches": fused.pose, "MLP": lifted, "mean of the two": 0.5 * (fused.pose + lifted)}.items():
                    for fitted in (False, True):
                        x = prior
                        if fitted:
                            x = fit_to_annotation(prior, fused.query, q["mask"], fused.bone_lengths, SK, sigma_2d=cfg.sigma_2d,
                                                  sigma_bone=cfg.sigma_bone, sigma_prior=cfg.sigma_prior, iterations=cfg.iterations)  # fmt: skip
                        pose_3d = x * fused.size_m[:, None, None]
                        pose_3d = pose_3d - body_centre(pose_3d, SK)[:, None]
                        pose_2d = complete_2d(q["px"], q["mask"], pose_3d[..., :2])
                        key = f"{prior_name}, {'fitted' if fitted else 'no fit'}"
                        scores.setdefault(key, []).append(protocol.score(q, pose_3d, pose_2d, d[:, 0]))
    print("| prior of the fit | MPJPE mm | aligned mm | hidden-joint 2D (torso) | people |")
    print("|---|---|---|---|---|")
    for key, parts in scores.items():
        mpjpe = np.concatenate([p["mpjpe"] for p in parts])
        aligned_mm = np.concatenate([p["aligned"] for p in parts])
        hidden = np.concatenate([p["hidden_2d"] for p in parts])
        hidden = hidden[np.isfinite(hidden)]
        print(f"| {key} | {np.median(mpjpe):.1f} | {np.median(aligned_mm):.1f} | {np.median(hidden):.3f} | {len(mpjpe)} |")


if __name__ == "__main__":
    main()
