"""Write a small MATLAB file with the exact structure and quirks of the official MPII release.

The real mpii_human_pose_v1_u12_1.mat (12 MB) cannot be shipped; this writes the same RELEASE struct
(annolist / img_train / version / single_person / act / video_list, the same field names and nesting)
with five images, through scipy.io.savemat, so that loadmat hands back the quirks the reader must handle:

- image 0 (train, 005808361.jpg): two annorects (a 1x2 struct array). Person 0 has all 16 points, with
  is_visible cycling through 1 (number), '1' (string), 0 (number), '0' (string) and [] (empty). Person 1
  has a head box, scale and objpos but annopoints = [] (a person without joints).
- image 1 (train, 052475643.jpg): one annorect (a 1x1 struct: loadmat returns a single struct, not an
  array) whose annopoints.point is a single struct too (one point: head_top, is_visible '1').
- image 2 (train, 051423444.jpg): one person with 14 points in shuffled id order (ankles missing) and an
  empty objpos.
- image 3 (test, 004645041.jpg): two annorects with only scale and objpos, as the test set has.
- image 4 (test, 060754485.jpg): annorect = [] (an image without annotations).

Coordinates are real MPII values (the records of ../shared/data/mpii/mmpose_test_mpii.json, 1-based
MATLAB pixels); head boxes, scales, objpos, activities and video ids are made up around them.
`corrupt` writes one of the bad inputs the reader must reject with a clear error.

Run `python tests/datasets2d/mpii_release_fixture.py` to rewrite tests/fixtures/mpii/mpii_release_quirks.mat.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mpii" / "mpii_release_quirks.mat"

# Records 0, 1 and 2 of mmpose_test_mpii.json: (image, 16 joints in MPII id order).
JOINTS = {
    "005808361.jpg": [
        (804.0, 711.0), (816.0, 510.0), (908.0, 438.0), (1040.0, 454.0), (906.0, 528.0), (883.0, 707.0),
        (974.0, 446.0), (985.0, 253.0), (982.7591, 235.9694), (962.2409, 80.0306), (869.0, 214.0),
        (798.0, 340.0), (902.0, 253.0), (1067.0, 253.0), (1167.0, 353.0), (1142.0, 478.0),
    ],
    "052475643.jpg": [
        (317.0, 412.0), (318.0, 299.0), (290.0, 274.0), (353.0, 275.0), (403.0, 299.0), (394.0, 409.0),
        (322.0, 275.0), (327.0, 172.0), (329.9945, 162.1051), (347.0055, 105.8949), (296.0, 135.0),
        (281.0, 208.0), (296.0, 167.0), (358.0, 177.0), (387.0, 236.0), (392.0, 167.0),
    ],
    "051423444.jpg": [
        (-1.0, -1.0), (1033.0, 649.0), (1072.0, 474.0), (973.0, 496.0), (961.0, 650.0), (-1.0, -1.0),
        (1023.0, 485.0), (1031.0, 295.0), (1026.998, 281.6248), (997.002, 181.3752), (988.0, 294.0),
        (1018.0, 317.0), (1070.0, 290.0), (991.0, 300.0), (912.0, 345.0), (842.0, 330.0),
    ],
}  # fmt: skip
IMAGES = ("005808361.jpg", "052475643.jpg", "051423444.jpg", "004645041.jpg", "060754485.jpg")
IMG_TRAIN = (1, 1, 1, 0, 0)
# is_visible of person 0 of image 0, by joint id: number 1, string '1', number 0, string '0', empty.
VISIBILITY_CYCLE: tuple[Any, ...] = (1.0, "1", 0.0, "0", np.zeros((0, 0)))
SHUFFLED_IDS = (9, 8, 15, 14, 13, 12, 11, 10, 7, 6, 4, 3, 2, 1)  # image 2: ankles (0, 5) missing

CORRUPTIONS = ("joint_id", "nan", "no_annolist", "is_visible", "missing_x", "img_train")


def _empty() -> np.ndarray:
    return np.zeros((0, 0))


def _struct_array(fields: tuple[str, ...], rows: list[dict[str, Any]], shape: tuple[int, int] | None = None):
    """A MATLAB struct array (1 x len(rows) by default); absent fields are [] as MATLAB fills them."""
    shape = shape or (1, len(rows))
    arr = np.empty(shape, dtype=[(f, object) for f in fields])
    for k, row in enumerate(rows):
        for f in fields:
            arr.flat[k][f] = row.get(f, _empty())
    return arr


def _points(ids: tuple[int, ...], joints: list[tuple[float, float]], visibility) -> np.ndarray:
    rows = [{"x": joints[j][0], "y": joints[j][1], "id": float(j), "is_visible": visibility(j)} for j in ids]
    return _struct_array(("x", "y", "id", "is_visible"), rows)


def _head_box(joints: list[tuple[float, float]]) -> dict[str, float]:
    """A made-up head rectangle around the upper_neck -> head_top segment (ids 8, 9)."""
    (xa, ya), (xb, yb) = joints[8], joints[9]
    half = 0.35 * float(np.hypot(xb - xa, yb - ya))
    cx = (xa + xb) / 2
    return {"x1": float(round(cx - half)), "y1": float(round(min(ya, yb))), "x2": float(round(cx + half)),
            "y2": float(round(max(ya, yb)))}


def build_release(corrupt: str | None = None) -> dict[str, Any]:
    """The RELEASE struct as nested numpy objects for scipy.io.savemat (see the module docstring)."""
    if corrupt is not None and corrupt not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corrupt!r}")
    rect_fields = ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")
    j0 = JOINTS[IMAGES[0]]
    person0_points = _points(tuple(range(16)), j0, lambda j: VISIBILITY_CYCLE[j % len(VISIBILITY_CYCLE)])
    if corrupt == "joint_id":
        person0_points[0, 3]["id"] = 16.0
    if corrupt == "nan":
        person0_points[0, 5]["x"] = np.nan
    if corrupt == "is_visible":
        person0_points[0, 7]["is_visible"] = "yes"
    if corrupt == "missing_x":
        person0_points = _struct_array(("y", "id", "is_visible"), [{"y": 1.0, "id": 0.0, "is_visible": 1.0}])
    image0_rects = _struct_array(rect_fields, [
        {**_head_box(j0), "annopoints": {"point": person0_points}, "scale": 4.718488,
         "objpos": {"x": 966.0, "y": 340.0}},
        {"x1": 600.0, "y1": 100.0, "x2": 680.0, "y2": 190.0, "scale": 2.5, "objpos": {"x": 640.0, "y": 400.0}},
    ])  # fmt: skip

    j1 = JOINTS[IMAGES[1]]
    image1_rect = {**_head_box(j1), "annopoints": {"point": {"x": j1[9][0], "y": j1[9][1], "id": 9.0,
                   "is_visible": "1"}}, "scale": 1.761835, "objpos": {"x": 316.0, "y": 220.0}}  # fmt: skip

    j2 = JOINTS[IMAGES[2]]
    image2_rects = _struct_array(rect_fields, [
        {**_head_box(j2), "annopoints": {"point": _points(SHUFFLED_IDS, j2, lambda j: float(j not in (10, 11)))},
         "scale": 3.139233, "objpos": _empty()},
    ])  # fmt: skip

    image3_rects = _struct_array(("scale", "objpos"), [
        {"scale": 3.248877, "objpos": {"x": 809.0, "y": 403.0}},
        {"scale": 2.0, "objpos": {"x": 300.0, "y": 380.0}},
    ])  # fmt: skip

    annorects: list[Any] = [image0_rects, image1_rect, image2_rects, image3_rects, _empty()]
    annolist = _struct_array(("image", "annorect", "frame_sec", "vididx"), [
        {"image": {"name": name}, "annorect": rects,
         "frame_sec": 10.0 if k == 0 else _empty(), "vididx": float(k + 1) if k < 2 else _empty()}
        for k, (name, rects) in enumerate(zip(IMAGES, annorects))
    ])  # fmt: skip
    single_person = np.empty((len(IMAGES), 1), dtype=object)
    for k, value in enumerate((1.0, 1.0, np.array([[1.0]]), np.array([[1.0], [2.0]]), _empty())):
        single_person[k, 0] = value
    act = _struct_array(("act_name", "cat_name", "act_id"), [
        {"act_name": "curling", "cat_name": "sports", "act_id": 1.0} if k == 0 else {"act_id": -1.0}
        for k in range(len(IMAGES))
    ], shape=(len(IMAGES), 1))  # fmt: skip
    video_list = np.empty((1, 2), dtype=object)
    video_list[0, 0], video_list[0, 1] = "synthVid0001", "synthVid0002"
    img_train = np.array([IMG_TRAIN], dtype=np.float64)
    if corrupt == "img_train":
        img_train[0, 1] = 2.0

    release: dict[str, Any] = {"annolist": annolist, "img_train": img_train, "version": "12",
                               "single_person": single_person, "act": act, "video_list": video_list}  # fmt: skip
    if corrupt == "no_annolist":
        del release["annolist"]
    return release


def write_mpii_release(path: Path, corrupt: str | None = None) -> Path:
    """Write the fixture (or a corrupted variant) to `path` as a MATLAB v5 file; returns `path`."""
    from scipy.io import savemat

    savemat(str(path), {"RELEASE": build_release(corrupt)}, do_compression=True)
    return path


if __name__ == "__main__":
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    write_mpii_release(FIXTURE)
