"""`posebank build-bank`: MoCap folders -> canonical poses -> dedup -> random views -> Parquet shards.

Stages, each resumable:
1. per motion file (parallel over --workers): read, map onto the canonical skeleton, resample to
   --fps, centre on the body centre; cached in <out>/.cache keyed by the file digests and the config;
2. per source: deduplicate in 3D (posebank.bank.dedup) and give every kept pose a stable pose_id;
3. per shard: draw the views, orient and project, write <out>/shards/<source>-NNNNN.parquet; a shard
   whose key (config + content) matches the file on disk is not written again.
Then <out>/manifest.json records config, inputs with sha256, what was skipped and why, statistics and
every shard with its rows and sha256.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..config import SOURCES, BankConfig, to_dict, to_json
from ..errors import InputError
from ..jobs import JobSpec, OutputFolder
from ..mocap.sources import DiscoveryProblem, MotionJob, discover
from ..parts import part_range
from ..progress import ProgressFactory, no_progress
from ..provenance import atomic_path, git_revision, package_version, sha256_bytes, sha256_file
from ..skeleton import Skeleton, get_skeleton
from . import SHARDS_DIR
from .canonical import CanonicalPoses, canonical_poses
from .dedup import deduplicate
from .views import Views, draw_views, hash_ids, project_views

LOG = logging.getLogger(__name__)
CACHE_DIR = ".cache"  # scratch: valid for any job (keyed by content), kept by --overwrite
# Bump when the per-file output changes meaning, so old caches are not reused.
_CACHE_VERSION = 1


@dataclass
class BuildReport:
    """What a build did: counts per source, skipped files, shards written or reused, seconds."""

    out: Path
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    shards_written: int = 0
    shards_reused: int = 0
    shards_damaged: int = 0  # on disk with other bytes than recorded: rebuilt (counted in shards_written)
    temp_files_removed: int = 0  # left by an interrupted run
    part: tuple[int, int] | None = None  # --part I/N: only this slice of the motion files was read (into .cache)
    files_read: int = 0  # motion jobs read in this run (the others came from .cache)
    files_in_part: int = 0
    rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Input:
    job: MotionJob
    sha256: tuple[str, ...]  # one per path of the job

    @property
    def key(self) -> str:
        # A file holding many sequences (a Human3.6M npz) gives one job per sequence: `member` tells them apart.
        return sha256_bytes(self.job.source, *self.sha256, *((self.job.member,) if self.job.member else ()))


def _hash_inputs(jobs: list[MotionJob]) -> list[_Input]:
    digests: dict[str, str] = {}
    out = []
    for job in jobs:
        for p in job.paths:
            if p not in digests:
                digests[p] = sha256_file(p)
        out.append(_Input(job, tuple(digests[p] for p in job.paths)))
    return out


def _job_spec(config: BankConfig, inputs: list[_Input]) -> JobSpec:
    """The output-folder identity: the config (all but --out and --workers) and every input file's sha256."""
    files = {f"{i.job.source}:{p}": h for i in inputs for p, h in zip(i.job.paths, i.sha256)}
    return JobSpec("bank", config.job_identity(), files, outputs=(SHARDS_DIR,))


def _cache_path(out: Path, item: _Input, config: BankConfig) -> Path:
    parts = [item.key, config.skeleton, repr(float(config.fps)), str(_CACHE_VERSION)]
    if item.job.source == "poseprior" and config.poseprior_thorax:
        parts.append("thorax")  # the raw release keeps the key it had before the option
    key = sha256_bytes(*parts)[:20]
    return out / CACHE_DIR / item.job.source / f"{item.job.sequence}-{key}.npz"


def _load_cached(path: Path, job: MotionJob) -> CanonicalPoses | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return CanonicalPoses(job, z["poses_m"], z["frames"], float(z["fps"]))
    except (OSError, ValueError, KeyError):
        LOG.warning("ignoring an unreadable cache file %s", path)
        return None


def _save_cached(path: Path, poses: CanonicalPoses) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, poses_m=poses.poses_m, frames=poses.frames, fps=np.float64(poses.fps))


def _read_one(args: tuple[MotionJob, str, float, bool]) -> CanonicalPoses | InputError:
    job, skeleton_name, fps, poseprior_thorax = args
    try:
        return canonical_poses(job, get_skeleton(skeleton_name), fps, poseprior_thorax=poseprior_thorax)
    except InputError as e:  # returned, not raised: the parent decides (fail or --skip-bad)
        return e


def _read_all(
    inputs: list[_Input], config: BankConfig, out: Path, progress: ProgressFactory
) -> tuple[dict[str, CanonicalPoses], list[dict[str, str]]]:
    """Stage 1. Returns canonical poses by input key, and the skipped files with their reasons."""
    results: dict[str, CanonicalPoses] = {}
    todo = []
    for item in inputs:
        cached = _load_cached(_cache_path(out, item, config), item.job)
        if cached is None:
            todo.append(item)
        else:
            results[item.key] = cached
    skipped: list[dict[str, str]] = []
    args = [(item.job, config.skeleton, config.fps, config.poseprior_thorax) for item in todo]
    if config.workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=config.workers) as pool:
            outcomes: Iterable[CanonicalPoses | InputError] = list(
                progress(pool.map(_read_one, args, chunksize=1), "reading motions", len(todo))
            )
    else:
        outcomes = progress(map(_read_one, args), "reading motions", len(todo))
    # outcomes first: zip then asks it once more after the last file, so the bar reaches its total
    for outcome, item in zip(outcomes, todo):
        if isinstance(outcome, InputError):
            if not config.skip_bad:
                raise outcome
            LOG.warning("skipping %s", outcome)
            skipped.append({"path": str(outcome.path), "reason": str(outcome)})
            continue
        _save_cached(_cache_path(out, item, config), outcome)
        results[item.key] = outcome
    return results, skipped


@dataclass(frozen=True)
class _SourcePoses:
    """The kept poses of one source, in build order."""

    source: str
    poses_m: npt.NDArray[np.float32]  # (P, J, 3) world, body-centred
    pose_ids: npt.NDArray[np.int64]  # (P,)
    subjects: npt.NDArray[np.object_]  # (P,)
    sequences: npt.NDArray[np.object_]  # (P,)
    frames: npt.NDArray[np.int32]  # (P,)
    inputs: list[_Input]


def _cached_keep_mask(
    out: Path, source: str, keys: list[str], all_poses: npt.NDArray[np.float32], skeleton: Skeleton, dedup_mm: float,
    progress: ProgressFactory = no_progress,
) -> npt.NDArray[np.bool_]:
    """Deduplicate, or reuse the keep-mask of an earlier run on the same inputs and threshold."""
    key = sha256_bytes(source, skeleton.name, repr(float(dedup_mm)), str(_CACHE_VERSION), *keys)[:20]
    path = out / CACHE_DIR / f"dedup-{source}-{key}.npy"
    if path.is_file():
        try:
            keep = np.load(path)
        except (OSError, ValueError):  # a damaged cache file is recomputed, never trusted
            keep = None
        if keep is not None and keep.shape == (len(all_poses),) and keep.dtype == np.bool_:
            return keep
    keep = deduplicate(all_poses, skeleton, dedup_mm, progress=progress, description=f"deduplicating {source}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, keep)
    return keep


def _dedup_source(
    source: str, items: list[_Input], poses: dict[str, CanonicalPoses], skeleton: Skeleton, config: BankConfig,
    progress: ProgressFactory = no_progress,
) -> tuple[_SourcePoses, dict[str, int]]:
    """Stage 2 for one source: concatenate in (subject, sequence) order, deduplicate, assign pose ids."""
    items = sorted((i for i in items if i.key in poses), key=lambda i: (i.job.subject, i.job.sequence, i.job.paths))
    j = skeleton.num_joints
    arrays = [poses[i.key].poses_m for i in items] or [np.zeros((0, j, 3), np.float32)]
    all_poses = np.concatenate(arrays)
    lengths = [len(poses[i.key].frames) for i in items]
    all_frames = np.concatenate([poses[i.key].frames for i in items]) if items else np.zeros(0, np.int32)
    seq_index = np.repeat(np.arange(len(items)), lengths)
    # The cache key includes --fps through each input's cache entry (the poses are resampled).
    keys = [_cache_path(Path(config.out), i, config).name for i in items]
    keep = _cached_keep_mask(Path(config.out), source, keys, all_poses, skeleton, config.dedup_mm, progress)
    labels = [f"{source}/{i.job.subject}/{i.job.sequence}" for i in items]
    kept_seq = seq_index[keep]
    pose_ids = hash_ids(labels, all_frames[keep], label_index=kept_seq)
    if len(np.unique(pose_ids)) != len(pose_ids):  # 63-bit hashes: a collision means duplicated sequences
        raise InputError(items[0].job.paths[-1], f"{source}: two poses share a pose_id (duplicated sequence names?)")
    subjects = np.array([i.job.subject for i in items], dtype=object)
    sequences = np.array([i.job.sequence for i in items], dtype=object)
    kept = _SourcePoses(
        source, all_poses[keep], pose_ids, subjects[kept_seq], sequences[kept_seq], all_frames[keep], items
    )
    stats = {"sequences": len(items), "poses": int(len(all_poses)), "kept": int(keep.sum())}
    return kept, stats


def _shard_metadata(config: BankConfig, skeleton: Skeleton, shard_key: str, inputs: list[_Input]) -> dict[str, Any]:
    return {
        "kind": "bank",
        "skeleton": skeleton.name,
        "joint_names": list(skeleton.joint_names),
        "units": "m",
        "frame": "camera: x right, y down, z forward; origin at the body centre (mean of hips and shoulders)",
        "pose_2d": "orthographic projection (x, y) of pose_3d, metres",
        # The job's identity, not the whole config: --out and --workers do not change the content,
        # so they stay out of the file and identical jobs give byte-identical shards.
        "config": config.job_identity(),
        "version": package_version(),
        "git_rev": git_revision(),
        "shard_key": shard_key,
        "inputs": [{"paths": list(i.job.paths), "sha256": list(i.sha256)} for i in inputs],
    }


def _shard_table(part: _SourcePoses, sl: slice, config: BankConfig, skeleton: Skeleton, metadata: dict[str, Any]) -> Any:
    from ..shards import bank_schema, make_table

    views: Views = draw_views(config.seed, part.pose_ids[sl], config.view)
    pose_3d, pose_2d = project_views(part.poses_m[sl], views)
    p, v = views.azimuth_deg.shape
    rep = lambda a: np.repeat(a, v)  # noqa: E731 -- rows are pose-major: (pose 0, view 0..V-1), ...
    columns = {
        "pose_id": rep(part.pose_ids[sl]),
        "view_id": np.tile(np.arange(v, dtype=np.int32), p),
        "source": [part.source] * (p * v),
        "subject": rep(part.subjects[sl]).tolist(),
        "sequence": rep(part.sequences[sl]).tolist(),
        "frame": rep(part.frames[sl]),
        "azimuth_deg": views.azimuth_deg.reshape(-1),
        "elevation_deg": views.elevation_deg.reshape(-1),
        "roll_deg": views.roll_deg.reshape(-1),
        "pose_3d": pose_3d,
        "pose_2d": pose_2d,
    }
    return make_table(bank_schema(skeleton.num_joints), columns, metadata)


def _write_shards(
    parts: list[_SourcePoses], config: BankConfig, skeleton: Skeleton, job: OutputFolder, progress: ProgressFactory,
    report: BuildReport,
) -> list[dict[str, Any]]:  # fmt: skip
    """Stage 3: write every shard, or reuse one whose bytes verify against the journal and whose
    content key matches; return the manifest's shard list."""
    from ..shards import read_metadata, write_table

    identity = to_json(config.job_identity())
    plan = []
    for part in parts:
        for index, start in enumerate(range(0, len(part.pose_ids), config.poses_per_shard)):
            plan.append((part, index, slice(start, start + config.poses_per_shard)))
    shards = []
    for part, index, sl in progress(plan, f"drawing {config.view.views} views per pose, writing shards", len(plan)):
        rel = f"{SHARDS_DIR}/{part.source}-{index:05d}.parquet"
        shard_key = sha256_bytes(identity, part.pose_ids[sl].tobytes(), part.poses_m[sl].tobytes())
        damaged = len(job.damaged)
        if job.reusable(rel) and read_metadata(job.path(rel)).get("shard_key") == shard_key:
            report.shards_reused += 1
            entry = job.entry(rel)
        else:
            used = sorted(set(part.sequences[sl]))
            inputs = [i for i in part.inputs if i.job.sequence in used]
            table = _shard_table(part, sl, config, skeleton, _shard_metadata(config, skeleton, shard_key, inputs))
            entry = job.write(rel, lambda tmp: write_table(table, tmp))
            report.shards_written += 1
        report.shards_damaged += len(job.damaged) - damaged
        rows = len(part.pose_ids[sl]) * config.view.views
        shards.append({"file": rel, "source": part.source, "rows": rows, "sha256": entry["sha256"],
                       "bytes": entry["bytes"]})  # fmt: skip
    wanted = {s["file"] for s in shards}
    # Shards of other content, left by an interrupted build (on disk or only in the journal).
    on_disk = {f"{SHARDS_DIR}/{f.name}" for f in job.path(SHARDS_DIR).glob("*.parquet")}
    job.forget(sorted((on_disk | {f for f in job.files if f.startswith(f"{SHARDS_DIR}/")}) - wanted))
    return shards


def build_bank(
    config: BankConfig, *, overwrite: bool = False, progress: ProgressFactory | None = None,
    part: tuple[int, int] | None = None,
) -> BuildReport:  # fmt: skip
    """Build (or resume) the projection bank described by `config` into `config.out`.

    Args:
        config: sources, skeleton, fps, dedup threshold, views, seed, ...
        overwrite: replace an --out that holds another job's bank.
        progress: wraps the long loops (iterable, description, total) -> iterator; None for silence.
        part: (I, N): read only the I-th of N slices of the motion files (posebank.parts) into
            <out>/.cache and stop. Deduplication compares every pose of a source with every other, so
            it cannot be split by file: after the N parts (in parallel, on any machines sharing --out),
            one run without `part` finds every file read, deduplicates and writes the bank, the same
            bank as one run alone. The cache is keyed by content, so parts need no lock and no journal.

    Returns:
        A BuildReport (the manifest.json written in `config.out` holds the same and more).

    Raises:
        InputError: a bad or missing input (unless config.skip_bad, for unreadable motion files).
        OutputConflictError: `config.out` holds another job's bank and `overwrite` is False.
    """
    progress = progress or no_progress
    if not config.sources:
        raise ValueError("no --source given")
    for source, _ in config.sources:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")
    if config.view.views < 1:
        raise ValueError("--views must be at least 1")
    skeleton = get_skeleton(config.skeleton)
    out = Path(config.out)
    report = BuildReport(out=out)
    t0 = time.perf_counter()

    jobs: list[MotionJob] = []
    problems: list[DiscoveryProblem] = []
    for source, root in config.sources:
        found, unusable = discover(source, root)
        if config.subjects:
            found = [j for j in found if j.subject in config.subjects]
            if not found:
                raise InputError(root, f"{source}: no motions of subjects {', '.join(config.subjects)}")
        jobs += found
        problems += unusable
    if problems and not config.skip_bad:
        first = problems[0]
        raise InputError(first.path, f"{first.reason} ({len(problems)} such file(s); --skip-bad to go on without)")
    inputs = _hash_inputs(jobs)
    if part is not None:
        return _read_part(config, inputs, part, progress, report, t0)
    with OutputFolder(out, _job_spec(config, inputs), overwrite=overwrite) as job:
        report.temp_files_removed = len(job.removed_temp)
        report.seconds["discover_and_hash"] = time.perf_counter() - t0
        report.skipped = [{"path": p.path, "reason": p.reason} for p in problems]
        manifest = _build(job, config, skeleton, inputs, report, progress)
        job.finish(manifest)
    report.seconds["total"] = time.perf_counter() - t0
    return report


def _read_part(
    config: BankConfig, inputs: list[_Input], part: tuple[int, int], progress: ProgressFactory, report: BuildReport,
    t0: float,
) -> BuildReport:  # fmt: skip
    """build_bank(part=...): stage 1 for the part's slice of the inputs (in the order of a whole run)."""
    mine = [inputs[i] for i in part_range(len(inputs), part)]
    out = Path(config.out)
    cached = sum(_cache_path(out, item, config).is_file() for item in mine)
    _, skipped = _read_all(mine, config, out, progress)
    report.part, report.files_in_part, report.files_read = part, len(mine), len(mine) - cached
    report.skipped = skipped
    report.seconds["total"] = time.perf_counter() - t0
    return report


def _build(
    job: OutputFolder, config: BankConfig, skeleton: Skeleton, inputs: list[_Input], report: BuildReport,
    progress: ProgressFactory,
) -> dict[str, Any]:  # fmt: skip
    """Stages 1-3 into an opened output folder; returns the manifest."""
    t = time.perf_counter()
    report.files_read = sum(not _cache_path(job.out, item, config).is_file() for item in inputs)
    poses, skipped = _read_all(inputs, config, job.out, progress)
    report.skipped += skipped
    report.seconds["read"] = time.perf_counter() - t

    t = time.perf_counter()
    parts = []
    for source in dict.fromkeys(s for s, _ in config.sources):
        part, stats = _dedup_source(source, [i for i in inputs if i.job.source == source], poses, skeleton, config, progress)
        parts.append(part)
        report.stats[source] = stats
    report.seconds["dedup"] = time.perf_counter() - t

    t = time.perf_counter()
    shards = _write_shards(parts, config, skeleton, job, progress, report)
    report.rows = sum(s["rows"] for s in shards)
    report.seconds["views_and_write"] = time.perf_counter() - t

    read_ok = {i.key for i in inputs} & set(poses)
    return {
        "kind": "bank",
        "version": package_version(),
        "git_rev": git_revision(),
        "schema_version": 1,
        "skeleton": {"name": skeleton.name, "joint_names": list(skeleton.joint_names)},
        "units": "m",
        "config": to_dict(config),
        # The bank's content identity (config and input digests), as before the output-folder
        # journal existed: synth and annotate record this manifest's sha256, so it must not change.
        "identity": sha256_bytes(to_json(config.job_identity()), *sorted(i.key for i in inputs)),
        "inputs": [
            {"source": i.job.source, "subject": i.job.subject, "sequence": i.job.sequence,
             "files": [{"path": p, "sha256": h} for p, h in zip(i.job.paths, i.sha256)],
             "frames_kept_after_resampling": int(len(poses[i.key].frames)) if i.key in read_ok else None}
            for i in inputs
        ],  # fmt: skip
        "skipped": report.skipped,
        "stats": report.stats,
        "rows": report.rows,
        "shards": shards,
    }

