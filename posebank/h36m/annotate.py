"""`posebank annotate h36m`: Human3.6M frames as annotation shards with their TRUE 2D and 3D poses.

No search and no pseudo ground truth: every (frame, camera) row carries the MoCap pose mapped onto
the canonical skeleton, in that camera's frame (metres, body-centred, as every annotation shard) and
in its image (pixels). The shards have the schema of `posebank annotate` (posebank.shards), so
`posebank train` and `posebank evaluate` read them as they are. The `split` column follows a
protocol (posebank.h36m.protocols): "train" / "test" rows, frames outside the protocol left out;
without a protocol the split is the subject ("S9").

Images are named in mmpose's layout (posebank.h36m.names.image_path): point --images-root at the
frames extracted that way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..boxes import pose_box
from ..config import to_dict
from ..errors import InputError, OutputConflictError
from ..progress import ProgressFactory, no_progress
from ..provenance import git_revision, package_version, sha256_bytes, sha256_file, write_json_atomic
from ..skeleton import Skeleton, body_centre, get_skeleton, upper_body_mask
from .canonical import h36m_to_canonical
from .dataset import H36MData, camera_sequences, camera_views, open_h36m
from .names import image_path, image_size
from .protocols import first_trials, get_protocol, split_of_frames
from .readers import H36MSequence

SHARDS_DIR = "annotations"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class H36MAnnotateConfig:
    """Configuration of `posebank annotate h36m`."""

    data: str = ""  # a Human3.6M copy: official tree, VideoPose3D npz, mmpose npz (file or folder)
    cameras: str | None = None  # mmpose's cameras.pkl (found beside the data when not given)
    out: str = "annotations"  # output folder: annotations/part-NNNNN.parquet, manifest.json
    skeleton: str = "j13"  # j13 | j17
    protocol: str = "none"  # none | h36m-p1 | h36m-p2 | h36m-p3: the split column (module docstring)
    train_every: int = 5  # keep every n-th frame of training rows (and of every row without a protocol)
    subjects: tuple[str, ...] = ()  # only these subjects; () = all (a protocol keeps its own subjects)
    people_per_shard: int = 50_000  # rows per Parquet file
    images_root: str | None = None  # recorded in the shards' metadata, so train finds the images

    def __post_init__(self) -> None:
        if self.train_every < 1 or self.people_per_shard < 1:
            raise ValueError(f"train_every and people_per_shard must be >= 1, got {self.train_every}, {self.people_per_shard}")
        if self.protocol != "none":
            get_protocol(self.protocol)
        get_skeleton(self.skeleton)


@dataclass
class H36MAnnotateReport:
    out: Path
    rows: dict[str, int] = field(default_factory=dict)  # per split
    sequences: int = 0
    shards_written: int = 0
    seconds: float = 0.0


@dataclass
class _Rows:
    """Columns of the rows gathered so far (flushed every people_per_shard rows)."""

    split: list[str] = field(default_factory=list)
    image: list[str] = field(default_factory=list)
    width: list[int] = field(default_factory=list)
    height: list[int] = field(default_factory=list)
    pose_2d: list[np.ndarray] = field(default_factory=list)
    pose_3d: list[np.ndarray] = field(default_factory=list)
    source_2d: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.image)


def frame_rows(
    seq: H36MSequence, skeleton: Skeleton, splits: npt.NDArray[np.object_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Canonical labels of the kept frames of one (sequence, camera).

    Returns:
        pose_2d (N, J, 2) px; pose_3d (N, J, 3) camera frame metres, centred on the body centre;
        kept (N,) indices into the sequence's frames.
    """
    if seq.camera is None or seq.pose_2d_px is None:
        raise ValueError(f"{seq.path}: annotation rows need camera-frame 3D and pixels")
    kept = np.flatnonzero(np.array([s is not None for s in splits], bool))
    pose_3d = h36m_to_canonical(seq.positions_m[kept], seq.joint_names, skeleton, path=seq.path)
    pose_3d = pose_3d - body_centre(pose_3d, skeleton)[:, None, :]
    pose_2d = h36m_to_canonical(seq.pose_2d_px[kept], seq.joint_names, skeleton, path=seq.path)
    return pose_2d, pose_3d, kept


def _identity(config: H36MAnnotateConfig, data: H36MData) -> tuple[str, list[dict[str, str]]]:
    files = list(data.files) + ([data.cameras] if data.cameras else [])
    if data.layout == "official":  # the per-camera files are the rows' source
        files += sorted(data.root.glob("*/MyPoseFeatures/D3_Positions_mono/*.cdf"))
        files += sorted(data.root.glob("*/MyPoseFeatures/D2_Positions/*.cdf"))
    inputs = [{"path": str(f), "sha256": sha256_file(f)} for f in files]
    job = {k: v for k, v in to_dict(config).items() if k not in ("out", "data", "cameras", "people_per_shard")}
    return sha256_bytes(json.dumps(job, sort_keys=True), *(i["sha256"] for i in inputs)), inputs


def _check_out(out: Path, identity: str, overwrite: bool) -> None:
    manifest = out / MANIFEST
    if manifest.is_file():
        previous = json.loads(manifest.read_text(encoding="utf-8")).get("identity")
        if previous != identity and not overwrite:
            raise OutputConflictError(f"{out} holds annotations of another job; use another --out or --overwrite")
    elif (out / SHARDS_DIR).is_dir() and not overwrite:
        from ..shards import read_metadata

        # An interrupted run of this same job left shards without a manifest: those are ours to replace.
        foreign = [f for f in (out / SHARDS_DIR).glob("*.parquet") if read_metadata(f).get("identity") != identity]
        if foreign:
            raise OutputConflictError(f"{out} holds annotation shards of another job; use another --out or --overwrite")
    for old in (out / SHARDS_DIR).glob("*.parquet") if (out / SHARDS_DIR).is_dir() else []:
        old.unlink()  # same job: rebuilt whole (a few seconds per 100k rows); another job: replaced


def annotate_h36m(
    config: H36MAnnotateConfig, *, overwrite: bool = False, progress: ProgressFactory | None = None
) -> H36MAnnotateReport:
    """Write the annotation shards of a Human3.6M copy (module docstring) into config.out.

    Raises:
        InputError: unreadable data or cameras, or no row selected.
        OutputConflictError: config.out holds another job's annotations and `overwrite` is False.
    """
    from ..shards import SOURCE_ID_COLUMNS, annotations_schema, make_table, write_table_atomic

    t0 = time.perf_counter()
    progress = progress or no_progress
    skeleton = get_skeleton(config.skeleton)
    data = open_h36m(config.data, config.cameras)
    protocol = get_protocol(config.protocol) if config.protocol != "none" else None
    subjects = config.subjects
    if protocol is not None:
        wanted = protocol.train_subjects + protocol.test_subjects
        subjects = tuple(s for s in wanted if not subjects or s in subjects)
    out = Path(config.out)
    identity, inputs = _identity(config, data)
    _check_out(out, identity, overwrite)
    report = H36MAnnotateReport(out=out)
    metadata = {
        "kind": "annotations",
        "dataset": "h36m",
        "skeleton": skeleton.name,
        "joint_names": list(skeleton.joint_names),
        "units": {"pose_2d": "px", "boxes": "px", "pose_3d": "m"},
        "frame": "pose_2d: image px, origin top-left, x right, y down; pose_3d: the row's real camera frame "
        "(x right, y down, z forward), centred on the body centre (mean of hips and shoulders)",
        "labels": "true Human3.6M MoCap poses (no matching); match columns are null",
        "layout": data.layout,
        "protocol": protocol.name if protocol else None,
        "config": {k: v for k, v in to_dict(config).items() if k != "out"},
        "identity": identity,
        "version": package_version(),
        "git_rev": git_revision(),
    }
    if config.images_root:
        metadata["images_root"] = config.images_root
    schema = annotations_schema(skeleton.num_joints)
    shards: list[dict[str, Any]] = []
    rows = _Rows()

    def flush() -> None:
        if not len(rows):
            return
        n = len(rows)
        pose_2d = np.stack(rows.pose_2d)
        full = pose_box(pose_2d)
        upper = pose_box(pose_2d, np.broadcast_to(upper_body_mask(skeleton), pose_2d.shape[:2]))
        columns = {
            "dataset": ["h36m"] * n, "split": rows.split, "image": rows.image,
            "image_width": [None if w < 0 else w for w in rows.width],
            "image_height": [None if h < 0 else h for h in rows.height],
            "person": np.zeros(n, np.int32), "pose_2d": pose_2d,
            "visible": np.ones((n, skeleton.num_joints), bool), "occluded": np.zeros((n, skeleton.num_joints), bool),
            "pose_3d": np.stack(rows.pose_3d), "match_pose_id": None, "match_view_id": None, "match_distance": None,
            "match_spread": None, "error_estimate": None, "box_full": full, "box_upper": upper, "head_box": None, "head_size": None,
            "flags": [[] for _ in range(n)], "source_pose_2d": [s.reshape(-1).tolist() for s in rows.source_2d],
            **dict.fromkeys(SOURCE_ID_COLUMNS),  # the image name holds subject, action, camera and frame
        }  # fmt: skip
        rel = f"{SHARDS_DIR}/part-{len(shards):05d}.parquet"
        write_table_atomic(make_table(schema, columns, metadata), out / rel)
        shards.append({"file": rel, "rows": n, "sha256": sha256_file(out / rel)})
        report.shards_written += 1
        for name in ("split", "image", "width", "height", "pose_2d", "pose_3d", "source_2d"):
            getattr(rows, name).clear()

    # Views are listed first (names only) and read one at a time: a whole copy does not fit in memory twice.
    views = camera_views(data, subjects)
    trial_one = first_trials({(subject, sequence) for subject, sequence, _ in views})
    for seq in progress(camera_sequences(data, subjects), "h36m sequence views", len(views)):
        assert seq.camera is not None and seq.pose_2d_px is not None
        if protocol is not None:
            splits = split_of_frames(protocol, seq.subject, seq.sequence, seq.camera, seq.frames, trial_one, config.train_every)
        else:
            splits = np.where(seq.frames % config.train_every == 0, seq.subject, None).astype(object)
        pose_2d, pose_3d, kept = frame_rows(seq, skeleton, splits)
        if not len(kept):
            continue
        report.sequences += 1
        width, height = image_size(seq.camera)
        for i, k in enumerate(kept):
            split = str(splits[k])
            report.rows[split] = report.rows.get(split, 0) + 1
            rows.split.append(split)
            rows.image.append(image_path(seq.subject, seq.sequence, seq.camera, int(seq.frames[k])))
            rows.width.append(width)
            rows.height.append(height)
            rows.pose_2d.append(pose_2d[i])
            rows.pose_3d.append(pose_3d[i])
            rows.source_2d.append(seq.pose_2d_px[k])
            if len(rows) >= config.people_per_shard:
                flush()
    flush()
    if not shards:
        raise InputError(data.root, f"no frame selected (protocol {config.protocol}, subjects {', '.join(subjects) or 'all'})")
    report.seconds = time.perf_counter() - t0
    # The inputs (up to ~2000 files of an official tree) are listed once, here, not in every shard.
    manifest = {**metadata, "inputs": inputs, "rows": report.rows, "sequences": report.sequences, "shards": shards}
    write_json_atomic(out / MANIFEST, manifest)
    return report
