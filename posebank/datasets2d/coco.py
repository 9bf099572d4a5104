"""Read a COCO person_keypoints JSON into `PersonAnnotations`.

Flat keypoints [x, y, v] * 17 with v 0 = not labelled, 1 = labelled but hidden, 2 = labelled and
visible: annotated = v > 0, occluded = v == 1. Every person annotation is kept, including those with
num_keypoints 0 (small or crowd people: zero annotated joints) and crowd annotations (iscrowd is in
extras for the consumer to decide). Annotations of other categories (an instances file) are skipped;
an entry that is not an object, or whose category_id is missing or not an id, is an error naming it.
A category_id written as a string of digits ("1") is that id.
Image width and height come from the file's images list.
Coordinates: px, COCO convention (0-based), not shifted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._common import (
    check_finite, check_flags, first_true, person_in_image, read_json, source_joint_order, split_from_name,
)  # fmt: skip
from .annotations import PersonAnnotations, build_annotations

LOG = logging.getLogger(__name__)


def _person_category(categories: Any, path: Path) -> dict[str, Any]:
    if not isinstance(categories, list):
        raise InputError(path, "'categories' is not a list")
    for cat in categories:
        if isinstance(cat, dict) and cat.get("name") == "person" and "keypoints" in cat:
            return cat
    raise InputError(path, "no 'person' category with keypoints in 'categories'")


def _category_id(value: Any, path: Path, record: str) -> int:
    """A category id as an int: COCO writes integers; an integral number or a string of digits ("1",
    as some exporters write it) means the same id. Anything else is an error, never a silent skip."""
    if isinstance(value, bool):
        raise InputError(path, f"category_id {value!r} is not an id", record=record)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise InputError(path, f"category_id {value!r} is not an integer id", record=record)


def _person_annotations(annotations: Any, person_id: int, path: Path) -> tuple[list[dict[str, Any]], int]:
    """The annotations of the person category, and the count of those of other categories (an
    instances file holds cars too; they are no people). Every entry is looked at: one that is not an
    object, or has no usable category_id, is an error naming it, so no person disappears in silence."""
    if not isinstance(annotations, list):
        raise InputError(path, f"'annotations' is a {type(annotations).__name__}, expected a list")
    people, others = [], 0
    for k, a in enumerate(annotations):
        if not isinstance(a, dict):
            raise InputError(path, f"entry is a {type(a).__name__}, expected an object", record=f"annotations[{k}]")
        record = f"annotation id {a.get('id')} (annotations[{k}])"
        if "category_id" not in a:
            raise InputError(path, "annotation lacks category_id", record=record)
        if _category_id(a["category_id"], path, record) == person_id:
            people.append(a)
        else:
            others += 1
    return people, others


def _split_of_rows(path: Path, image: np.ndarray) -> str | np.ndarray:
    """The split the file's name states (person_keypoints_train2017.json -> "train"), else per row the
    split of the image's folder (file_name "val2017/000000000785.jpg" -> "val"), else "unknown"."""
    named = split_from_name(path)
    if named is not None:
        return named
    folders = {name: split_from_name(Path(name).parent.name) if "/" in name else None for name in set(image.tolist())}
    return np.asarray([folders[name] or "unknown" for name in image.tolist()], dtype=str)


def read_coco(path: str | Path, *, split: str | None = None, images_root: Path | None = None) -> PersonAnnotations:
    """Read every person annotation of a COCO keypoints file.

    Args:
        path: person_keypoints_<split>.json (or any file of that structure).
        split: the split name for every row; default: the split the file name states
            (person_keypoints_train2017.json -> "train", _val2017 -> "val"; posebank.datasets2d._common.
            split_from_name), else the folder of each image's file_name ("train2017/x.jpg"), else "unknown".
        images_root: accepted so that every reader takes the same options; unused, because COCO records
            each image's width and height itself.

    Returns:
        PersonAnnotations, dataset "coco", source_format "coco_json", one row per person annotation in
        file order; person = order among the annotations of the same image; record = annotation id;
        image = images[].file_name, with its width and height. extras: image_id (N,), bbox (N, 4)
        (x, y, w, h) px, area (N,), iscrowd (N,) bool, num_keypoints (N,) as the file says. Source ids:
        record (the annotation id) and extras image_id (`PersonAnnotations.source_ids`).

    Raises:
        InputError: unreadable file, a missing key, an annotation that is not an object or lacks a
            usable category_id (an integer, or a string of digits), a keypoint list of the wrong length, a visibility flag
            outside {0, 1, 2}, a non-finite coordinate, an image_id absent from images, a person category
            whose keypoint names differ from manifests/coco.toml.
    """
    path = Path(path)
    joint_names = source_joint_order("coco")
    num_joints = len(joint_names)
    doc = read_json(path, dict, "a JSON object")
    category = _checked_person_category(doc, path, joint_names)
    images = _image_table(doc["images"], path)
    person_id = _category_id(category.get("id"), path, f"category {category.get('name')!r}")
    people, others = _person_annotations(doc["annotations"], person_id, path)
    if others:
        LOG.info("%s: %d annotation(s) of other categories than person skipped", path, others)
    keypoints = _keypoints(people, images, num_joints, path)
    ann_ids = np.asarray([a["id"] for a in people], dtype=np.int64)
    image_ids = [a["image_id"] for a in people]
    image = np.asarray([images[k][0] for k in image_ids], dtype=str)

    def record_of(row: int, joint: int = 0) -> str:
        return f"annotation id {ann_ids[row]} (image {image[row]}), keypoint {joint_names[joint]}"

    flags = _checked_flags(keypoints, path, record_of)
    return build_annotations(
        dataset="coco",
        source_format="coco_json",
        path=str(path),
        joint_names=joint_names,
        occlusion_flag=True,
        split=split if split is not None else _split_of_rows(path, image),
        image=image,
        person=person_in_image(image),
        record=ann_ids,
        pose_2d=keypoints[..., :2],
        annotated=flags > 0,
        occluded=flags == 1,
        image_size=(np.asarray([images[k][1] for k in image_ids], dtype=np.int32),
                    np.asarray([images[k][2] for k in image_ids], dtype=np.int32)),  # fmt: skip
        extras=_extras(people, image_ids),
    )


def _keypoints(people: list[dict[str, Any]], images: dict[Any, Any], num_joints: int, path: Path) -> np.ndarray:
    """(N, Js, 3) x, y px and v of every person annotation: one numpy call when all are well formed,
    else checked one by one to name the first bad one."""
    keypoints = _keypoints_fast(people, images, num_joints)
    if keypoints is None:
        keypoints = _keypoints_checked(people, images, num_joints, path)
    return keypoints.reshape(len(people), num_joints, 3)


def _checked_person_category(doc: dict[str, Any], path: Path, joint_names: tuple[str, ...]) -> dict[str, Any]:
    """The person category of a COCO document, whose keypoint names must be manifests/coco.toml's."""
    missing = [k for k in ("images", "annotations", "categories") if k not in doc]
    if missing:
        raise InputError(path, f"missing key(s) {', '.join(missing)}")
    category = _person_category(doc["categories"], path)
    if tuple(category["keypoints"]) != joint_names:
        raise InputError(path, f"person keypoints {category['keypoints']} differ from manifests/coco.toml "
                         f"joint_order {list(joint_names)}", record=f"category {category.get('id')}")  # fmt: skip
    return category


def _image_table(entries: Any, path: Path) -> dict[Any, tuple[str, int, int]]:
    """image id -> (file_name, width, height) px, from the document's `images`."""
    images: dict[Any, tuple[str, int, int]] = {}
    for k, im in enumerate(entries):
        absent = [key for key in ("id", "file_name", "width", "height") if not isinstance(im, dict) or key not in im]
        if absent:
            raise InputError(path, f"image entry lacks {', '.join(absent)}", record=f"images[{k}]")
        images[im["id"]] = (str(im["file_name"]), int(im["width"]), int(im["height"]))
    return images


def _checked_flags(keypoints: np.ndarray, path: Path, record_of: Callable[..., str]) -> np.ndarray:
    """(N, Js) visibility flags v of keypoints (N, Js, 3), checked to be 0, 1 or 2 with finite coordinates."""
    flags = keypoints[..., 2]
    bad = first_true(~np.isfinite(flags))
    if bad is not None:
        raise InputError(path, "visibility flag is not finite", record=record_of(*bad))
    check_flags(path, flags, (0, 1, 2), "visibility flag v", record_of)
    check_finite(path, keypoints[..., :2], "keypoint coordinates", record_of)
    return flags


def _extras(people: list[dict[str, Any]], image_ids: list[Any]) -> dict[str, np.ndarray]:
    """The per-annotation values kept beside the poses: image_id, bbox (x, y, w, h) px, area, iscrowd,
    num_keypoints (NaN / -1 / False where the annotation lacks them)."""
    n = len(people)
    return {
        "image_id": np.asarray(image_ids, dtype=np.int64),
        "bbox": np.asarray([a.get("bbox", [np.nan] * 4) for a in people], dtype=np.float64).reshape(n, 4),
        "area": np.asarray([a.get("area", np.nan) for a in people], dtype=np.float64),
        "iscrowd": np.asarray([bool(a.get("iscrowd", 0)) for a in people], dtype=bool),
        "num_keypoints": np.asarray([a.get("num_keypoints", -1) for a in people], dtype=np.int32),
    }


def _keypoints_fast(people: list[dict[str, Any]], images: dict[Any, Any], num_joints: int) -> np.ndarray | None:
    """(N, 3 * Js) keypoints in one numpy call when every annotation is well formed, else None."""
    try:
        if not all(a["image_id"] in images and "id" in a for a in people):
            return None
        keypoints = np.asarray([a["keypoints"] for a in people], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None
    return keypoints if keypoints.shape == (len(people), num_joints * 3) else None


def _keypoints_checked(
    people: list[dict[str, Any]], images: dict[Any, Any], num_joints: int, path: Path
) -> np.ndarray:
    """The slow path: the same array, checking each annotation to name the first bad one."""
    keypoints = np.empty((len(people), num_joints * 3))
    for i, ann in enumerate(people):
        absent = [key for key in ("id", "image_id", "keypoints") if key not in ann]
        if absent:
            raise InputError(path, f"annotation lacks {', '.join(absent)}", record=f"annotation id {ann.get('id')}")
        if ann["image_id"] not in images:
            raise InputError(path, f"image_id {ann['image_id']} is not in images", record=f"annotation id {ann['id']}")
        try:
            row = np.asarray(ann["keypoints"], dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(path, "keypoints are not numbers", record=f"annotation id {ann['id']}") from None
        if row.shape != (num_joints * 3,):
            raise InputError(path, f"keypoints has shape {row.shape}, expected ({num_joints * 3},) = [x, y, v] * "
                             f"{num_joints}", record=f"annotation id {ann['id']}")  # fmt: skip
        keypoints[i] = row
    return keypoints
