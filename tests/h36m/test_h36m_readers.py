"""Human3.6M readers on files written in the exact layouts (official CDF, VideoPose3D npz, mmpose
npz + cameras.pkl) and on the real 4-pose sample."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from h36m_files import standing_world, write_cameras_pkl, write_cdf, write_official_tree, write_videopose3d

from posebank.errors import InputError
from posebank.h36m.cameras import camera_to_world, load_cameras, project_to_pixels, world_to_camera
from posebank.h36m.canonical import h36m_to_canonical, world_motion
from posebank.h36m.dataset import camera_sequences, open_h36m, world_sequences
from posebank.h36m.names import image_path, joint_names, parse_image_path, parse_sequence
from posebank.h36m.readers import read_cdf_pose, read_mmpose, read_videopose3d
from posebank.skeleton import get_skeleton


@pytest.fixture()
def official(tmp_path: Path) -> tuple[Path, dict]:
    write_cameras_pkl(tmp_path / "cameras.pkl", ("S1", "S9"))
    cameras = load_cameras(tmp_path / "cameras.pkl")
    seqs = {("S1", "Walking 1"): standing_world(6), ("S9", "TakingPhoto"): standing_world(4, offset=(0.5, 0.2))}
    write_official_tree(tmp_path / "h36m", seqs, cameras)
    return tmp_path, seqs


def test_official_cdf_world_camera_and_2d(official: tuple[Path, dict]) -> None:
    root, seqs = official
    data = open_h36m(root / "h36m", root / "cameras.pkl")
    assert data.layout == "official" and len(data.files) == 2
    world = {(s.subject, s.sequence): s for s in world_sequences(data)}
    assert set(world) == set(seqs)
    for key, s in world.items():
        assert s.camera is None and s.joint_names == joint_names("official")
        np.testing.assert_allclose(s.positions_m, seqs[key], atol=1e-6)  # mm in the file, metres out (float32)
    cameras = load_cameras(root / "cameras.pkl")
    views = list(camera_sequences(data, subjects=("S9",)))
    assert [v.camera for v in views] == ["54138969", "55011271", "58860488", "60457274"]
    for v in views:
        cam = cameras[("S9", v.camera)]
        np.testing.assert_allclose(v.positions_m, world_to_camera(seqs[("S9", "TakingPhoto")], cam), atol=1e-6)
        np.testing.assert_allclose(v.pose_2d_px, project_to_pixels(v.positions_m, cam), atol=1e-3)
        assert (v.positions_m[..., 2] > 2.0).all()  # in front of the camera, metres away


def test_official_without_2d_projects_with_cameras(tmp_path: Path) -> None:
    write_cameras_pkl(tmp_path / "cameras.pkl", ("S11",))
    cameras = load_cameras(tmp_path / "cameras.pkl")
    write_official_tree(tmp_path / "h36m", {("S11", "Eating 2"): standing_world(3)}, cameras, with_2d=False)
    with pytest.raises(InputError, match="no D2_Positions"):
        list(camera_sequences(open_h36m(tmp_path / "h36m")))  # no cameras beside the tree
    views = list(camera_sequences(open_h36m(tmp_path / "h36m", tmp_path / "cameras.pkl")))
    assert len(views) == 4 and all(v.pose_2d_px is not None and v.pose_2d_px.shape == (3, 32, 2) for v in views)


def test_cdf_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "Walking.cdf"
    write_cdf(bad, np.zeros((4, 30, 3)))  # 90 values per frame, not 96
    with pytest.raises(InputError, match=r"Walking\.cdf.*expected \(1, T, 96\)"):
        read_cdf_pose(bad, 3)
    from cdflib.cdfwrite import CDF

    other = tmp_path / "Other.cdf"
    cdf = CDF(str(other))
    cdf.write_var({"Variable": "Angles", "Data_Type": CDF.CDF_FLOAT, "Num_Elements": 1, "Rec_Vary": True,
                   "Dim_Sizes": [2, 96]}, var_data=np.zeros((1, 2, 96), np.float32))  # fmt: skip
    cdf.close()
    with pytest.raises(InputError, match=r"Other\.cdf.*Pose"):
        read_cdf_pose(other, 3)
    nan = tmp_path / "Nan.cdf"
    values = np.zeros((3, 32, 3))
    values[2, 5, 1] = np.nan
    write_cdf(nan, values)
    with pytest.raises(InputError, match=r"Nan\.cdf \(frame 2\): non-finite"):
        read_cdf_pose(nan, 3)
    text = tmp_path / "text.cdf"
    text.write_text("not a cdf")
    with pytest.raises(InputError, match="text.cdf"):
        read_cdf_pose(text, 3)


def test_videopose3d_npz(tmp_path: Path) -> None:
    seqs = {("S1", "Walking 1"): standing_world(5), ("S5", "Greeting"): standing_world(2)}
    write_videopose3d(tmp_path / "data_3d_h36m.npz", seqs)
    read = {(s.subject, s.sequence): s for s in read_videopose3d(tmp_path / "data_3d_h36m.npz")}
    assert set(read) == set(seqs)
    for key, s in read.items():
        assert s.layout == "videopose3d" and s.camera is None
        np.testing.assert_allclose(s.positions_m, seqs[key], atol=1e-6)
    data = open_h36m(tmp_path / "data_3d_h36m.npz")
    assert data.layout == "videopose3d"
    with pytest.raises(InputError, match="needs the camera parameters"):
        list(camera_sequences(data))
    write_cameras_pkl(tmp_path / "cameras.pkl", ("S1", "S5"))
    views = list(camera_sequences(open_h36m(tmp_path)))  # the folder: npz and cameras.pkl found inside
    assert len(views) == 8 and {v.subject for v in views} == {"S1", "S5"}


def test_pickles_run_no_code(tmp_path: Path) -> None:
    """A pickle naming any global but numpy's array rebuilders is refused, for cameras.pkl and npz objects."""

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (print, ("pwned",))

    evil = tmp_path / "cameras.pkl"
    evil.write_bytes(pickle.dumps({("S1", "54138969"): Evil()}))
    with pytest.raises(InputError, match=r"cameras\.pkl: unsafe or corrupt pickle: refused global builtins\.print"):
        load_cameras(evil)
    npz = tmp_path / "data_3d_h36m.npz"
    np.savez(npz, positions_3d=np.array({"S1": {"Walking": Evil()}}, dtype=object))
    with pytest.raises(InputError, match=r"data_3d_h36m\.npz: unsafe or corrupt pickle: refused global builtins\.print"):
        read_videopose3d(npz)
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(pickle.dumps({"a": np.zeros(3)})[:-5])
    with pytest.raises(InputError, match="truncated.pkl"):
        load_cameras(truncated)


def test_bad_camera_and_npz_records_are_named(tmp_path: Path) -> None:
    write_cameras_pkl(tmp_path / "cameras.pkl", ("S1",))
    data = pickle.loads((tmp_path / "cameras.pkl").read_bytes())
    data[("S1", "55011271")]["R"] = np.eye(3) * 2.0
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(InputError, match=r"bad\.pkl \(S1, 55011271\): R is not a rotation"):
        load_cameras(tmp_path / "bad.pkl")
    np.savez(tmp_path / "mm.npz", imgname=np.array(["S1/not_an_image.jpg"]), part=np.zeros((1, 17, 3)),
             S=np.zeros((1, 17, 4)))  # fmt: skip
    with pytest.raises(InputError, match=r"mm\.npz \(row 0\): .*not a Human3\.6M image path"):
        read_mmpose(tmp_path / "mm.npz")
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as z:
        z.writestr("x.npy", b"")
    with pytest.raises(InputError, match="not a Human3.6M file"):
        open_h36m(tmp_path / "other.npz")


def test_names_round_trip() -> None:
    path = image_path("S11", "WalkTogether 1", "55011271", 63)
    assert path == "S11/S11_WalkTogether_1.55011271/S11_WalkTogether_1.55011271_000064.jpg"
    assert parse_image_path("images/" + path) == ("S11", "WalkTogether 1", "55011271", 63)
    assert parse_sequence("WalkingDog 2") == ("WalkDog", 2) and parse_sequence("Photo") == ("Photo", 0)
    with pytest.raises(ValueError, match="not a Human3.6M sequence"):
        parse_sequence("Dancing 1")


def test_canonical_head_is_the_midpoint_of_joints_14_and_15() -> None:
    world = standing_world(2)
    names = joint_names("official")
    assert names[14] == "neck_nose" and names[15] == "head_top"
    for sk_name in ("j13", "j17"):
        sk = get_skeleton(sk_name)
        canon = h36m_to_canonical(world, names, sk)
        np.testing.assert_allclose(canon[:, sk.index("head")], (world[:, 14] + world[:, 15]) / 2)
        np.testing.assert_allclose(canon[:, sk.index("right_wrist")], world[:, names.index("right_wrist")])
    sk = get_skeleton("j17")
    canon = h36m_to_canonical(world, names, sk)
    for j17, official_index in (("pelvis", 0), ("spine", 12), ("thorax", 13), ("neck", 14)):
        np.testing.assert_allclose(canon[:, sk.index(j17)], world[:, official_index])
    # the 17-joint layout maps to the same canonical poses as the 32 it is a subset of
    subset = [names.index(n) for n in joint_names("mmpose")]
    np.testing.assert_allclose(h36m_to_canonical(world[:, subset], joint_names("mmpose"), sk), canon)
    motion = world_motion(next(iter([s for s in _world_seq(world)])))
    assert motion.fps == 50.0 and motion.source == "h36m"
    np.testing.assert_allclose(motion.positions_m[..., 1], world[..., 2])  # +Y up = H36M's z


def _world_seq(world: np.ndarray):  # noqa: ANN202
    from posebank.h36m.readers import H36MSequence

    yield H36MSequence("S1", "Walking", None, joint_names("official"), world, None, np.arange(len(world)), "x", "official")


def test_real_sample_mmpose_and_cameras(shared_data: Path) -> None:
    """The real sample: 4 poses of 4 subjects; projection reproduces part; in the world the feet are on the floor."""
    folder = shared_data / "h36m"
    cameras = load_cameras(folder / "mmpose_cameras.pkl")
    assert len(cameras) == 44 and {s for s, _ in cameras} == {f"S{i}" for i in range(1, 12)}
    seqs = read_mmpose(folder / "mmpose_test_h36m_body3d.npz")
    assert [(s.subject, s.sequence, s.camera, int(s.frames[0])) for s in seqs] == [
        ("S1", "Directions 1", "54138969", 0), ("S5", "SittingDown", "54138969", 2060),
        ("S7", "Greeting", "55011271", 395), ("S8", "WalkDog 1", "55011271", 25),
    ]  # fmt: skip
    raw = np.load(folder / "mmpose_test_h36m_body3d.npz")
    for i, s in enumerate(seqs):
        cam = cameras[(s.subject, s.camera)]
        np.testing.assert_allclose(project_to_pixels(s.positions_m, cam), raw["part"][i : i + 1, :, :2], atol=1e-3)
        world = camera_to_world(s.positions_m, cam)
        np.testing.assert_allclose(world_to_camera(world, cam), s.positions_m, atol=1e-9)
        feet = world[0, [3, 6], 2]
        assert feet.min() < 0.15, (s.subject, feet)  # on the floor (z up, metres)
        assert np.abs(world[0, 0, :2]).max() < 2.0  # the pelvis inside the capture area
        if s.sequence != "SittingDown":
            assert 1.4 < world[0, 10, 2] < 1.9  # head top of a standing adult
    data = open_h36m(folder)
    assert data.layout == "mmpose" and data.cameras == folder / "mmpose_cameras.pkl"
    assert len(list(world_sequences(data))) == 4 and len(list(camera_sequences(data))) == 4
