"""BVH reader: parsing, forward kinematics, units, joint tables and bad input.

Runs on the embedded 5-frame cut of cgspeed 131_01 (tests/fixtures/bvh) and on tiny files written here;
the tests that need the full file or the AMC take ../shared/data and skip without it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from posebank.dataset_manifest import load_dataset_manifest
from posebank.errors import MappingError, MocapParseError
from posebank.mocap.asf_amc import read_motion
from posebank.mocap.bvh import (
    PLAUSIBLE_LEG_LENGTH_M,
    UNIT_SCALES_M,
    bvh_joint_table,
    detect_unit_scale,
    frame_time_to_fps,
    read_bvh,
    read_bvh_hierarchy,
)
from posebank.skeleton import J17_NAMES

ASF_UNIT_M = 0.0254 / 0.45


@pytest.fixture(scope="module")
def fixture_bvh(fixtures_dir: Path) -> Path:
    return fixtures_dir / "bvh" / "131_01_5frames.bvh"


# ---------------------------------------------------------------------------------------------------
# Helpers: write small BVH files


def _node(name: str, offset: tuple[float, float, float], channels: str, children: list | None = None) -> dict:
    return {"name": name, "offset": offset, "channels": channels.split(), "children": children or []}


def _hierarchy_text(node: dict, depth: int = 0, keyword: str = "ROOT") -> list[str]:
    pad = "  " * depth
    head = "End Site" if keyword == "End" else f"{keyword} {node['name']}"
    out = [f"{pad}{head}", f"{pad}{{", f"{pad}  OFFSET " + " ".join(f"{v:g}" for v in node["offset"])]
    if keyword != "End":
        out.append(f"{pad}  CHANNELS {len(node['channels'])} " + " ".join(node["channels"]))
        for child in node["children"]:
            out += _hierarchy_text(child, depth + 1, "End" if child["name"] == "End" else "JOINT")
    out.append(f"{pad}}}")
    return out


def _write_bvh(path: Path, root: dict, frames: list[list[float]], frame_time: str = "0.0333333") -> Path:
    lines = ["HIERARCHY", *_hierarchy_text(root), "MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time}"]
    lines += [" ".join(f"{v:g}" for v in frame) for frame in frames]
    path.write_text("\n".join(lines) + "\n")
    return path


def _end(offset: tuple[float, float, float]) -> dict:
    return _node("End", offset, "")


def _mixamo_skeleton(prefix: str = "mixamorig:") -> tuple[dict, int]:
    """A Mixamo-named skeleton in centimetres (legs 98 cm root to toe tip) and its channel count."""
    rot = "Zrotation Xrotation Yrotation"

    def chain(names_offsets: list[tuple[str, tuple[float, float, float]]], tip: tuple[float, float, float]) -> dict:
        node = _end(tip)
        for name, offset in reversed(names_offsets):
            node = _node(prefix + name, offset, rot, [node])
        return node

    legs = [
        chain([(f"{s}UpLeg", (x * 9, -7, 0)), (f"{s}Leg", (0, -42, 0)), (f"{s}Foot", (0, -42, 0)),
               (f"{s}ToeBase", (0, -7, 12))], (0, 0, 6))
        for s, x in (("Left", 1), ("Right", -1))
    ]  # fmt: skip
    arms = [
        chain([(f"{s}Shoulder", (x * 6, 10, 0)), (f"{s}Arm", (x * 12, 0, 0)), (f"{s}ForeArm", (x * 27, 0, 0)),
               (f"{s}Hand", (x * 25, 0, 0))], (x * 8, 0, 0))
        for s, x in (("Left", 1), ("Right", -1))
    ]  # fmt: skip
    head = chain([("Neck", (0, 15, 0)), ("Head", (0, 10, 0)), ("HeadTop_End", (0, 18, 0))], (0, 1, 0))
    spine2 = _node(prefix + "Spine2", (0, 13, 0), rot, [head, *arms])
    spine = _node(prefix + "Spine", (0, 10, 0), rot, [_node(prefix + "Spine1", (0, 12, 0), rot, [spine2])])
    root = _node(prefix + "Hips", (0, 0, 0), "Xposition Yposition Zposition " + rot, [*legs, spine])
    joints_with_channels = 1 + 2 * 4 + 3 + 2 * 4 + 3  # hips, legs, spine chain, arms, neck/head/top
    return root, 3 + 3 * joints_with_channels


def _scale_copy(src: Path, dst: Path, factor: float) -> Path:
    """Copy a cgspeed BVH with every length multiplied by `factor` (OFFSETs and the root's 3 position channels)."""
    out, in_motion, header_left = [], False, 0
    for line in src.read_text().splitlines():
        tokens = line.split()
        if tokens and tokens[0] == "OFFSET":
            line = line[: line.index("OFFSET")] + "OFFSET " + " ".join(repr(float(t) * factor) for t in tokens[1:])
        elif tokens and tokens[0] == "MOTION":
            in_motion, header_left = True, 2
        elif in_motion and header_left:
            header_left -= 1
        elif in_motion and tokens:
            line = " ".join([repr(float(t) * factor) for t in tokens[:3]] + tokens[3:])
        out.append(line)
    dst.write_text("\r\n".join(out) + "\r\n")
    return dst


# ---------------------------------------------------------------------------------------------------
# The real cgspeed file


def test_reads_the_fixture(fixture_bvh: Path) -> None:
    motion = read_bvh(fixture_bvh)
    assert motion.num_frames == 5
    assert motion.fps == 120.0  # Frame Time .0083333
    assert len(motion.joint_names) == 31 + 7  # 31 joints + 7 End Sites
    assert {"Head_end", "LeftToe_end", "RThumb_end"} <= set(motion.joint_names)
    assert motion.parents[motion.joint_index("Head_end")] == motion.joint_index("Head")
    assert motion.parents[0] == -1 and all(0 <= p < i for i, p in enumerate(motion.parents[1:], start=1))
    assert motion.positions_m.dtype == np.float64 and np.isfinite(motion.positions_m).all()
    assert (motion.source, motion.subject, motion.sequence) == ("bvh", "131", "131_01_5frames")
    assert motion.path == str(fixture_bvh)


def test_fixture_is_the_start_of_the_real_file(fixture_bvh: Path, shared_data: Path) -> None:
    full = read_bvh(shared_data / "cmu" / "bvh" / "131_01.bvh")
    cut = read_bvh(fixture_bvh)
    assert full.num_frames == 994 and full.fps == 120.0
    assert full.joint_names == cut.joint_names and full.parents == cut.parents
    np.testing.assert_array_equal(full.positions_m[:5], cut.positions_m)


def _bone_lengths_hold(path: Path) -> None:
    motion = read_bvh(path)
    hierarchy = read_bvh_hierarchy(path)
    for j, joint in enumerate(hierarchy.joints):
        if joint.parent < 0:
            continue
        lengths = np.linalg.norm(motion.positions_m[:, j] - motion.positions_m[:, joint.parent], axis=-1)
        np.testing.assert_allclose(lengths, np.linalg.norm(joint.offset) * ASF_UNIT_M, atol=1e-9, err_msg=joint.name)


def test_bone_lengths_are_offsets_times_the_unit(fixture_bvh: Path) -> None:
    _bone_lengths_hold(fixture_bvh)


def test_bone_lengths_are_constant_over_the_real_file(shared_data: Path) -> None:
    _bone_lengths_hold(shared_data / "cmu" / "bvh" / "131_01.bvh")


def test_standing_frame_is_upright_in_metres(fixture_bvh: Path) -> None:
    motion = read_bvh(fixture_bvh)
    pose = motion.positions_m[0]

    def y(*names: str) -> float:
        return float(np.mean([pose[motion.joint_index(n), 1] for n in names]))

    head, hips, ankles = y("Head", "Head_end"), y("Hips"), y("LeftAnkle", "RightAnkle")
    assert head > hips > ankles  # +Y up
    # Subject 131 is small and cgspeed drops the 11 cm thorax bone: the head centre is 1.29 m above the ankles.
    assert 1.15 < head - ankles < 1.5
    assert 0.7 < hips - ankles < 0.95


def test_legs_match_the_amc_and_the_upper_body_lacks_the_thorax_bone(shared_data: Path) -> None:
    """Cross-check with the ASF/AMC reader: cgspeed keeps the AMC's angles, ZYX and ZXY orders included."""
    cmu = shared_data / "cmu"
    bvh = read_bvh(cmu / "bvh" / "131_01.bvh")
    amc = read_motion(cmu / "subjects/131/131.asf", cmu / "subjects/131/131_01.amc",
                      source="cmu", subject="131", sequence="131_01")  # fmt: skip
    assert amc.num_frames == bvh.num_frames

    def gap(amc_joint: str, bvh_joint: str) -> np.ndarray:
        a = amc.positions_m[:, amc.joint_index(amc_joint)]
        return np.linalg.norm(a - bvh.positions_m[:, bvh.joint_index(bvh_joint)], axis=-1)

    legs_and_back = [("root", "Hips"), ("lfemur", "LeftKnee"), ("rtibia", "RightAnkle"), ("ltoes", "LeftToe_end"),
                     ("upperback", "Chest2")]  # fmt: skip
    for amc_joint, bvh_joint in legs_and_back:
        assert gap(amc_joint, bvh_joint).max() < 2e-5, (amc_joint, bvh_joint)  # BVH writes 4 decimals
    thorax_m = 1.98337 * ASF_UNIT_M  # 131.asf thorax length
    for amc_joint, bvh_joint in [("head", "Head_end"), ("lradius", "LeftWrist"), ("rhumerus", "RightElbow")]:
        np.testing.assert_allclose(gap(amc_joint, bvh_joint), thorax_m, atol=2e-5, err_msg=bvh_joint)


# ---------------------------------------------------------------------------------------------------
# Units


def test_unit_detection_picks_asf_units_for_cgspeed(fixture_bvh: Path) -> None:
    assert detect_unit_scale(read_bvh_hierarchy(fixture_bvh)) == pytest.approx(ASF_UNIT_M)


@pytest.mark.parametrize(("unit", "scale"), [("m", 1.0), ("cm", 0.01), ("mm", 0.001), ("inch", 0.0254)])
def test_unit_detection_on_rescaled_copies(fixture_bvh: Path, tmp_path: Path, unit: str, scale: float) -> None:
    copy = _scale_copy(fixture_bvh, tmp_path / f"131_01_{unit}.bvh", ASF_UNIT_M / scale)
    assert detect_unit_scale(read_bvh_hierarchy(copy)) == UNIT_SCALES_M[unit]
    np.testing.assert_allclose(read_bvh(copy).positions_m, read_bvh(fixture_bvh).positions_m, atol=1e-9)


def test_explicit_unit_overrides_detection(fixture_bvh: Path) -> None:
    in_asf_units = read_bvh(fixture_bvh, unit_scale_m=1.0).positions_m
    np.testing.assert_allclose(in_asf_units * ASF_UNIT_M, read_bvh(fixture_bvh).positions_m, atol=1e-12)


def test_unit_ranges_are_disjoint() -> None:
    low, high = PLAUSIBLE_LEG_LENGTH_M
    ranges = sorted((low / s, high / s) for s in UNIT_SCALES_M.values())
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))


def test_undetectable_unit_asks_for_it(tmp_path: Path) -> None:
    root = _node("Root", (0, 0, 0), "Xposition Yposition Zposition Zrotation Yrotation Xrotation",
                 [_node("Leg", (0, -3, 0), "Zrotation Yrotation Xrotation", [_end((0, -3, 0))])])  # fmt: skip
    path = _write_bvh(tmp_path / "odd.bvh", root, [[0] * 9])  # a 6-unit leg: no known unit makes it adult
    with pytest.raises(MocapParseError, match="unit_scale_m") as err:
        read_bvh(path)
    assert err.value.path == path


@pytest.mark.parametrize(
    ("written", "fps"),
    [(".0083333", 120.0), ("0.008333", 120.0), ("0.0333333", 30.0), ("0.0416667", 24.0), ("0.0416666", 24.0),
     ("0.01", 100.0), ("8.3333e-3", 1 / 8.3333e-3)],
)  # fmt: skip
def test_frame_rate_snaps_to_the_written_precision(written: str, fps: float) -> None:
    assert frame_time_to_fps(written) == pytest.approx(fps, rel=1e-12)


@pytest.mark.parametrize(("written", "fps"), [("0.033367", 29.97), ("0.03", 33.333)])
def test_other_rates_are_not_snapped(written: str, fps: float) -> None:
    assert frame_time_to_fps(written) == pytest.approx(fps, abs=1e-3)


# ---------------------------------------------------------------------------------------------------
# Generic BVH: channel order, position channels, End Sites


def _three_joint_file(tmp_path: Path, child_channels: str, child_values: list[float]) -> Path:
    root = _node("Root", (5, 5, 5), "Xposition Yposition Zposition Xrotation Yrotation Zrotation",
                 [_node("Child", (0, 1, 0), child_channels, [_end((1, 0, 0))])])  # fmt: skip
    return _write_bvh(tmp_path / "tiny.bvh", root, [[1, 2, 3, 90, 90, 0, *child_values]], frame_time="0.04")


def test_xyz_channel_order_forward_kinematics_by_hand(tmp_path: Path) -> None:
    # Root: position channels replace its OFFSET -> p0 = (1, 2, 3); channels X Y Z -> R0 = Rx(90) Ry(90)
    #   = [[0,0,1],[1,0,0],[0,1,0]] (rows). Child: p1 = p0 + R0 (0,1,0) = (1, 2, 4); R1 = R0 Rz(90).
    # End Site: p2 = p1 + R1 (1,0,0) = p1 + R0 (0,1,0) = (1, 2, 5).
    # (The opposite order Ry(90) Rx(90) would put the child at (2, 2, 3).)
    motion = read_bvh(_three_joint_file(tmp_path, "Xrotation Yrotation Zrotation", [0, 0, 90]), unit_scale_m=1.0)
    assert motion.joint_names == ("Root", "Child", "Child_end")
    assert motion.parents == (-1, 0, 1)
    assert motion.fps == 25.0
    np.testing.assert_allclose(motion.positions_m[0], [[1, 2, 3], [1, 2, 4], [1, 2, 5]], atol=1e-12)


def test_position_channels_replace_the_offset(tmp_path: Path) -> None:
    # MotionBuilder-style 6 channels on a non-root joint, carrying the bone's own offset: same pose.
    with_positions = read_bvh(
        _three_joint_file(tmp_path, "Xposition Yposition Zposition Xrotation Yrotation Zrotation", [0, 1, 0, 0, 0, 90]),
        unit_scale_m=1.0,
    )
    np.testing.assert_allclose(with_positions.positions_m[0], [[1, 2, 3], [1, 2, 4], [1, 2, 5]], atol=1e-12)


def test_subset_of_position_channels_keeps_the_other_offset_components(tmp_path: Path) -> None:
    # Only Yposition on the child: x and z come from its OFFSET (0, 1, 0) -> y replaced by 3.
    motion = read_bvh(_three_joint_file(tmp_path, "Yposition Zrotation", [3, 90]), unit_scale_m=1.0)
    np.testing.assert_allclose(motion.positions_m[0, 1], [1, 2, 6], atol=1e-12)  # p0 + R0 (0, 3, 0)


def test_tabs_crlf_and_joint_brace_on_one_line(tmp_path: Path) -> None:
    text = (
        "HIERARCHY\r\nROOT Hips {\r\n\tOFFSET 0 0 0\r\n"
        "\tCHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation\r\n"
        "\tEnd Site\r\n\t{\r\n\t\tOFFSET 0 -90 0\r\n\t}\r\n}\r\nMOTION\r\nFrames:\t2\r\nFrame Time:\t0.01\r\n"
        "0\t90\t0\t0\t0\t0\r\n1 90 0 0 0 0\r\n\r\n"
    )
    path = tmp_path / "crlf.bvh"
    path.write_bytes(text.encode())
    motion = read_bvh(path)  # 90 units of leg: centimetres
    np.testing.assert_allclose(motion.positions_m[:, 1], [[0, 0, 0], [0.01, 0, 0]], atol=1e-12)


# ---------------------------------------------------------------------------------------------------
# Joint tables


def test_manifest_tables_cover_j17() -> None:
    manifest = load_dataset_manifest("bvh")
    assert set(manifest.joints) == set(J17_NAMES)
    assert "mixamo" in manifest.profiles
    for table in manifest.profiles.values():
        assert set(table) == set(J17_NAMES)
    assert manifest.sha256["bvh/131_01.bvh"] == "525a261b085d44ea302205f7bbdf824c20ca8256b9e0797aeae43183326fce27"


def test_cgspeed_file_gets_the_default_table(fixture_bvh: Path) -> None:
    manifest = load_dataset_manifest("bvh")
    motion = read_bvh(fixture_bvh)
    table = bvh_joint_table(motion.joint_names, manifest, path=fixture_bvh)
    assert table == manifest.joints
    assert table["head"] == ("Head", "Head_end")


@pytest.mark.parametrize("prefix", ["mixamorig:", ""])
def test_mixamo_file_gets_the_mixamo_profile(tmp_path: Path, prefix: str) -> None:
    root, num_channels = _mixamo_skeleton(prefix)
    frame = [0.0] * num_channels
    frame[1] = 100.0  # hips 1 m above the floor
    path = _write_bvh(tmp_path / "mixamo.bvh", root, [frame, frame])
    motion = read_bvh(path)  # 98 cm from the hips to the toe tips: centimetres
    table = bvh_joint_table(motion.joint_names, load_dataset_manifest("bvh"), path=path)
    assert table["left_shoulder"] == (prefix + "LeftArm",)
    assert table["right_ankle"] == (prefix + "RightFoot",)
    assert table["head"] == (prefix + "Head", prefix + "HeadTop_End")
    head = motion.positions_m[0, [motion.joint_index(n) for n in table["head"]]].mean(axis=0)
    assert head[1] == pytest.approx(1.0 + (10 + 12 + 13 + 15 + 10 + 9) / 100)  # hips + spine + neck + half skull


def test_no_fitting_table_names_file_and_missing_joints(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="RightKnee") as err:
        bvh_joint_table(("Hips", "LeftHip", "LeftKnee"), load_dataset_manifest("bvh"), path=tmp_path / "x.bvh")
    assert err.value.path == tmp_path / "x.bvh"
    assert "[mixamo] lacks" in str(err.value)


# ---------------------------------------------------------------------------------------------------
# Bad input: every error names the file and the line


def _fixture_lines(fixture_bvh: Path) -> list[str]:
    return fixture_bvh.read_text().splitlines()


def _motion_line(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if line.strip() == "MOTION")


def _expect_error(path: Path, match: str, line: int | None) -> None:
    with pytest.raises(MocapParseError, match=match) as err:
        read_bvh(path)
    assert err.value.path == path
    assert err.value.line == line
    assert str(path) in str(err.value)


def test_truncated_last_line(fixture_bvh: Path, tmp_path: Path) -> None:
    lines = _fixture_lines(fixture_bvh)
    lines[-1] = " ".join(lines[-1].split()[:40])  # the file was cut in the middle of frame 5
    path = tmp_path / "cut.bvh"
    path.write_text("\n".join(lines))
    _expect_error(path, "frame 5 has 40 values, expected 96", len(lines))


def test_missing_frame_lines(fixture_bvh: Path, tmp_path: Path) -> None:
    lines = _fixture_lines(fixture_bvh)[:-2]  # 3 of 5 frames
    path = tmp_path / "short.bvh"
    path.write_text("\n".join(lines) + "\n")
    _expect_error(path, r"truncated MOTION: 'Frames: 5' but only 3 frame lines \(288 of 480 values\)", len(lines) + 1)


def test_extra_frame_lines(fixture_bvh: Path, tmp_path: Path) -> None:
    lines = _fixture_lines(fixture_bvh)
    path = tmp_path / "long.bvh"
    path.write_text("\n".join(lines + [lines[-1]]) + "\n")
    _expect_error(path, "more frame lines", len(lines) + 1)


def test_nan_value(fixture_bvh: Path, tmp_path: Path) -> None:
    lines = _fixture_lines(fixture_bvh)
    tokens = lines[-2].split()
    tokens[10] = "nan"
    lines[-2] = " ".join(tokens)
    path = tmp_path / "nan.bvh"
    path.write_text("\n".join(lines))
    _expect_error(path, "frame 4, value 11 is nan", len(lines) - 1)


def test_word_instead_of_number(fixture_bvh: Path, tmp_path: Path) -> None:
    lines = _fixture_lines(fixture_bvh)
    tokens = lines[-3].split()
    tokens[0] = "1.2.3"
    lines[-3] = " ".join(tokens)
    path = tmp_path / "word.bvh"
    path.write_text("\n".join(lines))
    _expect_error(path, "not a number: '1.2.3'", len(lines) - 2)


def test_unknown_channel(fixture_bvh: Path, tmp_path: Path) -> None:
    lines = _fixture_lines(fixture_bvh)
    i = next(i for i, line in enumerate(lines) if "CHANNELS 3" in line)
    lines[i] = lines[i].replace("Yrotation", "Wrotation", 1)
    path = tmp_path / "channel.bvh"
    path.write_text("\n".join(lines))
    _expect_error(path, "unknown channel.*Wrotation", i + 1)


def test_missing_motion_section(fixture_bvh: Path, tmp_path: Path) -> None:
    lines = _fixture_lines(fixture_bvh)
    lines = lines[: _motion_line(lines)]
    path = tmp_path / "nomotion.bvh"
    path.write_text("\n".join(lines))
    _expect_error(path, "no MOTION section", len(lines))


def test_missing_frame_time(fixture_bvh: Path, tmp_path: Path) -> None:
    lines = _fixture_lines(fixture_bvh)
    m = _motion_line(lines)
    del lines[m + 2]
    path = tmp_path / "notime.bvh"
    path.write_text("\n".join(lines))
    _expect_error(path, "expected 'Frame Time: <seconds>'", m + 3)


@pytest.mark.parametrize("content", [b"", b"  \r\n\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.bvh"
    path.write_bytes(content)
    _expect_error(path, "empty file", None)


def test_not_a_bvh(tmp_path: Path) -> None:
    path = tmp_path / "asf.bvh"
    path.write_text("# AST/ASF file generated using VICON BodyLanguage\n:version 1.10\n")
    _expect_error(path, "expected HIERARCHY", 1)


def test_unbalanced_braces(fixture_bvh: Path, tmp_path: Path) -> None:
    lines = _fixture_lines(fixture_bvh)
    m = _motion_line(lines)
    del lines[m - 1]  # the ROOT's closing brace
    path = tmp_path / "braces.bvh"
    path.write_text("\n".join(lines))
    _expect_error(path, "braces are closed", m)


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "absent.bvh", "cannot read file", None)


def test_frames_count_must_be_an_integer(fixture_bvh: Path, tmp_path: Path) -> None:
    text = re.sub(r"Frames: 5", "Frames: five", fixture_bvh.read_text())
    path = tmp_path / "frames.bvh"
    path.write_text(text)
    lines = text.splitlines()
    _expect_error(path, "Frames is not an integer", _motion_line(lines) + 2)
