"""Human3.6M annotation shards (true 2D and 3D), the protocols' frame selection, the per-action
table and the nearest-neighbour baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from h36m_files import standing_world, write_cameras_pkl, write_official_tree
from typer.testing import CliRunner

from cli.main import app
from lcrnet.h36m_protocols import check_shards_protocol, format_table, protocol_table
from posebank.bank.build import build_bank
from posebank.config import BankConfig, ViewConfig
from posebank.errors import InputError, OutputConflictError
from posebank.h36m.annotate import H36MAnnotateConfig, annotate_h36m
from posebank.h36m.baseline import BaselineConfig, nn_baseline
from posebank.h36m.cameras import load_cameras
from posebank.h36m.canonical import h36m_to_canonical
from posebank.h36m.names import camera_id, image_path, joint_names
from posebank.h36m.protocols import first_trials, get_protocol
from posebank.shards import annotations_schema, open_dataset, read_metadata, read_table, validate
from posebank.skeleton import body_centre, get_skeleton

SEQUENCES = {
    ("S1", "Walking 1"): standing_world(20),
    ("S9", "Directions"): standing_world(10),
    ("S11", "Walking 1"): standing_world(20)[np.arange(130) % 20],  # S1's poses again; P1: frames 0, 64, 128 of camera 2
    ("S11", "Phoning 2"): standing_world(12),  # trial 1 of Phoning for P3 ...
    ("S11", "Phoning 3"): standing_world(12),  # ... not this one
}


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("h36m")
    write_cameras_pkl(root / "cameras.pkl", ("S1", "S9", "S11"))
    write_official_tree(root / "official", SEQUENCES, load_cameras(root / "cameras.pkl"))
    return root


def _rows(out: Path) -> tuple[list[str], list[str]]:
    t = open_dataset(out / "annotations").to_table(columns=["split", "image"])
    return t.column("split").to_pylist(), t.column("image").to_pylist()


def test_protocol_p1_rows(copy: Path, tmp_path: Path) -> None:
    report = annotate_h36m(H36MAnnotateConfig(data=str(copy / "official"), out=str(tmp_path), protocol="h36m-p1"))
    splits, images = _rows(tmp_path)
    test = sorted(i for s, i in zip(splits, images) if s == "test")
    expected = [image_path("S11", "Walking 1", camera_id(2), f) for f in (0, 64, 128)]
    expected += [image_path("S11", f"Phoning {n}", camera_id(2), 0) for n in (2, 3)]  # 12 frames each: frame 0
    assert test == sorted(expected)
    # training: S1 (20 frames) and S9 (10 frames), every 5th frame, all four cameras
    assert report.rows == {"test": 5, "train": (4 + 2) * 4}
    assert {i.split("/")[0] for s, i in zip(splits, images) if s == "train"} == {"S1", "S9"}
    meta = read_metadata(tmp_path / "annotations" / "part-00000.parquet")
    check_shards_protocol("p1", meta)
    with pytest.raises(ValueError, match="not h36m-p2: run posebank annotate h36m --protocol h36m-p2"):
        check_shards_protocol("h36m-p2", meta, path="x.parquet")


def test_protocols_p2_p3(copy: Path, tmp_path: Path) -> None:
    p2 = annotate_h36m(H36MAnnotateConfig(data=str(copy / "official"), out=str(tmp_path / "p2"), protocol="h36m-p2"))
    # test: S9 and S11, every 5th frame, all cameras: (2 + 26 + 3 + 3) x 4; train: S1 only (S9 is a test subject)
    assert p2.rows == {"test": (2 + 26 + 3 + 3) * 4, "train": 4 * 4}
    annotate_h36m(H36MAnnotateConfig(data=str(copy / "official"), out=str(tmp_path / "p3"), protocol="h36m-p3"))
    splits, images = _rows(tmp_path / "p3")
    test = {i.split("/")[1] for s, i in zip(splits, images) if s == "test"}
    assert test == {f"S11_Walking_1.{camera_id(3)}", f"S11_Phoning_2.{camera_id(3)}", f"S9_Directions.{camera_id(3)}"}
    assert first_trials([("S1", "Eating 2"), ("S1", "Eating")]) == {("S1", "Eating")}
    assert get_protocol("p1").expected_test_frames == 928 and get_protocol("h36m-p3").metrics == ("aligned",)
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol("p4")


def test_shards_hold_the_true_poses(copy: Path, tmp_path: Path) -> None:
    annotate_h36m(H36MAnnotateConfig(data=str(copy / "official"), out=str(tmp_path), skeleton="j17", subjects=("S9",),
                                     train_every=1))  # fmt: skip
    path = tmp_path / "annotations" / "part-00000.parquet"
    table = read_table(path)
    validate(table, annotations_schema(17), path=path)
    meta = read_metadata(path)
    assert meta["dataset"] == "h36m" and meta["skeleton"] == "j17" and meta["layout"] == "official"
    assert set(table.column("split").to_pylist()) == {"S9"} and table.num_rows == 40  # 10 frames x 4 cameras
    rows = table.to_pylist()
    cameras = load_cameras(copy / "cameras.pkl")
    sk = get_skeleton("j17")
    world = SEQUENCES[("S9", "Directions")]
    from posebank.h36m.cameras import project_to_pixels, world_to_camera

    for row in rows[:: 7]:
        camera, frame = row["image"].split("/")[1].split(".")[1], int(row["image"][-10:-4]) - 1
        cam = world_to_camera(world[frame], cameras[("S9", camera)])
        expect_3d = h36m_to_canonical(cam, joint_names("official"), sk)
        expect_3d -= body_centre(expect_3d, sk)
        np.testing.assert_allclose(np.reshape(row["pose_3d"], (17, 3)), expect_3d, atol=1e-5)
        px = project_to_pixels(cam, cameras[("S9", camera)])
        np.testing.assert_allclose(np.reshape(row["pose_2d"], (17, 2)), h36m_to_canonical(px, joint_names("official"), sk),
                                   atol=1e-3)  # fmt: skip
        np.testing.assert_allclose(np.reshape(row["source_pose_2d"], (32, 2)), px, atol=1e-3)
        assert all(row["visible"]) and not any(row["occluded"]) and row["match_pose_id"] is None
        assert row["image_width"] == 1000 and row["box_full"][0] < min(px[:, 0])
    with pytest.raises(OutputConflictError):
        annotate_h36m(H36MAnnotateConfig(data=str(copy / "official"), out=str(tmp_path), subjects=("S1",)))


def test_real_sample_annotation_shards(shared_data: Path, tmp_path: Path) -> None:
    """The 4 real poses: image names as mmpose's, 2D = part, 3D = S centred, mapped by name."""
    folder = shared_data / "h36m"
    result = CliRunner().invoke(app, ["annotate", "h36m", str(folder), "--out", str(tmp_path), "--skeleton", "j13", "-q"])
    assert result.exit_code == 0, result.output
    assert "4 rows (S1 1, S5 1, S7 1, S8 1)" in result.output
    raw = np.load(folder / "mmpose_test_h36m_body3d.npz")
    table = read_table(tmp_path / "annotations" / "part-00000.parquet")
    assert table.column("image").to_pylist() == raw["imgname"].tolist()
    sk = get_skeleton("j13")
    names = joint_names("mmpose")
    pose_2d = np.stack(table.column("pose_2d").to_pylist()).reshape(4, 13, 2)
    np.testing.assert_allclose(pose_2d, h36m_to_canonical(raw["part"][..., :2], names, sk), atol=1e-3)
    head = sk.index("head")
    np.testing.assert_allclose(pose_2d[:, head], (raw["part"][:, 9, :2] + raw["part"][:, 10, :2]) / 2, atol=1e-3)
    pose_3d = np.stack(table.column("pose_3d").to_pylist()).reshape(4, 13, 3)
    expect = h36m_to_canonical(raw["S"][..., :3], names, sk)
    np.testing.assert_allclose(pose_3d, expect - body_centre(expect, sk)[:, None], atol=1e-6)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["rows"] == {"S1": 1, "S5": 1, "S7": 1, "S8": 1} and len(manifest["inputs"]) == 2


def test_protocol_table_layout() -> None:
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(6, 13, 3)) * 0.3
    gt -= gt.mean(1, keepdims=True)
    pred = gt + np.array([0.01, 0.0, 0.0])  # 10 mm off on every joint: raw 10 mm, aligned 0
    pred[3:] = gt[3:] + np.array([0.0, 0.03, 0.0])
    images = [image_path("S11", "Walking 1", camera_id(2), f) for f in range(3)]
    images += [image_path("S11", "WalkingDog", camera_id(2), f) for f in range(3)]
    table = protocol_table("p1", images, pred, gt)
    assert table.frames == {"Walking": 3, "WalkDog": 3} and table.joints == 13
    assert table.raw_mm == pytest.approx({"Walking": 10.0, "WalkDog": 30.0})
    assert table.aligned_mm["Walking"] == pytest.approx(0.0, abs=1e-6) and table.average["raw"] == pytest.approx(20.0)
    text = format_table(table, "test")
    header, abs_row, align_row, summary = text.split("\n")
    assert header.split("\t")[1:4] == ["Dir.", "Disc.", "Eat"] and header.endswith("Avg.")
    assert abs_row.split("\t")[13:15] == ["10.0", "30.0"] and abs_row.endswith("\t20.0")
    assert "6 test frames (the paper: 928)" in summary
    with pytest.raises(ValueError, match="not a Human3.6M image path"):
        protocol_table("p1", ["x.jpg"], pred[:1], gt[:1])


def test_nearest_neighbour_baseline(copy: Path, tmp_path: Path) -> None:
    """A bank of S1's poses; S11 performs the same poses: the matches are those poses, so the aligned error is ~0."""
    build_bank(BankConfig(sources=(("h36m", str(copy / "official")),), out=str(tmp_path / "bank"), fps=0.0,
                          dedup_mm=0.0, view=ViewConfig(views=30), subjects=("S1",)))  # fmt: skip
    config = BaselineConfig(data=str(copy / "official"), bank=str(tmp_path / "bank"), protocol="h36m-p1", engine="numpy")
    predictions = nn_baseline(config)
    assert len(predictions.images) == 5 and predictions.skeleton == "j13"
    table = protocol_table("h36m-p1", predictions.images, predictions.pred_3d, predictions.gt_3d)
    assert table.aligned_mm["Walking"] < 10.0  # 5.3 mm: perspective camera against orthographic bank views
    result = CliRunner().invoke(app, ["h36m-baseline", str(copy / "official"), "--bank", str(tmp_path / "bank"),
                                      "--out", str(tmp_path / "nn"), "--engine", "numpy", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "nn" / "h36m_p1.json").read_text())
    assert [t["joints"] for t in saved["tables"]] == [13]
    assert saved["tables"][0]["aligned_mm"]["Walking"] == pytest.approx(table.aligned_mm["Walking"], abs=1e-6)
    build_bank(BankConfig(sources=(("h36m", str(copy / "official")),), out=str(tmp_path / "bank17"), fps=0.0,
                          dedup_mm=0.0, view=ViewConfig(views=30), subjects=("S1",), skeleton="j17"))  # fmt: skip
    result = CliRunner().invoke(app, ["h36m-baseline", str(copy / "official"), "--bank", str(tmp_path / "bank17"),
                                      "--out", str(tmp_path / "nn17"), "--engine", "numpy", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "nearest neighbour (17j, Abs.)" in result.output and "nearest neighbour (13j, Align.)" in result.output
    saved = json.loads((tmp_path / "nn17" / "h36m_p1.json").read_text())
    assert [t["joints"] for t in saved["tables"]] == [17, 13]
    build_bank(BankConfig(sources=(("h36m", str(copy / "official")),), out=str(tmp_path / "leak"), fps=0.0,
                          view=ViewConfig(views=2)))  # fmt: skip
    with pytest.raises(InputError, match=r"test subject\(s\) S11 of h36m-p1"):
        nn_baseline(BaselineConfig(data=str(copy / "official"), bank=str(tmp_path / "leak")))


def test_real_sample_left_and_right_agree_with_the_mocap_bank(shared_data: Path, tmp_path: Path) -> None:
    """The joint table's left and right are the MoCap sources' (by name, through the manifests): each of the
    4 real H36M poses, lifted by matching its true 2D in a bank of the real CMU/HDM05/BVH/Pose Prior samples,
    is closer in 3D (aligned) with the labels as mapped than with left and right exchanged."""
    from lcrnet.h36m_protocols import per_frame_errors
    from posebank.bank import open_bank
    from posebank.h36m.annotate import frame_rows
    from posebank.h36m.dataset import camera_sequences, open_h36m
    from posebank.annotate.matching import gather_matches, search_bank
    from posebank.search import SearchConfig
    from posebank.skeleton import flip_left_right

    sources = (("cmu", str(shared_data / "cmu/subjects")), ("hdm05", str(shared_data / "hdm05")),
               ("poseprior", str(shared_data / "poseprior")), ("bvh", str(shared_data / "cmu/bvh")))  # fmt: skip
    build_bank(BankConfig(sources=sources, out=str(tmp_path / "bank"), view=ViewConfig(views=20)))
    bank = open_bank(tmp_path / "bank")
    sk = bank.skeleton
    rows = [frame_rows(s, sk, np.array(["x"] * len(s.frames), object)) for s in camera_sequences(open_h36m(shared_data / "h36m"))]
    q2, q3 = np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])
    mask = np.ones(q2.shape[:2], bool)
    search = SearchConfig(engine="numpy")
    as_mapped = gather_matches(bank, search_bank(bank, q2, mask, 1, config=search).rows).pose_3d[:, 0]
    exchanged = gather_matches(bank, search_bank(bank, flip_left_right(q2, sk), mask, 1, config=search).rows).pose_3d[:, 0]
    _, aligned = per_frame_errors(as_mapped, q3)
    _, aligned_exchanged = per_frame_errors(flip_left_right(exchanged, sk), q3)
    assert (aligned < aligned_exchanged).all(), (aligned, aligned_exchanged)  # measured: 95/127, 220/290, 126/148, 122/137 mm


def test_protocol_scores_accumulates_people() -> None:
    from lcrnet.h36m_protocols import ProtocolScores

    gt = np.zeros((13, 3))
    gt[:, 1] = np.linspace(-0.8, 0.8, 13)
    gt[:, 0] = np.linspace(-0.2, 0.2, 13) ** 2
    scores = ProtocolScores("p2")
    assert scores.result() == {"protocol": "h36m-p2", "missed": 0}
    scores.add(image_path("S9", "Eating 1", camera_id(1), 0), gt + [0.0, 0.0, 0.02], gt)
    scores.add(image_path("S9", "Eating 1", camera_id(1), 5), None, gt)
    result = scores.result()
    assert result["missed"] == 1 and result["frames"] == {"Eating": 1}
    assert result["raw_mm"]["Eating"] == pytest.approx(20.0) and result["aligned_mm"]["Eating"] == pytest.approx(0.0, abs=1e-6)
    assert result["table"].splitlines()[1].split("\t")[3] == "20.0"  # the Eat column
