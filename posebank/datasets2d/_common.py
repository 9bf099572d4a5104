"""Small helpers shared by the 2D dataset readers: source joint order, flag and value checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..dataset_manifest import load_dataset_manifest
from ..errors import InputError


def source_joint_order(dataset: str) -> tuple[str, ...]:
    """The source's joint names in file order, from the manifest's `joint_order` (the one place they live)."""
    order = load_dataset_manifest(dataset).raw.get("joint_order")
    if not order:
        raise ValueError(f"manifests/{dataset}.toml has no joint_order")
    return tuple(order)


def first_true(mask: npt.NDArray[np.bool_]) -> tuple[int, ...] | None:
    """Index (as a tuple) of the first True element of `mask`, or None when there is none."""
    if not mask.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def check_flags(path: Path, flags: npt.NDArray, allowed: tuple[int, ...], what: str, record_of) -> None:
    """Raise InputError naming the first record whose `flags` (N, Js) hold a value outside `allowed`.

    `record_of(row, joint)` turns the offending position into the record text of the error.
    """
    bad = first_true(~np.isin(flags, allowed))
    if bad is not None:
        value = flags[bad].item()
        raise InputError(path, f"{what} is {value:g}, expected one of {allowed}", record=record_of(*bad))


def check_finite(path: Path, values: npt.NDArray, what: str, record_of) -> None:
    """Raise InputError naming the first record whose `values` (N, Js, ...) hold NaN or infinity."""
    finite = np.isfinite(values)
    if finite.ndim > 2:
        finite = finite.all(axis=tuple(range(2, finite.ndim)))
    bad = first_true(~finite)
    if bad is not None:
        raise InputError(path, f"{what} is not finite (NaN or infinity)", record=record_of(*bad))


def person_in_image(images: npt.NDArray[np.str_]) -> npt.NDArray[np.int32]:
    """(N,) 0-based occurrence number of each row among the rows of the same image, in file order."""
    n = len(images)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    order = np.argsort(images, kind="stable")
    sorted_images = images[order]
    starts = np.r_[True, sorted_images[1:] != sorted_images[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    out = np.empty(n, dtype=np.int32)
    out[order] = np.arange(n) - group_start
    return out


def read_json(path: Path, expected: type, what: str) -> Any:
    """The parsed JSON document of `path`, which must be of type `expected` (dict or list).

    Raises:
        InputError: unreadable file, invalid JSON, or a document of another type.
    """
    import json

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read the JSON file: {exc}") from exc
    if not isinstance(doc, expected):
        raise InputError(path, f"expected {what}, got {type(doc).__name__}")
    return doc


# Split names as public releases write them in file and folder names, -> the names posebank uses
# (train's default split is "train", evaluate's "val"). Explicit --split values are never renamed.
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test",
               "trainval": "trainval", "minival": "minival", "testdev": "test-dev"}  # fmt: skip
_SPLIT_TOKEN = re.compile(r"(?P<name>[a-z]+?)(?:\d{4})?")  # train2017, val2014, valid
_SKIP_TOKEN = re.compile(r"v?\d+|[a-z]")  # version numbers and one-letter parts after the split (valid_a, _v1.0)


def split_from_name(name: str | Path) -> str | None:
    """The split a file or folder name states, or None when it states none.

    The split word must be the name's last word, ignoring version numbers and one-letter parts after
    it: train.h5, valid.json, mpii_val.json, valid_a.h5, person_keypoints_train2017.json, train2017
    (a COCO image folder) -> "train", "val", "val", "val", "train", "train"; a split word inside the name
    (mmpose_test_mpii.json) does not count, nor does a name without one (annotations.json).
    """
    stem = Path(str(name)).name.lower()
    stem = stem.rsplit(".", 1)[0] if "." in stem and not stem.startswith(".") else stem
    words = [w for w in re.split(r"[^a-z0-9]+", stem.replace("test-dev", "testdev")) if w]
    while words and _SKIP_TOKEN.fullmatch(words[-1]) and len(words) > 1:
        words.pop()
    if not words:
        return None
    match = _SPLIT_TOKEN.fullmatch(words[-1])
    return SPLIT_NAMES.get(match.group("name")) if match else None
