"""Bank figures on real banks: counts and the deduplication rate agree with the manifest, rigid bones
of real subjects do not vary, a corrupted bank is flagged, and the coverage between sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posebank.audit import AuditConfig
from posebank.audit.bank_audit import audit_bank
from posebank.audit.bones import bone_table
from posebank.audit.coverage import body_frame_poses, nearest_mpjpe
from posebank.audit.numeric import BottomK, GroupedMoments, hash_keys
from posebank.bank import open_bank
from posebank.provenance import sha256_file
from posebank.skeleton import get_skeleton

SK = get_skeleton("j13")
VIEWS = 4  # conftest.VIEWS: the views per pose of the test banks


def test_counts_and_dedup_rate_match_the_manifest(bank_dir: Path) -> None:
    bank = open_bank(bank_dir)
    report = audit_bank(bank, AuditConfig(coverage_sample=500))
    stats = bank.manifest["stats"]["cmu"]
    cmu = report["sources"]["cmu"]
    assert cmu["dedup_rate"] == pytest.approx(1 - stats["kept"] / stats["poses"])
    assert cmu["poses_read"] == stats["poses"] and cmu["poses"] == stats["kept"] and cmu["consistent_with_manifest"]
    assert cmu["rows"] == report["rows"] == bank.num_rows and cmu["views_per_pose"] == VIEWS
    assert {(s["source"], s["subject"]) for s in report["subjects"]} == {("cmu", "09"), ("cmu", "135")}
    assert sum(s["poses"] for s in report["subjects"]) == stats["kept"]
    assert all(s["sequences"] == 1 for s in report["subjects"])


def test_real_subjects_have_rigid_bones(bank_dir: Path) -> None:
    report = audit_bank(open_bank(bank_dir), AuditConfig(coverage_sample=500))
    rigid = np.array(report["bones"]["rigid"])
    assert rigid.sum() >= 9  # shins, thighs, forearms, upper arms, hip width
    for s in report["subjects"]:
        std = np.array(s["bones"]["std_m"])
        assert (std[rigid] < 1e-5).all(), (s["subject"], std)  # float32 storage: ~1e-7 m
        ratio = np.array(s["bones"]["max_min_ratio"])
        assert (ratio[rigid] < 1.0001).all()
        assert s["problems"] == []
    assert report["flagged_subjects"] == []


def _corrupt(bank_dir: Path, out: Path) -> Path:
    """A copy of the bank whose subject 135 is in inches read as metres (x 1/0.0254) and whose
    subject 09 has every pose scaled by its own factor in [0.9, 1.1] (a wobbling skeleton)."""
    shutil.copytree(bank_dir, out)
    for path in (out / "shards").glob("*.parquet"):
        table = pq.read_table(path)
        p3 = np.stack(table.column("pose_3d").to_numpy(zero_copy_only=False)).reshape(table.num_rows, -1)
        subject = np.array(table.column("subject").to_pylist())
        pose_id = table.column("pose_id").to_numpy()
        p3[subject == "135"] /= 0.0254
        wobble = 1.0 + 0.1 * np.sin(pose_id % 1000)  # per pose, the same in every view
        p3[subject == "09"] *= wobble[subject == "09", None]
        column = pa.FixedSizeListArray.from_arrays(pa.array(p3.astype(np.float32).reshape(-1)), p3.shape[1])
        table = table.set_column(table.schema.get_field_index("pose_3d"), table.schema.field("pose_3d"), column)
        pq.write_table(table, path)
    # Wrong content written as a build would write it (the manifest records the new bytes): the
    # audit judges the poses; damage to bytes is posebank.verify's job (tests/test_jobs.py).
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["shards"]:
        entry["sha256"], entry["bytes"] = sha256_file(out / entry["file"]), (out / entry["file"]).stat().st_size
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_a_corrupted_bank_is_flagged(bank_dir: Path, tmp_path: Path) -> None:
    report = audit_bank(open_bank(_corrupt(bank_dir, tmp_path / "corrupt")), AuditConfig(coverage_sample=500))
    problems = {(f["subject"], f["bone"], f["problem"]) for f in report["flagged_subjects"]}
    assert ("135", "right_knee-right_hip", "length") in problems  # the femur: ~16 m
    assert ("09", "left_ankle-left_knee", "varies") in problems
    assert not any(p == "varies" for s, _, p in problems if s == "135")  # scaled, but consistently
    femur = next(s for s in report["subjects"] if s["subject"] == "135")["bones"]["mean_m"][2]
    assert femur > 10.0


def test_streaming_does_not_depend_on_the_batch_size(bank_dir: Path) -> None:
    bank = open_bank(bank_dir)
    a = audit_bank(bank, AuditConfig(coverage_sample=100))
    b = audit_bank(bank, AuditConfig(coverage_sample=100, batch_rows=37))
    assert a["subjects"][0]["poses"] == b["subjects"][0]["poses"]
    for sa, sb in zip(a["subjects"], b["subjects"]):
        np.testing.assert_allclose(sa["bones"]["mean_m"], sb["bones"]["mean_m"], rtol=1e-12)
        np.testing.assert_allclose(sa["bones"]["std_m"], sb["bones"]["std_m"], atol=1e-9)
    assert json.dumps(a["coverage"]) == json.dumps(b["coverage"])  # same sample: keys hash the pose ids
    c = audit_bank(bank, AuditConfig(coverage_sample=100, seed=1))
    assert json.dumps(a["coverage"]) != json.dumps(c["coverage"])


def test_coverage_between_sources(shared_bank_dir: Path) -> None:
    report = audit_bank(open_bank(shared_bank_dir), AuditConfig(coverage_sample=300))
    cov = report["coverage"]
    assert cov["sources"] == ["cmu", "hdm05", "poseprior"] and cov["reference"] == "cmu"
    stats = open_bank(shared_bank_dir).manifest["stats"]
    assert cov["sample_sizes"] == {s: min(300, stats[s]["kept"]) for s in cov["sources"]}
    m = cov["matrix_median_mm"]
    # Another source's poses are farther from CMU than CMU's own poses are from each other.
    assert m["hdm05"]["cmu"] > m["cmu"]["cmu"] and m["poseprior"]["cmu"] > m["cmu"]["cmu"]
    assert 0.0 <= cov["added"]["poseprior"]["share_over_100mm"] <= 1.0
    assert cov["added"]["cmu"]["share_over_100mm"] <= cov["added"]["hdm05"]["share_over_100mm"]
    assert set(report["sources"]) == {"cmu", "hdm05", "poseprior"}
    for name, s in report["sources"].items():
        assert s["dedup_rate"] == pytest.approx(1 - stats[name]["kept"] / stats[name]["poses"])
    assert all(f["problem"] != "length" for f in report["flagged_subjects"])  # real skeletons, metres


def test_body_frame_removes_the_view(bank_dir: Path) -> None:
    bank = open_bank(bank_dir)
    got = bank.take(np.arange(0, 4 * VIEWS), columns=("pose_id", "pose_3d"))
    assert len(np.unique(got["pose_id"])) == 4  # rows are (pose, view), views of a pose together
    body = body_frame_poses(got["pose_3d"], SK).reshape(4, VIEWS, 13, 3)
    np.testing.assert_allclose(body, np.broadcast_to(body[:, :1], body.shape), atol=2e-5)
    lengths = np.linalg.norm(got["pose_3d"][:, 2] - got["pose_3d"][:, 4], axis=-1)
    np.testing.assert_allclose(np.linalg.norm(body.reshape(-1, 13, 3)[:, 2] - body.reshape(-1, 13, 3)[:, 4], axis=-1),
                               lengths, rtol=1e-5)  # fmt: skip


def test_nearest_mpjpe_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=(50, 13, 3)), rng.normal(size=(80, 13, 3))
    brute = np.linalg.norm(q[:, None] - r[None], axis=-1).mean(-1)
    got = nearest_mpjpe(q, r, candidates=80, block=7)
    np.testing.assert_allclose(got, brute.min(1), rtol=1e-5)
    self_brute = np.linalg.norm(r[:, None] - r[None], axis=-1).mean(-1) + np.diag(np.full(80, np.inf))
    np.testing.assert_allclose(nearest_mpjpe(r, r, candidates=80, exclude_self=True, block=9), self_brute.min(1), rtol=1e-5)


def test_streaming_helpers_equal_their_one_shot_versions() -> None:
    rng = np.random.default_rng(1)
    codes, values = rng.integers(0, 5, 1000), rng.normal(3.0, 2.0, size=(1000, 4))
    m = GroupedMoments(dims=4)
    for s in range(0, 1000, 97):
        m.add(codes[s : s + 97], values[s : s + 97])
    for g in range(5):
        v = values[codes == g]
        np.testing.assert_allclose(m.mean[g], v.mean(0))
        np.testing.assert_allclose(m.std[g], v.std(0))
        np.testing.assert_allclose(m.lo[g], v.min(0))
        np.testing.assert_allclose(m.hi[g], v.max(0))
    ids = np.arange(10_000)
    keys = hash_keys(ids, seed=3)
    sample = BottomK(100)
    for s in range(0, 10_000, 333):
        sample.add(keys[s : s + 333], ids[s : s + 333])
    np.testing.assert_array_equal(sample.items, ids[np.argsort(keys)[:100]])
    assert 0.3 < (sample.items < 5000).mean() < 0.7  # spread over the whole range


def test_bone_table_knows_the_rigid_limbs() -> None:
    table = bone_table(get_skeleton("j17"))
    rigid = {n for n, r in zip(table.names, table.rigid) if r}
    assert "left_knee-left_hip" in rigid and "pelvis-right_hip" in rigid and "head-neck" not in rigid
    assert all(table.mirror[table.names.index(n)] >= 0 for n in rigid if n.startswith("left_"))
