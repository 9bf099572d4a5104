"""`posebank synth` through Typer, on an app that only has the command registered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from cli.synth import register

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:  # a callback keeps `synth` a named subcommand, as in cli.main
        pass

    return app


def test_synth_command_writes_images_shards_and_preview(demo_bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = ["synth", "--bank", str(demo_bank), "--out", str(out), "--images", "5", "--size", "128x96",
            "--people", "2-3", "--seed", "7", "--images-per-shard", "2", "--preview", "--quiet"]  # fmt: skip
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "5 images" in result.stdout and "preview" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["size"] == [128, 96] and manifest["config"]["people"] == [2, 3]
    assert len(manifest["shards"]) == 3 and 10 <= manifest["people"] <= 15
    assert (out / "preview.png").is_file() and len(list((out / "images").rglob("*.jpg"))) == 5
    again = runner.invoke(_app(), args)
    assert again.exit_code == 0 and "0 rendered" in again.stdout


def test_synth_command_reports_bad_options(demo_bank: Path, tmp_path: Path) -> None:
    base = ["synth", "--bank", str(demo_bank), "--out", str(tmp_path / "o"), "--images", "1"]
    bad_size = runner.invoke(_app(), [*base, "--size", "big"])
    assert bad_size.exit_code != 0 and "WIDTHxHEIGHT" in bad_size.output
    bad_people = runner.invoke(_app(), [*base, "--people", "3-1"])
    assert bad_people.exit_code == 1 and "people" in bad_people.output
    not_a_bank = runner.invoke(_app(), ["synth", "--bank", str(tmp_path), "--out", str(tmp_path / "o"), "--images", "1"])
    assert not_a_bank.exit_code == 1 and "no manifest.json" in not_a_bank.output


def test_posebank_synth_does_not_import_torch() -> None:
    code = "import sys, posebank.synth, cli.synth; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0
