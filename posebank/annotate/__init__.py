"""`posebank annotate mpii|lsp|coco`: complete partial 2D annotations and add pseudo-3D poses
(paper section 3.7) by masked nearest-neighbour search in a bank.

For each person: map the annotation onto the bank's canonical skeleton (manifests), search the bank
with the annotated joints as mask (eq. 9), complete the missing 2D joints from the best match, take
its 3D pose as pseudo ground truth, and check left/right: the same joints with their left and right
labels exchanged are matched too, and a much better match flags a likely swapped annotation (the
paper names such swaps as a cause of failure). People with fewer than `min_joints` annotated joints
are kept, unmatched, with a flag. Output: annotation shards (docs/design.md) and manifest.json.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..arrow_arrays import Nullable
from ..bank import MANIFEST, Bank, open_bank
from ..boxes import pose_box
from ..config import to_dict
from ..errors import InputError
from ..jobs import JobSpec, OutputFolder
from ..progress import ProgressFactory, no_progress
from ..provenance import git_revision, package_version, sha256_bytes, sha256_file
from ..parts import part_range
from ..search import SearchConfig, resolve_engine
from ..search.blas_engine import cpu_threads
from ..skeleton import Skeleton, upper_body_mask
from .complete import complete_2d, masked_centre_scale, match_spread
from .labels import DEFAULT_LABEL_MODE, LABEL_MODES, label_poses_in_threads
from .lifter import Lifted, Lifter, LifterConfig, lifter_key, load_lifter, stored_lifter, visibility_patterns
from .matching import BankRows, QuerySet, block_rows_for_memory, gather_matches, open_bank_rows, search_bank_sets

LOG = logging.getLogger(__name__)
SHARDS_DIR = "annotations"

FLAG_TOO_FEW = "too_few_joints"
FLAG_DEGENERATE = "degenerate_query"
FLAG_SWAP = "left_right_swap"


@dataclass(frozen=True)
class AnnotateConfig:
    """Configuration of `posebank annotate`."""

    dataset: str = "mpii"  # mpii | lsp | coco
    annotation_file: str = ""  # the dataset's annotation file (.mat, .json, .h5)
    bank: str = ""  # bank folder (build-bank's --out)
    out: str = "annotations"  # output folder: annotations/part-NNNNN.parquet, manifest.json
    engine: str = "auto"  # search engine: auto | numpy | blas | torch | faiss | faiss-ivf
    k: int = 20  # matches kept per person (fused-fit and topk-mean labels, spread, error estimate)
    label_mode: str = DEFAULT_LABEL_MODE  # fused-fit | lifted-fit | top1 (the paper) | topk-mean | depth-transfer
    lifter: LifterConfig = LifterConfig()  # lifted-fit's network (trained once per bank and dataset, stored)
    min_joints: int = 3  # fewer annotated joints: kept, flagged, not matched
    swap_ratio: float = 0.7  # flag left/right swap when the swapped labels match within this x the distance
    people_per_shard: int = 50_000  # people per Parquet file (and per resumable unit of work)
    images_root: str | None = None  # images folder (for image sizes where the annotation lacks them)
    split: str | None = None  # split of every row, overriding the file's (None: the reader's, see datasets2d)
    bank_block_rows: int | None = None  # bank rows read and searched at a time; None: as many as memory_gb allows
    memory_gb: float = 8.0  # bounds the bank side of the search (blocks streamed; faiss-ivf: one stored index per block)
    part: tuple[int, int] | None = None  # (I, N): only the I-th of N slices of the shards (posebank.parts); None: all
    seed: int = 0  # seeds the approximate engine (faiss-ivf); exact engines are deterministic


@dataclass
class AnnotateReport:
    out: Path
    people: int = 0  # in this run's shards (all of the file's people unless config.part is set)
    matched: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    shards_written: int = 0
    shards_reused: int = 0
    engine: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Labels:
    """Labels of Q people (matched or not), everything the annotation shard needs but provenance."""

    pose_2d: npt.NDArray[np.float64]  # (Q, J, 2) px, completed
    pose_3d: npt.NDArray[np.float64]  # (Q, J, 3) m, NaN for unmatched people
    match_pose_id: npt.NDArray[np.int64]  # (Q,), -1 unmatched
    match_view_id: npt.NDArray[np.int32]
    match_distance: npt.NDArray[np.float32]  # (Q,), NaN unmatched
    match_spread: npt.NDArray[np.float32]
    error_estimate: npt.NDArray[np.float32]  # (Q,) mm, expected 3D error of the label (NaN unmatched)
    swapped_distance: npt.NDArray[np.float32]  # (Q,) best distance with left/right labels exchanged
    flags: list[list[str]]


@dataclass(frozen=True)
class PeopleMatches:
    """The bank matches of Q people (search only; labels come from them in label_people).

    Attributes:
        distances: (Q, k) float32, best first; inf for people not matched (too few joints, degenerate).
        rows: (Q, k) int64 global bank rows; -1 where not matched.
        mirrored: (Q,) float32 best distance with the left and right labels exchanged; NaN where not matched.
    """

    distances: npt.NDArray[np.float32]
    rows: npt.NDArray[np.int64]
    mirrored: npt.NDArray[np.float32]

    def subset(self, rows: slice | npt.NDArray[np.intp]) -> PeopleMatches:
        return PeopleMatches(self.distances[rows], self.rows[rows], self.mirrored[rows])


def _matchable(pose_2d: npt.NDArray[np.floating], visible: npt.NDArray[np.bool_], min_joints: int) -> tuple[np.ndarray, np.ndarray]:
    """(too_few, degenerate), both (Q,) bool: people who are not matched, and why."""
    _, scale = masked_centre_scale(pose_2d, visible)
    too_few = visible.sum(1) < min_joints
    return too_few, ~too_few & (scale <= 1e-6)


def match_people(
    bank: Bank,
    pose_2d: npt.NDArray[np.floating],
    visible: npt.NDArray[np.bool_],
    *,
    k: int = 20,
    min_joints: int = 3,
    search: SearchConfig | None = None,
    bank_block_rows: int | None = None,
    memory_gb: float = 8.0,
    progress: ProgressFactory | None = None,
    content_sha256: str | None = None,
) -> PeopleMatches:
    """Search the bank for people, and for the same people with left and right exchanged, in one pass
    over the bank (each block read and prepared once; matching.search_bank_sets).

    Args: as label_people; bank_block_rows None: blocks sized by memory_gb (the bank side of the search);
        content_sha256: the bank's content identity for the stored faiss-ivf index (None: its manifest's).
    """
    q = len(visible)
    k = max(1, min(k, bank.num_rows))
    too_few, degenerate = _matchable(pose_2d, visible, min_joints)
    matchable = np.flatnonzero(~too_few & ~degenerate)
    distances = np.full((q, k), np.inf, np.float32)
    rows = np.full((q, k), -1, np.int64)
    mirrored = np.full(q, np.nan, np.float32)
    if len(matchable):
        query, mask = pose_2d[matchable], visible[matchable]
        flip = list(bank.skeleton.flip_permutation)
        found, swapped = search_bank_sets(
            bank, [QuerySet(query, mask, k), QuerySet(query[:, flip], mask[:, flip], 1, check=True)], config=search,
            block_rows=bank_block_rows, memory_bytes=memory_gb * 2**30, progress=progress, content_sha256=content_sha256,
            description=f"searching {len(query)} people x2 (mirrored)",
        )  # fmt: skip
        distances[matchable], rows[matchable] = found.distances, found.rows
        mirrored[matchable] = swapped.distances[:, 0]
    return PeopleMatches(distances, rows, mirrored)


def label_people(
    bank: Bank,
    pose_2d: npt.NDArray[np.floating],
    visible: npt.NDArray[np.bool_],
    *,
    k: int = 20,
    label_mode: str = DEFAULT_LABEL_MODE,
    min_joints: int = 3,
    swap_ratio: float = 0.7,
    search: SearchConfig | None = None,
    bank_block_rows: int | None = None,
    memory_gb: float = 8.0,
    progress: ProgressFactory | None = None,
    matches: PeopleMatches | None = None,
    bank_rows: BankRows | None = None,
    lifter: Lifter | None = None,
    lifted: Lifted | None = None,
) -> Labels:
    """Match people against the bank and derive their labels (array level; no files written).

    Args:
        bank: the bank (its skeleton is the people's).
        pose_2d: (Q, J, 2) px on the bank's canonical skeleton; NaN where not visible.
        visible: (Q, J) bool, the annotated joints (the query masks).
        k: matches per person; label_mode: one of posebank.annotate.labels.LABEL_MODES.
        min_joints: people with fewer visible joints are not matched (flagged).
        swap_ratio: flag FLAG_SWAP when the left/right-exchanged query matches below swap_ratio x distance.
        bank_block_rows, memory_gb: bank rows searched at a time; None: as many as memory_gb allows.
        matches: these people's match_people result, when already searched (annotate searches every
            pending shard's people in one pass); None: searched here.
        bank_rows: matching.open_bank_rows(bank), to gather the matched rows from the bank's stored
            table (annotate opens it once per run); None: from the shards.
        lifter: lifted-fit's network (annotate trains or loads it once per run, on the whole
            dataset's visibility patterns); None: lifter.stored_lifter on these people's patterns.
        lifted: lifter.lift of these people (Q rows; annotate lifts them while the bank is searched);
            None: lifted here.
    """
    if label_mode not in LABEL_MODES:
        raise ValueError(f"unknown label mode {label_mode!r}; choose from {', '.join(LABEL_MODES)}")
    skeleton: Skeleton = bank.skeleton
    q, j = visible.shape
    too_few, degenerate = _matchable(pose_2d, visible, min_joints)
    matchable = np.flatnonzero(~too_few & ~degenerate)
    flags: list[list[str]] = [[] for _ in range(q)]
    for i in np.flatnonzero(too_few):
        flags[i].append(FLAG_TOO_FEW)
    for i in np.flatnonzero(degenerate):
        flags[i].append(FLAG_DEGENERATE)
    if matches is None and len(matchable):
        matches = match_people(bank, pose_2d, visible, k=k, min_joints=min_joints, search=search,
                               bank_block_rows=bank_block_rows, memory_gb=memory_gb, progress=progress)  # fmt: skip

    out_2d = np.array(pose_2d, dtype=np.float64)
    out_3d = np.full((q, j, 3), np.nan)
    pose_id = np.full(q, -1, np.int64)
    view_id = np.full(q, -1, np.int32)
    dist = np.full(q, np.nan, np.float32)
    spread = np.full(q, np.nan, np.float32)
    estimate = np.full(q, np.nan, np.float32)
    swapped = np.full(q, np.nan, np.float32)
    if len(matchable):
        query, mask = pose_2d[matchable], visible[matchable]
        found = matches.subset(matchable)
        got = gather_matches(bank, found.rows, bank_rows)
        if label_mode != "lifted-fit":
            lifted = None
        else:
            if lifted is None:  # every person of the call, as annotate's background lift: the same float32 products
                if lifter is None:
                    lifter, _ = stored_lifter(bank, visibility_patterns(visible, min_joints), bank_rows=bank_rows)
                lifted = lifter.lift(pose_2d, visible)
            lifted = lifted.subset(matchable)
        labelled = label_poses_in_threads(cpu_threads(search.threads if search else None), label_mode, query, mask,
                                          found.distances, got, skeleton, lifted=lifted)  # fmt: skip
        out_2d[matchable] = complete_2d(query, mask, labelled.completion_2d)
        out_3d[matchable] = labelled.pose_3d
        estimate[matchable] = labelled.error_estimate_mm
        pose_id[matchable] = got.pose_id[:, 0]
        view_id[matchable] = got.view_id[:, 0]
        dist[matchable] = found.distances[:, 0]
        spread[matchable] = match_spread(got.pose_3d)
        swapped[matchable] = found.mirrored
        for i, d, ds in zip(matchable, found.distances[:, 0], found.mirrored):
            if ds < swap_ratio * d:
                flags[i].append(FLAG_SWAP)
    return Labels(out_2d, out_3d, pose_id, view_id, dist, spread, estimate, swapped, flags)


def boxes(pose_2d: npt.NDArray[np.floating], visible: npt.NDArray[np.bool_], skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Full-body and upper-body boxes (Q, 4) px with the 10% margin, from the completed joints (from
    the visible ones only where the pose could not be completed)."""
    finite = np.isfinite(pose_2d).all(-1)
    use = np.where(finite.all(1, keepdims=True), finite, visible & finite)
    upper = use & upper_body_mask(skeleton)
    xy = np.where(use[..., None], pose_2d, 0.0)
    full_box = np.where(use.any(1, keepdims=True), pose_box(xy, use), np.nan)
    upper_box = np.where(upper.any(1, keepdims=True), pose_box(xy, upper), np.nan)
    return full_box, upper_box


def _block_rows(config: AnnotateConfig, engine: str, num_joints: int, num_rows: int) -> int:
    """Bank rows per search block: config.bank_block_rows, else what config.memory_gb allows (at most the bank)."""
    rows = config.bank_block_rows or block_rows_for_memory(config.memory_gb * 2**30, num_joints, engine)
    return max(1, min(rows, num_rows))


def _job_spec(config: AnnotateConfig, engine: str, bank_sha: str, annotation_sha: str, num_joints: int,
              num_rows: int, *, splits: list[str]) -> JobSpec:  # fmt: skip
    """Every setting that changes the labels, with the engine as resolved (auto picks by machine, and
    an approximate engine gives other matches), and the two inputs by content: the bank's manifest
    (which holds every shard's sha256) and the annotation file. Paths, --out and the block size
    and the memory budget (memory only, for exact engines) stay out, so a moved job still resumes.
    `splits` (the split names of the rows) is there too: a split read from the file's name (valid.h5)
    changes with a rename that leaves the content's sha256 alone, and shards of other splits must not
    be reused."""
    skip = ("out", "bank", "annotation_file", "bank_block_rows", "memory_gb")
    if config.label_mode != "lifted-fit":
        skip += ("lifter",)  # its settings change only that mode's labels
    settings = {k: v for k, v in to_dict(config).items() if k not in skip}
    settings["engine"] = engine
    settings["splits"] = splits
    if engine == "faiss-ivf":  # one index per bank block: the block size changes approximate matches
        settings["ivf_block_rows"] = _block_rows(config, engine, num_joints, num_rows)
        search = SearchConfig(engine=engine)  # the index and probe settings annotate searches with
        settings["ivf"] = {k: v for k, v in search.to_dict().items() if k.startswith("ivf_")}
    return JobSpec("annotations", settings, {f"bank {MANIFEST}": bank_sha, "annotation file": annotation_sha},
                   outputs=(SHARDS_DIR,))  # fmt: skip


def annotate(config: AnnotateConfig, *, overwrite: bool = False, progress: ProgressFactory | None = None) -> AnnotateReport:
    """Annotate a 2D dataset against a bank and write the shards (resumable per shard).

    Raises:
        InputError: unreadable annotation file or bank.
        OutputConflictError: `config.out` holds another job's annotations and `overwrite` is False.
    """
    from ..datasets2d import read_annotations, to_canonical_2d

    t0 = time.perf_counter()
    progress = progress or no_progress
    bank = open_bank(config.bank)
    skeleton = bank.skeleton
    path = Path(config.annotation_file)
    if not path.is_file():
        raise InputError(path, "no such annotation file")
    annotation_sha = sha256_file(path)
    options: dict[str, Any] = {}
    if config.images_root:
        options["images_root"] = Path(config.images_root)
    people = read_annotations(config.dataset, path, **options)
    if len(people) == 0:
        raise InputError(path, f"holds no people ({people.source_format}): nothing to annotate")
    if config.split:  # --split overrides what the file (MPII img_train, LSP halves) or its name says
        people = dataclasses.replace(people, split=np.full(len(people), config.split))
    canon = to_canonical_2d(people, skeleton.name)

    out = Path(config.out)
    search = SearchConfig(engine=config.engine, seed=config.seed)
    report = AnnotateReport(out=out, people=len(people), engine=resolve_engine(config.engine))
    bank_sha = sha256_file(bank.root / MANIFEST)
    spec = _job_spec(config, report.engine, bank_sha, annotation_sha, skeleton.num_joints, bank.num_rows,
                     splits=sorted(set(people.split.tolist())))  # fmt: skip
    with OutputFolder(out, spec, overwrite=overwrite) as job:
        manifest = _annotate(job, config, bank, people, canon, search, report, progress)
        job.finish(manifest)
    report.seconds = time.perf_counter() - t0
    return report


def _annotate(
    job: OutputFolder, config: AnnotateConfig, bank: Bank, people: Any, canon: Any, search: SearchConfig,
    report: AnnotateReport, progress: ProgressFactory,
) -> dict[str, Any]:  # fmt: skip
    """Label every shard that does not verify on disk; returns the manifest."""
    from ..shards import annotations_schema, make_table, read_metadata, write_table

    skeleton = bank.skeleton
    path = Path(config.annotation_file)
    identity = job.spec.identity
    metadata_base = {
        "kind": "annotations",
        "dataset": config.dataset,
        "skeleton": skeleton.name,
        "joint_names": list(skeleton.joint_names),
        "source_joint_names": list(people.joint_names),
        "units": {"pose_2d": "px (the source's pixel convention)", "boxes": "px", "pose_3d": "m"},
        "frame": "pose_2d: image px, origin top-left, x right, y down; pose_3d: the matched bank view's "
        "camera frame (x right, y down, z forward), body-centred",
        # Without --out, so that the same job written elsewhere gives the same bytes.
        "config": {k: v for k, v in to_dict(config).items() if k != "out"},
        "identity": identity,
        "bank_manifest_sha256": job.spec.inputs[f"bank {MANIFEST}"],
        "annotation_file": {"path": str(path), "sha256": job.spec.inputs["annotation file"],
                            "format": people.source_format},
        "version": package_version(),
        "git_rev": git_revision(),
    }
    # Trained on the whole file's visibility patterns, not this part's: every --part gets the same network.
    patterns = visibility_patterns(canon.visible, config.min_joints)
    if config.label_mode == "lifted-fit":  # the network's identity (stored_lifter trains or loads it by this key)
        key = lifter_key(job.spec.inputs[f"bank {MANIFEST}"], patterns, config.lifter)
        metadata_base["lifter"] = {"key": key, "folder": f"<bank>/.index/lifter-{key}"}
    if config.images_root:
        # The folder the `image` paths are relative to: train/evaluate find each --data's images by it,
        # so MPII, LSP and COCO shards with their own image folders train together without --images-root.
        metadata_base["images_root"] = str(Path(config.images_root).resolve())
    shards, flag_counts, distances = [], Counter(), []
    starts = list(range(0, len(people), config.people_per_shard)) or [0]
    plan = []  # (global shard index, people slice, file, key, reusable) of this part's shards
    for index in part_range(len(starts), config.part):
        sl = slice(starts[index], min(starts[index] + config.people_per_shard, len(people)))
        rel = f"{SHARDS_DIR}/part-{index:05d}.parquet"
        key = sha256_bytes(identity, str(sl.start), str(starts[index] + config.people_per_shard))
        reuse = job.reusable(rel) and read_metadata(job.path(rel)).get("shard_key") == key
        plan.append((index, sl, rel, key, reuse))
    pending = [(sl, rel, key) for _, sl, rel, key, reuse in plan if not reuse]
    report.people = sum(sl.stop - sl.start for _, sl, *_ in plan)
    # Every pending shard's people are searched in one pass over the bank (each block read and
    # prepared once, a faiss-ivf index loaded once), then labelled and written shard by shard.
    rows = np.concatenate([np.arange(sl.start, sl.stop) for sl, _, _ in pending]) if pending else np.zeros(0, int)
    bank_rows = open_bank_rows(bank, job.spec.inputs[f"bank {MANIFEST}"]) if len(rows) else None
    lifted_fit = len(rows) and config.label_mode == "lifted-fit"
    # A stored network is loaded now; one to train is trained after the search, so that the search's memory
    # peak (a faiss-ivf index build) does not meet torch's.
    lifter = load_lifter(bank, patterns, config.lifter, content_sha256=job.spec.inputs[f"bank {MANIFEST}"]) \
        if lifted_fit else None  # fmt: skip
    with ThreadPoolExecutor(max_workers=1) as background:
        # The network's poses need the annotations alone: lifted while the bank is searched, whose threads
        # leave part of the CPUs idle (0.04 s of a 1 s run, BENCHMARKS.md). Shard by shard, as a --part run
        # lifts them: float32 products may round differently when the people around a person change.
        lifting = background.submit(lambda: [lifter.lift(canon.pose_2d[sl], canon.visible[sl]) for sl, _, _ in pending]) \
            if lifter else None  # fmt: skip
        if len(rows):
            matches = match_people(
                bank, canon.pose_2d[rows], canon.visible[rows], k=config.k, min_joints=config.min_joints, search=search,
                bank_block_rows=_block_rows(config, report.engine, skeleton.num_joints, bank.num_rows),
                progress=progress, content_sha256=job.spec.inputs[f"bank {MANIFEST}"],
            )  # fmt: skip
        lifted = iter(lifting.result()) if lifting else None
    if lifted_fit and lifter is None:  # lifted shard by shard in label_people
        lifter, _ = stored_lifter(bank, patterns, config.lifter,
                                  content_sha256=job.spec.inputs[f"bank {MANIFEST}"], bank_rows=bank_rows,
                                  progress=progress)  # fmt: skip
    offset = 0
    for sl, rel, key in progress(pending, f"labelling {len(rows)} people: shards", len(pending)):
        count = sl.stop - sl.start
        labels = label_people(
            bank, canon.pose_2d[sl], canon.visible[sl], k=config.k, label_mode=config.label_mode,
            min_joints=config.min_joints, swap_ratio=config.swap_ratio, search=search,
            matches=matches.subset(slice(offset, offset + count)), bank_rows=bank_rows, lifter=lifter,
            lifted=next(lifted) if lifted else None,
        )  # fmt: skip
        offset += count
        table = make_table(annotations_schema(skeleton.num_joints),
                           _columns(people, canon, labels, sl, skeleton), {**metadata_base, "shard_key": key})  # fmt: skip
        job.write(rel, lambda tmp: write_table(table, tmp))
    for _, sl, rel, key, reuse in plan:
        target = job.path(rel)
        if reuse:
            report.shards_reused += 1
        else:
            report.shards_written += 1
        meta_rows = _shard_summary(target)
        flag_counts.update(meta_rows["flags"])
        distances.append(meta_rows["distances"])
        shards.append({"file": rel, "rows": meta_rows["rows"], "sha256": job.entry(rel)["sha256"]})
    wanted = {e["file"] for e in shards}
    on_disk = {f"{SHARDS_DIR}/{f.name}" for f in job.path(SHARDS_DIR).glob("*.parquet")}
    job.forget(sorted(on_disk - wanted))  # shards of more people, from an earlier run of other settings
    dist = np.concatenate(distances) if distances else np.zeros(0)
    report.matched = int(np.isfinite(dist).sum())
    report.flags = dict(flag_counts)
    return {
        **metadata_base,
        "engine": report.engine,
        "people": report.people,
        "part": list(config.part) if config.part else None,
        "matched": report.matched,
        "flags": report.flags,
        "match_distance": _quantiles(dist[np.isfinite(dist)]),
        "shards": shards,
    }


def _columns(people: Any, canon: Any, labels: Labels, sl: slice, skeleton: Skeleton) -> dict[str, Any]:
    full_box, upper_box = boxes(labels.pose_2d, canon.visible[sl], skeleton)
    head = people.head_box[sl]
    source = people.source_pose_2d[sl].reshape(len(labels.flags), -1)
    return {
        "dataset": [people.dataset] * len(labels.flags),
        "split": people.split[sl].tolist(),
        "image": people.image[sl].tolist(),
        "image_width": Nullable(people.image_width[sl], people.image_width[sl] >= 0),
        "image_height": Nullable(people.image_height[sl], people.image_height[sl] >= 0),
        "person": people.person[sl],
        "pose_2d": labels.pose_2d,
        "visible": canon.visible[sl],
        "occluded": canon.occluded[sl],
        "pose_3d": _null_where_nan(labels.pose_3d),
        "match_pose_id": Nullable(labels.match_pose_id, labels.match_pose_id >= 0),
        "match_view_id": Nullable(labels.match_view_id, labels.match_view_id >= 0),
        "match_distance": _null_where_nan(labels.match_distance),
        "match_spread": _null_where_nan(labels.match_spread),
        "error_estimate": _null_where_nan(labels.error_estimate),
        "box_full": full_box,
        "box_upper": upper_box,
        "head_box": _null_where_nan(head),
        "head_size": _null_where_nan(people.head_size[sl]),
        "flags": labels.flags,
        "source_pose_2d": source,
        **_source_id_columns(people, sl),
    }


def _source_id_columns(people: Any, sl: slice) -> dict[str, Any]:
    """posebank.shards.SOURCE_ID_COLUMNS of the people in `sl` (null where the source has no such id)."""
    ids = {k: v[sl] for k, v in people.source_ids().items()}
    n = len(ids["row"])
    return {
        "source_format": [people.source_format] * n,
        "source_row": ids["row"],
        "source_image_id": Nullable(ids["image_id"], ids["image_id"] >= 0),
        "source_annotation_id": Nullable(ids["annotation_id"], ids["annotation_id"] >= 0),
    }


def _null_where_nan(values: npt.NDArray[np.floating]) -> Nullable:
    """Rows (N, ...) with a NaN anywhere become nulls."""
    return Nullable(values, ~np.isnan(values.reshape(len(values), -1)).any(axis=1))


def _shard_summary(path: Path) -> dict[str, Any]:
    from ..shards import read_table

    t = read_table(path, columns=["flags", "match_distance"])
    flags = [f for row in t.column("flags").to_pylist() for f in row]
    d = np.array([np.nan if v is None else v for v in t.column("match_distance").to_pylist()], np.float64)
    return {"rows": t.num_rows, "flags": flags, "distances": d}


def _quantiles(d: npt.NDArray[np.floating]) -> dict[str, float]:
    """The mean and quantiles of distances, interpolated linearly as np.quantile's default (whose first call
    imports numpy.ma: 7 ms of a 1 s run)."""
    if len(d) == 0:
        return {}
    levels = np.array([0.0, 0.25, 0.5, 0.75, 0.95, 1.0])
    ordered = np.sort(np.asarray(d, np.float64))
    at = levels * (len(ordered) - 1)
    low = np.floor(at).astype(int)
    high = np.minimum(low + 1, len(ordered) - 1)
    qs = ordered[low] + (ordered[high] - ordered[low]) * (at - low)
    return {"mean": float(d.mean()), **{f"q{int(q * 100):02d}": float(v) for q, v in zip(levels, qs)}}
