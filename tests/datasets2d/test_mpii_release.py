"""The official MPII release reader on a fixture written in the release's exact structure and quirks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mpii_release_fixture import FIXTURE, IMAGES, SHUFFLED_IDS, JOINTS, build_release, write_mpii_release

from posebank.datasets2d import read_mpii_release, to_canonical_2d
from posebank.errors import InputError


@pytest.fixture(scope="module")
def release():
    return read_mpii_release(FIXTURE)


def test_fixture_reproduces_the_loadmat_quirks():
    """The committed file still holds the quirks (a regression guard on the fixture itself)."""
    from scipy.io import loadmat

    annolist = loadmat(str(FIXTURE), simplify_cells=True)["RELEASE"]["annolist"]
    assert isinstance(annolist[0]["annorect"], list) and len(annolist[0]["annorect"]) == 2
    assert isinstance(annolist[1]["annorect"], dict)  # one person: a single struct, not an array
    assert isinstance(annolist[1]["annorect"]["annopoints"]["point"], dict)  # one point: a single struct
    assert annolist[1]["annorect"]["annopoints"]["point"]["is_visible"] == "1"  # a string
    visibility = [p["is_visible"] for p in annolist[0]["annorect"][0]["annopoints"]["point"]]
    assert visibility[:5] == [1.0, "1", 0.0, "0", visibility[4]] and np.size(visibility[4]) == 0
    assert np.size(annolist[0]["annorect"][1]["annopoints"]) == 0  # a person without joints
    assert set(annolist[3]["annorect"][0]) == {"scale", "objpos"}  # test image: no head box, no joints
    assert np.size(annolist[4]["annorect"]) == 0  # an image without annotations


def test_committed_fixture_matches_its_generator(tmp_path: Path, release):
    fresh = read_mpii_release(write_mpii_release(tmp_path / "fresh.mat"))
    for name in ("image", "split", "person", "record", "source_annotated", "source_occluded"):
        np.testing.assert_array_equal(getattr(fresh, name), getattr(release, name))
    np.testing.assert_array_equal(fresh.source_pose_2d, release.source_pose_2d)


def test_every_annorect_is_a_person_none_dropped(release):
    # image 0: 2 people, image 1: 1, image 2: 1, image 3 (test): 2, image 4: no annorect -> nobody.
    assert release.image.tolist() == [IMAGES[0], IMAGES[0], IMAGES[1], IMAGES[2], IMAGES[3], IMAGES[3]]
    assert release.person.tolist() == [0, 1, 0, 0, 0, 1]
    assert release.record.tolist() == [0, 0, 1, 2, 3, 3]  # annolist index, as the h5's `index`
    assert release.split.tolist() == ["train"] * 4 + ["test"] * 2
    assert release.num_annotated.tolist() == [16, 0, 1, 14, 0, 0]
    assert release.source_format == "mpii_release_mat" and release.occlusion_flag


def test_is_visible_number_string_and_empty(release):
    # Person 0 of image 0: is_visible cycles 1, '1', 0, '0', [] over ids 0..15: all are annotated;
    # only 0 and '0' mark occlusion; empty means unknown, taken as not occluded.
    assert release.source_annotated[0].all()
    expected = np.array([k % 5 in (2, 3) for k in range(16)])
    np.testing.assert_array_equal(release.source_occluded[0], expected)


def test_coordinates_by_joint_id_not_point_order(release):
    pose = release.source_pose_2d
    np.testing.assert_allclose(pose[0], JOINTS[IMAGES[0]])  # 1-based MATLAB pixels, unshifted
    # Image 2 lists its points in shuffled id order and lacks the ankles (ids 0 and 5).
    missing = [j for j in range(16) if j not in SHUFFLED_IDS]
    assert missing == [0, 5]
    assert not release.source_annotated[3, missing].any() and np.isnan(pose[3, missing]).all()
    expected = np.asarray(JOINTS[IMAGES[2]])
    np.testing.assert_allclose(pose[3, list(SHUFFLED_IDS)], expected[list(SHUFFLED_IDS)])
    assert release.source_occluded[3].nonzero()[0].tolist() == [10, 11]
    # The single point of image 1 is its head top (id 9).
    assert release.source_annotated[2].nonzero()[0].tolist() == [9]
    np.testing.assert_allclose(pose[2, 9], JOINTS[IMAGES[1]][9])


def test_person_without_joints_keeps_its_metadata(release):
    assert release.num_annotated[1] == 0 and np.isnan(release.source_pose_2d[1]).all()
    np.testing.assert_allclose(release.head_box[1], [600, 100, 680, 190])
    np.testing.assert_allclose(release.extras["objpos"][1], [640, 400])
    assert release.extras["scale"][1] == 2.5


def test_head_box_head_size_and_test_people(release):
    box = release.head_box
    assert (box[:4, 0] < box[:4, 2]).all() and (box[:4, 1] < box[:4, 3]).all()
    np.testing.assert_allclose(release.head_size[:4], 0.6 * np.hypot(box[:4, 2] - box[:4, 0], box[:4, 3] - box[:4, 1]))
    assert np.isnan(box[4:]).all() and np.isnan(release.head_size[4:]).all()  # test images: no head box
    np.testing.assert_allclose(release.extras["objpos"][4:], [[809, 403], [300, 380]])
    assert np.isnan(release.extras["objpos"][3]).all()  # empty objpos
    person = release.person_at(4)
    assert person.head_box is None and person.head_size is None and person.image_width is None


def test_release_metadata(release):
    assert release.extras["single_person"].tolist() == [True, False, True, True, True, True]
    assert release.extras["act_id"].tolist() == [1, 1, -1, -1, -1, -1]
    assert release.extras["video"].tolist() == ["synthVid0001", "synthVid0001", "synthVid0002", "", "", ""]


def test_canonical_head_is_midpoint_and_needs_both_parts(release):
    canonical = to_canonical_2d(release, "j17")
    head = canonical.joint_names.index("head")
    upper_neck, head_top = np.asarray(JOINTS[IMAGES[0]])[[8, 9]]
    np.testing.assert_allclose(canonical.pose_2d[0, head], (upper_neck + head_top) / 2)
    # Image 1's person has only head_top: no head (both parts are needed), and nothing else.
    assert not canonical.visible[2].any() and np.isnan(canonical.pose_2d[2]).all()
    # Occlusion: joint ids 2 (r_hip) and 3 (l_hip) are occluded for person 0 -> pelvis (id 6, is_visible '1'
    # itself) is occluded only through its own flag; spine = mean(pelvis, thorax) with thorax id 7 ('0').
    names = canonical.joint_names
    occluded = dict(zip(names, canonical.occluded[0]))
    assert occluded["right_hip"] and occluded["left_hip"] and occluded["thorax"] and occluded["spine"]
    assert not occluded["pelvis"] and occluded["head"]  # head: upper_neck ('0') is occluded
    assert canonical.visible[0].all()


@pytest.mark.parametrize(
    ("corrupt", "message", "record"),
    [
        ("joint_id", "joint id 16.0 is not one of 0..15", "annorect 0, point 3"),
        ("nan", "expected two finite numbers", "point 5"),
        ("no_annolist", "missing field 'annolist'", "RELEASE"),
        ("is_visible", "is_visible", "point 7"),
        ("missing_x", "missing field 'x'", "point 0"),
        ("img_train", "img_train is 2.0", "annolist 1 (image 052475643.jpg)"),
    ],
)
def test_bad_release_names_file_and_record(tmp_path: Path, corrupt: str, message: str, record: str):
    path = write_mpii_release(tmp_path / f"{corrupt}.mat", corrupt=corrupt)
    with pytest.raises(InputError) as info:
        read_mpii_release(path)
    assert info.value.path == path
    assert message in info.value.message
    assert record in (info.value.record or "")


def test_not_a_release(tmp_path: Path):
    from scipy.io import savemat

    path = tmp_path / "other.mat"
    savemat(str(path), {"joints": np.zeros((14, 3, 2))})
    with pytest.raises(InputError, match="no RELEASE struct"):
        read_mpii_release(path)
    (tmp_path / "garbage.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(InputError, match="cannot read"):
        read_mpii_release(tmp_path / "garbage.mat")


def test_build_release_rejects_unknown_corruption():
    with pytest.raises(ValueError):
        build_release("nope")
