"""The audit's outputs end to end: audit.json holds every figure (and every number of the page),
the PNGs exist, cases are drawn over their images, the page renders in headless Chromium with all
its images, the output is deterministic, and the `audit` command works."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from cli.audit import register
from posebank.audit import AuditConfig, AuditResult, run_audit
from posebank.audit.page import fmt
from posebank.errors import OutputConflictError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _fake_images(annotations: Path, root: Path) -> int:
    """Write a plain image of the right size for every image the annotations name (COCO sample)."""
    from PIL import Image

    table = pq.read_table(next(annotations.rglob("*.parquet")), columns=["image", "image_width", "image_height"])
    made = 0
    for name, w, h in set(zip(*(table.column(c).to_pylist() for c in table.column_names))):
        ramp = np.linspace(60, 200, w, dtype=np.uint8)
        Image.fromarray(np.broadcast_to(ramp, (h, w))).convert("RGB").save(root / name)
        made += 1
    return made


@pytest.fixture(scope="module")
def audited(bank_dir: Path, small_bank_dir: Path, anchors_dir: Path, mpii_dir: Path, coco_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> AuditResult:  # fmt: skip
    images = tmp_path_factory.mktemp("images")
    assert _fake_images(coco_dir, images) == 4
    config = AuditConfig(paths=(str(small_bank_dir), str(anchors_dir), str(mpii_dir), str(coco_dir)),
                         out=str(tmp_path_factory.mktemp("audit") / "out"), images_root=str(images),
                         compare_bank=str(bank_dir), worst=2, coverage_sample=200, engine="numpy")  # fmt: skip
    return run_audit(config)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def test_the_json_holds_every_figure(audited: AuditResult) -> None:
    out, report = audited.out, audited.report
    assert json.loads((out / "audit.json").read_text()) == report
    assert [i["kind"] for i in report["inputs"]] == ["bank", "anchors", "annotations", "annotations"]
    (bank,) = report["banks"].values()
    for key in ("sources", "subjects", "bones", "flagged_subjects", "coverage"):
        assert key in bank
    for ann in report["annotations"].values():
        for d in ann["datasets"].values():
            for key in ("flags", "flagged_people", "match_distance", "match_distance_histogram", "by_visible_joints",
                        "completions_per_joint", "match_spread_mm", "error_estimate_mm", "worst", "swaps", "anchor_usage",
                        "compare"):
                assert key in d, key
            assert d["compare"]["people"] == d["matched"]
    for name in report["files"]:
        assert (out / name).is_file(), name
    page = (out / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) >= 12 and set(images) <= set(report["files"])
    assert all("/" not in src and not src.startswith("http") for src in images)  # relative, beside the page
    # Every number the page shows is a value of the JSON, as fmt writes it.
    allowed = {fmt(v) for v in _leaves(report)} | {"-"}
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page)
    numeric = [c for c in cells if re.fullmatch(r"-?[0-9.]+(e[-+]?[0-9]+)?", c)]
    assert len(numeric) > 100
    missing = [c for c in numeric if c not in allowed]
    assert not missing, missing[:10]


def test_worst_cases_are_drawn_over_their_images(audited: AuditResult) -> None:
    anns = audited.report["annotations"]
    coco = next(a for a in anns.values() if "coco" in a["datasets"])["datasets"]["coco"]
    mpii = next(a for a in anns.values() if "mpii" in a["datasets"])["datasets"]["mpii"]
    assert len(coco["worst"]) == 2 and all(r["figure"]["over_image"] for r in coco["worst"])
    assert all(not r["figure"]["over_image"] for r in mpii["worst"])  # no MPII images given
    for r in coco["worst"] + mpii["worst"]:
        assert (audited.out / r["figure"]["file"]).stat().st_size > 5_000


def test_the_output_is_deterministic(audited: AuditResult, tmp_path: Path) -> None:
    again = run_audit(AuditConfig(**{**audited.report["config"], "paths": tuple(audited.report["config"]["paths"]),
                                     "coverage_thresholds_mm": tuple(audited.report["config"]["coverage_thresholds_mm"]),
                                     "out": str(tmp_path / "again")}))  # fmt: skip
    a, b = dict(audited.report), dict(again.report)
    a["config"], b["config"] = {**a["config"], "out": ""}, {**b["config"], "out": ""}
    assert a == b
    for name in audited.report["files"]:
        if not name.endswith(".html"):
            assert (audited.out / name).read_bytes() == (again.out / name).read_bytes(), name


def test_another_audit_in_the_same_out_is_refused(audited: AuditResult, coco_dir: Path) -> None:
    with pytest.raises(OutputConflictError, match="--overwrite"):
        run_audit(AuditConfig(paths=(str(coco_dir),), out=str(audited.out)))


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def test_the_page_renders_in_headless_chromium(audited: AuditResult, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip(f"no Chromium binary found ({', '.join(CHROMIUM_NAMES)}); apt-get install -y chromium")
    page = audited.out / "index.html"
    n_images = len(re.findall(r"<img ", page.read_text()))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000"]  # fmt: skip
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The page's own script writes how many images loaded (naturalWidth > 0) into its title.
    title = re.search(r"<title>posebank audit: (\d+)/(\d+) images</title>", dom.stdout)
    assert title, dom.stdout[:2000]
    assert int(title.group(1)) == int(title.group(2)) == n_images
    shot = tmp_path / "page.png"
    done = subprocess.run([browser, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=False)
    assert done.returncode == 0 and shot.stat().st_size > 20_000


def test_the_audit_command(bank_dir: Path, coco_dir: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:  # a group, as in cli.main, so that `audit` is a subcommand
        pass

    runner = CliRunner()
    args = ["audit", str(bank_dir), str(coco_dir), "--out", str(tmp_path / "audit"), "--worst", "1",
            "--coverage-sample", "100", "--engine", "numpy", "-q"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Bank ") and "bank bank" not in result.stdout.lower()  # the folder is named bank
    assert "dedup rate" in result.stdout and "too_few_j" in result.stdout
    assert "index.html" in result.stdout
    report = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert report["banks"]["bank"]["sources"]["cmu"]["views_per_pose"] == 4
    assert runner.invoke(app, args).exit_code == 0  # the same audit again: replaced
    other = runner.invoke(app, [*args, "--seed", "5"])
    assert other.exit_code == 1 and "--overwrite" in other.output
    assert runner.invoke(app, [*args, "--seed", "5", "--overwrite"]).exit_code == 0
    bad = runner.invoke(app, ["audit", str(tmp_path / "audit" / "audit.json"), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "error" in bad.output
