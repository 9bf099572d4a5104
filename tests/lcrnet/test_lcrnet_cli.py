"""`posebank train | evaluate | predict` through Typer, on an app that only has these commands registered."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from cli.model import register

runner = CliRunner()
TINY = ["--backbone", "resnet50_fpn", "--min-size", "64", "--max-size", "128", "--trainable-layers", "0",
        "--model-option", "head_fc_dim=128", "--model-option", "refine_embed_dim=128",
        "--model-option", "box_batch_size_per_image=8", "--model-option", "rpn_post_nms_top_n_train=60",
        "--model-option", "rpn_anchor_sizes=[16, 32, 48, 64, 96]"]  # fmt: skip


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:  # a callback keeps the commands named subcommands, as in cli.main
        pass

    return app


def test_train_evaluate_predict(synth_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    train = ["train", "--data", str(synth_data["synth"]), "--anchors", str(synth_data["anchors"]), "--out", str(run),
             "--iterations", "3", "--batch-size", "2", "--lr", "0.001", "--warmup-iters", "0", "--workers", "0",
             "--device", "cpu", "--seed", "1", "--log-every", "1", "--quiet", *TINY]  # fmt: skip
    result = runner.invoke(_app(), train)
    assert result.exit_code == 0, result.output
    assert "trained iterations 0 -> 3 on 9 images" in result.stdout
    assert (run / "last.pt").is_file() and len((run / "metrics.csv").read_text().splitlines()) == 4
    again = runner.invoke(_app(), train)
    assert again.exit_code == 1 and "--resume" in again.output
    resumed = runner.invoke(_app(), [*train, "--resume"])
    assert resumed.exit_code == 0 and "3 -> 3" in resumed.stdout

    out = tmp_path / "eval"
    result = runner.invoke(_app(), ["evaluate", "--checkpoint", str(run / "last.pt"), "--data", str(synth_data["synth"]),
                                    "--out", str(out), "--score-thresh", "0", "--workers", "0", "--device", "cpu",
                                    "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "upper_bound" in result.stdout and "PCK@0.5" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 3 and metrics["config"]["split"] == "val"

    image = sorted((synth_data["synth"] / "images").rglob("*.jpg"))[0]
    pred = tmp_path / "pred"
    result = runner.invoke(_app(), ["predict", str(image), "--checkpoint", str(run / "last.pt"), "--out", str(pred),
                                    "--score-thresh", "0", "--min-score", "0", "--max-people", "2",
                                    "--integration", "nms", "--device", "cpu", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "in 1 images" in result.stdout
    assert (pred / f"{image.stem}.json").is_file() and (pred / f"{image.stem}.png").is_file()
    assert (pred / "predictions.parquet").is_file()


def test_bad_options_are_reported(synth_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base = ["train", "--data", str(synth_data["synth"]), "--anchors", str(synth_data["anchors"]), "--out",
            str(tmp_path / "o"), "--iterations", "1", "--quiet"]  # fmt: skip
    bad_option = runner.invoke(_app(), [*base, "--model-option", "head_fc_dim"])
    assert bad_option.exit_code != 0 and "KEY=VALUE" in bad_option.output
    unknown_field = runner.invoke(_app(), [*base, "--model-option", "no_such_field=1"])
    assert unknown_field.exit_code == 1 and "no_such_field" in unknown_field.output
    bad_backbone = runner.invoke(_app(), [*base, "--backbone", "vgg16"])
    # A choice option: Typer refuses it as a usage error (exit 2), listing the choices.
    assert bad_backbone.exit_code == 2 and "vgg16" in bad_backbone.output and "resnet18_fpn" in bad_backbone.output
    no_images = runner.invoke(_app(), [*base, "--split", "test"])
    assert no_images.exit_code == 1 and "no images" in no_images.output
    assert "splits present: train, val" in no_images.output and "--split" in no_images.output
    missing = runner.invoke(_app(), ["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--data",
                                     str(synth_data["synth"]), "--out", str(tmp_path / "e")])  # fmt: skip
    assert missing.exit_code != 0
    not_a_checkpoint = tmp_path / "x.pt"
    not_a_checkpoint.write_bytes(b"not a checkpoint")
    broken = runner.invoke(_app(), ["evaluate", "--checkpoint", str(not_a_checkpoint), "--data",
                                    str(synth_data["synth"]), "--out", str(tmp_path / "e")])  # fmt: skip
    assert broken.exit_code == 1 and "cannot read checkpoint" in broken.output


def test_train_prints_a_line_every_log_every_iterations(synth_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = ["train", "--data", str(synth_data["synth"]), "--anchors", str(synth_data["anchors"]), "--out",
            str(tmp_path / "run"), "--iterations", "2", "--batch-size", "1", "--workers", "0", "--device", "cpu",
            "--log-every", "1", *TINY]  # fmt: skip
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("it ")]
    assert [ln.split()[1] for ln in lines] == ["1", "2"]
    assert "loss" in lines[0] and "pose_cls=" in lines[0] and "grad" in lines[0] and "lr" in lines[0]
    assert "0 steps skipped" in result.stdout and (tmp_path / "run" / "model.pt").is_file()
