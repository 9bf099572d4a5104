"""`posebank anchors`: sample the bank, run K-means, write anchors.parquet, manifest.json and the
LCR-Net release export (anchors_lcrnet.npy)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..bank import MANIFEST, Bank, open_bank
from ..config import to_dict
from ..errors import InputError
from ..jobs import MANIFEST as JOB_MANIFEST
from ..jobs import JobSpec, OutputFolder
from ..progress import ProgressFactory, Steps, no_progress
from ..provenance import git_revision, package_version, sha256_file
from . import AnchorConfig, AnchorSet, assign_classes, finalise_clusters, kmeans, make_anchor_set, resolve_engine, to_lcrnet_layout

ANCHORS_FILE = "anchors.parquet"
LCRNET_FILE = "anchors_lcrnet.npy"


@dataclass
class AnchorReport:
    out: Path
    anchors: AnchorSet
    engine: str
    points: int
    inertia: float
    seconds: dict[str, float] = field(default_factory=dict)
    reused: bool = False


def sample_poses(bank: Bank, sample: int, seed: int) -> npt.NDArray[np.float32]:
    """(N, J, 3) oriented 3D poses: `sample` bank rows drawn without replacement (all when 0 or more)."""
    n = bank.num_rows
    if sample <= 0 or sample >= n:
        (poses,) = bank.poses(columns=("pose_3d",))
        return poses
    rows = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    parts, start = [], 0
    for batch in bank.iter_poses(columns=("pose_3d",)):
        stop = start + len(batch["pose_3d"])
        lo, hi = np.searchsorted(rows, [start, stop])
        parts.append(batch["pose_3d"][rows[lo:hi] - start])
        start = stop
    return np.concatenate(parts)


def _job_spec(config: AnchorConfig, engine: str, bank_sha: str) -> JobSpec:
    """Every setting that changes the anchors, the engine as resolved (faiss, torch and numpy K-means
    do not give the same centres), and the bank by content (its manifest holds every shard's sha256)."""
    settings = {k: v for k, v in to_dict(config).items() if k not in ("out", "bank")}
    settings["engine"] = engine
    return JobSpec("anchors", settings, {f"bank {MANIFEST}": bank_sha}, outputs=(ANCHORS_FILE, LCRNET_FILE))


def build_anchors(config: AnchorConfig, *, overwrite: bool = False, progress: ProgressFactory | None = None) -> AnchorReport:
    """Fit K anchor-poses on a bank and write them to `config.out`; `progress` shows its stages.

    Raises:
        InputError: not a bank, or fewer bank rows than anchors.
        OutputConflictError: `config.out` holds anchors of another job and `overwrite` is False.
    """
    t0 = time.perf_counter()
    bank = open_bank(config.bank)
    out = Path(config.out)
    if bank.num_rows < config.k:
        raise InputError(bank.root, f"the bank has {bank.num_rows} rows, fewer than --k {config.k}")
    engine = resolve_engine(config.engine)
    spec = _job_spec(config, engine, sha256_file(bank.root / MANIFEST))
    with OutputFolder(out, spec, overwrite=overwrite) as job:
        done = (job.path(JOB_MANIFEST).is_file() and job.reusable(ANCHORS_FILE) and job.reusable(LCRNET_FILE))
        if done:  # same bank and settings, files intact: nothing to do
            return AnchorReport(out, load_anchors(job.path(ANCHORS_FILE)), engine, 0, float("nan"), reused=True)
        report = _fit(job, config, bank, engine, t0, progress or no_progress)
    return report


def _fit(job: OutputFolder, config: AnchorConfig, bank: Bank, engine: str, t0: float, progress: ProgressFactory) -> AnchorReport:
    """K-means, then anchors.parquet, anchors_lcrnet.npy and manifest.json in an opened output folder."""
    from ..shards import anchors_schema, make_table, write_table

    steps = Steps(progress, "anchors", ("sampling the bank", f"K-means ({engine})", "classes", "writing"))
    skeleton = bank.skeleton
    poses = sample_poses(bank, config.sample, config.seed)
    steps.done()
    j = skeleton.num_joints
    points = poses.reshape(len(poses), j * 3).astype(np.float32)
    t_fit = time.perf_counter()
    centres, stats = kmeans(points, config.k, niter=config.niter, seed=config.seed, engine=engine)
    centres, assign, members = finalise_clusters(points, centres)
    inertia = float(((points - centres[assign]) ** 2).sum())
    seconds = {"kmeans": time.perf_counter() - t_fit}
    anchors = make_anchor_set(centres.reshape(config.k, j, 3), members, skeleton)
    steps.done()
    labels = assign_classes(poses, anchors.pose_3d, engine="torch" if engine == "torch" else "numpy")
    class_counts = np.bincount(labels, minlength=config.k)
    steps.done()

    metadata: dict[str, Any] = {
        "kind": "anchors",
        "skeleton": skeleton.name,
        "joint_names": list(skeleton.joint_names),
        "units": "m",
        "frame": "camera: x right, y down, z forward; body-centred",
        "pose_2d": "orthographic projection normalised to [0,1] in the joints' box (+10% margin); "
        "pose_2d_upper in the box of the upper-body joints",
        "config": {k: v for k, v in to_dict(config).items() if k != "out"},  # same job, same bytes anywhere
        "identity": job.spec.identity,
        "bank_manifest_sha256": job.spec.inputs[f"bank {MANIFEST}"],
        "version": package_version(),
        "git_rev": git_revision(),
    }
    k = config.k
    columns = {"anchor_id": np.arange(k), "pose_3d": anchors.pose_3d, "pose_2d_full": anchors.pose_2d_full,
               "pose_2d_upper": anchors.pose_2d_upper, "members": anchors.members}  # fmt: skip
    table = make_table(anchors_schema(j), columns, metadata)
    job.write(ANCHORS_FILE, lambda tmp: write_table(table, tmp))

    def save_release(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, to_lcrnet_layout(anchors))

    job.write(LCRNET_FILE, save_release)
    seconds["total"] = time.perf_counter() - t0
    manifest = {
        **metadata,
        "engine": engine,
        "points": int(len(points)),
        "inertia_m2": inertia,
        "iteration_stats": stats,
        "members": anchors.members.tolist(),
        "nearest_anchor_counts": class_counts.tolist(),
        "files": [{"file": n, "sha256": job.entry(n)["sha256"]} for n in (ANCHORS_FILE, LCRNET_FILE)],
    }
    job.finish(manifest)
    steps.done()
    return AnchorReport(job.out, anchors, engine, len(points), inertia, seconds)


def load_anchors(path: str | Path) -> AnchorSet:
    """Read anchors.parquet (or a folder holding it) back into an AnchorSet, checked against the
    manifest beside it (sha256) and for finite, plausible values.

    Raises:
        InputError: no such file, or a damaged one (named).
    """
    from ..shards import read_table, to_numpy
    from ..verify import check_output_files, check_table_values

    path = Path(path)
    if path.is_dir():
        path = path / ANCHORS_FILE
    if not path.is_file():
        raise InputError(path, "no anchors file (run `posebank anchors` first)")
    check_output_files([path], sha256=True)  # one small file: always hashed
    try:
        table = read_table(path)
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot read it as Parquet ({err})") from None
    check_table_values(table, path)
    j = table.schema.field("pose_3d").type.list_size // 3
    return AnchorSet(
        to_numpy(table.column("pose_3d"), (j, 3)),
        to_numpy(table.column("pose_2d_full"), (j, 2)),
        to_numpy(table.column("pose_2d_upper"), (j, 2)),
        table.column("members").to_numpy().astype(np.int64),
    )
