"""Progress of the long steps: every bar a job opens reaches its total (as the rich bar of the CLI counts:
an item is done when the loop asks for the next one), on the bundled real CMU sample."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app
from posebank.anchors import AnchorConfig
from posebank.anchors.build import build_anchors
from posebank.bank.build import build_bank
from posebank.config import BankConfig, ViewConfig
from posebank.progress import Steps

CMU = Path(__file__).resolve().parent / "fixtures" / "cmu"


class Recorder:
    """A ProgressFactory that records, per bar, its description, total, items done and whether it ended."""

    def __init__(self) -> None:
        self.bars: list[dict[str, Any]] = []

    def __call__(self, items: Iterable[Any], description: str, total: int) -> Iterator[Any]:
        bar = {"description": description, "total": total, "done": 0, "finished": False}
        self.bars.append(bar)
        for item in items:
            yield item
            bar["done"] += 1  # as rich's bar.advance: after the consumer asked for the next item
        bar["finished"] = True

    def assert_complete(self) -> None:
        for bar in self.bars:
            assert bar["finished"] and bar["done"] == bar["total"], bar


def _two_motions(tmp_path: Path) -> Path:
    """Subject 09 with two motion files (the real 5-frame cut, twice under two sequence names)."""
    root = tmp_path / "cmu" / "subjects" / "09"
    root.mkdir(parents=True)
    shutil.copy(CMU / "09.asf", root / "09.asf")
    for seq in ("09_12", "09_13"):
        shutil.copy(CMU / "09_12_5frames.amc", root / f"{seq}.amc")
    return tmp_path / "cmu"


def test_build_bank_bars_reach_their_totals(tmp_path: Path) -> None:
    rec = Recorder()
    config = BankConfig(sources=(("cmu", str(_two_motions(tmp_path))),), out=str(tmp_path / "bank"),
                        view=ViewConfig(views=3), poses_per_shard=1, dedup_mm=1.0, workers=0)  # fmt: skip
    report = build_bank(config, progress=rec)
    rec.assert_complete()
    by_name = {b["description"].split(" (")[0]: b for b in rec.bars}
    assert by_name["reading motions"]["total"] == 2  # the bar stopped one short before (zip order)
    assert "deduplicating cmu" in by_name  # the dedup step has its own bar (chunks of poses)
    views = next(b for b in rec.bars if b["description"].startswith("drawing 3 views per pose"))
    assert views["total"] == report.stats["cmu"]["kept"] >= 1  # one pose per shard


def test_anchors_show_their_stages_and_quiet_hides_them(tmp_path: Path) -> None:
    bank = tmp_path / "bank"
    build_bank(BankConfig(sources=(("cmu", str(_two_motions(tmp_path))),), out=str(bank), view=ViewConfig(views=3)))
    rec = Recorder()
    build_anchors(AnchorConfig(bank=str(bank), out=str(tmp_path / "a"), k=3, sample=0, engine="numpy", niter=3), progress=rec)
    rec.assert_complete()
    assert [b["total"] for b in rec.bars] == [4] and rec.bars[0]["description"].startswith("anchors: sampling the bank")
    runner = CliRunner()
    args = ["anchors", "--bank", str(bank), "--k", "3", "--sample", "0", "--engine", "numpy", "--niter", "3"]
    shown = runner.invoke(app, [*args, "--out", str(tmp_path / "b")], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "anchors: sampling the bank" in shown.output and "4/4" in shown.output
    quiet = runner.invoke(app, [*args, "--out", str(tmp_path / "c"), "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert "sampling the bank" not in quiet.output and "3 anchors" in quiet.output


def test_steps_stop_where_a_stage_failed() -> None:
    rec = Recorder()
    steps = Steps(rec, "job", ("a", "b", "c"))
    steps.done()
    assert rec.bars == [{"description": "job: a, b, c", "total": 3, "done": 1, "finished": False}]
    steps.done()
    steps.done()
    rec.assert_complete()


def test_annotate_bars_reach_their_totals_and_name_the_people(tmp_path: Path) -> None:
    from posebank.annotate import AnnotateConfig, annotate

    bank = tmp_path / "bank"
    build_bank(BankConfig(sources=(("cmu", str(_two_motions(tmp_path))),), out=str(bank), view=ViewConfig(views=3)))
    rec = Recorder()
    report = annotate(AnnotateConfig(label_mode="fused-fit", dataset="coco", annotation_file=str(CMU.parent / "coco" / "mmpose_test_coco.json"),
                                     bank=str(bank), out=str(tmp_path / "ann"), engine="numpy"), progress=rec)  # fmt: skip
    rec.assert_complete()
    described = " | ".join(b["description"] for b in rec.bars)
    assert f"{report.people} people" in described, described  # the bars over bank blocks and shards say whose
