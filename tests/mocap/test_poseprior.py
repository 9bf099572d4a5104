"""Pose Prior reader: layout, units, axes, the left/right evidence, and bad input.

The release may not be embedded: the tests on real data read ../shared/data/poseprior and skip without it;
layout and error tests use small .mat files written here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from posebank.dataset_manifest import load_dataset_manifest
from posebank.errors import MocapParseError
from posebank.mocap.poseprior import (
    ASF_UNIT_M,
    DROPPED_COLUMN,
    EDGES_17,
    JOINT_NAMES,
    PARENTS,
    POINT_17_COLUMNS,
    UPPER_BODY,
    read_poseprior,
    restore_thorax,
    sides_agree,
)
from posebank.skeleton import J17_NAMES, get_skeleton, to_canonical


@pytest.fixture(scope="module")
def release(shared_data: Path) -> Path:
    folder = shared_data / "poseprior"
    if not folder.is_dir():
        pytest.skip(f"Pose Prior release not found at {folder}")
    return folder


@pytest.fixture(scope="module")
def motion(release: Path):
    return read_poseprior(release / "testingSet.mat")


def _joint(motion, name: str) -> np.ndarray:
    return motion.positions_m[:, JOINT_NAMES.index(name)]


def _length(motion, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(_joint(motion, a) - _joint(motion, b), axis=-1)


# ---------------------------------------------------------------------------------------------------
# Layout and units


def test_shapes_and_metadata(motion, release: Path) -> None:
    assert motion.positions_m.shape == (1000, 19, 3)
    assert motion.joint_names == JOINT_NAMES and motion.parents == PARENTS
    assert motion.fps == 1.0  # an unordered set: not a frame rate
    assert (motion.source, motion.subject, motion.sequence) == ("poseprior", "poseprior", "testingSet")
    np.testing.assert_array_equal(motion.frame_numbers, np.arange(1000))
    assert motion.path == str(release / "testingSet.mat")


def test_positions_are_s_in_metres_without_axis_change(motion, release: Path) -> None:
    s = loadmat(release / "testingSet.mat")["S"]
    f = 417
    np.testing.assert_allclose(motion.positions_m[f, :18], s[3 * f : 3 * f + 3].T * ASF_UNIT_M, rtol=0, atol=1e-15)
    assert np.abs(_joint(motion, "root")).max() == 0.0  # root-centred poses


def test_parents_follow_the_release_edges(release: Path) -> None:
    for name in ("skeleton_17Pts.mat", "staticPose.mat", "testPose.mat", "jointAngleModel_v2.mat"):
        edges = loadmat(release / name)["edges"]
        assert [tuple(int(v) for v in e) for e in edges] == list(EDGES_17), name
    for parent, child in EDGES_17:
        if (parent, child) != (2, 9):
            assert PARENTS[POINT_17_COLUMNS[child - 1]] == POINT_17_COLUMNS[parent - 1]
    # The 17-point edge upper torso -> head runs through the dropped mid-neck column.
    assert PARENTS[JOINT_NAMES.index("head_base")] == DROPPED_COLUMN
    assert PARENTS[DROPPED_COLUMN] == JOINT_NAMES.index("upper_torso")


def test_bones_have_one_length_and_plausible_metres(motion) -> None:
    for child, parent in enumerate(PARENTS):
        if parent < 0 or JOINT_NAMES[child] == "upper_torso":
            continue
        lengths = _length(motion, JOINT_NAMES[child], JOINT_NAMES[parent])
        assert np.ptp(lengths) < 1e-9, JOINT_NAMES[child]  # retargeted to one skeleton
    # The spine is two ASF bones (lowerback + upperback) that bend: the only length that varies.
    spine_units = _length(motion, "upper_torso", "root") / ASF_UNIT_M
    assert 4.1 < spine_units.min() and spine_units.max() < 4.2 and np.ptp(spine_units) > 0.05
    legs = _length(motion, "left_hip", "left_knee") + _length(motion, "left_knee", "left_ankle")
    assert np.all((0.7 < legs) & (legs < 1.0))  # 0.87 m: ASF units, not cm or inches


def test_head_to_ankle_heights(motion) -> None:
    ankles = (_joint(motion, "left_ankle") + _joint(motion, "right_ankle")) / 2
    distance = np.linalg.norm(_joint(motion, "head_centre_est") - ankles, axis=-1)
    # A short skeleton (no thorax bone): 1.42 m when stretched out; lower when crouching or bending.
    assert 1.3 < distance.max() < 2.0
    assert np.mean((distance > 1.0) & (distance < 2.0)) > 0.9


def _torso_m(motion) -> np.ndarray:
    shoulders = (_joint(motion, "left_shoulder") + _joint(motion, "right_shoulder")) / 2
    hips = (_joint(motion, "left_hip") + _joint(motion, "right_hip")) / 2
    return np.linalg.norm(shoulders - hips, axis=-1)


def test_restore_thorax_gives_a_torso_of_the_cmu_subjects_and_moves_nothing_else(motion) -> None:
    restored = restore_thorax(motion)
    # Mid-hip to mid-shoulder: CMU 09, 131, 135 and HDM05 bd, bk, dg of the sample have 0.46-0.53 m on average.
    assert _torso_m(motion).mean() < 0.42
    assert 0.46 < _torso_m(restored).mean() < 0.53
    # The spine grows by one bone of half the release's two, along itself.
    before, after = _length(motion, "upper_torso", "root"), _length(restored, "upper_torso", "root")
    np.testing.assert_allclose(after - before, np.median(before) / 2, rtol=1e-12)
    spine = lambda m: (_joint(m, "upper_torso") - _joint(m, "root")) / _length(m, "upper_torso", "root")[:, None]
    np.testing.assert_allclose(spine(restored), spine(motion), atol=1e-12)
    # Every other bone keeps its length, and the joints below the spine do not move.
    for child, parent in enumerate(PARENTS):
        if parent >= 0 and JOINT_NAMES[child] != "upper_torso":
            np.testing.assert_allclose(_length(restored, JOINT_NAMES[child], JOINT_NAMES[parent]),
                                       _length(motion, JOINT_NAMES[child], JOINT_NAMES[parent]), atol=1e-12)  # fmt: skip
    lower = [i for i, n in enumerate(JOINT_NAMES) if n not in UPPER_BODY]
    np.testing.assert_array_equal(restored.positions_m[:, lower], motion.positions_m[:, lower])


def test_dropped_column_is_the_mid_neck_and_head_is_the_skull_base(motion) -> None:
    units = {
        "lowerneck": _length(motion, "mid_neck", "upper_torso") / ASF_UNIT_M,
        "upperneck": _length(motion, "head_base", "mid_neck") / ASF_UNIT_M,
        "left clavicle": _length(motion, "left_shoulder", "upper_torso") / ASF_UNIT_M,
        "right clavicle": _length(motion, "right_shoulder", "upper_torso") / ASF_UNIT_M,
    }
    # CMU subjects 09, 131, 135: lowerneck 1.61-1.89, upperneck 1.60-1.88, clavicles 3.14-3.60 units.
    assert 1.6 < units["lowerneck"].mean() < 1.9 and 1.6 < units["upperneck"].mean() < 1.9
    assert 3.1 < units["left clavicle"].mean() < 3.7 and 3.1 < units["right clavicle"].mean() < 3.7
    # Both clavicles start at the upper torso point: it is the neck base, two neck bones below the head point.
    head_offset = _joint(motion, "head_centre_est") - _joint(motion, "head_base")
    np.testing.assert_allclose(np.linalg.norm(head_offset, axis=-1), units["upperneck"] * ASF_UNIT_M / 2, rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# Axes and sides


def test_plus_y_is_up(motion) -> None:
    spine = _joint(motion, "upper_torso") - _joint(motion, "root")
    assert np.all(spine[:, 1] > 0)
    assert np.all(_joint(motion, "head_base")[:, 1] > 0)
    assert np.all(_joint(motion, "left_ankle")[:, 1] < 0) and np.all(_joint(motion, "right_ankle")[:, 1] < 0)
    tilt_deg = np.degrees(np.arccos(spine[:, 1] / np.linalg.norm(spine, axis=-1)))
    assert np.median(tilt_deg) < 30


def test_points_named_left_are_on_the_left(motion) -> None:
    agree = sides_agree(motion.positions_m)
    assert agree.mean() > 0.95  # 1000 of 1000 with this release
    # The check can fail: the mirror image (x negated) puts every left point on the right.
    mirrored = motion.positions_m * np.array([-1.0, 1.0, 1.0])
    assert sides_agree(mirrored).mean() < 0.05


@pytest.mark.parametrize("side", ["left", "right"])
def test_feet_point_the_way_the_knees_bend(motion, side: str) -> None:
    """Forward from the feet (used for the sides) agrees with forward from the knees, which bend forward only."""
    hip, knee, ankle, foot = (_joint(motion, f"{side}_{n}") for n in ("hip", "knee", "ankle", "foot"))
    knee_out = knee - (hip + ankle) / 2  # a bent knee sticks out in front of the hip-ankle line
    bent = np.linalg.norm(knee_out, axis=-1) > 0.02
    assert bent.mean() > 0.9
    assert np.mean(np.einsum("ni,ni->n", knee_out, foot - ankle)[bent] > 0) > 0.95  # 99% with this release


def test_release_cameras_are_proper_rotations(release: Path) -> None:
    data = loadmat(release / "testingSet.mat")
    rotations = data["Rs"].reshape(1000, 3, 3)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-9)
    projected = np.einsum("fij,fjk->fik", rotations[:, :2], data["S"].reshape(1000, 3, 18))
    np.testing.assert_allclose(projected, data["W"].reshape(1000, 2, 18), atol=1e-9)
    # The image y axis points down the world: in every camera it has a negative +Y component.
    assert np.all(rotations[:, 1, 1] < 0)


# ---------------------------------------------------------------------------------------------------
# Manifest


def test_manifest_maps_j17_and_checksums_match(release: Path, motion) -> None:
    manifest = load_dataset_manifest("poseprior")
    assert set(manifest.joints) == set(J17_NAMES)
    poses = to_canonical(motion.positions_m, motion.joint_names, manifest.joints, get_skeleton("j17"))
    assert poses.shape == (1000, 17, 3) and np.isfinite(poses).all()
    files = sorted(p.name for p in release.iterdir() if p.is_file())
    assert sorted(manifest.sha256) == files
    for name, digest in manifest.sha256.items():
        assert hashlib.sha256((release / name).read_bytes()).hexdigest() == digest, name


# ---------------------------------------------------------------------------------------------------
# Small written files (no release needed)


def _write(tmp_path: Path, name: str = "poses.mat", **variables) -> Path:
    path = tmp_path / name
    savemat(path, variables)
    return path


def test_reads_a_written_matrix(tmp_path: Path) -> None:
    s = np.arange(2 * 3 * 18, dtype=np.float64).reshape(6, 18)
    m = read_poseprior(_write(tmp_path, S=s), subject="x", sequence="y")
    assert m.positions_m.shape == (2, 19, 3) and (m.subject, m.sequence) == ("x", "y")
    np.testing.assert_allclose(m.positions_m[1, :18], s[3:6].T * ASF_UNIT_M)
    head_base, mid_neck = m.positions_m[:, 9], m.positions_m[:, DROPPED_COLUMN]
    np.testing.assert_allclose(m.positions_m[:, 18], 1.5 * head_base - 0.5 * mid_neck)


def test_other_variable_name(tmp_path: Path) -> None:
    path = _write(tmp_path, S1=np.zeros((3, 18)))
    assert read_poseprior(path, key="S1").num_frames == 1


def _expect_error(path: Path, match: str, record: str | None = "S") -> MocapParseError:
    with pytest.raises(MocapParseError, match=match) as err:
        read_poseprior(path)
    assert err.value.path == path
    assert str(path) in str(err.value)
    if record is not None:
        assert err.value.record is not None and record in err.value.record
    return err.value


def test_missing_s(tmp_path: Path) -> None:
    path = _write(tmp_path, W=np.zeros((2, 18)), Rs=np.eye(3))
    _expect_error(path, r"no 'S' matrix \(variables: Rs, W\)")


def test_rows_not_a_multiple_of_three(tmp_path: Path) -> None:
    _expect_error(_write(tmp_path, S=np.zeros((7, 18))), "7 rows")


def test_seventeen_point_layout_is_refused(tmp_path: Path) -> None:
    _expect_error(_write(tmp_path, S=np.zeros((3, 17))), "17 columns.*17-point layout")


def test_nan_pose_is_named(tmp_path: Path) -> None:
    s = np.zeros((9, 18))
    s[7, 4] = np.nan  # pose 2, its y row
    err = _expect_error(_write(tmp_path, S=s), "pose 2", record="pose 2, rows 7-9")
    assert "1 pose(s)" in err.message


def test_text_instead_of_numbers(tmp_path: Path) -> None:
    _expect_error(_write(tmp_path, S="not poses"), "not a numeric matrix")


def test_not_a_mat_file(tmp_path: Path) -> None:
    path = tmp_path / "fake.mat"
    path.write_bytes(b"MATLAB? no, just some bytes\n" * 10)
    _expect_error(path, "not a readable MATLAB .mat file", record=None)


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "absent.mat", "no such file", record=None)
