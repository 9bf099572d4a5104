"""The audit's pictures explain themselves: plot sizes and legends (as audit.json records them and as the
PNG files are), the page's sections, a two-source bank's viewpoints and 2D coverage, synthetic shards
audited without empty plots, typical cases beside the worst, both readings of a swap, bone spreads in mm.
On the bundled CMU, BVH, COCO and MPII samples."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from posebank.audit import AuditConfig, AuditResult, run_audit
from posebank.audit.drawing import draw_cases
from posebank.audit.page import problem_text
from posebank.audit.plots import _distance_matrix, new_figure
from posebank.bank.build import build_bank
from posebank.config import BankConfig, ViewConfig
from posebank.drawing_style import SIDE_LABELS, STATE_LABELS
from posebank.synth import SynthConfig, synthesize

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"  # (not imported from conftest: several tests/ dirs have one)
STYLE_LEGEND = [*SIDE_LABELS.values(), *STATE_LABELS.values()]


@pytest.fixture(scope="module")
def two_source_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CMU 09 (ASF/AMC) and the BVH sample: two sources."""
    tmp = tmp_path_factory.mktemp("two-sources")
    (tmp / "bvh").mkdir()
    (tmp / "bvh" / "131_01_5frames.bvh").write_bytes((FIXTURES / "bvh" / "131_01_5frames.bvh").read_bytes())
    cmu = tmp / "cmu" / "subjects" / "09"
    cmu.mkdir(parents=True)
    for name in ("09.asf", "09_12.amc"):
        (cmu / name).write_bytes((FIXTURES / "demo" / "cmu" / "subjects" / "09" / name).read_bytes())
    out = tmp / "bank"
    build_bank(BankConfig(sources=(("cmu", str(tmp / "cmu")), ("bvh", str(tmp / "bvh"))), out=str(out), view=ViewConfig(views=4)))
    return out


@pytest.fixture(scope="module")
def synth_dir(small_bank_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(SynthConfig(images=6, size=(128, 128), people=(1, 3), seed=1, images_per_shard=6, workers=0),
               small_bank_dir, out)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def audited(two_source_bank: Path, coco_dir: Path, synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    config = AuditConfig(paths=(str(two_source_bank), str(coco_dir), str(synth_dir)),
                         out=str(tmp_path_factory.mktemp("audit") / "out"), worst=2, coverage_sample=200, engine="numpy")  # fmt: skip
    return run_audit(config)


def _figures(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for sec in ("banks", "anchors", "annotations") for s in report[sec].values() for f in s["figures"]]


def test_plots_are_800_by_400_or_larger_and_say_so(audited: AuditResult) -> None:
    figures = _figures(audited.report)
    assert len(figures) >= 10
    for f in figures:
        with Image.open(audited.out / f["file"]) as im:
            assert list(im.size) == f["size_px"], f["file"]
        w, h = f["size_px"]
        assert w >= 800 and h >= 400, f
        assert f["cut_text"] == [], f  # every title, axis label and legend inside the picture
    plain = [f for f in figures if f["file"].endswith(("-distance.png", "-occlusion.png", "-height.png", "-viewpoints.png"))]
    assert plain and all(f["size_px"] == [800, 400] for f in plain)


def test_bank_viewpoints_and_2d_coverage_by_source(audited: AuditResult) -> None:
    (bank,) = audited.report["banks"].values()
    vp = bank["viewpoints"]
    assert set(vp["azimuth_counts"]) == {"bvh", "cmu"}
    assert sum(sum(c) for c in vp["azimuth_counts"].values()) == bank["rows"]  # every row, each in one bin
    assert sum(sum(c) for c in vp["elevation_counts"].values()) == bank["rows"]
    cov = bank["coverage_2d"]
    assert cov["sources"] == ["bvh", "cmu"] and len(cov["pairs"]) == 4
    assert all(0.0 <= cov["matrix_median"][a][b] <= 2.0 for a in cov["sources"] for b in cov["sources"])
    files = {f["file"]: f for f in bank["figures"]}
    assert {"bvh (", "cmu ("} <= {lbl[:5] for lbl in files["bank-bank-viewpoints.png"]["legend"]}
    assert "bank-bank-coverage-2d.png" in files


def test_page_sections_and_titles(audited: AuditResult) -> None:
    page = (audited.out / "index.html").read_text()
    for section in ("Viewpoints", "2D pose-space coverage by source", "coco: typical matches (a seeded random sample)",
                    "Occlusion per joint", "Person height (px) and people per image",
                    "Bone lengths per subject: standard deviation (mm)"):  # fmt: skip
        assert f"<h3>{section}" in page, section
    titles = re.findall(r"<h2>([^<]*)</h2>", page)
    assert titles[0] == "Bank" and all(len(set(t.lower().split())) == len(t.split()) for t in titles), titles


def test_synthetic_shards_get_their_own_plots_and_no_empty_ones(audited: AuditResult) -> None:
    synth = next(a for a in audited.report["annotations"].values() if "synth" in a["datasets"])
    d = synth["datasets"]["synth"]
    assert d["matched"] == 0 and d["people"] >= 6
    assert sum(d["occlusion_per_joint"]["occluded"]) > 0
    assert 1 <= d["people_per_image"]["min"] <= d["people_per_image"]["max"] <= 3 and d["people_per_image"]["images"] == 6
    assert d["person_height_px"]["count"] > 0
    names = [f["file"].split("-")[-1] for f in synth["figures"]]
    assert names == ["occlusion.png", "height.png", "image.png"]  # no match plots: they would read "no data"
    assert all(f["legend"] for f in synth["figures"])  # a legend means something was drawn


def test_typical_cases_beside_the_worst_with_the_style_legend(audited: AuditResult) -> None:
    coco = next(a for a in audited.report["annotations"].values() if "coco" in a["datasets"])["datasets"]["coco"]
    assert len(coco["typical"]) == len(coco["worst"]) == 2
    assert {r["row"] for r in coco["typical"]} != {r["row"] for r in coco["worst"]} or coco["matched"] <= 2
    for rec in coco["typical"] + coco["worst"]:
        assert rec["figure"]["size_px"] == [1080, 400]  # three panels: annotation, its match, 3D
        assert sorted(rec["figure"]["legend"]) == sorted(["query (annotated)", *STYLE_LEGEND])
        assert rec["figure"]["cut_text"] == []


def test_a_suspected_swap_is_drawn_in_both_readings(audited: AuditResult, tmp_path: Path) -> None:
    ann = next(a for a in audited.report["annotations"].values() if "coco" in a["datasets"])
    rec = dict(ann["datasets"]["coco"]["worst"][0])
    report = {"annotations": {"x": {**ann, "datasets": {"coco": {"worst": [], "typical": [], "swaps": [rec]}}}}}
    assert draw_cases(report, tmp_path, None) == 1
    assert rec["figure"]["size_px"] == [1440, 400]  # a fourth panel: left and right exchanged
    with Image.open(tmp_path / rec["figure"]["file"]) as im:
        assert im.size == (1440, 400)


def test_one_source_coverage_is_said_not_drawn_as_a_black_square() -> None:
    fig = new_figure()
    ax = fig.add_subplot()
    _distance_matrix(ax, np.array([[23.4]]), ["cmu"], "median nearest-pose distance (mm)", "{:.0f}")
    assert not ax.images and "one source (cmu)" in ax.texts[0].get_text() and "23" in ax.texts[0].get_text()
    ax2 = fig.add_subplot(2, 1, 2)
    _distance_matrix(ax2, np.array([[20.0, 80.0], [60.0, 25.0]]), ["a", "b"], "t", "{:.0f}")
    assert len(ax2.images) == 1 and [t.get_text() for t in ax2.texts] == ["20", "80", "60", "25"]


def test_bone_problems_read_in_mm_and_percent() -> None:
    assert problem_text({"problem": "varies", "value": 5.688e-05, "limit": 0.01}) == ["0.1 mm", "10.0 mm"]
    assert problem_text({"problem": "length", "value": 0.0254, "limit": [0.3, 0.6]}) == ["25.4 mm", "300.0 mm to 600.0 mm"]
    assert problem_text({"problem": "asymmetric", "value": 0.31, "limit": 0.2}) == ["31.0 %", "20 %"]
