"""The `posebank` command line end to end, on the bundled real CMU sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from posebank.bank import open_bank
from posebank.shards import bank_schema, validate

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "cmu"
runner = CliRunner()


def _small_cmu(tmp_path: Path) -> Path:
    root = tmp_path / "cmu"
    (root / "subjects/135").mkdir(parents=True)
    for f in ("135.asf", "135_04.amc"):
        shutil.copy(DEMO / "subjects/135" / f, root / "subjects/135")
    return root


def test_build_bank_then_anchors(tmp_path: Path) -> None:
    root = _small_cmu(tmp_path)
    result = runner.invoke(app, ["build-bank", "--source", f"cmu={root}", "--out", str(tmp_path / "bank"),
                                 "--views", "3", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "cmu" in result.stdout and "rows" in result.stdout
    bank = open_bank(tmp_path / "bank")
    for path in bank.shard_paths:
        import pyarrow.parquet as pq

        validate(pq.read_table(path), bank_schema(13), path=path)
    result = runner.invoke(app, ["anchors", "--bank", str(tmp_path / "bank"), "--out", str(tmp_path / "anchors"),
                                 "--k", "5", "--sample", "0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "anchors" / "manifest.json").read_text())
    assert len(manifest["members"]) == 5 and manifest["points"] == bank.num_rows


def test_bad_source_spec_and_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build-bank", "--source", "cmu", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "NAME=PATH" in result.output
    result = runner.invoke(app, ["build-bank", "--source", f"cmu={tmp_path / 'nowhere'}", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "nowhere" in result.output and "not a folder" in result.output
    result = runner.invoke(app, ["build-bank", "--source", f"mocapx={tmp_path}", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "unknown source" in result.output


def test_conflicting_out_is_refused(tmp_path: Path) -> None:
    root = _small_cmu(tmp_path)
    args = ["build-bank", "--source", f"cmu={root}", "--out", str(tmp_path / "bank"), "--views", "2", "-q"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, [*args, "--seed", "3"])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert runner.invoke(app, [*args, "--seed", "3", "--overwrite"]).exit_code == 0


def test_help_explains_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "build-bank" in result.output and "anchors" in result.output
    result = runner.invoke(app, ["build-bank", "--help"])
    assert "--dedup-mm" in result.output and "--skip-bad" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("posebank ")


def test_inverted_elevation_range_is_refused(tmp_path: Path) -> None:
    root = _small_cmu(tmp_path)
    result = runner.invoke(app, ["build-bank", "--source", f"cmu={root}", "--out", str(tmp_path / "o"),
                                 "--elevation-min", "30", "--elevation-max", "10"])  # fmt: skip
    assert result.exit_code == 1 and "elevation" in result.output


def test_errors_print_as_written_not_as_markup(tmp_path: Path) -> None:
    """Error text is never rich markup: brackets in paths and hints print as they are."""
    odd = tmp_path / "br[old]" / "x[/x]"
    result = runner.invoke(app, ["build-bank", "--source", f"cmu={odd}", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and f"{odd}: cmu: not a folder" in result.output


def test_verify_reports_a_damaged_shard(tmp_path: Path) -> None:
    root = _small_cmu(tmp_path)
    bank = tmp_path / "bank"
    assert runner.invoke(app, ["build-bank", "--source", f"cmu={root}", "--out", str(bank), "--views", "2", "-q"]).exit_code == 0
    good = runner.invoke(app, ["verify", str(bank)])
    assert good.exit_code == 0 and "bank ok: 1 file(s)" in good.stdout
    shard = bank / "shards" / "cmu-00000.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = b"\x00" * 16
    shard.write_bytes(bytes(data))
    bad = runner.invoke(app, ["verify", str(bank)])
    assert bad.exit_code == 1 and f"{shard}: sha256 differs" in bad.output and "1 problem(s)" in bad.output
    rebuilt = runner.invoke(app, ["build-bank", "--source", f"cmu={root}", "--out", str(bank), "--views", "2", "-q"])
    assert rebuilt.exit_code == 0 and "rebuilt 1 damaged shard(s)" in rebuilt.stdout
    assert runner.invoke(app, ["verify", str(bank)]).exit_code == 0
