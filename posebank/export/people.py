"""What every export format writes: the people of annotation shards as arrays, the skeleton, the provenance.

One reading of the shards (posebank.annotate.shards_reader, checked as read) feeds the three writers, so
the formats cannot disagree on a person. Coordinates are kept exactly as the shards hold them: pixels
in the source's own convention (MPII and LSP 1-based MATLAB pixels, COCO 0-based), metres in the
matched bank view's camera frame (x right, y down, z forward, body-centred); the metadata says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from ..provenance import atomic_path, git_revision, package_version, sha256_file
from ..skeleton import Skeleton

# Columns read from the shards; the source ids are absent from shards written before they existed.
_COLUMNS = ("dataset", "split", "image", "image_width", "image_height", "person", "pose_2d", "visible",
            "occluded", "pose_3d", "box_full", "flags", "match_distance", "error_estimate")  # fmt: skip
_IDS = ("source_format", "source_row", "source_image_id", "source_annotation_id")
PIXEL_CONVENTION = {"mpii": "1-based (MATLAB: the top-left pixel's centre is (1, 1))", "lsp": "1-based (MATLAB)",
                    "coco": "0-based", "synth": "0-based", "h36m": "0-based"}  # fmt: skip


@dataclass(frozen=True)
class People:
    """N people of one or more annotation shard folders, in reading order.

    Attributes:
        dataset, split, image, source_format: (N,) str ("" where unknown).
        image_width, image_height: (N,) int64 px, -1 unknown.
        person: (N,) int64, index of the person in its image in the source.
        pose_2d: (N, J, 2) float32 px, image frame, completed (NaN where a person could not be completed).
        visible: (N, J) bool, annotated in the source; occluded: (N, J) bool, the source's flag.
        completed: (N, J) bool, not annotated but given coordinates by the pseudo-3D completion.
        pose_3d: (N, J, 3) float32 m, camera frame, body-centred; NaN rows: unmatched people.
        box_full: (N, 4) float32 px (x0, y0, x1, y1), 10% margin around the completed pose.
        flags: N lists of str; match_distance (N,) eq. 9 distance, error_estimate (N,) mm (NaN: unmatched).
        source_row, source_image_id, source_annotation_id: (N,) int64, -1 where the source has none.
    """

    dataset: npt.NDArray[np.str_]
    split: npt.NDArray[np.str_]
    image: npt.NDArray[np.str_]
    source_format: npt.NDArray[np.str_]
    image_width: npt.NDArray[np.int64]
    image_height: npt.NDArray[np.int64]
    person: npt.NDArray[np.int64]
    pose_2d: npt.NDArray[np.float32]
    visible: npt.NDArray[np.bool_]
    occluded: npt.NDArray[np.bool_]
    completed: npt.NDArray[np.bool_]
    pose_3d: npt.NDArray[np.float32]
    box_full: npt.NDArray[np.float32]
    flags: list[list[str]]
    match_distance: npt.NDArray[np.float64]
    error_estimate: npt.NDArray[np.float64]
    source_row: npt.NDArray[np.int64]
    source_image_id: npt.NDArray[np.int64]
    source_annotation_id: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.image)


def _ints(values: Any, n: int) -> npt.NDArray[np.int64]:
    if values is None:
        return np.full(n, -1, np.int64)
    return np.asarray([-1 if v is None or v != v else int(v) for v in values], dtype=np.int64)


def _strings(values: Any, n: int) -> npt.NDArray[np.str_]:
    if values is None:
        return np.full(n, "", dtype=str)
    return np.asarray(["" if v is None else str(v) for v in values], dtype=str)


def read_people(paths: list[str | Path], *, split: str | None = None) -> tuple[People, Skeleton, list[dict[str, Any]]]:
    """Read annotation shard folders (all of one skeleton) into one `People`.

    Args:
        paths: annotation output folders (or their annotations/ folders, or Parquet files).
        split: keep rows of this split only (None: all).

    Returns:
        (people, skeleton, inputs): inputs are the provenance entries of `provenance()`.

    Raises:
        InputError: shards that do not read or verify, skeletons that differ, no rows (of `split`).
    """
    from ..annotate.shards_reader import open_annotations

    parts: list[dict[str, Any]] = []
    skeleton: Skeleton | None = None
    inputs: list[dict[str, Any]] = []
    for path in paths:
        shards = open_annotations(path)
        if skeleton is not None and shards.skeleton != skeleton:
            raise InputError(path, f"skeleton {shards.skeleton.name}, the other inputs' {skeleton.name}: export them apart")
        skeleton = shards.skeleton
        names = shards.column_names
        columns = list(_COLUMNS) + [c for c in _IDS if c in names]
        arrays = dict(zip(columns, shards.poses(columns, split=split)))
        inputs.append(_input_entry(shards))
        parts.append(arrays)
    assert skeleton is not None
    people = _concatenate(parts, skeleton.num_joints)
    if len(people) == 0:
        where = f" of split {split!r}" if split is not None else ""
        raise InputError(paths[0], f"no people{where} in the shards")
    return people, skeleton, inputs


def _concatenate(parts: list[dict[str, Any]], j: int) -> People:
    def cat(name: str, convert: Any) -> Any:
        return np.concatenate([convert(p.get(name), len(p["image"])) for p in parts])

    visible = np.concatenate([p["visible"] for p in parts]) if parts else np.zeros((0, j), bool)
    pose_2d = np.concatenate([p["pose_2d"] for p in parts]) if parts else np.zeros((0, j, 2), np.float32)
    return People(
        dataset=cat("dataset", _strings), split=cat("split", _strings), image=cat("image", _strings),
        source_format=cat("source_format", _strings),
        image_width=cat("image_width", _ints), image_height=cat("image_height", _ints), person=cat("person", _ints),
        pose_2d=pose_2d, visible=visible, occluded=np.concatenate([p["occluded"] for p in parts]),
        completed=~visible & np.isfinite(pose_2d).all(-1),
        pose_3d=np.concatenate([p["pose_3d"] for p in parts]),
        box_full=np.concatenate([p["box_full"] for p in parts]),
        flags=[list(f or []) for p in parts for f in p["flags"]],
        match_distance=np.concatenate([np.asarray(p["match_distance"], np.float64) for p in parts]),
        error_estimate=np.concatenate([np.asarray(p["error_estimate"], np.float64) for p in parts]),
        source_row=cat("source_row", _ints), source_image_id=cat("source_image_id", _ints),
        source_annotation_id=cat("source_annotation_id", _ints),
    )  # fmt: skip


def _input_entry(shards: Any) -> dict[str, Any]:
    """Provenance of one input: its files with their sha256, and what the shards were made from."""
    from ..verify import find_manifest

    meta = shards.metadata
    manifest = find_manifest(shards.files[0].parent)
    entry: dict[str, Any] = {
        "path": str(shards.path),
        "files": [{"file": str(f), "sha256": sha256_file(f)} for f in shards.files],
        "rows": shards.num_rows,
        "kind": meta.get("kind"),
        "dataset": meta.get("dataset"),
    }
    if manifest is not None:
        entry["manifest"] = {"file": str(manifest), "sha256": sha256_file(manifest)}
    for key in ("annotation_file", "images_root", "bank_manifest_sha256", "version", "git_rev"):
        if key in meta:
            entry[f"source_{key}" if key in ("version", "git_rev") else key] = meta[key]
    return entry


def skeleton_info(skeleton: Skeleton) -> dict[str, Any]:
    """The skeleton every export writes: joint names, bones (index pairs and name pairs), flip indices and
    left/right pairs (the mirror of joint i is flip_indices[i])."""
    names = skeleton.joint_names
    flip = list(skeleton.flip_permutation)
    return {
        "name": skeleton.name,
        "joint_names": list(names),
        "bones": [[int(a), int(b)] for a, b in skeleton.bones],
        "bone_names": [[names[a], names[b]] for a, b in skeleton.bones],
        "flip_indices": flip,
        "flip_pairs": [[i, f] for i, f in enumerate(flip) if i < f],
        "lower_body": list(skeleton.lower_body),
    }


def provenance(inputs: list[dict[str, Any]], fmt: str, split: str | None) -> dict[str, Any]:
    """Where an export comes from: its inputs (files with sha256), the command's settings, the version."""
    return {
        "tool": "posebank export",
        "format": fmt,
        "split": split,
        "inputs": inputs,
        "version": package_version(),
        "git_rev": git_revision(),
    }


def units_and_frames(people: People) -> dict[str, Any]:
    """The units, frames and pixel conventions of the exported coordinates (as the shards hold them)."""
    datasets = sorted(set(people.dataset.tolist()))
    return {
        "pose_2d": "px (x, y), image frame: origin top-left, x right, y down",
        "pixel_convention": {d: PIXEL_CONVENTION.get(d, "as the source") for d in datasets},
        "pose_3d": "m, the matched bank view's camera frame (x right, y down, z forward), centred on the "
        "mean of the hips and shoulders (pseudo ground truth; posebank annotate)",
        "bbox": "px, the completed pose's box with a 10% margin",
        "json_decimals": {"px": PX_DECIMALS, "m": M_DECIMALS},  # JSON rounding; the .npz holds float32 as stored
    }


def finite_or_zero(values: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """NaN -> 0 (the value JSON formats and COCO write for a joint without coordinates)."""
    return np.where(np.isfinite(values), values, 0.0).astype(np.float64)


# JSON exports write pixels to 0.001 px and metres to 1 µm: the float32 values printed in full would
# read 301.1499938964844 for the source's 301.15 (and make COCO train's file twice the size); the
# .npz keeps the float32 values exactly.
PX_DECIMALS = 3
M_DECIMALS = 6


def json_px(values: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Pixels for JSON: NaN -> 0, rounded to PX_DECIMALS."""
    return np.round(finite_or_zero(values), PX_DECIMALS)


def json_m(values: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Metres for JSON: NaN -> 0, rounded to M_DECIMALS."""
    return np.round(finite_or_zero(values), M_DECIMALS)


def image_ids(people: People) -> tuple[npt.NDArray[np.int64], bool]:
    """(N,) an id per image, and whether they are the source's own.

    The source's image ids are kept when every person has one, they are positive (COCO's ids; MPII's
    and LSP's 0-based indices are not, and tools read id 0 as "none") and they name images one to one
    (a single source); otherwise images are numbered 1.. in order of first appearance, and the source
    ids stay beside them (source_image_id).
    """
    keys = [f"{d}\0{i}" for d, i in zip(people.dataset.tolist(), people.image.tolist())]
    if (people.source_image_id >= 1).all():
        pairs = set(zip(keys, people.source_image_id.tolist()))
        if len(pairs) == len(set(keys)) == len({i for _, i in pairs}):
            return people.source_image_id.copy(), True
    order: dict[str, int] = {}
    for k in keys:
        order.setdefault(k, len(order) + 1)
    return np.asarray([order[k] for k in keys], np.int64), False


def annotation_ids(people: People) -> tuple[npt.NDArray[np.int64], bool]:
    """(N,) an id per person: the source's annotation ids when every person has a distinct one (COCO),
    else 1..N in order; and whether they are the source's."""
    ids = people.source_annotation_id
    if len(ids) and (ids >= 0).all() and len(set(ids.tolist())) == len(ids):
        return ids.copy(), True
    return np.arange(1, len(people) + 1, dtype=np.int64), False


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """Write `doc` as JSON to `path` atomically (temporary file, then rename). A top-level value that is
    an iterator (the people) is written item by item, so the whole document is never held as text or as
    Python objects at once. NaN and infinity are refused (not JSON)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("{")
        for k, (key, value) in enumerate(doc.items()):
            f.write(("" if k == 0 else ", ") + json.dumps(key) + ": ")
            if isinstance(value, Iterator):
                f.write("[")
                for n, item in enumerate(value):
                    f.write(("" if n == 0 else ", ") + json.dumps(item, allow_nan=False))
                f.write("]")
            else:
                f.write(json.dumps(value, allow_nan=False))
        f.write("}\n")
