"""Tests of the Acclaim ASF/AMC reader (posebank.mocap.asf_amc) on real files.

Fixture-based tests use tests/fixtures/cmu (09.asf, and 09_12.amc cut to 5 frames, bytes unchanged) and always
run; tests on ../shared/data (all CMU and HDM05 samples) skip when it is absent. Corrupt inputs are written to
tmp_path from the real fixture bytes.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest

from posebank.dataset_manifest import load_dataset_manifest
from posebank.errors import MocapParseError
from posebank.geometry import euler_to_matrix
from posebank.mocap.asf_amc import AsfSkeleton, forward_kinematics, read_amc, read_asf, read_motion
from posebank.skeleton import J17_NAMES, get_skeleton, to_canonical

M_PER_UNIT = 0.0254 / 0.45  # metres per CMU/HDM05 ASF length unit (":units length 0.45")
HEADER_LINES = 3  # #!OML:ASF, :FULLY-SPECIFIED, :DEGREES
LINES_PER_FRAME = 30  # frame number, root, 28 bones with dofs
FRAME1_ROOT = (9.99354, 18.0169, -23.4822, 2.25986, -28.0158, 4.83975)  # 09_12.amc line 5
UP = np.array([0.0, 1.0, 0.0])

CMU_TAKES = [
    ("cmu/subjects/09/09.asf", "cmu/subjects/09/09_12.amc"),
    ("cmu/subjects/131/131.asf", "cmu/subjects/131/131_01.amc"),
    ("cmu/subjects/131/131.asf", "cmu/subjects/131/131_03.amc"),
    ("cmu/subjects/135/135.asf", "cmu/subjects/135/135_04.amc"),
    ("cmu/subjects/135/135.asf", "cmu/subjects/135/135_08.amc"),
]
HDM05_TAKES = [
    ("hdm05/HDM_bd.asf", "hdm05/HDM_bd_depositFloorR_001_120.amc"),
    ("hdm05/HDM_bk.asf", "hdm05/HDM_bk_depositFloorR_007_120.amc"),
    ("hdm05/HDM_dg.asf", "hdm05/HDM_dg_depositFloorR_013_120.amc"),
]


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asf_09(fixtures_dir: Path) -> Path:
    return fixtures_dir / "cmu" / "09.asf"


@pytest.fixture(scope="module")
def amc_09(fixtures_dir: Path) -> Path:
    return fixtures_dir / "cmu" / "09_12_5frames.amc"


@pytest.fixture(scope="module")
def skeleton_09(asf_09: Path) -> AsfSkeleton:
    return read_asf(asf_09)


def _lines(path: Path) -> list[bytes]:
    """The file's lines with their own line endings (CRLF kept)."""
    return path.read_bytes().splitlines(keepends=True)


def _write(tmp_path: Path, name: str, lines: list[bytes]) -> Path:
    out = tmp_path / name
    out.write_bytes(b"".join(lines))
    return out


def _bone_line(frame: int, slot: int) -> int:
    """1-based line number in the 5-frame fixture of slot `slot` (0 = root) of frame `frame`."""
    return HEADER_LINES + (frame - 1) * LINES_PER_FRAME + 2 + slot


def _find(lines: list[bytes], frame: int, bone: str) -> int:
    """0-based index of `bone`'s line in `frame` of an AMC split by `_lines`."""
    start = lines.index(f"{frame}\r\n".encode())
    for i in range(start + 1, len(lines)):
        if lines[i].split()[0] == bone.encode():
            return i
    raise AssertionError(f"{bone} not in frame {frame}")


def _rotation(angles_deg: np.ndarray, axes: str) -> np.ndarray:
    """Textbook Acclaim rotation: first listed axis applied first ("XYZ" -> Rz @ Ry @ Rx)."""
    return euler_to_matrix(np.deg2rad(angles_deg)[..., ::-1], axes[::-1].lower())


def _reference_fk(skeleton: AsfSkeleton, channels: dict[str, np.ndarray]) -> np.ndarray:
    """Straightforward FK: R = R_parent C M C^T, end = end_parent + length R direction (degrees, CMU root order)."""
    root = channels["root"]
    num_frames, names = len(root), skeleton.joint_names
    positions = np.zeros((num_frames, len(names), 3))
    rotations: dict[str, np.ndarray] = {}
    positions[:, 0] = root[:, :3] * skeleton.metres_per_unit
    rotations["root"] = _rotation(root[:, 3:], "XYZ")  # orientation 0: C = I
    pending = list(skeleton.bones)
    while pending:  # parents first, without using the reader's own ordering
        bone = next(b for b in pending if b.parent in rotations)
        pending.remove(bone)
        c = euler_to_matrix(np.array(bone.axis_rad)[::-1], bone.axis_order[::-1].lower())
        m = _rotation(channels[bone.name], "".join(d[1] for d in bone.dof)) if bone.dof else np.eye(3)
        rotations[bone.name] = rotations[bone.parent] @ c @ m @ c.T
        j, p = names.index(bone.name), names.index(bone.parent)
        positions[:, j] = positions[:, p] + rotations[bone.name] @ (bone.length_m * np.array(bone.direction))
    return positions


def _left_score(positions: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(T,) cosine between the subject's left as the labels say and as anatomy says.

    The feet point forward: forward f = horizontal part of (toes end - ankle) of both feet. With +Y up in a
    right-handed frame the subject's left is up x f (a person facing +Z has its left hand on +X = Y x Z).
    The labelled left is right hip -> left hip. A mirrored or left/right-swapped reader gives -1.
    """
    j = names.index
    forward = sum(positions[:, j(f"{s}toes")] - positions[:, j(f"{s}tibia")] for s in "lr")
    forward[:, 1] = 0.0
    anatomical_left = np.cross(UP, forward)
    labelled_left = positions[:, j("lhipjoint")] - positions[:, j("rhipjoint")]
    num = np.einsum("ti,ti->t", anatomical_left, labelled_left)
    return num / np.linalg.norm(anatomical_left, axis=1) / np.linalg.norm(labelled_left, axis=1)


def _assert_bone_lengths(skeleton: AsfSkeleton, positions: np.ndarray) -> None:
    for bone in skeleton.bones:
        j = skeleton.joint_names.index(bone.name)
        p = skeleton.parents[j]
        lengths = np.linalg.norm(positions[:, j] - positions[:, p], axis=1)
        np.testing.assert_allclose(lengths, bone.length_m, rtol=0, atol=1e-6, err_msg=bone.name)


# ------------------------------------------------------------------------------------------------
# ASF (fixture)
# ------------------------------------------------------------------------------------------------


def test_asf_units_root_and_bones(skeleton_09: AsfSkeleton) -> None:
    sk = skeleton_09
    assert sk.name == "VICON"
    assert (sk.length_scale, sk.angle_unit, sk.mass) == (0.45, "deg", 1.0)
    assert sk.metres_per_unit == pytest.approx(M_PER_UNIT)
    assert sk.root_order == ("tx", "ty", "tz", "rx", "ry", "rz")
    assert sk.root_axis == "XYZ"
    assert sk.root_position_m == (0.0, 0.0, 0.0) and sk.root_orientation_rad == (0.0, 0.0, 0.0)
    assert len(sk.bones) == 30
    assert sk.joint_names[:3] == ("root", "lhipjoint", "lfemur") and len(sk.joint_names) == 31

    lfemur = sk.bone("lfemur")
    assert lfemur.id == 2
    assert lfemur.length_m == pytest.approx(7.54288 * M_PER_UNIT, abs=1e-12)
    np.testing.assert_allclose(lfemur.direction, (0.34202, -0.939693, 0), atol=1e-6)
    assert np.linalg.norm(lfemur.direction) == pytest.approx(1.0)
    np.testing.assert_allclose(lfemur.axis_rad, np.deg2rad([0, 0, 20]))
    assert lfemur.axis_order == "XYZ"
    assert lfemur.dof == ("rx", "ry", "rz")
    assert sk.bone("lhipjoint").dof == ()  # no dof: absent from the AMC, still a joint
    assert sk.bone("lclavicle").dof == ("ry", "rz")
    with pytest.raises(KeyError, match="nosuchbone"):
        sk.bone("nosuchbone")


def test_asf_limits_over_several_lines_and_three_digit_exponents(skeleton_09: AsfSkeleton) -> None:
    assert skeleton_09.bone("lfemur").limits == ((-160.0, 20.0), (-70.0, 70.0), (-60.0, 70.0))
    assert skeleton_09.bone("ltibia").limits == ((-10.0, 170.0),)
    # "axis -90 7.62852e-016 20 XYZ" and "direction 1.53513e-011 -4.21834e-011 1"
    assert skeleton_09.bone("lfoot").axis_rad[1] == pytest.approx(np.deg2rad(7.62852e-16), rel=1e-12)
    assert skeleton_09.bone("ltoes").direction[0] == pytest.approx(1.53513e-11, rel=1e-5)


def test_asf_hierarchy_and_parents(skeleton_09: AsfSkeleton) -> None:
    sk = skeleton_09
    assert sk.hierarchy[0] == ("root", ("lhipjoint", "rhipjoint", "lowerback"))
    parent = {name: sk.joint_names[p] if p >= 0 else None for name, p in zip(sk.joint_names, sk.parents)}
    assert parent["root"] is None
    assert parent["lfemur"] == "lhipjoint" and parent["ltibia"] == "lfemur"
    assert parent["lclavicle"] == "thorax" and parent["lthumb"] == "lwrist" and parent["head"] == "upperneck"
    order = [sk.bones[i].name for i in sk.fk_order]
    assert all(sk.bone(n).parent == "root" or order.index(sk.bone(n).parent) < order.index(n) for n in order)


# ------------------------------------------------------------------------------------------------
# AMC and FK (fixture)
# ------------------------------------------------------------------------------------------------


def test_amc_values_and_frame_numbers(skeleton_09: AsfSkeleton, amc_09: Path) -> None:
    amc = read_amc(amc_09, skeleton_09)
    assert amc.num_frames == 5 and amc.frame_numbers.tolist() == [1, 2, 3, 4, 5]
    assert amc.angle_unit == "deg"
    assert amc.channels["root"].shape == (5, 6) and amc.channels["root"].dtype == np.float64
    assert tuple(amc.channels["root"][0]) == FRAME1_ROOT
    assert amc.channels["rclavicle"][0].tolist() == [-2.9768e-14, -2.5842e-15]  # 3-digit exponents, exact
    assert amc.channels["rtibia"].shape == (5, 1) and amc.channels["rtibia"][0, 0] == 38.1946
    assert amc.channels["root"][1, 0] == 9.91432  # frame 2
    assert "lhipjoint" not in amc.channels  # bones without dof have no AMC line
    assert set(amc.channels) == {"root"} | {b.name for b in skeleton_09.bones if b.dof}


def test_frame1_root_position_in_metres(asf_09: Path, amc_09: Path) -> None:
    motion = read_motion(asf_09, amc_09, source="cmu", subject="09", sequence="09_12")
    expected = np.array(FRAME1_ROOT[:3]) * 0.0254 / 0.45
    np.testing.assert_allclose(motion.positions_m[0, 0], expected, rtol=0, atol=1e-12)


def test_read_motion_contract(asf_09: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    motion = read_motion(asf_09, amc_09, source="cmu", subject="09", sequence="09_12")
    assert motion.positions_m.shape == (5, 31, 3) and motion.positions_m.dtype == np.float64
    assert motion.joint_names == skeleton_09.joint_names and motion.joint_names[0] == "root"
    assert motion.parents[0] == -1 and motion.parents[motion.joint_index("lfemur")] == motion.joint_index("lhipjoint")
    assert motion.frame_numbers.tolist() == [1, 2, 3, 4, 5]
    assert (motion.fps, motion.source, motion.subject, motion.sequence) == (120.0, "cmu", "09", "09_12")
    assert motion.path == str(amc_09)
    assert np.isfinite(motion.positions_m).all()


def test_bone_lengths_constant_fixture(skeleton_09: AsfSkeleton, amc_09: Path) -> None:
    amc = read_amc(amc_09, skeleton_09)
    _assert_bone_lengths(skeleton_09, forward_kinematics(skeleton_09, amc.channels))


def test_fk_matches_textbook_formula(skeleton_09: AsfSkeleton, amc_09: Path) -> None:
    amc = read_amc(amc_09, skeleton_09)
    got = forward_kinematics(skeleton_09, amc.channels, angle_unit="deg")
    np.testing.assert_allclose(got, _reference_fk(skeleton_09, amc.channels), rtol=0, atol=1e-12)


def test_zero_channels_give_the_asf_rest_pose(skeleton_09: AsfSkeleton) -> None:
    channels = {name: np.zeros((2, n)) for name, n in skeleton_09.channel_sizes.items() if n}
    positions = forward_kinematics(skeleton_09, channels)
    names = skeleton_09.joint_names
    for bone in skeleton_09.bones:
        j, p = names.index(bone.name), names.index(bone.parent)
        rest = np.array(bone.direction) * bone.length_m
        np.testing.assert_allclose(positions[:, j] - positions[:, p], [rest, rest], rtol=0, atol=1e-12)


def test_fk_rejects_missing_or_misshaped_channels(skeleton_09: AsfSkeleton) -> None:
    channels = {name: np.zeros((2, n)) for name, n in skeleton_09.channel_sizes.items() if n}
    with pytest.raises(ValueError, match="lfemur"):
        forward_kinematics(skeleton_09, {k: v for k, v in channels.items() if k != "lfemur"})
    with pytest.raises(ValueError, match="ltibia"):
        forward_kinematics(skeleton_09, {**channels, "ltibia": np.zeros((2, 2))})


# A one-metre-unit skeleton (":units length 0.0254": 1 unit = 1 m) to check the conventions by hand.
_SYNTHETIC_ASF = b"""# synthetic
:version 1.10
:name test
:units
  mass 1.0
  length 0.0254
  angle deg
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name a
     direction 0 0 1
     length 1
     axis 0 0 0 XYZ
    dof rx ry
  end
  begin
     id 2
     name b
     direction 1 0 0
     length 1
     axis 0 90 0 XYZ
    dof rx
  end
  begin
     id 3
     name c
     direction 0 1 0
     length 2
     axis 0 0 0 XYZ
    dof tx rx l ty
    limits (-inf inf)
           (-180 180) (0 1)
           (-inf inf)
  end
:hierarchy
  begin
    root a
    a b c
  end
"""


def test_rotation_conventions_by_hand(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    asf = tmp_path / "t.asf"
    asf.write_bytes(_SYNTHETIC_ASF)
    # Frame 1: a has rx=90, ry=90. First listed applied first: Ry(90) @ Rx(90) @ (0,0,1) = (0,-1,0)
    # (the other order would give (1,0,0)). Frame 2: b has rx=90 about its local x = C @ x = Ry(90) x = -Z,
    # so its direction (1,0,0) turns to (0,-1,0) (ignoring C would leave it at (1,0,0)).
    amc = tmp_path / "t.amc"
    amc.write_bytes(
        b":FULLY-SPECIFIED\n:DEGREES\n"
        b"1\nroot 1 2 3 0 0 0\na 90 90\nb 0\nc 0 0 0 0\n"
        b"2\nroot 0 0 0 0 0 0\na 0 0\nb 90\nc 5 30 7 6\n"
        b"3\nroot 0 0 0 0 90 0\na 0 0\nb 0\nc 0 0 0 0\n"
    )
    sk = read_asf(asf)
    assert sk.metres_per_unit == pytest.approx(1.0)
    assert sk.bone("c").limits == ((-np.inf, np.inf), (-180, 180), (0, 1), (-np.inf, np.inf))
    channels = read_amc(amc, sk)
    # dof "tx rx l ty": the values land in the file's columns
    np.testing.assert_array_equal(channels.channels["c"], [[0, 0, 0, 0], [5, 30, 7, 6], [0, 0, 0, 0]])
    with caplog.at_level(logging.WARNING, logger="posebank.mocap.asf_amc"):
        pos = forward_kinematics(sk, channels.channels)
    assert "ignored" in caplog.text  # tx/ty/l are parsed but do not move joints
    a, b, c = (sk.joint_names.index(n) for n in "abc")
    np.testing.assert_allclose(pos[0, 0], [1, 2, 3], atol=1e-12)
    np.testing.assert_allclose(pos[0, a], [1, 1, 3], atol=1e-12)
    np.testing.assert_allclose(pos[1, b] - pos[1, a], [0, -1, 0], atol=1e-12)
    # c: rx=30 about X turns (0,2,0) into (0, 2cos30, 2sin30); translation/length dofs change nothing
    np.testing.assert_allclose(pos[1, c] - pos[1, a], [0, 2 * np.cos(np.pi / 6), 2 * np.sin(np.pi / 6)], atol=1e-12)
    # Frame 3: root ry=+90 is right-handed about +Y: a's direction +Z turns to +X.
    np.testing.assert_allclose(pos[2, a] - pos[2, 0], [1, 0, 0], atol=1e-12)


def test_radians_from_asf_and_amc(tmp_path: Path) -> None:
    asf = tmp_path / "t.asf"
    text = _SYNTHETIC_ASF.replace(b"angle deg", b"angle rad").replace(b"axis 0 90 0", b"axis 0 1.5707963267948966 0")
    asf.write_bytes(text)
    sk = read_asf(asf)
    assert sk.angle_unit == "rad" and sk.bone("b").axis_rad[1] == pytest.approx(np.pi / 2)
    amc = tmp_path / "t.amc"
    body = b"1\nroot 0 0 0 0 0 0\na 0 0\nb 1.5707963267948966\nc 0 0 0 0\n"
    amc.write_bytes(body)  # no :DEGREES: the ASF unit (rad) applies
    channels = read_amc(amc, sk)
    assert channels.angle_unit == "rad"
    pos = forward_kinematics(sk, channels.channels, angle_unit=channels.angle_unit)
    np.testing.assert_allclose(pos[0, 2] - pos[0, 1], [0, -1, 0], atol=1e-12)
    amc.write_bytes(b":RADIANS\n" + body)
    assert read_amc(amc, read_asf(asf)).angle_unit == "rad"


# ------------------------------------------------------------------------------------------------
# quirks (fixture-based, always run)
# ------------------------------------------------------------------------------------------------


def test_unknown_sections_name_namespace_skin_and_comments(
    tmp_path: Path, asf_09: Path, skeleton_09: AsfSkeleton
) -> None:
    lines = _lines(asf_09)
    assert lines[3] == b":name VICON\r\n"
    lines[3:4] = [b":name Michael Jackson\r\n", b":namespace MJACKSON\r\n", b":skin some/file.obj\r\n"]
    lines.insert(8, b"  # a comment line\r\n")
    lines = [line.replace(b"length 7.54288", b"length 7.54288 # inline comment") for line in lines]
    sk = read_asf(_write(tmp_path, "131like.asf", lines))
    assert sk.name == "Michael Jackson"
    assert [b.name for b in sk.bones] == [b.name for b in skeleton_09.bones]
    assert sk.bones == skeleton_09.bones and sk.length_scale == 0.45


def test_latin1_byte_in_amc_header(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    lines = _lines(amc_09)
    lines[0] = b"#!OML:ASF X:\\f\xfcr Bonn\\!DataBase\\Bastian.ASF\r\n"  # as HDM05: not valid UTF-8
    got = read_amc(_write(tmp_path, "latin1.amc", lines), skeleton_09)
    want = read_amc(amc_09, skeleton_09)
    assert all(np.array_equal(got.channels[k], want.channels[k]) for k in want.channels)


def test_mixed_line_endings(tmp_path: Path, asf_09: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    # Every other line LF (as HDM05 frame-number lines), the rest CRLF; same for the ASF.
    amc_lines = [line.rstrip(b"\r\n") + (b"\n" if i % 2 else b"\r\n") for i, line in enumerate(_lines(amc_09))]
    asf_lines = [line.rstrip(b"\r\n") + (b"\n" if i % 3 else b"\r\n") for i, line in enumerate(_lines(asf_09))]
    sk = read_asf(_write(tmp_path, "mixed.asf", asf_lines))
    assert sk.bones == skeleton_09.bones
    got = read_amc(_write(tmp_path, "mixed.amc", amc_lines), sk)
    want = read_amc(amc_09, skeleton_09)
    assert all(np.array_equal(got.channels[k], want.channels[k]) for k in want.channels)
    assert got.frame_numbers.tolist() == [1, 2, 3, 4, 5]


def test_angles_beyond_360_are_valid(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    lines = _lines(amc_09)
    i = _find(lines, 1, "root")
    lines[i] = b"root 9.99354 18.0169 -23.4822 722.25986 -388.0158 -355.16025\r\n"  # +720, -360, -360
    i = _find(lines, 1, "rtibia")
    lines[i] = b"rtibia 758.1946\r\n"  # +720
    got = forward_kinematics(skeleton_09, read_amc(_write(tmp_path, "wrap.amc", lines), skeleton_09).channels)
    want = forward_kinematics(skeleton_09, read_amc(amc_09, skeleton_09).channels)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_irregular_file_reads_like_the_regular_one(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    """Comments between frames and bones in another order (the line-by-line path) give the same values."""
    lines = _lines(amc_09)
    start = _find(lines, 3, "root")
    block = lines[start : start + LINES_PER_FRAME - 1]
    lines[start : start + LINES_PER_FRAME - 1] = block[::-1]
    lines.insert(start, b"# a comment between frames\r\n")
    lines.insert(start, b"\r\n")
    got = read_amc(_write(tmp_path, "irregular.amc", lines), skeleton_09)
    want = read_amc(amc_09, skeleton_09)
    assert got.frame_numbers.tolist() == want.frame_numbers.tolist()
    assert set(got.channels) == set(want.channels)
    assert all(np.array_equal(got.channels[k], want.channels[k]) for k in want.channels)


def test_left_is_the_subjects_left_fixture(asf_09: Path, amc_09: Path) -> None:
    motion = read_motion(asf_09, amc_09, source="cmu", subject="09", sequence="09_12")
    assert (_left_score(motion.positions_m, motion.joint_names) > 0.9).all()
    mirrored = motion.positions_m * np.array([-1.0, 1.0, 1.0])  # what a mirroring bug would produce
    assert (_left_score(mirrored, motion.joint_names) < -0.9).all()


def _canonical(motion, dataset: str) -> np.ndarray:
    joints = load_dataset_manifest(dataset).joints
    return to_canonical(motion.positions_m, motion.joint_names, joints, get_skeleton("j17"))


def _assert_standing(j17: np.ndarray) -> None:
    """Frame (17, 3) of a standing person, j17 order: head ~1.5 m above the ankles, +Y up, torso in order."""
    y = {name: j17[J17_NAMES.index(name), 1] for name in J17_NAMES}
    ankles = (y["right_ankle"] + y["left_ankle"]) / 2
    hips = (y["right_hip"] + y["left_hip"]) / 2
    assert 1.35 <= y["head"] - ankles <= 1.75
    assert y["head"] > y["neck"] > y["thorax"] > y["spine"] > y["pelvis"] > hips
    assert hips > (y["right_knee"] + y["left_knee"]) / 2 > ankles
    pelvis_to_thorax = y["thorax"] - y["pelvis"]
    assert abs(y["spine"] - y["pelvis"] - pelvis_to_thorax / 2) < 0.1 * pelvis_to_thorax  # spine mid torso


def test_standing_frame_fixture(asf_09: Path, amc_09: Path) -> None:
    motion = read_motion(asf_09, amc_09, source="cmu", subject="09", sequence="09_12")
    _assert_standing(_canonical(motion, "cmu")[0])


@pytest.mark.parametrize("dataset", ["cmu", "hdm05"])
def test_manifest_joint_tables(dataset: str, skeleton_09: AsfSkeleton) -> None:
    manifest = load_dataset_manifest(dataset)
    raw = manifest.raw
    assert raw["name"] == dataset and raw["frame_rate"] == 120
    for key in ("title", "url", "licence", "citation", "units", "layout"):
        assert raw[key]
    table = manifest.joints
    assert set(table) == set(J17_NAMES)
    # HDM05 uses the CMU bone names: every source name is a joint of the ASF skeleton
    assert {n for names in table.values() for n in names} <= set(skeleton_09.joint_names)


# ------------------------------------------------------------------------------------------------
# bad input (fixture bytes, corrupted in tmp_path)
# ------------------------------------------------------------------------------------------------


def _amc_error(tmp_path: Path, skeleton: AsfSkeleton, lines: list[bytes], name: str = "bad.amc") -> MocapParseError:
    path = _write(tmp_path, name, lines)
    with pytest.raises(MocapParseError) as info:
        read_amc(path, skeleton)
    assert name in str(info.value)
    return info.value


def test_truncated_last_frame(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    lines = _lines(amc_09)
    cut = lines[: _find(lines, 5, "rfemur")]  # frame 5 ends after rthumb...lthumb: rfemur..ltoes are lost
    err = _amc_error(tmp_path, skeleton_09, cut)
    assert err.record == "frame 5" and err.line == _bone_line(5, 0) - 1
    assert f"bad.amc:{err.line} (frame 5)" in str(err)
    assert "rfemur" in str(err) and "truncated" in str(err)


def test_truncated_in_the_middle_of_a_line(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    lines = _lines(amc_09)
    i = _find(lines, 5, "lfoot")
    cut = lines[:i] + [b"lfoot -10.5"]  # the file stops inside lfoot's line (2 values expected)
    err = _amc_error(tmp_path, skeleton_09, cut)
    assert err.line == i + 1 and f"bad.amc:{i + 1}" in str(err)
    assert "lfoot" in str(err) and "truncated" in str(err)


def test_frame_missing_a_bone_line(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    lines = _lines(amc_09)
    del lines[_find(lines, 3, "lradius")]
    err = _amc_error(tmp_path, skeleton_09, lines)
    assert err.record == "frame 3" and "(frame 3)" in str(err) and "lradius" in str(err)
    assert "truncated" not in str(err)


def test_unknown_bone(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    lines = _lines(amc_09)
    i = _find(lines, 2, "lradius")
    lines[i] = lines[i].replace(b"lradius", b"lradiux")
    err = _amc_error(tmp_path, skeleton_09, lines)
    assert err.line == i + 1 and f"bad.amc:{i + 1} (frame 2)" in str(err) and "lradiux" in str(err)


@pytest.mark.parametrize(
    ("token", "kind"),
    [(b"abc", "non-numeric"), (b"1.5.3", "non-numeric"), (b"nan", "non-finite"), (b"-inf", "non-finite")],
)
def test_bad_number(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton, token: bytes, kind: str) -> None:
    lines = _lines(amc_09)
    i = _find(lines, 4, "rhumerus")
    parts = lines[i].split()
    lines[i] = b" ".join([parts[0], parts[1], token, parts[3]]) + b"\r\n"
    err = _amc_error(tmp_path, skeleton_09, lines)
    assert err.line == i + 1 and f"bad.amc:{i + 1}" in str(err)
    assert kind in str(err) and token.decode() in str(err)


def test_wrong_number_of_values(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    lines = _lines(amc_09)
    i = _find(lines, 2, "rtibia")
    lines[i] = b"rtibia 38.1946 1.0\r\n"
    err = _amc_error(tmp_path, skeleton_09, lines)
    assert err.line == i + 1 and f"bad.amc:{i + 1} (frame 2)" in str(err)
    assert "rtibia" in str(err) and "1 value" in str(err) and "found 2" in str(err)


def test_frame_numbers_must_increase(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    lines = _lines(amc_09)
    i = lines.index(b"4\r\n")
    lines[i] = b"2\r\n"
    err = _amc_error(tmp_path, skeleton_09, lines)
    assert err.line == i + 1 and "frame number 2" in str(err)


def test_empty_and_header_only_amc(tmp_path: Path, amc_09: Path, skeleton_09: AsfSkeleton) -> None:
    assert "empty" in str(_amc_error(tmp_path, skeleton_09, [], "empty.amc"))
    assert "empty" in str(_amc_error(tmp_path, skeleton_09, [b"\r\n", b"  \n"], "blank.amc"))
    err = _amc_error(tmp_path, skeleton_09, _lines(amc_09)[:HEADER_LINES], "header.amc")
    assert "no frames" in str(err)
    with pytest.raises(MocapParseError, match="missing.amc"):
        read_amc(tmp_path / "missing.amc", skeleton_09)


def _asf_error(tmp_path: Path, lines: list[bytes], name: str = "bad.asf") -> MocapParseError:
    with pytest.raises(MocapParseError) as info:
        read_asf(_write(tmp_path, name, lines))
    assert name in str(info.value)
    return info.value


def test_asf_without_bonedata(tmp_path: Path, asf_09: Path) -> None:
    lines = _lines(asf_09)
    cut = lines[: lines.index(b":bonedata\r\n")]
    assert ":bonedata" in str(_asf_error(tmp_path, cut))
    assert "empty" in str(_asf_error(tmp_path, [], "empty.asf"))


def test_asf_hierarchy_names_undefined_bone(tmp_path: Path, asf_09: Path) -> None:
    lines = _lines(asf_09)
    i = lines.index(b"    lhumerus lradius\r\n")
    lines[i] = b"    lhumerus lradius lelbowpad\r\n"
    err = _asf_error(tmp_path, lines)
    assert err.line == i + 1 and f"bad.asf:{i + 1}" in str(err) and "lelbowpad" in str(err)


def test_asf_bone_without_parent_or_truncated(tmp_path: Path, asf_09: Path) -> None:
    lines = _lines(asf_09)
    orphan = [line for line in lines if line != b"    lhumerus lradius\r\n"]
    assert "lradius" in str(_asf_error(tmp_path, orphan, "orphan.asf"))
    cut = lines[: lines.index(b":hierarchy\r\n") - 3]  # stops inside the last bone block
    assert "hierarchy" in str(_asf_error(tmp_path, cut, "cut.asf"))
    i = lines.index(b"     length 7.54288  \r\n")
    bad = lines[:i] + [b"     length seven\r\n"] + lines[i + 1 :]
    err = _asf_error(tmp_path, bad, "nan.asf")
    assert err.line == i + 1 and "seven" in str(err)


# ------------------------------------------------------------------------------------------------
# real files in ../shared/data (skipped when absent)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("asf", "amc"), CMU_TAKES + HDM05_TAKES, ids=lambda p: Path(p).name)
def test_real_takes_bone_lengths_and_frames(shared_data: Path, asf: str, amc: str) -> None:
    skeleton = read_asf(shared_data / asf)
    channels = read_amc(shared_data / amc, skeleton)
    frames = channels.frame_numbers
    assert frames[0] == 1 and (np.diff(frames) == 1).all()
    positions = forward_kinematics(skeleton, channels.channels, angle_unit=channels.angle_unit)
    assert positions.shape == (frames.size, 31, 3) and np.isfinite(positions).all()
    _assert_bone_lengths(skeleton, positions)


def test_real_frame_counts(shared_data: Path) -> None:
    sk = read_asf(shared_data / "cmu/subjects/09/09.asf")
    assert read_amc(shared_data / "cmu/subjects/09/09_12.amc", sk).num_frames == 1918


@pytest.mark.parametrize(("asf", "amc"), CMU_TAKES + HDM05_TAKES, ids=lambda p: Path(p).name)
def test_real_left_is_the_subjects_left(shared_data: Path, asf: str, amc: str) -> None:
    motion = read_motion(shared_data / asf, shared_data / amc, source="cmu", subject="", sequence=Path(amc).stem)
    score = _left_score(motion.positions_m, motion.joint_names)
    assert (score > 0).mean() > 0.99 and np.median(score) > 0.9


@pytest.mark.parametrize(
    ("asf", "amc", "dataset"),
    [(*CMU_TAKES[0], "cmu"), (*CMU_TAKES[1], "cmu"), (*CMU_TAKES[3], "cmu"), (*HDM05_TAKES[0], "hdm05")],
    ids=lambda p: Path(p).name,
)
def test_real_standing_first_frame(shared_data: Path, asf: str, amc: str, dataset: str) -> None:
    motion = read_motion(shared_data / asf, shared_data / amc, source=dataset, subject="", sequence=Path(amc).stem)
    _assert_standing(_canonical(motion, dataset)[0])


@pytest.mark.parametrize("subject", ["131", "135"])
def test_real_name_and_namespace_sections(shared_data: Path, subject: str) -> None:
    path = shared_data / f"cmu/subjects/{subject}/{subject}.asf"
    assert b"\r\n:namespace " in path.read_bytes()
    sk = read_asf(path)
    assert sk.name and sk.name != "VICON" and len(sk.bones) == 30 and sk.length_scale == 0.45
    ref = read_asf(shared_data / "cmu/subjects/09/09.asf")
    assert [(b.name, b.parent, b.dof) for b in sk.bones] == [(b.name, b.parent, b.dof) for b in ref.bones]


@pytest.mark.parametrize(("asf", "amc"), HDM05_TAKES, ids=lambda p: Path(p).name)
def test_real_hdm05_latin1_and_mixed_endings(shared_data: Path, asf: str, amc: str) -> None:
    data = (shared_data / amc).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert b"\r\n2\nroot " in data  # bone lines end in CRLF, frame-number lines in LF
    sk = read_asf(shared_data / asf)
    ref = read_asf(shared_data / "cmu/subjects/09/09.asf")
    assert [(b.name, b.parent, b.dof) for b in sk.bones] == [(b.name, b.parent, b.dof) for b in ref.bones]
    motion = read_motion(shared_data / asf, shared_data / amc, source="hdm05", subject="", sequence=Path(amc).stem)
    assert motion.frame_numbers[0] == 1 and motion.num_frames > 200


@pytest.mark.parametrize("amc", ["cmu/subjects/09/09_12.amc", HDM05_TAKES[1][1]], ids=lambda p: Path(p).name)
def test_real_fast_and_line_by_line_paths_agree(shared_data: Path, tmp_path: Path, amc: str) -> None:
    """A comment line sends a file down the line-by-line path: it must read exactly as the vectorised one."""
    asf = "cmu/subjects/09/09.asf" if amc.startswith("cmu") else HDM05_TAKES[1][0]
    sk = read_asf(shared_data / asf)
    data = (shared_data / amc).read_bytes()
    at = data.index(b"\n2\r\n") if b"\n2\r\n" in data else data.index(b"\n2\n")
    slow = read_amc(_write(tmp_path, "slow.amc", [data[: at + 1], b"# comment\n", data[at + 1 :]]), sk)
    fast = read_amc(shared_data / amc, sk)
    assert np.array_equal(slow.frame_numbers, fast.frame_numbers)
    assert set(slow.channels) == set(fast.channels)
    assert all(np.array_equal(slow.channels[k], fast.channels[k]) for k in fast.channels)


@pytest.mark.parametrize(("dataset", "folder"), [("cmu", "cmu"), ("hdm05", "hdm05")])
def test_manifest_checksums_match_the_sample(shared_data: Path, dataset: str, folder: str) -> None:
    checksums = load_dataset_manifest(dataset).sha256
    root = shared_data / folder
    sample = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.suffix in (".asf", ".amc")}
    assert set(checksums) == sample
    for rel, digest in checksums.items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest, rel
