"""Read the official MPII Human Pose release (mpii_human_pose_v1_u12_1.mat) into `PersonAnnotations`.

Why a module of its own: the MATLAB struct file has quirks that a plain loader turns into several
Python shapes for the same thing, and each must map to one meaning:

- A 1x1 struct array comes back as a single struct (dict) where a larger one is a list: an image with one
  person, a person with one point. `_as_list` folds both into a list.
- Empty fields ([]) come back as empty arrays: an image without annorect, an annorect without annopoints
  (test images, or people without joints), an empty objpos, vididx or is_visible.
- `is_visible` is a number (0/1), a string ('0'/'1') or empty. 1 -> annotated, not occluded; 0 ->
  annotated AND occluded (the point has coordinates); empty -> annotated, occlusion unknown, taken as not
  occluded (the point has coordinates, so it belongs in the query mask). A joint id absent from
  annopoints is not annotated.
- Test images (img_train 0) have annorects with only `scale` and `objpos`: those people are kept, with
  zero annotated joints and no head box. Every annorect becomes one person: none is dropped.

Loaded with scipy.io.loadmat(simplify_cells=True): structs become dicts, struct arrays lists, so the code
reads plain Python values; numbers arrive as floats (or 0-d/1-d arrays), text as str.

Coordinates: px, MATLAB 1-based, as in the file (not shifted).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._common import source_joint_order
from .annotations import PersonAnnotations, build_annotations
from .image_size import read_image_sizes

LOG = logging.getLogger(__name__)

HEAD_SIZE_BIAS = 0.6  # MPII evaluation (util_get_head_size): PCKh head size = 0.6 * head-box diagonal


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, np.ndarray):
        return value.size == 0
    if isinstance(value, (str, list, tuple)):
        return len(value) == 0
    return False


def _as_list(value: Any) -> list[Any]:
    """A MATLAB struct array / cell array as a list: empty -> [], a single struct -> [it]."""
    if _is_empty(value):
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    return [value]


def _number(value: Any, what: str, path: Path, record: str) -> float | None:
    """A MATLAB scalar (float, int, 0-d or 1-element array, numeric string) as float; empty -> None."""
    if _is_empty(value):
        return None
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise InputError(path, f"{what} should be one number, got an array of shape {value.shape}", record=record)
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(path, f"{what} should be a number, got {value!r}", record=record) from None


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def _text(value: Any) -> str:
    if _is_empty(value):
        return ""
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else "".join(str(v) for v in value.ravel())
    return value.decode() if isinstance(value, bytes) else str(value)


def _field(struct: Any, name: str, path: Path, record: str, *, required: bool = True) -> Any:
    if not isinstance(struct, dict):
        raise InputError(path, f"expected a MATLAB struct holding {name!r}, got {type(struct).__name__}", record=record)
    if name not in struct:
        if required:
            raise InputError(path, f"missing field {name!r} (fields: {', '.join(struct)})", record=record)
        return None
    return struct[name]


def _visibility(value: Any, path: Path, record: str) -> bool | None:
    """is_visible: 1/'1' -> True, 0/'0' -> False, empty -> None (unknown)."""
    flag = _number(value, "is_visible", path, record)
    if flag is None:
        return None
    if flag not in (0.0, 1.0):
        raise InputError(path, f"is_visible is {value!r}, expected 0, 1, '0', '1' or empty", record=record)
    return flag == 1.0


def _load_release(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat  # heavy import, only when a .mat is read

    try:
        mat = loadmat(str(path), simplify_cells=True)
    except Exception as exc:  # scipy raises many types on bad files (MatReadError, IndexError, v7.3 files...)
        raise InputError(path, f"cannot read the MATLAB file: {type(exc).__name__}: {exc}") from exc
    release = mat.get("RELEASE")
    if not isinstance(release, dict):
        raise InputError(path, f"no RELEASE struct (variables: {', '.join(k for k in mat if not k.startswith('__'))})")
    return release


def read_mpii_release(path: str | Path, *, images_root: Path | None = None) -> PersonAnnotations:
    """Read every person (annorect) of the official MPII release.

    Args:
        path: mpii_human_pose_v1_u12_1.mat (or a file with the same RELEASE structure).
        images_root: the images folder; when given (and Pillow is installed) image sizes are read from
            the image headers, otherwise they stay unknown (-1).

    Returns:
        PersonAnnotations, dataset "mpii", source_format "mpii_release_mat", one row per annorect in file
        order. split "train" (img_train 1) or "test" (0); person = 0-based annorect index; record = 0-based
        annolist index (as the h5 layout's `index`). head_box (x1, y1, x2, y2) and head_size = 0.6 x its
        diagonal where the annorect has a head box. extras: objpos (N, 2) px and scale (N,) as given (NaN
        when empty), single_person (N,) bool (the annorect is listed in RELEASE.single_person),
        act_id (N,) int (-1 unknown), video (N,) str (video_list entry, "" unknown), frame_sec (N,) float,
        image_id (N,) int64 the annolist index (= record).

    Raises:
        InputError: unreadable file, missing RELEASE/annolist/img_train/image name, a joint id outside
            0..15 or repeated, non-numeric or non-finite coordinates, an is_visible or img_train value
            outside {0, 1}.
    """
    path = Path(path)
    joint_names = source_joint_order("mpii")
    release = _load_release(path)
    annolist = _as_list(_field(release, "annolist", path, "RELEASE"))
    img_train = np.atleast_1d(np.asarray(_field(release, "img_train", path, "RELEASE"), dtype=np.float64)).ravel()
    if len(img_train) != len(annolist):
        raise InputError(path, f"RELEASE.img_train has {len(img_train)} entries, annolist {len(annolist)}")
    lists = _PerImage(_as_list(release.get("single_person")), _as_list(release.get("act")),
                      [_text(v) for v in _as_list(release.get("video_list"))])  # fmt: skip
    rows: dict[str, list[Any]] = {k: [] for k in _ROW_KEYS}
    images_without_people = 0
    for i, entry in enumerate(annolist):
        image = _image_info(lists, i, entry, img_train[i], path)
        rects = _as_list(entry.get("annorect"))
        if not rects:
            images_without_people += 1
        for j, rect in enumerate(rects):
            _append_person(rows, image, i, j, rect, len(joint_names), path)
    if images_without_people:
        LOG.info("%s: %d images have no annorect (no people)", path, images_without_people)
    return _to_annotations(rows, path, joint_names, images_root)


# The per-person lists read_mpii_release collects, one entry per annorect.
_ROW_KEYS = ("split", "image", "person", "record", "pose", "annotated", "occluded", "head_box", "objpos", "scale",
             "single_person", "act_id", "video", "frame_sec")  # fmt: skip


@dataclass(frozen=True)
class _PerImage:
    """RELEASE's lists indexed by annolist entry (read once): single_person, act, and video_list (as text)."""

    single_person: list[Any]
    acts: list[Any]
    videos: list[str]


@dataclass(frozen=True)
class _Image:
    """What an annolist entry says about its image, shared by its people.

    Attributes:
        name: the image file name; where: its record text for errors ("annolist i (image name)").
        split: "train" (img_train 1) or "test" (0); singles: 0-based annorect indices listed in
        RELEASE.single_person; act_id: -1 unknown; video: video_list entry ("" unknown);
        frame_sec: None unknown.
    """

    name: str
    where: str
    split: str
    singles: set[int]
    act_id: int
    video: str
    frame_sec: float | None


def _image_info(lists: _PerImage, i: int, entry: Any, img_train: float, path: Path) -> _Image:
    """The image of annolist entry i: its name, split, single-person annorects, activity and video."""
    where = f"annolist {i}"
    name = _text(_field(_field(entry, "image", path, where), "name", path, where))
    if not name:
        raise InputError(path, "empty image name", record=where)
    where = f"annolist {i} (image {name})"
    if img_train not in (0.0, 1.0):
        raise InputError(path, f"img_train is {float(img_train)}, expected 0 or 1", record=where)
    single_person, acts, videos = lists.single_person, lists.acts, lists.videos
    singles = _single_person(single_person[i], path, where) if i < len(single_person) else set()
    act_id = -1
    if i < len(acts) and isinstance(acts[i], dict):
        act = _number(acts[i].get("act_id"), "act_id", path, where)
        act_id = -1 if act is None else int(act)
    vididx = _number(entry.get("vididx"), "vididx", path, where)
    video = videos[int(vididx) - 1] if vididx is not None and 1 <= vididx <= len(videos) else ""
    frame_sec = _number(entry.get("frame_sec"), "frame_sec", path, where)
    split = "train" if img_train == 1.0 else "test"
    return _Image(name, where, split, singles, act_id, video, frame_sec)


def _append_person(
    rows: dict[str, list[Any]], image: _Image, i: int, j: int, rect: Any, num_joints: int, path: Path
) -> None:
    """Append annorect j of annolist entry i (in `image`) to the per-person lists."""
    rwhere = f"{image.where}, annorect {j}"
    pose, annotated, occluded = _read_points(rect, num_joints, path, rwhere)
    rows["split"].append(image.split)
    rows["image"].append(image.name)
    rows["person"].append(j)
    rows["record"].append(i)
    rows["pose"].append(pose)
    rows["annotated"].append(annotated)
    rows["occluded"].append(occluded)
    rows["head_box"].append(_head_box(rect, path, rwhere))
    rows["objpos"].append(_objpos(rect, path, rwhere))
    rows["scale"].append(_or_nan(_number(rect.get("scale"), "scale", path, rwhere)))
    rows["single_person"].append(j in image.singles)
    rows["act_id"].append(image.act_id)
    rows["video"].append(image.video)
    rows["frame_sec"].append(_or_nan(image.frame_sec))


def _to_annotations(
    rows: dict[str, list[Any]], path: Path, joint_names: tuple[str, ...], images_root: Path | None
) -> PersonAnnotations:
    """The collected per-person lists as PersonAnnotations (head size from the head box; extras)."""
    n, num_joints = len(rows["image"]), len(joint_names)
    head_box = np.asarray(rows["head_box"], dtype=np.float64).reshape(n, 4)
    head_size = HEAD_SIZE_BIAS * np.hypot(head_box[:, 2] - head_box[:, 0], head_box[:, 3] - head_box[:, 1])
    return build_annotations(
        dataset="mpii",
        source_format="mpii_release_mat",
        path=str(path),
        joint_names=joint_names,
        occlusion_flag=True,
        split=np.asarray(rows["split"], dtype=str),
        image=rows["image"],
        person=rows["person"],
        record=rows["record"],
        pose_2d=np.asarray(rows["pose"], dtype=np.float64).reshape(n, num_joints, 2),
        annotated=np.asarray(rows["annotated"], dtype=bool).reshape(n, num_joints),
        occluded=np.asarray(rows["occluded"], dtype=bool).reshape(n, num_joints),
        image_size=read_image_sizes(images_root, rows["image"]) if images_root is not None else None,
        head_box=head_box,
        head_size=head_size,
        extras={
            "objpos": np.asarray(rows["objpos"], dtype=np.float64).reshape(n, 2),
            "scale": np.asarray(rows["scale"], dtype=np.float64),
            "single_person": np.asarray(rows["single_person"], dtype=bool),
            "act_id": np.asarray(rows["act_id"], dtype=np.int32),
            "video": np.asarray(rows["video"], dtype=str),
            "frame_sec": np.asarray(rows["frame_sec"], dtype=np.float64),
            "image_id": np.asarray(rows["record"], dtype=np.int64),  # the annolist index names the image
        },
    )


def _single_person(value: Any, path: Path, where: str) -> set[int]:
    """RELEASE.single_person{i}: 1-based annorect indices (a number, an array or empty) -> 0-based set."""
    try:
        return {int(v) - 1 for v in np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()}
    except (TypeError, ValueError):
        raise InputError(path, f"single_person is {value!r}, expected annorect numbers", record=where) from None


def _read_points(
    rect: Any, num_joints: int, path: Path, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One annorect's points -> pose (Js, 2) px, annotated (Js,), occluded (Js,)."""
    if not isinstance(rect, dict):
        raise InputError(path, f"annorect is a {type(rect).__name__}, expected a struct", record=where)
    pose = np.full((num_joints, 2), np.nan)
    annotated = np.zeros(num_joints, dtype=bool)
    occluded = np.zeros(num_joints, dtype=bool)
    annopoints = rect.get("annopoints")
    if _is_empty(annopoints):
        return pose, annotated, occluded
    for k, point in enumerate(_as_list(_field(annopoints, "point", path, where))):
        pwhere = f"{where}, point {k}"
        joint = _number(_field(point, "id", path, pwhere), "id", path, pwhere)
        if joint is None or joint != int(joint) or not 0 <= joint < num_joints:
            raise InputError(path, f"joint id {joint!r} is not one of 0..{num_joints - 1}", record=pwhere)
        joint = int(joint)
        if annotated[joint]:
            raise InputError(path, f"joint id {joint} appears twice", record=pwhere)
        x = _number(_field(point, "x", path, pwhere), "x", path, pwhere)
        y = _number(_field(point, "y", path, pwhere), "y", path, pwhere)
        if x is None or y is None or not (np.isfinite(x) and np.isfinite(y)):
            raise InputError(path, f"joint id {joint} has coordinates ({x}, {y}), expected two finite numbers",
                             record=pwhere)  # fmt: skip
        visible = _visibility(point.get("is_visible"), path, pwhere)
        pose[joint] = (x, y)
        annotated[joint] = True
        occluded[joint] = visible is False  # empty is_visible: occlusion unknown, taken as not occluded
    return pose, annotated, occluded


def _head_box(rect: dict[str, Any], path: Path, where: str) -> tuple[float, float, float, float]:
    values = [_number(rect.get(k), k, path, where) for k in ("x1", "y1", "x2", "y2")]
    if any(v is None for v in values):
        return (np.nan,) * 4  # test images and some people have no head rectangle
    x1, y1, x2, y2 = values
    # Stored as (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1, whatever corner order the file uses.
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def _objpos(rect: dict[str, Any], path: Path, where: str) -> tuple[float, float]:
    objpos = rect.get("objpos")
    if _is_empty(objpos) or not isinstance(objpos, dict):
        return (np.nan, np.nan)
    x = _number(objpos.get("x"), "objpos.x", path, where)
    y = _number(objpos.get("y"), "objpos.y", path, where)
    return (_or_nan(x), _or_nan(y))
