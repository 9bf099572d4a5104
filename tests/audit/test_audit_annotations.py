"""Annotation figures against the shards themselves: flags, completions per joint, the worst
matches, anchor class usage, and two banks compared on the same annotations."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from posebank.anchors import assign_classes
from posebank.anchors.build import load_anchors
from posebank.audit import AuditConfig
from posebank.audit.anchors_audit import AnchorUsage
from posebank.audit.annotations_audit import audit_annotations
from posebank.audit.compare import BankComparison
from posebank.audit.inputs import detect_kind
from posebank.bank import open_bank


def _shards(folder: Path) -> list[Path]:
    return list(detect_kind(folder)[1])


def _table(folder: Path):  # a pandas DataFrame
    return pq.read_table(_shards(folder)[0]).to_pandas()


@pytest.mark.parametrize("which", ["mpii_dir", "coco_dir", "mpii_full_dir"])
def test_annotation_figures_equal_the_shards(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    folder = request.getfixturevalue(which)
    df = _table(folder)
    report = audit_annotations(_shards(folder), AuditConfig(worst=5, listed=1), tmp_path / "flagged.csv")
    (name,) = report["datasets"]
    d = report["datasets"][name]
    matched = df.match_distance.notna().to_numpy()
    visible = np.stack(df.visible.to_numpy())
    assert d["people"] == len(df) == report["people"] and d["matched"] == matched.sum()
    assert d["flags"] == dict(Counter(f for fl in df["flags"] for f in fl))
    for flag, entry in d["flagged_people"].items():
        assert entry["count"] == d["flags"][flag] and len(entry["listed"]) == min(1, entry["count"])
    completed = (~visible & matched[:, None]).sum(0)
    assert d["completions_per_joint"]["completed"] == completed.tolist()
    assert d["completions_per_joint"]["annotated"] == visible.sum(0).tolist()
    assert sum(r["people"] for r in d["by_visible_joints"]) == len(df)
    assert d["match_distance"]["count"] == matched.sum()
    assert d["match_distance"]["q50"] == pytest.approx(np.median(df.match_distance[matched]))
    assert sum(d["match_distance_histogram"]["counts"]) == matched.sum()
    assert d["match_spread_mm"]["mean"] == pytest.approx(1000 * df.match_spread[matched].mean())
    assert d["error_estimate_mm"]["count"] == matched.sum() and df.error_estimate[~matched].isna().all()
    assert d["error_estimate_mm"]["mean"] == pytest.approx(df.error_estimate[matched].mean())
    worst = df[matched].sort_values("match_distance", ascending=False, kind="stable").head(5)
    assert [(r["image"], r["person"]) for r in d["worst"]] == list(zip(worst.image, worst.person))
    assert all(len(r["pose_2d"]) == 13 and r["pose_3d"] is not None for r in d["worst"])
    with open(tmp_path / "flagged.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(1 for fl in df["flags"] if len(fl))
    if which == "coco_dir":
        assert d["flags"]["too_few_joints"] == 2 and d["unmatched"] == 2
        assert {(r["image"], int(r["person"])) for r in rows} == {
            (i, p) for i, p, fl in zip(df.image, df.person, df["flags"]) if "too_few_joints" in fl}


def test_anchor_class_usage(mpii_dir: Path, anchors_dir: Path, tmp_path: Path) -> None:
    anchors = load_anchors(anchors_dir)
    usage = AnchorUsage(anchors, anchors_dir / "anchors.parquet")
    report = audit_annotations(_shards(mpii_dir), AuditConfig(worst=0, batch_rows=7), tmp_path / "f.csv",
                               {"anchor_usage": usage})  # fmt: skip
    u = report["datasets"]["mpii"]["anchor_usage"]
    df = _table(mpii_dir)
    p3 = np.stack(df.pose_3d[df.pose_3d.notna()].to_numpy()).reshape(-1, 13, 3)
    expected = np.bincount(assign_classes(p3, anchors.pose_3d), minlength=anchors.k)
    assert u["counts"] == expected.tolist() and u["people"] == len(p3) and u["classes"] == 8
    assert u["used"] + u["empty"] == 8 and 1.0 <= u["effective_classes"] <= 8.0
    assert 0.0 <= u["total_variation_to_bank"] <= 1.0


def test_two_banks_compared(mpii_dir: Path, bank_dir: Path, small_bank_dir: Path, tmp_path: Path) -> None:
    # The annotations were matched against small_bank_dir; bank_dir holds all its rows and more.
    bigger = BankComparison(open_bank(bank_dir), engine="numpy")
    same = BankComparison(open_bank(small_bank_dir), engine="numpy")
    report = audit_annotations(_shards(mpii_dir), AuditConfig(worst=0, batch_rows=16), tmp_path / "f.csv",
                               {"bigger": bigger, "same": same})  # fmt: skip
    d = report["datasets"]["mpii"]
    assert d["same"]["people"] == d["matched"] == 40
    assert abs(d["same"]["reduction_pct_mean"]) < 1e-4 and d["same"]["share_better"] == 0.0
    assert d["same"]["share_worse"] == 0.0
    assert d["bigger"]["share_worse"] == 0.0 and d["bigger"]["share_better"] > 0.0
    assert d["bigger"]["reduction_pct_mean"] > 0.0 and d["bigger"]["reduction_pct_median"] >= 0.0
    base, new = d["bigger"]["base"], d["bigger"]["compared"]
    assert d["bigger"]["reduction_pct_mean"] == pytest.approx(100 * (base["mean"] - new["mean"]) / base["mean"])
    assert sum(d["bigger"]["change_histogram"]["counts"]) == 40


def test_suspected_swaps_are_listed_and_kept(mpii_full_dir: Path, tmp_path: Path) -> None:
    df = _table(mpii_full_dir)
    swapped = [(i, p) for i, p, fl in zip(df.image, df.person, df["flags"]) if "left_right_swap" in fl]
    assert swapped, "the sample should hold suspected swaps against this bank"
    report = audit_annotations(_shards(mpii_full_dir), AuditConfig(worst=3, batch_rows=100), tmp_path / "f.csv")
    d = report["datasets"]["mpii"]
    assert d["flagged_people"]["left_right_swap"]["count"] == len(swapped)
    assert [tuple(x) for x in d["flagged_people"]["left_right_swap"]["listed"]] == swapped  # file order
    assert len(d["swaps"]) == min(3, len(swapped)) and all("left_right_swap" in r["flags"] for r in d["swaps"])
