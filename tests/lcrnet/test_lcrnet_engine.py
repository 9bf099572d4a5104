"""Training, checkpoints, resume, evaluation and prediction of LCR-Net++ on a handful of synthetic images (CPU)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from lcrnet.checkpoint import LAST, MODEL, load_checkpoint, model_from_checkpoint
from lcrnet.engine import NonFiniteLossError, train_iterations
from lcrnet.evaluate import BASELINE_METHODS, KEYS, METHODS, evaluate
from lcrnet.job_config import EvalConfig, PredictConfig, TrainConfig
from lcrnet.predict import predict
from lcrnet.train import PaperSchedule, build_optimizer, train
from posebank.errors import OutputConflictError
from posebank.skeleton import get_skeleton


@pytest.fixture(scope="module")
def model_cfg(tiny_config):  # type: ignore[no-untyped-def]
    return tiny_config(backbone="resnet50_fpn", min_size=(64,), max_size=128)


def _train_cfg(synth_data: dict[str, Path], out: Path, **overrides: object) -> TrainConfig:
    values: dict[str, object] = dict(
        data=(str(synth_data["synth"]),), anchors=str(synth_data["anchors"]), out=str(out), iterations=6,
        batch_size=2, lr=2e-3, warmup_iters=2, workers=0, log_every=1, checkpoint_every=2,
    )  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(synth_data, model_cfg, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """40 iterations on the 12 synthetic images (no augmentation, so that the loss curve is clean)."""
    out = tmp_path_factory.mktemp("trained")
    cfg = _train_cfg(synth_data, out, split=None, iterations=40, batch_size=4, warmup_iters=0, log_every=10,
                     checkpoint_every=100, flip=False, scale_range=(1.0, 1.0))  # fmt: skip
    report = train(cfg, model_cfg)
    assert report.iteration == 40 and report.images == 12
    return out


def test_training_lowers_the_loss_and_logs_it(trained: Path, model_cfg) -> None:  # type: ignore[no-untyped-def]
    rows = _csv(trained / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [10, 20, 30, 40]
    assert {"lr", "loss", "loss_objectness", "loss_pose_cls", "loss_pose_reg", "images_per_s"} <= set(rows[0])
    losses = [float(r["loss"]) for r in rows]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses
    # The paper's schedule scaled to 40 iterations: lr x0.1 from iteration 24 (60%).
    assert float(rows[1]["lr"]) == pytest.approx(2e-3) and float(rows[-1]["lr"]) == pytest.approx(2e-4)
    config = json.loads((trained / "config.json").read_text())
    assert config["model"]["num_anchors"] == 4 and config["train"]["iterations"] == 40


def test_checkpoint_holds_config_and_anchors_and_rebuilds_the_model(trained: Path, synth_data) -> None:  # type: ignore[no-untyped-def]
    from posebank.anchors.build import load_anchors

    checkpoint = load_checkpoint(trained / LAST)
    assert {"model", "optimizer", "lr_scheduler", "scaler", "iteration", "config", "anchors", "version"} <= set(checkpoint)
    assert checkpoint["iteration"] == 40
    assert checkpoint["config"]["train"]["batch_size"] == 4 and checkpoint["config"]["model"]["backbone"] == "resnet50_fpn"
    anchors = load_anchors(synth_data["anchors"])
    assert isinstance(checkpoint["anchors"]["pose_3d"], torch.Tensor)  # plain torch.load(weights_only=True) reads it
    np.testing.assert_array_equal(checkpoint["anchors"]["pose_3d"].numpy(), anchors.pose_3d)
    model = model_from_checkpoint(checkpoint)
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, checkpoint["model"][k]), k


def test_resumed_run_equals_uninterrupted_run(synth_data, model_cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Augmentation on: the flips, zooms and proposal samples must also repeat after the resume.
    whole = train(_train_cfg(synth_data, tmp_path / "whole", flip=True), model_cfg)
    first = train(_train_cfg(synth_data, tmp_path / "split", flip=True), model_cfg, stop_at=3)
    assert first.iteration == 3
    with pytest.raises(OutputConflictError, match="--resume"):
        train(_train_cfg(synth_data, tmp_path / "split", flip=True), model_cfg)
    with pytest.raises(OutputConflictError, match=r"lr: 0.002 \(in the folder\) vs 0.001 \(this run\)"):
        train(_train_cfg(synth_data, tmp_path / "split", flip=True, lr=1e-3, resume=True), model_cfg)
    second = train(_train_cfg(synth_data, tmp_path / "split", flip=True, resume=True), model_cfg)
    assert (second.start_iteration, second.iteration) == (3, 6) and whole.iteration == 6
    a = load_checkpoint(tmp_path / "whole" / LAST)
    b = load_checkpoint(tmp_path / "split" / LAST)
    assert a["iteration"] == b["iteration"] == 6
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=1e-4, atol=1e-6, msg=k)
    assert a["lr_scheduler"]["last_epoch"] == b["lr_scheduler"]["last_epoch"] == 6
    rows_a, rows_b = _csv(tmp_path / "whole" / "metrics.csv"), _csv(tmp_path / "split" / "metrics.csv")
    assert [r["iteration"] for r in rows_b] == [str(i) for i in range(1, 7)]
    np.testing.assert_allclose([float(r["loss"]) for r in rows_b], [float(r["loss"]) for r in rows_a], rtol=1e-4)


def test_paper_schedule() -> None:
    schedule = PaperSchedule(warmup_iters=10, warmup_factor=0.001, step_at=300, gamma=0.1)
    assert schedule(0) == pytest.approx(0.001)
    assert schedule(5) == pytest.approx(0.5005)
    assert schedule(10) == 1.0 and schedule(299) == 1.0
    assert schedule(300) == pytest.approx(0.1) and schedule(499) == pytest.approx(0.1)
    assert TrainConfig(iterations=500_000).lr_step_iteration == 300_000


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_build_optimizer_is_fused_on_the_cpu_and_steps_as_the_plain_one(optimizer: str) -> None:
    """The fused kernel (one pass per tensor) gives the updates of torch's plain per-tensor path."""
    torch.manual_seed(0)
    plain_model, fused_model = torch.nn.Linear(40, 30), torch.nn.Linear(40, 30)
    fused_model.load_state_dict(plain_model.state_dict())
    cfg = TrainConfig(optimizer=optimizer, lr=1e-2, weight_decay=1e-4, warmup_iters=0)  # lr 1e-2 from the start
    fused_opt, _ = build_optimizer(fused_model, cfg)
    assert fused_opt.defaults["fused"] is True
    plain_cls = torch.optim.AdamW if optimizer == "adamw" else torch.optim.SGD
    extra = {} if optimizer == "adamw" else {"momentum": cfg.momentum}
    plain_opt = plain_cls(plain_model.parameters(), lr=1e-2, weight_decay=1e-4, **extra)
    for _ in range(5):
        x = torch.randn(8, 40)
        for model, opt in ((plain_model, plain_opt), (fused_model, fused_opt)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for a, b in zip(plain_model.parameters(), fused_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert not torch.equal(a, torch.zeros_like(a))


class _Diverging(torch.nn.Module):
    """A one-weight 'model' whose loss is NaN at the steps listed in `bad` (0-based)."""

    def __init__(self, bad: set[int]) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.bad = bad
        self.calls = 0

    def forward(self, images, targets):  # type: ignore[no-untyped-def]
        nan = float("nan") if self.calls in self.bad else 0.0
        self.calls += 1
        return {"loss_a": self.w * 1.0, "loss_b": self.w * nan}


def _run(model: torch.nn.Module, steps: int, **kw: object) -> list:  # type: ignore[type-arg]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 1.0)
    batches = [([torch.zeros(3, 4, 4)], [{}])] * steps
    return list(train_iterations(model, optimizer, scheduler, batches, torch.device("cpu"), start=0, seed=0, **kw))  # type: ignore[arg-type]


def test_a_non_finite_step_is_skipped_and_counted() -> None:
    model = _Diverging(bad={1})
    records = _run(model, 3)
    assert [r.skipped for r in records] == [False, True, False]
    # Two SGD steps of lr 0.1 on d(loss_a)/dw = 1; the NaN step left the weight alone.
    assert model.w.item() == pytest.approx(0.8)
    assert math.isnan(records[1].loss) and math.isfinite(records[2].grad_norm)


# Every step of this run is skipped, so the schedule advances while the optimizer never steps: torch's
# warning about that order is the expected consequence here, not a defect.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
def test_several_non_finite_steps_in_a_row_stop_the_run_and_say_what_to_lower() -> None:
    model = _Diverging(bad={0, 1, 2})
    with pytest.raises(NonFiniteLossError, match=r"3 steps in a row, up to iteration 3.*lower --lr"):
        _run(model, 5, max_nonfinite_steps=3)
    assert model.w.item() == 1.0  # no step was taken


def test_gradients_are_clipped_to_the_norm() -> None:
    class Steep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(2))

        def forward(self, images, targets):  # type: ignore[no-untyped-def]
            return {"loss": (self.w * torch.tensor([300.0, 400.0])).sum()}  # gradient norm 500

    model = Steep()
    records = _run(model, 1, clip_grad_norm=5.0)
    assert records[0].grad_norm == pytest.approx(500.0)  # the norm before clipping is logged
    torch.testing.assert_close(model.w.detach(), torch.tensor([-0.3, -0.4]))  # lr 0.1 x the clipped (3, 4)


def test_evaluate_gives_finite_metrics_and_the_upper_bound_is_an_upper_bound(trained: Path, synth_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "eval"
    cfg = EvalConfig(checkpoint=str(trained / MODEL), data=(str(synth_data["synth"]),), out=str(out), split=None,
                     workers=0, score_thresh=0.0, min_score=0.0)  # fmt: skip
    report = evaluate(cfg)
    m = report.metrics
    # synth writes the true head size of its bodies: no estimate is needed
    assert m["images"] == 12 and m["people"] > 12 and m["pck_normaliser"] == "head_size"
    rows = [(method, m[method]) for method in METHODS] + [(f"anchor_only/{b}", m["anchor_only"][b]) for b in BASELINE_METHODS]
    for name, values in rows:
        # the oracle has no scores: no AP, recall or precision; the baseline has no AP
        unscored = {"ap", "recall", "precision"} if name == "upper_bound" else {"ap"} if name.startswith("anchor") else set()
        keys = [k for k in KEYS if k not in unscored]
        for k in keys:
            assert math.isfinite(values[k]), (name, k)
        assert 0.0 <= values["pck"] <= values["pck_detected"] + 1e-9 <= 1.0 + 1e-9
        assert values["mpjpe_aligned_mm"] <= values["mpjpe_mm"] + 1e-6
        assert list(values["pck_per_joint"]) == list(get_skeleton("j13").joint_names)
    for method in METHODS[:-1]:
        assert m["upper_bound"]["pck"] >= m[method]["pck"]
    assert 0.0 <= m["nms"]["ap"] <= 1.0 and 0.0 <= m["ppi"]["ap"] <= 1.0
    assert m["warnings"] == []
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["ppi"]["pck"] == pytest.approx(m["ppi"]["pck"]) and saved["checkpoint"]["iteration"] == 40
    assert [r["method"] for r in _csv(out / "metrics.csv")] == [*METHODS, "anchor_only/nms", "anchor_only/ppi"]


def test_evaluate_warns_when_nobody_passes_min_score(trained: Path, synth_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = EvalConfig(checkpoint=str(trained / LAST), data=(str(synth_data["synth"]),), out=str(tmp_path / "e"),
                     split=None, workers=0, max_images=2, min_score=1e6)  # fmt: skip
    m = evaluate(cfg).metrics
    assert m["ppi"]["recall"] == 0.0 and len(m["warnings"]) == 1 and "lower --min-score" in m["warnings"][0]


def test_anchor_only_baseline_places_anchors_in_boxes(trained: Path, synth_data) -> None:  # type: ignore[no-untyped-def]
    from lcrnet.data import PoseShardDataset, resolve_sources
    from lcrnet.evaluate import raw_proposals
    from lcrnet.model import anchor_only_proposals
    from lcrnet.poses import to_box_coords

    model = model_from_checkpoint(trained / LAST, score_thresh=0.0)
    dataset = PoseShardDataset(resolve_sources([synth_data["synth"]]), model.skeleton, split="val")
    image, _ = dataset[0]
    with torch.no_grad(), raw_proposals(model):
        raw = model([image])[0]
    plain = anchor_only_proposals(raw, model.anchors)
    anchors_2d, anchors_3d = model.anchors.class_poses(raw["labels"])
    torch.testing.assert_close(plain["pose_3d"], anchors_3d)  # no 3D regression left
    torch.testing.assert_close(to_box_coords(plain["pose_2d"], raw["boxes"]), anchors_2d, atol=1e-4, rtol=0)
    assert not torch.allclose(raw["pose_3d"], anchors_3d)  # the trained regression moved them
    assert torch.equal(plain["scores"], raw["scores"]) and torch.equal(plain["labels"], raw["labels"])


def test_predict_writes_json_parquet_and_overlays(trained: Path, synth_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    images = sorted((synth_data["synth"] / "images").rglob("*.jpg"))[:2]
    out = tmp_path / "pred"
    report = predict(PredictConfig(checkpoint=str(trained / MODEL), images=tuple(map(str, images)), out=str(out),
                                   device="cpu", score_thresh=0.0, min_score=0.0, max_people=3))  # fmt: skip
    assert report.images == 2 and 1 <= report.people <= 6 and report.warnings == []
    for image in images:
        record = json.loads((out / f"{image.stem}.json").read_text())
        assert record["width"] == 128 and len(record["joint_names"]) == 13
        assert 1 <= len(record["people"]) <= 3
        person = record["people"][0]
        assert len(person["pose_2d"]) == 13 and len(person["pose_3d"]) == 13 and len(person["box"]) == 4
        png = out / f"{image.stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pq.read_table(out / "predictions.parquet")
    assert table.num_rows == report.people
    assert table.schema.field("pose_3d").type.list_size == 39
    assert json.loads(table.schema.metadata[b"posebank.units"])["pose_3d"] == "m"


def test_a_training_step_under_autocast(synth_data, model_cfg) -> None:  # type: ignore[no-untyped-def]
    # AMP runs float16 on CUDA; bfloat16 autocast on the CPU exercises the same dtype mixing (half
    # RPN boxes against float32 targets) without a GPU.
    from lcrnet.data import PoseShardDataset, collate, resolve_sources
    from lcrnet.model import build_model
    from lcrnet.train import _load_anchors

    anchors = _load_anchors(str(synth_data["anchors"]), 13)
    torch.manual_seed(0)
    model = build_model(model_cfg, anchors).train()
    images, targets = collate([PoseShardDataset(resolve_sources([synth_data["synth"]]), model.skeleton)[i] for i in (0, 1)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(v.float() for v in losses.values()).backward()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.eval()(images)
    assert out[0]["pose_3d"].dtype == torch.float32


def test_cpu_bf16_training_learns_like_float32_and_keeps_float32_weights(trained: Path, synth_data, model_cfg,
                                                                          tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The `trained` fixture's run again, under bfloat16 autocast: the same data order and draws, other
    # arithmetic, so its losses differ from the float32 run's yet fall as far.
    cfg = _train_cfg(synth_data, tmp_path, split=None, iterations=40, batch_size=4, warmup_iters=0, log_every=10,
                     checkpoint_every=100, flip=False, scale_range=(1.0, 1.0), cpu_bf16=True, device="cpu")  # fmt: skip
    train(cfg, model_cfg)
    losses = [float(r["loss"]) for r in _csv(tmp_path / "metrics.csv")]
    float32 = [float(r["loss"]) for r in _csv(trained / "metrics.csv")]
    assert all(math.isfinite(v) for v in losses) and losses != float32
    assert losses[-1] < 0.8 * losses[0], losses
    weights = load_checkpoint(tmp_path / MODEL)["model"]
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())


def test_predict_says_why_nobody_was_found(trained: Path, synth_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image = str(sorted((synth_data["synth"] / "images").rglob("*.jpg"))[0])
    report = predict(PredictConfig(checkpoint=str(trained / MODEL), images=(image,), out=str(tmp_path / "a"),
                                   device="cpu", score_thresh=0.0, min_score=1e6, overlay=False))  # fmt: skip
    assert report.people == 0 and "lower --min-score" in report.warnings[0] and report.best_score > 0
    report = predict(PredictConfig(checkpoint=str(trained / MODEL), images=(image,), out=str(tmp_path / "b"),
                                   device="cpu", score_thresh=1.0, overlay=False))  # fmt: skip
    assert report.people == 0 and "--score-thresh" in report.warnings[0]


def test_model_file_holds_the_weights_without_the_optimizer(trained: Path) -> None:
    last, weights = load_checkpoint(trained / LAST), load_checkpoint(trained / MODEL)
    assert last["optimizer"] is not None and weights["optimizer"] is None
    assert (trained / MODEL).stat().st_size < (trained / LAST).stat().st_size  # no momentum buffers
    for k, v in last["model"].items():
        assert torch.equal(v, weights["model"][k]), k
    # torch's weights-only loader reads it, with no allow-list beyond numpy arrays
    assert torch.load(trained / MODEL, weights_only=True)["iteration"] == 40
