"""Human3.6M as a bank source: official CDF tree, VideoPose3D npz and the real mmpose sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from h36m_files import standing_world, write_cameras_pkl, write_official_tree, write_videopose3d
from typer.testing import CliRunner

from cli.main import app
from posebank.bank import open_bank
from posebank.bank.build import build_bank
from posebank.config import BankConfig, ViewConfig
from posebank.errors import InputError
from posebank.h36m.cameras import load_cameras
from posebank.skeleton import get_skeleton

SEQUENCES = {
    ("S1", "Walking 1"): standing_world(12),
    ("S5", "Greeting"): standing_world(7, offset=(0.4, -0.3)),
    ("S9", "TakingPhoto"): standing_world(5),
}


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("h36m")
    write_cameras_pkl(root / "cameras.pkl", ("S1", "S5", "S9"))
    write_official_tree(root / "official", SEQUENCES, load_cameras(root / "cameras.pkl"))
    (root / "vp3d").mkdir()
    write_videopose3d(root / "vp3d" / "data_3d_h36m.npz", SEQUENCES)
    return root


def _bank(source_path: Path, out: Path, **kw: object) -> object:
    config = BankConfig(sources=(("h36m", str(source_path)),), out=str(out), fps=0.0, dedup_mm=0.0,
                        view=ViewConfig(views=3), **kw)  # fmt: skip
    build_bank(config)
    return open_bank(out)


def test_official_and_videopose3d_give_the_same_bank(copies: Path, tmp_path: Path) -> None:
    a = _bank(copies / "official", tmp_path / "a", subjects=("S1", "S5"))
    b = _bank(copies / "vp3d" / "data_3d_h36m.npz", tmp_path / "b", subjects=("S1", "S5"))
    for bank in (a, b):
        assert bank.manifest["stats"]["h36m"] == {"sequences": 2, "poses": 19, "kept": 19}
    da = a.to_pandas(columns=["pose_id", "view_id", "subject", "sequence", "frame", "pose_3d"])
    db = b.to_pandas(columns=["pose_id", "view_id", "subject", "sequence", "frame", "pose_3d"])
    assert set(da.subject) == {"S1", "S5"} and set(da.sequence) == {"Walking 1", "Greeting"}
    assert da.pose_id.tolist() == db.pose_id.tolist() and da.frame.tolist() == db.frame.tolist()
    # The same poses and views: only float32 storage differs (millimetres in the CDF, metres in the npz).
    np.testing.assert_allclose(np.stack(da.pose_3d), np.stack(db.pose_3d), atol=2e-6)


def test_bank_poses_are_upright_and_body_centred(copies: Path, tmp_path: Path) -> None:
    """z up in H36M becomes the bank's +Y up: at zero elevation and roll the head is above the ankles."""
    bank = _bank(copies / "official", tmp_path / "bank", subjects=("S9",))
    df = bank.to_pandas(columns=["elevation_deg", "roll_deg", "pose_3d"])
    sk = get_skeleton("j13")
    poses = np.stack(df.pose_3d).reshape(len(df), sk.num_joints, 3)
    centre = poses[:, list(sk.torso)].mean(1)
    np.testing.assert_allclose(centre, 0.0, atol=1e-5)
    head_minus_ankle = poses[:, sk.index("right_ankle"), 1] - poses[:, sk.index("head"), 1]  # camera y is down
    assert (head_minus_ankle > 0.9).all()  # 1.57 m x cos(45 deg elevation) x cos(15 deg roll) = 1.07 m at least


def test_subjects_filter_and_errors(copies: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no motions of subjects S11"):
        _bank(copies / "official", tmp_path / "x", subjects=("S11",))
    with pytest.raises(InputError, match="no Human3.6M data"):
        _bank(tmp_path, tmp_path / "y")


def test_cli_build_bank_h36m(copies: Path, tmp_path: Path) -> None:
    out = tmp_path / "bank"
    result = CliRunner().invoke(app, ["build-bank", "--source", f"h36m={copies / 'vp3d'}", "--subjects", "S1,S9",
                                      "--out", str(out), "--views", "2", "--fps", "0", "--dedup-mm", "0", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    bank = open_bank(out)
    assert set(bank.to_pandas(columns=["subject"]).subject) == {"S1", "S9"}
    assert bank.manifest["stats"]["h36m"]["poses"] == 17


def test_real_sample_bank(shared_data: Path, tmp_path: Path) -> None:
    """The mmpose sample (4 frames of 4 subjects, camera frame) taken to the world with cameras.pkl."""
    bank = _bank(shared_data / "h36m", tmp_path / "bank", skeleton="j17")
    assert bank.manifest["stats"]["h36m"] == {"sequences": 4, "poses": 4, "kept": 4}
    df = bank.to_pandas(columns=["subject", "sequence", "frame"]).drop_duplicates()
    assert sorted(zip(df.subject, df.sequence, df.frame)) == [
        ("S1", "Directions 1", 0), ("S5", "SittingDown", 2060), ("S7", "Greeting", 395), ("S8", "WalkDog 1", 25)]
