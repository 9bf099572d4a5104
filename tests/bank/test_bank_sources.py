"""A bank from every source of the real sample (CMU, HDM05, BVH, Pose Prior) in one build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posebank.bank import open_bank
from posebank.bank.build import build_bank
from posebank.bank.canonical import canonical_poses
from posebank.config import BankConfig, ViewConfig
from posebank.skeleton import get_skeleton
from posebank.mocap.sources import discover


@pytest.fixture(scope="module")
def all_sources_bank(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bank")
    sources = (("cmu", str(shared_data / "cmu/subjects")), ("hdm05", str(shared_data / "hdm05")),
               ("poseprior", str(shared_data / "poseprior")), ("bvh", str(shared_data / "cmu/bvh")))  # fmt: skip
    build_bank(BankConfig(sources=sources, out=str(out), view=ViewConfig(views=2), workers=2))
    return out


def test_every_source_is_in_the_bank(all_sources_bank: Path) -> None:
    bank = open_bank(all_sources_bank)
    stats = bank.manifest["stats"]
    assert set(stats) == {"cmu", "hdm05", "poseprior", "bvh"}
    assert stats["cmu"]["sequences"] == 5 and stats["hdm05"]["sequences"] == 3 and stats["bvh"]["sequences"] == 1
    assert stats["poseprior"]["poses"] == 1000  # an unordered set: never resampled
    df = bank.to_pandas(columns=["source", "subject", "pose_id"])
    assert set(df.source) == set(stats)
    assert set(df[df.source == "hdm05"].subject) == {"bd", "bk", "dg"}
    for source, s in stats.items():
        assert (df.source == source).sum() == s["kept"] * 2


@pytest.mark.parametrize("source, folder", [("hdm05", "hdm05"), ("bvh", "cmu/bvh"), ("poseprior", "poseprior")])
def test_canonical_poses_are_plausible_bodies(shared_data: Path, source: str, folder: str) -> None:
    """Thigh and shin lengths constant over frames; head above hips above ankles (+Y up)."""
    sk = get_skeleton("j13")
    for job in discover(source, shared_data / folder)[0]:
        poses = canonical_poses(job, sk, 30.0).poses_m.astype(np.float64)
        for a, b in (("left_hip", "left_knee"), ("right_knee", "right_ankle")):
            length = np.linalg.norm(poses[:, sk.index(a)] - poses[:, sk.index(b)], axis=-1)
            if source == "poseprior":  # retargeted to one skeleton: one length for all poses
                assert length.std() < 1e-4, (job.sequence, a, b)
            else:
                assert length.std() < 1e-6, (job.sequence, a, b)
            assert 0.3 < length.mean() < 0.6
        up = poses[..., 1]
        head, hips = up[:, sk.index("head")], up[:, [sk.index("left_hip"), sk.index("right_hip")]].mean(1)
        ankles = up[:, [sk.index("left_ankle"), sk.index("right_ankle")]].mean(1)
        # Someone standing at some point of a take (HDM05 depositFloor bends down most of it; the
        # cgspeed BVH lacks the thorax bone, 11 cm);
        # Pose Prior is a set of extreme poses, standing or not.
        upright = np.percentile(head - ankles, 90)
        assert 1.2 < upright < 1.9 or source == "poseprior" and 0.5 < upright < 1.9, (job.sequence, upright)
        assert np.median(head - hips) > 0.4


def test_pose_prior_thorax_is_restored_in_the_bank_unless_asked_not_to(shared_data: Path) -> None:
    """The release lacks a thorax bone: its torsos are a fifth shorter than the CMU subjects' it came from."""
    sk = get_skeleton("j13")

    def torso_m(poses: np.ndarray) -> float:
        mid = lambda a, b: (poses[:, sk.index(a)] + poses[:, sk.index(b)]) / 2
        return float(np.linalg.norm(mid("left_shoulder", "right_shoulder") - mid("left_hip", "right_hip"), axis=-1).mean())

    job = discover("poseprior", shared_data / "poseprior")[0][0]
    cmu = [j for j in discover("cmu", shared_data / "cmu/subjects")[0] if j.subject == "09"][0]
    restored = torso_m(canonical_poses(job, sk, 30.0).poses_m)
    raw = torso_m(canonical_poses(job, sk, 30.0, poseprior_thorax=False).poses_m)
    assert raw < 0.42 and abs(restored - torso_m(canonical_poses(cmu, sk, 30.0).poses_m)) < 0.03
    # Part of a bank's identity only when a Pose Prior source is in it (other banks keep theirs).
    assert "poseprior_thorax" in BankConfig(sources=(("poseprior", "pp"),)).job_identity()
    assert "poseprior_thorax" not in BankConfig(sources=(("cmu", "cmu"),)).job_identity()


def test_a_corrupt_pose_prior_file_is_named(tmp_path: Path) -> None:
    """An unreadable .mat beside a good one used to be skipped in silence (exit 0, skipped [])."""
    from scipy.io import savemat

    from posebank.errors import InputError

    root = tmp_path / "poseprior"
    root.mkdir()
    savemat(root / "good.mat", {"S": np.arange(6 * 18, dtype=np.float64).reshape(6, 18)})
    (root / "bad.mat").write_bytes((root / "good.mat").read_bytes()[:40])  # a download cut short
    jobs, problems = discover("poseprior", root)
    assert [j.sequence for j in jobs] == ["good"]
    assert [p.path for p in problems] == [str(root / "bad.mat")] and "cannot read this MATLAB file" in problems[0].reason
    config = BankConfig(sources=(("poseprior", str(root)),), out=str(tmp_path / "bank"), view=ViewConfig(views=1), fps=0)
    with pytest.raises(InputError, match=r"bad\.mat: cannot read this MATLAB file"):
        build_bank(config)
    report = build_bank(BankConfig(**{**config.__dict__, "skip_bad": True}))
    assert [s["path"] for s in report.skipped] == [str(root / "bad.mat")]
    (root / "good.mat").unlink()
    with pytest.raises(InputError, match=r"no motions found .*bad\.mat: cannot read this MATLAB file"):
        discover("poseprior", root)
