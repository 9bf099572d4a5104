"""Read the two derived MPII layouts (HRNet-style JSON, Stacked-Hourglass h5) into `PersonAnnotations`.

The official MATLAB release has its own module (mpii_release.py). The derived layouts differ in what a
missing or occluded joint looks like, and both are normalised here to "annotated" / "occluded":

- JSON (train.json / valid.json of HRNet, mmpose): `joints_vis` means annotated (0 -> joints (-1, -1));
  it has no occlusion flag, so `occlusion_flag` is False. `center`/`scale` are MPII's raw objpos/scale.
- h5 (Newell et al.'s annot/*.h5): a missing joint is (0, 0) with visible 0; an occluded joint keeps its
  coordinates with visible 0. So annotated = coordinates != (0, 0) (or visible 1), occluded = annotated
  and visible 0. `center`/`scale` were adjusted by the h5's authors (scale x 1.25, centre y + 15 x scale):
  kept as metadata under their own names, never as raw objpos/scale. The h5 truncates coordinates to
  integers. `normalize` is the PCKh head size; the head rectangle itself is not in the file.

Coordinates: px, MATLAB 1-based (as the release), not shifted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._common import check_finite, check_flags, person_in_image, read_json, source_joint_order, split_from_name
from .annotations import PersonAnnotations, build_annotations
from .image_size import read_image_sizes


def read_mpii_json(
    path: str | Path, *, split: str | None = None, images_root: Path | None = None
) -> PersonAnnotations:
    """Read an HRNet-style MPII JSON: a list of {image, joints (16, 2), joints_vis (16), center, scale}.

    Args:
        path: the JSON file.
        split: the split these records belong to; default: the split the file name states (HRNet's
            annot/train.json, valid.json, trainval.json; mmpose's mpii_train.json, mpii_val.json -> "train",
            "val", "trainval", ...; `_common.split_from_name`), else "unknown" (the records do not say).
        images_root: images folder for reading image sizes (optional, see read_image_sizes).

    Returns:
        PersonAnnotations, dataset "mpii", source_format "mpii_json", one row per record in file order;
        person = occurrence of the image among the records; record = 0-based row; occlusion_flag False;
        no head box or head size. extras: objpos (N, 2) px and scale (N,) raw (from center/scale; NaN
        when absent).

    Raises:
        InputError: not a list of objects, an empty list, a missing key, joints not (16, 2), joints_vis outside {0, 1},
            non-finite coordinates.
    """
    path = Path(path)
    joint_names = source_joint_order("mpii")
    num_joints = len(joint_names)
    records = read_json(path, list, "a list of records")
    if not records:
        raise InputError(path, "holds no records (an empty list): nothing to annotate")

    n = len(records)
    images: list[str] = []
    joints = np.empty((n, num_joints, 2))
    joints_vis = np.empty((n, num_joints))
    objpos = np.full((n, 2), np.nan)
    scale = np.full(n, np.nan)
    for i, rec in enumerate(records):
        where = f"record {i}"
        if not isinstance(rec, dict):
            raise InputError(path, f"record is a {type(rec).__name__}, expected an object", record=where)
        missing = [k for k in ("image", "joints", "joints_vis") if k not in rec]
        if missing:
            raise InputError(path, f"missing key(s) {', '.join(missing)}", record=where)
        images.append(str(rec["image"]))
        where = f"record {i} (image {rec['image']})"
        joints[i] = _array(rec["joints"], (num_joints, 2), "joints", path, where)
        joints_vis[i] = _array(rec["joints_vis"], (num_joints,), "joints_vis", path, where)
        if rec.get("center") is not None:
            objpos[i] = _array(rec["center"], (2,), "center", path, where)
        if rec.get("scale") is not None:
            scale[i] = _array(rec["scale"], (), "scale", path, where)

    image = np.asarray(images, dtype=str)

    def record_of(row: int, joint: int = 0) -> str:
        return f"record {row} (image {image[row]}), joint {joint_names[joint]}"

    check_flags(path, joints_vis, (0, 1), "joints_vis", record_of)
    annotated = joints_vis == 1
    # Only annotated joints must be finite: the placeholder of a missing joint is never used.
    check_finite(path, np.where(annotated[..., None], joints, 0.0), "joints", record_of)
    return build_annotations(
        dataset="mpii",
        source_format="mpii_json",
        path=str(path),
        joint_names=joint_names,
        occlusion_flag=False,
        split=split if split is not None else split_from_name(path) or "unknown",
        image=image,
        person=person_in_image(image),
        record=np.arange(n),
        pose_2d=joints,
        annotated=annotated,
        occluded=np.zeros_like(annotated),
        image_size=read_image_sizes(images_root, image) if images_root is not None else None,
        extras={"objpos": objpos, "scale": scale},
    )


def _array(value: Any, shape: tuple[int, ...], what: str, path: Path, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(path, f"{what} is not numeric", record=where) from None
    if arr.shape != shape:
        raise InputError(path, f"{what} has shape {arr.shape}, expected {shape}", record=where)
    return arr


def _decode_names(raw: np.ndarray, path: Path) -> np.ndarray:
    """h5 imgname -> (N,) str: fixed-length byte strings (|S13 in valid_a.h5) or (N, L) character codes."""
    if raw.dtype.kind in "SO":
        return np.asarray([v.decode("ascii") if isinstance(v, bytes) else str(v) for v in raw.ravel()], dtype=str)
    if raw.dtype.kind == "U":
        return raw.ravel().astype(str)
    if raw.ndim == 2 and raw.dtype.kind in "iuf":
        codes = raw.astype(np.int64)
        return np.asarray(["".join(chr(c) for c in row if c > 0) for row in codes], dtype=str)
    raise InputError(path, f"imgname has dtype {raw.dtype} and shape {raw.shape}: not names")


def _read_image_list(path: Path) -> np.ndarray:
    try:
        return np.asarray([line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()],
                          dtype=str)  # fmt: skip
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the image list: {exc}") from exc


def read_mpii_h5(
    path: str | Path,
    *,
    image_list: Path | None = None,
    split: str | None = None,
    images_root: Path | None = None,
) -> PersonAnnotations:
    """Read a Stacked-Hourglass MPII h5 (part, visible, center, scale, normalize, imgname, index, person).

    Args:
        path: the h5 file (e.g. valid_a.h5).
        image_list: text file with one image name per row (e.g. valid_a_images.txt). Default: the
            sibling <stem>_images.txt when it exists. When the h5 also has imgname the two must agree
            row by row; without imgname the list supplies the names.
        split: the split of these rows; default: the split the file name states (annot/train.h5,
            valid.h5, test.h5 -> "train", "val", "test"; `_common.split_from_name`), else "unknown" (the
            datasets do not say).
        images_root: images folder for reading image sizes (optional).

    Returns:
        PersonAnnotations, dataset "mpii", source_format "mpii_h5", one row per h5 row. person = h5
        `person` (annorect index) and record = h5 `index` (annolist index), so (record, person) matches
        the release reader; without them person counts the rows of an image and record is the row.
        head_size = `normalize`; head_box unknown. extras: h5_center (N, 2), h5_scale (N,) (pre-adjusted,
        see module docstring), torsoangle (N,) when present, row (N,) the h5 row, image_id (N,) the
        annolist index (= record) when the file has `index`.

    Raises:
        InputError: unreadable file, missing part/visible or image names, wrong shapes, names disagreeing
            with the image list, visible outside {0, 1}, non-finite coordinates.
    """
    path = Path(path)
    joint_names = source_joint_order("mpii")
    data = _load_h5(path)
    part, visible = _part_and_visible(data, path, len(joint_names))
    n = len(part)
    image = _image_names(data, path, image_list, n)
    annotated, occluded = _annotation_masks(part, visible, path, image, joint_names)
    index = _h5_column(data, path, n, "index", (), -1.0)
    person = _h5_column(data, path, n, "person", (), -1.0)
    return build_annotations(
        dataset="mpii",
        source_format="mpii_h5",
        path=str(path),
        joint_names=joint_names,
        occlusion_flag=True,
        split=split if split is not None else split_from_name(path) or "unknown",
        image=image,
        person=person if "person" in data else person_in_image(image),
        record=index if "index" in data else np.arange(n),
        pose_2d=part,
        annotated=annotated,
        occluded=occluded,
        image_size=read_image_sizes(images_root, image) if images_root is not None else None,
        head_size=_h5_column(data, path, n, "normalize", (), np.nan),
        extras=_h5_extras(data, path, n),
    )


def _annotation_masks(
    part: np.ndarray, visible: np.ndarray, path: Path, image: np.ndarray, joint_names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """annotated and occluded (N, Js) from part and visible, after checking visible is 0/1 and part finite."""

    def record_of(row: int, joint: int = 0) -> str:
        return f"row {row} (image {image[row]}), joint {joint_names[joint]}"

    check_flags(path, visible, (0, 1), "visible", record_of)
    check_finite(path, part, "part", record_of)
    # (0, 0) is the h5's "missing joint"; a joint flagged visible is annotated even at (0, 0).
    annotated = (part != 0).any(axis=-1) | (visible == 1)
    return annotated, annotated & (visible == 0)


def _h5_extras(data: dict[str, Any], path: Path, n: int) -> dict[str, np.ndarray]:
    """h5_center (N, 2), h5_scale (N,), row (N,), torsoangle (N,) when present, image_id (N,) when the
    file has `index` (the release's annolist index: the source id of the image)."""
    extras = {"h5_center": _h5_column(data, path, n, "center", (2,), np.nan),
              "h5_scale": _h5_column(data, path, n, "scale", (), np.nan), "row": np.arange(n)}  # fmt: skip
    if "torsoangle" in data:
        extras["torsoangle"] = _h5_column(data, path, n, "torsoangle", (), np.nan)
    if "index" in data:
        extras["image_id"] = _h5_column(data, path, n, "index", (), -1.0).astype(np.int64)
    return extras


def _load_h5(path: Path) -> dict[str, Any]:
    """Every dataset at the top of the h5 file, read into memory; part and visible must be there."""
    import h5py  # heavy import, only when an h5 is read

    try:
        with h5py.File(path, "r") as f:
            data = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
    except OSError as exc:
        raise InputError(path, f"cannot read the h5 file: {exc}") from exc
    missing = [k for k in ("part", "visible") if k not in data]
    if missing:
        raise InputError(path, f"missing dataset(s) {', '.join(missing)} (has: {', '.join(sorted(data))})")
    return data


def _part_and_visible(data: dict[str, Any], path: Path, num_joints: int) -> tuple[np.ndarray, np.ndarray]:
    """part (N, Js, 2) px and visible (N, Js) as float64, their shapes checked."""
    part = np.asarray(data["part"], dtype=np.float64)
    n = part.shape[0] if part.ndim else 0
    if part.shape != (n, num_joints, 2):
        raise InputError(path, f"part has shape {part.shape}, expected (N, {num_joints}, 2)")
    visible = np.asarray(data["visible"], dtype=np.float64)
    if visible.shape != (n, num_joints):
        raise InputError(path, f"visible has shape {visible.shape}, expected ({n}, {num_joints})")
    return part, visible


def _image_names(data: dict[str, Any], path: Path, image_list: Path | None, n: int) -> np.ndarray:
    """(N,) image names: the h5's imgname and/or the image list (default <stem>_images.txt beside
    the file), which must agree row by row when both are there."""
    image = _decode_names(np.asarray(data["imgname"]), path) if "imgname" in data else None
    if image_list is None and (path.parent / f"{path.stem}_images.txt").is_file():
        image_list = path.parent / f"{path.stem}_images.txt"
    if image_list is not None:
        listed = _read_image_list(Path(image_list))
        if image is not None and (len(listed) != len(image) or (listed != image).any()):
            row = int(np.argmax(listed != image)) if len(listed) == len(image) else min(len(listed), len(image))
            raise InputError(image_list, f"image names disagree with imgname of {path} "
                             f"({len(listed)} vs {len(image)} rows)", record=f"row {row}")  # fmt: skip
        image = listed
    if image is None:
        raise InputError(path, "no imgname dataset and no image list (<stem>_images.txt) to name the images")
    if len(image) != n:
        raise InputError(path, f"{len(image)} image names for {n} rows")
    return image


def _h5_column(data: dict[str, Any], path: Path, n: int, name: str, shape: tuple[int, ...], fill: float) -> np.ndarray:
    """An optional per-row dataset as float64 (n, *shape); `fill` everywhere when the file lacks it."""
    if name not in data:
        return np.full((n, *shape), fill)
    values = np.asarray(data[name], dtype=np.float64)
    if values.shape != (n, *shape):
        raise InputError(path, f"{name} has shape {values.shape}, expected {(n, *shape)}")
    return values
