"""End-to-end bank builds on the bundled real CMU sample: contents, frames, provenance, determinism,
resumption, conflicts and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from posebank.bank import open_bank
from posebank.bank.build import build_bank
from posebank.bank.canonical import canonical_poses
from posebank.config import BankConfig, ViewConfig
from posebank.errors import InputError, OutputConflictError
from posebank.geometry import camera_to_world, view_rotation
from posebank.provenance import sha256_file
from posebank.shards import bank_schema, read_metadata, validate
from posebank.skeleton import get_skeleton
from posebank.mocap.sources import discover

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "cmu"


def _one_subject(tmp_path: Path, subject: str = "135", sequences: tuple[str, ...] = ("135_04",)) -> Path:
    """A small CMU-layout folder with one subject (real files) for fast builds."""
    root = tmp_path / "cmu"
    (root / "subjects" / subject).mkdir(parents=True)
    shutil.copy(DEMO / "subjects" / subject / f"{subject}.asf", root / "subjects" / subject)
    for s in sequences:
        shutil.copy(DEMO / "subjects" / subject / f"{s}.amc", root / "subjects" / subject)
    return root


def _config(root: Path, out: Path, **kw) -> BankConfig:
    defaults = dict(sources=(("cmu", str(root)),), out=str(out), view=ViewConfig(views=4), poses_per_shard=100)
    defaults.update(kw)
    return BankConfig(**defaults)


@pytest.fixture(scope="module")
def demo_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _one_subject(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("bank")
    build_bank(_config(root, out))
    return out


def test_bank_rows_schema_and_manifest(demo_bank: Path) -> None:
    bank = open_bank(demo_bank)
    manifest = bank.manifest
    stats = manifest["stats"]["cmu"]
    assert stats["sequences"] == 1 and 0 < stats["kept"] <= stats["poses"]
    assert bank.num_rows == stats["kept"] * 4 == manifest["rows"]
    for shard in manifest["shards"]:
        path = demo_bank / shard["file"]
        table = pq.read_table(path)
        validate(table, bank_schema(13), path=path)
        assert table.num_rows == shard["rows"] and sha256_file(path) == shard["sha256"]
        meta = read_metadata(path)
        assert meta["skeleton"] == "j13" and meta["units"] == "m" and len(meta["joint_names"]) == 13
        assert meta["inputs"][0]["sha256"][0] == sha256_file(DEMO / "subjects/135/135.asf")
    df = bank.to_pandas(columns=["pose_id", "view_id"])
    assert not df.duplicated().any()
    assert (df.groupby("pose_id").view_id.nunique() == 4).all()
    assert manifest["inputs"][0]["files"][1]["sha256"] == sha256_file(DEMO / "subjects/135/135_04.amc")


def test_views_are_proper_rotations_of_the_world_pose(demo_bank: Path) -> None:
    """Every row is its world pose seen through a rotation (no mirroring: left stays left)."""
    bank = open_bank(demo_bank)
    df = bank.to_pandas()
    pose_3d = np.stack(df.pose_3d.to_numpy()).reshape(-1, 13, 3).astype(np.float64)
    rot = view_rotation(*(np.deg2rad(df[c].to_numpy(np.float64)) for c in ("azimuth_deg", "elevation_deg", "roll_deg")))
    world = camera_to_world(pose_3d, rot)
    # All views of a pose give back one world pose, within float32 storage.
    for _, idx in df.groupby("pose_id").indices.items():
        np.testing.assert_allclose(world[idx], np.broadcast_to(world[idx[0]], world[idx].shape), atol=2e-5)
    # And it is the canonical pose read from the file.
    job = discover("cmu", Path(bank.manifest["config"]["sources"][0][1]))[0][0]
    canon = canonical_poses(job, get_skeleton("j13"), 30.0)
    first = df.index[df.frame == canon.frames[0]][0]
    np.testing.assert_allclose(world[first], canon.poses_m[0], atol=2e-5)
    # Orthographic 2D = the camera x, y.
    pose_2d = np.stack(df.pose_2d.to_numpy()).reshape(-1, 13, 2)
    np.testing.assert_array_equal(pose_2d, pose_3d[..., :2].astype(np.float32))


def test_view_angles_in_documented_ranges(demo_bank: Path) -> None:
    df = open_bank(demo_bank).to_pandas(columns=["azimuth_deg", "elevation_deg", "roll_deg"])
    assert df.azimuth_deg.between(0, 360).all() and df.azimuth_deg.max() - df.azimuth_deg.min() > 300
    assert df.elevation_deg.between(-15, 45).all() and df.roll_deg.between(-15, 15).all()


def test_standing_pose_height_and_body_centre(demo_bank: Path) -> None:
    bank = open_bank(demo_bank)
    job = discover("cmu", Path(bank.manifest["config"]["sources"][0][1]))[0][0]
    poses = canonical_poses(job, get_skeleton("j13"), 30.0).poses_m
    sk = get_skeleton("j13")
    head_above_ankles = poses[0, sk.index("head"), 1] - poses[0, [sk.index("left_ankle"), sk.index("right_ankle")], 1].mean()
    assert 1.3 < head_above_ankles < 1.8
    np.testing.assert_allclose(poses[:, list(sk.torso)].mean(axis=1), 0.0, atol=1e-5)


def test_same_inputs_and_seed_give_identical_files(tmp_path: Path, demo_bank: Path) -> None:
    root = Path(open_bank(demo_bank).manifest["config"]["sources"][0][1])
    build_bank(_config(root, tmp_path / "again"))
    a = json.loads((demo_bank / "manifest.json").read_text())
    b = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]]
    other = build_bank(_config(root, tmp_path / "seed1", seed=1))
    assert other.rows == a["rows"]
    c = json.loads((tmp_path / "seed1" / "manifest.json").read_text())
    assert [s["sha256"] for s in a["shards"]] != [s["sha256"] for s in c["shards"]]


def test_workers_do_not_change_the_output(tmp_path: Path) -> None:
    root = _one_subject(tmp_path, "131", ("131_01", "131_03"))
    build_bank(_config(root, tmp_path / "w1"))
    build_bank(_config(root, tmp_path / "w2", workers=2))
    for f in (tmp_path / "w1" / "shards").iterdir():
        assert sha256_file(f) == sha256_file(tmp_path / "w2" / "shards" / f.name)


def test_resume_reuses_work_and_repairs_a_lost_shard(tmp_path: Path) -> None:
    root = _one_subject(tmp_path)
    out = tmp_path / "bank"
    first = build_bank(_config(root, out))
    assert first.shards_written >= 2
    again = build_bank(_config(root, out))
    assert again.shards_written == 0 and again.shards_reused == first.shards_written
    lost = sorted((out / "shards").iterdir())[1]
    digest = sha256_file(lost)
    lost.unlink()
    repaired = build_bank(_config(root, out))
    assert repaired.shards_written == 1 and sha256_file(lost) == digest


def test_other_job_in_same_out_is_refused_unless_overwrite(tmp_path: Path) -> None:
    root = _one_subject(tmp_path)
    out = tmp_path / "bank"
    build_bank(_config(root, out))
    with pytest.raises(OutputConflictError):
        build_bank(_config(root, out, seed=7))
    report = build_bank(_config(root, out, seed=7), overwrite=True)
    assert open_bank(out).manifest["config"]["seed"] == 7 and report.rows > 0


def test_j17_and_dedup_threshold(tmp_path: Path) -> None:
    root = _one_subject(tmp_path)
    loose = build_bank(_config(root, tmp_path / "loose", skeleton="j17", dedup_mm=50.0))
    tight = build_bank(_config(root, tmp_path / "tight", skeleton="j17", dedup_mm=0.0))
    assert loose.stats["cmu"]["kept"] < tight.stats["cmu"]["kept"] == tight.stats["cmu"]["poses"]
    bank = open_bank(tmp_path / "loose")
    (pose_3d,) = bank.poses(columns=("pose_3d",))
    assert pose_3d.shape[1:] == (17, 3)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no motions found"):
        build_bank(_config(tmp_path / "empty", tmp_path / "out"))


def test_motion_without_skeleton_is_reported(tmp_path: Path) -> None:
    root = _one_subject(tmp_path)
    shutil.copy(DEMO / "subjects/131/131_03.amc", root / "subjects/135/")
    with pytest.raises(InputError, match="131_03.amc.*no skeleton"):
        build_bank(_config(root, tmp_path / "out"))
    report = build_bank(_config(root, tmp_path / "out2", skip_bad=True))
    assert [Path(s["path"]).name for s in report.skipped] == ["131_03.amc"]
    assert open_bank(tmp_path / "out2").manifest["skipped"][0]["reason"].startswith("no skeleton")


def test_truncated_amc_names_file_and_is_skippable(tmp_path: Path) -> None:
    root = _one_subject(tmp_path, "131", ("131_01",))
    amc = (DEMO / "subjects/131/131_03.amc").read_bytes()
    (root / "subjects/131/131_03.amc").write_bytes(amc[: len(amc) // 2 + 17])  # cut mid-line
    with pytest.raises(InputError, match="131_03.amc"):
        build_bank(_config(root, tmp_path / "out"))
    report = build_bank(_config(root, tmp_path / "out2", skip_bad=True))
    assert len(report.skipped) == 1 and "131_03.amc" in report.skipped[0]["path"]
    assert report.stats["cmu"]["sequences"] == 1 and report.rows > 0


def test_pandas_polars_duckdb_read_the_shards(demo_bank: Path) -> None:
    import duckdb
    import pandas as pd
    import polars as pl

    glob = str(demo_bank / "shards" / "*.parquet")
    n = open_bank(demo_bank).num_rows
    assert len(pd.read_parquet(demo_bank / "shards")) == n
    assert pl.read_parquet(glob).height == n
    assert duckdb.sql(f"select count(*) from '{glob}'").fetchall()[0][0] == n
    arr = pl.read_parquet(glob).get_column("pose_2d")
    assert arr.dtype.size == 26  # fixed-size array of 13 joints x 2


def test_skeleton_lacking_a_needed_bone_names_the_bone(tmp_path: Path) -> None:
    """An ASF without the bone the canonical right ankle needs (rtibia renamed in ASF and AMC alike,
    so the files themselves are consistent) fails at the mapping, naming the file and the joint."""
    root = _one_subject(tmp_path)
    for f in (root / "subjects/135").iterdir():
        f.write_bytes(f.read_bytes().replace(b"rtibia", b"rshin"))
    with pytest.raises(InputError, match=r"135_04\.amc.*rtibia.*right_ankle"):
        build_bank(_config(root, tmp_path / "out"))


def test_nan_in_amc_names_the_line(tmp_path: Path) -> None:
    root = _one_subject(tmp_path)
    amc = root / "subjects/135/135_04.amc"
    lines = amc.read_bytes().split(b"\n")
    lines[40] = b"lfemur nan 1.0 2.0\r"
    amc.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError, match=r"135_04\.amc:41"):
        build_bank(_config(root, tmp_path / "out"))
