"""MPII JSON (HRNet-style) and h5 (Stacked Hourglass) readers: embedded fixtures and the shared sample."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from posebank.datasets2d import read_mpii_h5, read_mpii_json, to_canonical_2d
from posebank.errors import InputError


@pytest.fixture(scope="module")
def mpii_json(fixtures_dir: Path):
    return read_mpii_json(fixtures_dir / "mpii" / "mmpose_test_mpii.json", split="valid")


@pytest.fixture(scope="module")
def mpii_h5(fixtures_dir: Path):
    return read_mpii_h5(fixtures_dir / "mpii" / "valid_a_first40.h5", split="valid")


def test_json_joints_vis_means_annotated(mpii_json):
    assert len(mpii_json) == 5 and mpii_json.source_format == "mpii_json"
    assert mpii_json.split.tolist() == ["valid"] * 5
    assert not mpii_json.occlusion_flag and not mpii_json.source_occluded.any()
    # Records 2 and 3 have joints_vis 0 for both ankles, written as (-1, -1): not annotated, NaN here.
    assert mpii_json.num_annotated.tolist() == [16, 16, 14, 14, 16]
    assert not mpii_json.source_annotated[2, [0, 5]].any() and np.isnan(mpii_json.source_pose_2d[2, [0, 5]]).all()
    np.testing.assert_allclose(mpii_json.source_pose_2d[0, 8], [982.7591, 235.9694])  # unshifted
    np.testing.assert_allclose(mpii_json.extras["objpos"][0], [966.0, 340.0])
    assert mpii_json.extras["scale"][0] == pytest.approx(4.718488)
    assert np.isnan(mpii_json.head_box).all() and np.isnan(mpii_json.head_size).all()


def test_h5_missing_is_zero_occluded_keeps_coordinates(fixtures_dir: Path, mpii_h5):
    with h5py.File(fixtures_dir / "mpii" / "valid_a_first40.h5", "r") as f:
        part, visible = f["part"][()], f["visible"][()]
    zero = (part == 0).all(-1)
    assert zero.any() and ((~zero) & (visible == 0)).any()  # the fixture has both cases
    np.testing.assert_array_equal(mpii_h5.source_annotated, ~zero)
    np.testing.assert_array_equal(mpii_h5.source_occluded, ~zero & (visible == 0))
    assert np.isnan(mpii_h5.source_pose_2d[zero]).all()
    np.testing.assert_array_equal(mpii_h5.source_pose_2d[~zero], part[~zero])
    assert mpii_h5.occlusion_flag


def test_h5_names_metadata_and_image_list(fixtures_dir: Path, mpii_h5):
    listed = (fixtures_dir / "mpii" / "valid_a_first40_images.txt").read_text().split()
    assert mpii_h5.image.tolist() == listed  # imgname (|S13 bytes) decoded, equal to the list row by row
    assert mpii_h5.record[:3].tolist() == [6, 17, 27]  # annolist index (h5 `index`)
    assert mpii_h5.person[:10].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 3]
    assert mpii_h5.head_size[0] == pytest.approx(117.96219733)  # `normalize`, the PCKh head size
    assert np.isnan(mpii_h5.head_box).all()
    assert set(mpii_h5.extras) == {"h5_center", "h5_scale", "torsoangle", "row", "image_id"}


def test_json_and_h5_agree_on_the_same_people(mpii_json, mpii_h5):
    """The JSON's 5 records are the h5's first 5 rows; the h5 truncates coordinates to integers."""
    assert mpii_json.image.tolist() == mpii_h5.image[:5].tolist()
    np.testing.assert_array_equal(mpii_json.source_annotated, mpii_h5.source_annotated[:5])
    ann = mpii_json.source_annotated
    np.testing.assert_array_equal(np.floor(mpii_json.source_pose_2d[ann]), mpii_h5.source_pose_2d[:5][ann])
    # The h5 centre/scale are adjusted (scale x 1.25, centre y + 15 x scale); the JSON's are raw.
    np.testing.assert_allclose(mpii_h5.extras["h5_scale"][:5], 1.25 * mpii_json.extras["scale"], rtol=1e-5)
    expected_y = mpii_json.extras["objpos"][:, 1] + 15 * mpii_json.extras["scale"]
    np.testing.assert_allclose(mpii_h5.extras["h5_center"][:5, 1], expected_y, rtol=1e-5)


def test_h5_without_imgname_uses_the_image_list(tmp_path: Path, fixtures_dir: Path):
    src = fixtures_dir / "mpii" / "valid_a_first40.h5"
    dst = tmp_path / "cut.h5"
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for key in ("part", "visible"):
            g[key] = f[key][()]
    with pytest.raises(InputError, match="no imgname"):
        read_mpii_h5(dst)
    listed = fixtures_dir / "mpii" / "valid_a_first40_images.txt"
    annotations = read_mpii_h5(dst, image_list=listed)
    assert annotations.image.tolist() == listed.read_text().split()
    assert annotations.record.tolist() == list(range(40))  # no `index`: the row
    # A list that disagrees with imgname is refused, naming the row.
    bad = tmp_path / "bad_images.txt"
    bad.write_text("\n".join(["x.jpg"] + listed.read_text().split()[1:]) + "\n")
    with pytest.raises(InputError) as info:
        read_mpii_h5(src, image_list=bad)
    assert info.value.path == bad and info.value.record == "row 0"


def _write_h5(path: Path, **datasets) -> Path:
    with h5py.File(path, "w") as g:
        for key, value in datasets.items():
            g[key] = value
    return path


def test_bad_h5(tmp_path: Path):
    names = np.array([b"a.jpg", b"b.jpg"])
    part = np.ones((2, 16, 2))
    with pytest.raises(InputError, match="missing dataset.*visible"):
        read_mpii_h5(_write_h5(tmp_path / "a.h5", part=part, imgname=names))
    with pytest.raises(InputError, match=r"part has shape \(2, 15, 2\)"):
        read_mpii_h5(_write_h5(tmp_path / "b.h5", part=np.ones((2, 15, 2)), visible=np.ones((2, 15)), imgname=names))
    bad = part.copy()
    bad[1, 4, 0] = np.nan
    with pytest.raises(InputError) as info:
        read_mpii_h5(_write_h5(tmp_path / "c.h5", part=bad, visible=np.ones((2, 16)), imgname=names))
    assert info.value.record == "row 1 (image b.jpg), joint l_knee"
    flags = np.ones((2, 16))
    flags[0, 0] = 2
    with pytest.raises(InputError, match="visible is 2"):
        read_mpii_h5(_write_h5(tmp_path / "d.h5", part=part, visible=flags, imgname=names))


def test_bad_json(tmp_path: Path, fixtures_dir: Path):
    records = json.loads((fixtures_dir / "mpii" / "mmpose_test_mpii.json").read_text())

    def write(recs) -> Path:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(recs))
        return path

    with pytest.raises(InputError, match="expected a list"):
        read_mpii_json(write({"joints": []}))
    with pytest.raises(InputError, match="holds no records") as info:
        read_mpii_json(write([]))
    assert info.value.path == tmp_path / "bad.json"
    broken = [dict(r) for r in records]
    del broken[1]["joints_vis"]
    with pytest.raises(InputError, match="missing key.*joints_vis") as info:
        read_mpii_json(write(broken))
    assert info.value.record == "record 1"
    broken = [dict(r) for r in records]
    broken[2]["joints"] = broken[2]["joints"][:15]
    with pytest.raises(InputError, match=r"joints has shape \(15, 2\)"):
        read_mpii_json(write(broken))
    broken = [dict(r) for r in records]
    broken[3]["joints"] = [list(p) for p in broken[3]["joints"]]
    broken[3]["joints"][7][1] = float("nan")
    with pytest.raises(InputError, match="not finite") as info:
        read_mpii_json(write(broken))
    assert info.value.record == "record 3 (image 004645041.jpg), joint thorax"
    broken = [dict(r) for r in records]
    broken[0]["joints_vis"] = [2] + broken[0]["joints_vis"][1:]
    with pytest.raises(InputError, match="joints_vis is 2"):
        read_mpii_json(write(broken))


def test_shared_h5_and_json(shared_data: Path):
    h5 = read_mpii_h5(shared_data / "mpii" / "valid_a.h5", split="valid")
    assert len(h5) == 1500
    lines = (shared_data / "mpii" / "valid_a_images.txt").read_text().split()
    assert h5.image.tolist() == lines
    # Missing joints are (0, 0) with visible 0: never flagged visible in the file.
    assert h5.source_annotated.sum() == 1500 * 16 - 1532
    assert h5.source_occluded.sum() == 4960
    # The head joints are never marked occluded in the h5 (as empty is_visible in the release).
    assert not h5.source_occluded[:, [8, 9]].any()
    # Some annotated joints lie outside the image (negative coordinates): kept as they are.
    assert (h5.source_pose_2d[h5.source_annotated] < 0).any()
    json_ann = read_mpii_json(shared_data / "mpii" / "mmpose_test_mpii.json")
    assert json_ann.image.tolist() == h5.image[:5].tolist()


def test_mpii_right_is_the_persons_right(shared_data: Path):
    """Most MPII people face the camera, so the person's right shoulder/hip appear on the image left."""
    h5 = read_mpii_h5(shared_data / "mpii" / "valid_a.h5")
    canonical = to_canonical_2d(h5, "j13")
    names = canonical.joint_names
    pose, vis = canonical.pose_2d, canonical.visible
    for side in ("shoulder", "hip"):
        r, l = names.index(f"right_{side}"), names.index(f"left_{side}")
        both = vis[:, r] & vis[:, l]
        assert both.sum() > 1000
        assert np.mean(pose[both, r, 0] < pose[both, l, 0]) > 0.65
