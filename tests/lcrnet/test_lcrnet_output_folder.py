"""train's and evaluate's --out on the shared output-folder contract (posebank.jobs): resume, refusal
naming the settings that differ, overwrite, and `posebank verify` of a trained folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from lcrnet.checkpoint import LAST, MODEL, load_checkpoint
from lcrnet.evaluate import evaluate
from lcrnet.job_config import EvalConfig, TrainConfig
from lcrnet.train import train
from posebank.errors import OutputConflictError
from posebank.jobs import JOB_FILE
from posebank.provenance import sha256_file
from posebank.verify import verify_output


@pytest.fixture(scope="module")
def model_cfg(tiny_config):  # type: ignore[no-untyped-def]
    return tiny_config(backbone="resnet50_fpn", min_size=(64,), max_size=96, trainable_layers=0)


def _cfg(synth_data: dict[str, Path], out: Path, **overrides: object) -> TrainConfig:
    values: dict[str, object] = dict(
        data=(str(synth_data["synth"]),), anchors=str(synth_data["anchors"]), out=str(out), iterations=4,
        batch_size=1, lr=2e-3, warmup_iters=0, workers=0, log_every=1, checkpoint_every=2, device="cpu",
        flip=False, scale_range=(1.0, 1.0),
    )  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


def test_a_stopped_run_resumes_and_its_journal_records_every_file(synth_data, model_cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    first = train(_cfg(synth_data, out), model_cfg, stop_at=2)
    assert first.iteration == 2
    journal = json.loads((out / JOB_FILE).read_text())
    assert journal["kind"] == "train" and journal["settings"]["lr"] == 2e-3
    assert journal["settings"]["model"]["num_anchors"] == 4
    assert {"data[0] . in manifest.json", "anchors . in manifest.json"} == set(journal["inputs"])
    for name in (LAST, MODEL, "config.json", "metrics.csv"):
        assert journal["files"][name]["sha256"] == sha256_file(out / name), name
    # Without --resume the checkpoint is not silently replaced.
    with pytest.raises(OutputConflictError, match="--resume"):
        train(_cfg(synth_data, out), model_cfg)
    # The folder moved, a worker count changed: the same job, which continues where it stopped.
    moved = tmp_path / "moved"
    out.rename(moved)
    second = train(_cfg(synth_data, moved, resume=True, checkpoint_every=1), model_cfg)
    assert (second.start_iteration, second.iteration) == (2, 4)
    assert load_checkpoint(moved / LAST)["iteration"] == 4
    assert [line.split(",")[0] for line in (moved / "metrics.csv").read_text().splitlines()[1:]] == ["1", "2", "3", "4"]
    report = verify_output(moved)
    assert report.ok, report.problems
    assert report.kind == "train" and report.files == 4


def test_another_job_is_refused_naming_what_differs_and_overwrite_replaces_it(synth_data, model_cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    train(_cfg(synth_data, out, iterations=2), model_cfg)
    with pytest.raises(OutputConflictError) as err:
        train(_cfg(synth_data, out, iterations=2, lr=1e-3, seed=5, resume=True), model_cfg)
    message = str(err.value)
    assert "lr: 0.002 (in the folder) vs 0.001 (this run)" in message
    assert "seed: 0 (in the folder) vs 5 (this run)" in message and "--overwrite" in message
    assert load_checkpoint(out / LAST)["config"]["train"]["lr"] == 2e-3  # untouched
    # Another model is another job too.
    with pytest.raises(OutputConflictError, match="model.head_fc_dim"):
        train(_cfg(synth_data, out, iterations=2, resume=True), dataclasses.replace(model_cfg, head_fc_dim=96))
    replaced = train(_cfg(synth_data, out, iterations=2, lr=1e-3, seed=5, resume=True, overwrite=True), model_cfg)
    assert (replaced.start_iteration, replaced.iteration) == (0, 2)
    assert load_checkpoint(out / LAST)["config"]["train"]["lr"] == 1e-3
    assert json.loads((out / JOB_FILE).read_text())["settings"]["seed"] == 5
    assert verify_output(out).ok


def test_verify_finds_a_damaged_model_and_resume_does_not_trust_a_damaged_checkpoint(synth_data, model_cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    train(_cfg(synth_data, out, iterations=2), model_cfg)
    data = bytearray((out / MODEL).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / MODEL).write_bytes(bytes(data))
    report = verify_output(out)
    assert not report.ok and any(p.startswith(str(out / MODEL)) and "sha256" in p for p in report.problems)
    (out / LAST).write_bytes((out / LAST).read_bytes()[:-100])  # truncated
    again = train(_cfg(synth_data, out, iterations=2, resume=True), model_cfg)
    assert again.start_iteration == 0 and again.iteration == 2  # started over, not from the damaged file
    assert verify_output(out).ok


def test_evaluate_out_refuses_another_evaluation_and_overwrite_replaces_it(synth_data, model_cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    train(_cfg(synth_data, run, iterations=1), model_cfg)
    out = tmp_path / "eval"

    def cfg(**kw: object) -> EvalConfig:
        values: dict[str, object] = dict(checkpoint=str(run / MODEL), data=(str(synth_data["synth"]),), out=str(out),
                                         split="val", workers=0, max_images=1, device="cpu")  # fmt: skip
        return EvalConfig(**{**values, **kw})  # type: ignore[arg-type]

    evaluate(cfg())
    evaluate(cfg(workers=1))  # the same evaluation: recomputed in place
    with pytest.raises(OutputConflictError, match=r"pck_alpha: 0.5 \(in the folder\) vs 0.2 \(this run\)"):
        evaluate(cfg(pck_alpha=0.2))
    report = evaluate(cfg(pck_alpha=0.2), overwrite=True)
    assert json.loads((out / "metrics.json").read_text())["config"]["pck_alpha"] == 0.2 == report.metrics["pck_alpha"]
    verified = verify_output(out)
    assert verified.ok and verified.kind == "evaluate" and verified.files == 2
