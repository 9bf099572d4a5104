"""`posebank synth`: bank poses -> rendered multi-person images + annotation shards, resumable.

Layout of `out`:
    images/SSSSS/IIIIIIII.jpg         image I of shard S (the `image` column is relative to images/)
    annotations/part-SSSSS.parquet    one row per person, posebank.shards.annotations_schema
    manifest.json                     config, bank digest, shards with rows and sha256
    preview.png                       optional contact sheet

Image i is a pure function of (bank, config, i): its scene is drawn from a generator seeded by
(seed, i, 0) and its background from (seed, i, 1). So a rerun skips images already on disk (writes
are atomic: a file that exists is complete) and shards whose key matches, and the worker count
changes nothing. Labels come from the scene alone (posebank.synth.render.label_scene), so a shard
is rebuilt from images on disk without drawing them again.

The main process draws scenes, labels them and writes shards; worker processes render, encode and
write the images.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..progress import ProgressFactory, no_progress
from ..bank import MANIFEST as BANK_MANIFEST
from ..bank import open_bank
from ..boxes import pose_box
from ..errors import InputError
from ..jobs import JobSpec, OutputFolder
from ..provenance import git_revision, package_version, sha256_bytes, sha256_file
from ..skeleton import Skeleton, upper_body_mask
from .body import HEAD_SIZE_M, BodyModel, body_model
from .config import SynthConfig
from .render import Labels, label_scene
from .scene import Scene, sample_scene

LOG = logging.getLogger(__name__)
IMAGES_DIR = "images"
ANNOTATIONS_DIR = "annotations"
MANIFEST = "manifest.json"
PREVIEW_FILE = "preview.png"
TRUNCATED = "truncated"



@dataclass
class SynthReport:
    """What a run did. `seconds` has "setup", "render" (images and shards) and "total"."""

    out: Path
    images: int = 0
    images_rendered: int = 0
    images_reused: int = 0
    shards_written: int = 0
    shards_reused: int = 0
    people: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    preview: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        """Rendered images per second of the render stage (0 when nothing was rendered)."""
        s = self.seconds.get("render", 0.0)
        return self.images_rendered / s if self.images_rendered and s > 0 else 0.0


def image_rngs(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The generators of image `index`: (scene, background). They depend on nothing else."""
    return np.random.default_rng([seed, index, 0]), np.random.default_rng([seed, index, 1])


def image_split(index: int, val_fraction: float) -> str:
    """"val" or "train": image i is in val when floor((i + 1) f) > floor(i f), so any first n images
    hold floor(n f) val images exactly. Images are independent draws, so the regular pattern is no bias."""
    return "val" if np.floor((index + 1) * val_fraction) > np.floor(index * val_fraction) else "train"


def image_path(index: int, config: SynthConfig) -> str:
    """Path of image `index` relative to the images root: <shard>/<index>.<ext>."""
    return f"{index // config.images_per_shard:05d}/{index:08d}.{config.image_format}"


def shard_path(shard: int) -> str:
    """Path of annotation shard `shard` relative to `out`."""
    return f"{ANNOTATIONS_DIR}/part-{shard:05d}.parquet"


# --- worker processes: render, encode and write images -------------------------------------------


def configure_render_process() -> None:
    """Per worker process: one BLAS thread (the images are the parallelism), and glibc malloc that
    keeps freed memory: numpy's frame-sized temporaries otherwise go back to the kernel and fault
    in again on every image, which costs more than the drawing itself in a VM."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: serve large blocks from the heap
        libc.mallopt(-1, 1 << 31)  # M_TRIM_THRESHOLD: do not give the heap back
    except (OSError, AttributeError):
        pass


def encode_image(image: npt.NDArray[np.uint8], path: Path, image_format: str, jpeg_quality: int) -> None:
    """Write an (H, W, 3) uint8 RGB image atomically (Pillow; JPEG without chroma subsampling tricks)."""
    from PIL import Image

    from ..provenance import atomic_path

    with atomic_path(path) as tmp:
        if image_format == "jpg":
            Image.fromarray(image).save(tmp, format="JPEG", quality=jpeg_quality)
        else:
            Image.fromarray(image).save(tmp, format="PNG", compress_level=1)


def _render_task(args: tuple[Scene, BodyModel, int, int, str, str, int]) -> None:
    from .backgrounds import make_background
    from .render import render_scene

    scene, body, seed, index, path, image_format, quality = args
    background = make_background(image_rngs(seed, index)[1], scene.height, scene.width)
    encode_image(render_scene(scene, body, background).image, Path(path), image_format, quality)


# --- annotation rows --------------------------------------------------------------------------------


@dataclass
class _ShardRows:
    """Columns of one shard, accumulated image by image (P people of J joints each)."""

    split: list[str] = field(default_factory=list)
    image: list[str] = field(default_factory=list)
    person: list[int] = field(default_factory=list)
    pose_2d: list[npt.NDArray[np.float64]] = field(default_factory=list)  # (P, J, 2) px
    visible: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    occluded: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    pose_3d: list[npt.NDArray[np.float32]] = field(default_factory=list)
    head_size: list[npt.NDArray[np.float64]] = field(default_factory=list)  # (P,) px
    flags: list[list[str]] = field(default_factory=list)

    def add(self, split: str, image: str, scene: Scene, labels: Labels) -> None:
        p = scene.num_people
        self.split += [split] * p
        self.image += [image] * p
        self.person += list(range(p))
        self.pose_2d.append(labels.poses_2d)
        self.visible.append(labels.visible)
        self.occluded.append(labels.occluded)
        self.pose_3d.append(scene.poses_3d)
        self.head_size.append(HEAD_SIZE_M * scene.scales)  # the true PCKh normaliser of each drawn body
        self.flags += [[TRUNCATED] if not labels.inside[k].all() else [] for k in range(p)]


def _shard_table(rows: _ShardRows, config: SynthConfig, skeleton: Skeleton, metadata: dict[str, Any]) -> Any:
    from ..shards import SOURCE_ID_COLUMNS, annotations_schema, make_table

    j = skeleton.num_joints
    n = len(rows.person)
    pose_2d = np.concatenate(rows.pose_2d) if n else np.zeros((0, j, 2))
    upper = upper_body_mask(skeleton)
    width, height = config.size
    columns = {
        "dataset": ["synth"] * n,
        "split": rows.split,
        "image": rows.image,
        "image_width": np.full(n, width),
        "image_height": np.full(n, height),
        "person": rows.person,
        "pose_2d": pose_2d,
        "visible": np.concatenate(rows.visible) if n else np.zeros((0, j), bool),
        "occluded": np.concatenate(rows.occluded) if n else np.zeros((0, j), bool),
        "pose_3d": np.concatenate(rows.pose_3d) if n else np.zeros((0, j, 3)),
        "match_pose_id": None,
        "match_view_id": None,
        "match_distance": None,
        "match_spread": None,
        "error_estimate": None,
        "box_full": pose_box(pose_2d),
        "box_upper": pose_box(pose_2d, np.broadcast_to(upper, pose_2d.shape[:2])),
        "head_box": None,
        "head_size": np.concatenate(rows.head_size) if n else np.zeros(0),
        "flags": rows.flags,
        "source_pose_2d": None,
        **dict.fromkeys(SOURCE_ID_COLUMNS),  # rendered people: no source to join back to
    }
    return make_table(annotations_schema(j), columns, metadata)


def _shard_metadata(
    config: SynthConfig, skeleton: Skeleton, bank_root: Path, bank_sha: str, key: str, git_rev: str
) -> dict[str, Any]:
    return {
        "kind": "annotations",
        "dataset": "synth",
        "skeleton": skeleton.name,
        "joint_names": list(skeleton.joint_names),
        "units": {"pose_2d": "px", "boxes": "px", "pose_3d": "m"},
        "frame": "pose_2d: image px, origin at the top-left, x right, y down, pixel (row r, column c) "
        "centred at (c, r); pose_3d: the bank's camera frame (x right, y down, z forward), origin at "
        "the body centre; pose_2d = scale * pose_3d[:, :2] + offset (orthographic per person)",
        "images_root": IMAGES_DIR,
        "config": config.content(),
        "version": package_version(),
        "git_rev": git_rev,
        "bank": str(bank_root),
        "bank_manifest_sha256": bank_sha,
        "shard_key": key,
    }


# --- the job -------------------------------------------------------------------------------------------


def _shard_done(job: OutputFolder, rel: str, key: str) -> bool:
    """A shard whose bytes verify against the journal and whose content key matches."""
    from ..shards import read_metadata

    return job.reusable(rel) and read_metadata(job.path(rel)).get("shard_key") == key


def _remove_beyond(job: OutputFolder, config: SynthConfig, num_shards: int) -> None:
    """Delete shards and images past `config.images`, left by an earlier run that asked for more."""
    out = job.out
    shards = {f"{ANNOTATIONS_DIR}/{f.name}" for f in (out / ANNOTATIONS_DIR).glob("part-*.parquet")}
    shards |= {f for f in job.files if f.startswith(f"{ANNOTATIONS_DIR}/")}
    wanted = {shard_path(s) for s in range(num_shards)}
    job.forget(sorted(shards - wanted))
    images_root = out / IMAGES_DIR
    if not images_root.is_dir():
        return
    for d in images_root.iterdir():
        if d.is_dir() and d.name.isdigit() and int(d.name) >= num_shards:
            shutil.rmtree(d)
        elif d.is_dir() and d.name.isdigit():
            for f in d.glob(f"*.{config.image_format}"):
                if f.stem.isdigit() and int(f.stem) >= config.images:
                    f.unlink()


def _shard_entry(job: OutputFolder, rel: str, images: int) -> dict[str, Any]:
    from ..shards import num_rows

    recorded = job.entry(rel)
    return {"file": rel, "rows": num_rows(job.path(rel)), "images": images,
            "sha256": recorded["sha256"], "bytes": recorded["bytes"]}  # fmt: skip


def synthesize(
    config: SynthConfig,
    bank_path: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    preview: int = 0,
    progress: ProgressFactory | None = None,
) -> SynthReport:
    """Render (or resume) `config.images` synthetic images of bank poses with their annotations.

    Args:
        config: image count and size, people per image, scales, truncation, seed, ...
        bank_path: a bank folder written by `posebank build-bank`.
        out: output folder (layout in the module docstring).
        overwrite: replace an `out` that holds another job's output.
        preview: write out/preview.png, a contact sheet of the first `preview` images (0: none).
        progress: wraps the image loop (iterable, description, total) -> iterator; None for silence.

    Returns:
        A SynthReport (out/manifest.json holds the same and more).

    Raises:
        InputError: not a bank, or an empty one.
        OutputConflictError: `out` holds another job's output and `overwrite` is False.
        ValueError: a config field out of range.
    """
    config.check()
    progress = progress or no_progress
    t0 = time.perf_counter()
    out = Path(out)
    report = SynthReport(out=out, images=config.images)
    bank = open_bank(bank_path)
    bank_sha = sha256_file(bank.root / BANK_MANIFEST)
    # The content key of the shards, in their metadata: unchanged, so the same job gives the same bytes.
    identity = sha256_bytes(json.dumps(config.job_identity(), sort_keys=True), bank_sha)
    spec = JobSpec("synth", config.job_identity(), {f"bank {BANK_MANIFEST}": bank_sha},
                   outputs=(IMAGES_DIR, ANNOTATIONS_DIR, PREVIEW_FILE))  # fmt: skip
    with OutputFolder(out, spec, overwrite=overwrite) as job:
        _synthesize(job, config, bank, bank_sha, identity, report, preview, progress, t0)
    report.seconds["total"] = time.perf_counter() - t0
    return report


class _InThisProcess:
    """The executor of --workers 0: renders each image in this process, as the pool's map is consumed."""

    def map(self, fn: Callable[..., Any], items: Iterable[Any], chunksize: int = 1) -> Iterator[Any]:
        return map(fn, items)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _synthesize(
    job: OutputFolder, config: SynthConfig, bank: Any, bank_sha: str, identity: str, report: SynthReport,
    preview: int, progress: ProgressFactory, t0: float,
) -> None:  # fmt: skip
    """The job in its opened output folder: render the missing images, write shards and the manifest."""
    out = job.out
    skeleton = bank.skeleton
    (pool,) = bank.poses(columns=("pose_3d",))
    if len(pool) == 0:
        raise InputError(bank.root, "the bank has no poses")
    body = body_model(skeleton)
    git_rev = git_revision()
    num_shards = -(-config.images // config.images_per_shard)
    images_root = out / IMAGES_DIR

    def indices(shard: int) -> range:
        return range(shard * config.images_per_shard, min((shard + 1) * config.images_per_shard, config.images))

    def key(shard: int) -> str:  # shards record the image count: a run that extends an output rewrites
        return sha256_bytes(identity, str(shard), str(config.images))  # them (cheap: labels need no drawing)

    done = [
        _shard_done(job, shard_path(s), key(s)) and all((images_root / image_path(i, config)).is_file() for i in indices(s))
        for s in range(num_shards)
    ]
    todo = [s for s in range(num_shards) if not done[s]]
    missing = {s: [i for i in indices(s) if not (images_root / image_path(i, config)).is_file()] for s in todo}
    report.seconds["setup"] = time.perf_counter() - t0

    def run(executor: Any) -> Iterator[None]:
        from ..shards import write_table

        for s in todo:
            scenes = {i: sample_scene(image_rngs(config.seed, i)[0], pool, config) for i in indices(s)}
            tasks = [(scenes[i], body, config.seed, i, str(images_root / image_path(i, config)), config.image_format,
                      config.jpeg_quality) for i in missing[s]]  # fmt: skip
            rendering = executor.map(_render_task, tasks, chunksize=4)  # starts the workers now ...
            rows = _ShardRows()
            for i in indices(s):  # ... while this process labels the scenes
                rows.add(image_split(i, config.val_fraction), image_path(i, config), scenes[i],
                         label_scene(scenes[i], body))  # fmt: skip
            for _ in rendering:
                yield
            meta = _shard_metadata(config, skeleton, bank.root, bank_sha, key(s), git_rev)
            table = _shard_table(rows, config, skeleton, meta)
            job.write(shard_path(s), lambda tmp: write_table(table, tmp))
            report.shards_written += 1

    t = time.perf_counter()
    total = sum(len(m) for m in missing.values())
    if todo:
        executor: Any = (_InThisProcess() if config.workers == 0
                         else ProcessPoolExecutor(max_workers=config.workers, initializer=configure_render_process))  # fmt: skip
        try:
            for _ in progress(run(executor), "rendering images", total):
                pass
        finally:  # on Ctrl-C or SIGTERM, images not started are dropped (a rerun draws them), not rendered
            executor.shutdown(wait=True, cancel_futures=True)
    report.images_rendered = total
    report.images_reused = config.images - total
    report.shards_reused = num_shards - len(todo)
    report.seconds["render"] = time.perf_counter() - t

    shards = [_shard_entry(job, shard_path(s), len(indices(s))) for s in range(num_shards)]
    _remove_beyond(job, config, num_shards)
    report.people = sum(e["rows"] for e in shards)
    # The split indicators telescope: images 0..n-1 hold floor(n f) val images (see image_split).
    val = int(np.floor(config.images * config.val_fraction))
    report.splits = {"train": config.images - val, "val": val}
    job.finish(_manifest(config, bank, bank_sha, identity, git_rev, int(len(pool)), report, shards))
    if preview > 0 and config.images > 0:
        from .preview import write_contact_sheet

        report.preview = write_contact_sheet(out, count=preview)


def _manifest(
    config: SynthConfig, bank: Any, bank_sha: str, identity: str, git_rev: str, bank_rows: int, report: SynthReport,
    shards: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """manifest.json of a finished run."""
    return {
        "kind": "synth",
        "version": package_version(),
        "git_rev": git_rev,
        "schema_version": 1,
        "skeleton": {"name": bank.skeleton.name, "joint_names": list(bank.skeleton.joint_names)},
        "config": config.content(),
        "workers": config.workers,
        "identity": identity,
        "bank": {"path": str(bank.root), "manifest_sha256": bank_sha, "rows": bank_rows},
        "images_root": IMAGES_DIR,
        "images": config.images,
        "people": report.people,
        "splits": report.splits,
        "shards": shards,
    }
