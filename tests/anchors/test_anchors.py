"""Anchor-poses on a bank built from the real CMU sample: means of members, nearest-anchor labels,
determinism, upper-body boxes, the LCR-Net export, and engine agreement."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from posebank.anchors import (
    AnchorConfig, _nearest_l2, assign_classes, finalise_clusters, from_lcrnet_layout, kmeans,
)  # fmt: skip
from posebank.anchors.build import build_anchors, load_anchors, sample_poses
from posebank.bank import open_bank
from posebank.bank.build import build_bank
from posebank.config import BankConfig, ViewConfig
from posebank.errors import OutputConflictError
from posebank.skeleton import get_skeleton

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "cmu"
SK = get_skeleton("j13")


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cmu")
    (root / "subjects/131").mkdir(parents=True)
    for f in ("131.asf", "131_01.amc"):
        shutil.copy(DEMO / "subjects/131" / f, root / "subjects/131")
    out = tmp_path_factory.mktemp("bank")
    build_bank(BankConfig(sources=(("cmu", str(root)),), out=str(out), view=ViewConfig(views=6)))
    return out


@pytest.fixture(scope="module")
def fitted(bank_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("anchors")
    report = build_anchors(AnchorConfig(bank=str(bank_dir), out=str(out), k=12, sample=0, engine="faiss"))
    return out, report


def test_each_anchor_is_the_mean_of_its_members(bank_dir: Path, fitted) -> None:
    out, report = fitted
    poses = sample_poses(open_bank(bank_dir), 0, 0).reshape(-1, 39)
    centres = report.anchors.pose_3d.reshape(12, 39)
    assign = _nearest_l2(poses, centres)
    np.testing.assert_array_equal(np.bincount(assign, minlength=12), report.anchors.members)
    for k in range(12):
        np.testing.assert_allclose(poses[assign == k].mean(0), centres[k], atol=1e-5)
    assert report.anchors.members.min() > 0 and report.anchors.members.sum() == len(poses)


def test_every_pose_gets_its_nearest_anchor(bank_dir: Path, fitted) -> None:
    _, report = fitted
    poses = sample_poses(open_bank(bank_dir), 500, 1)
    labels = assign_classes(poses, report.anchors.pose_3d)
    d = np.linalg.norm(poses[:, None] - report.anchors.pose_3d[None], axis=-1).mean(-1)
    np.testing.assert_array_equal(labels, d.argmin(1))
    np.testing.assert_array_equal(labels, assign_classes(poses, report.anchors.pose_3d, engine="torch", block=64))


def test_upper_body_box_puts_legs_below(fitted) -> None:
    _, report = fitted
    up, full = report.anchors.pose_2d_upper, report.anchors.pose_2d_full
    for name in ("left_hip", "right_hip", "left_shoulder", "right_shoulder"):
        assert ((up[:, SK.index(name)] >= 0) & (up[:, SK.index(name)] <= 1)).all()
    ankles = up[:, [SK.index("left_ankle"), SK.index("right_ankle")], 1]
    assert (ankles > 1).all()
    assert (full >= 0).all() and (full <= 1).all()
    # The 2D is the projection of the 3D: same shape up to the box's scale and offset.
    p2 = report.anchors.pose_3d[..., :2]
    scale = (p2[:, :, 0].max(1) - p2[:, :, 0].min(1)) / (full[:, :, 0].max(1) - full[:, :, 0].min(1))
    np.testing.assert_allclose(full[:, :, 0] * scale[:, None] - p2[:, :, 0], np.broadcast_to(
        (full[:, :1, 0] * scale[:, None] - p2[:, :1, 0]), (12, 13)), atol=1e-5)  # fmt: skip


def test_written_table_export_and_resume(bank_dir: Path, fitted) -> None:
    out, report = fitted
    table = pq.read_table(out / "anchors.parquet")
    assert table.num_rows == 12 and table.column_names == ["anchor_id", "pose_3d", "pose_2d_full", "pose_2d_upper", "members"]
    back = load_anchors(out)
    np.testing.assert_array_equal(back.pose_3d, report.anchors.pose_3d)
    exported = np.load(out / "anchors_lcrnet.npy")
    assert exported.shape == (24, 65) and exported.dtype == np.float32
    np.testing.assert_allclose(exported[0, 26:39], -report.anchors.pose_3d[0, :, 0])  # X negated
    round_trip = from_lcrnet_layout(exported, 13)
    np.testing.assert_allclose(round_trip.pose_3d, report.anchors.pose_3d)
    np.testing.assert_allclose(round_trip.pose_2d_upper, report.anchors.pose_2d_upper)
    again = build_anchors(AnchorConfig(bank=str(bank_dir), out=str(out), k=12, sample=0, engine="faiss"))
    assert again.reused
    with pytest.raises(OutputConflictError):
        build_anchors(AnchorConfig(bank=str(bank_dir), out=str(out), k=10, sample=0))


def test_determinism(bank_dir: Path, tmp_path: Path, fitted) -> None:
    _, report = fitted
    again = build_anchors(AnchorConfig(bank=str(bank_dir), out=str(tmp_path / "a"), k=12, sample=0, engine="faiss"))
    np.testing.assert_array_equal(again.anchors.pose_3d, report.anchors.pose_3d)


def test_engines_reach_similar_inertia() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 39)).astype(np.float32) * 3
    x = (centres[rng.integers(0, 8, 4000)] + rng.normal(size=(4000, 39)) * 0.3).astype(np.float32)
    inertia = {}
    for engine in ("faiss", "numpy", "torch"):
        c, stats = kmeans(x, 8, niter=20, seed=0, engine=engine)
        c, assign, counts = finalise_clusters(x, c)
        assert counts.min() > 0 and 0 < len(stats) <= 20
        inertia[engine] = float(((x - c[assign]) ** 2).sum())
    # Random initialisations may land in different local minima; each must still explain most of
    # the spread (one cluster would leave the total variance), and numpy and torch run the same maths.
    total = float(((x - x.mean(0)) ** 2).sum())
    assert max(inertia.values()) < 0.25 * total
    np.testing.assert_allclose(inertia["numpy"], inertia["torch"], rtol=1e-4)


def test_finalise_fills_empty_clusters() -> None:
    x = np.random.default_rng(1).normal(size=(100, 3)).astype(np.float32)
    centres = np.vstack([x[:3], [[100.0, 100.0, 100.0]]]).astype(np.float32)  # the last one wins no point
    c, assign, counts = finalise_clusters(x, centres)
    assert counts.min() >= 1 and counts.sum() == 100
