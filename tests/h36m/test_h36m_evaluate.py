"""`posebank evaluate --protocol h36m-p1`: per-action MPJPE tables of a checkpoint on annotate-h36m shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from h36m_files import standing_world, write_cameras_pkl, write_official_tree
from PIL import Image

from lcrnet.anchors import anchors_from_poses
from lcrnet.checkpoint import save_checkpoint
from lcrnet.config import ModelConfig
from lcrnet.evaluate import METHODS, evaluate
from lcrnet.job_config import EvalConfig
from lcrnet.model import build_model
from posebank.h36m.annotate import H36MAnnotateConfig, annotate_h36m
from posebank.h36m.cameras import load_cameras
from posebank.shards import open_dataset
from posebank.skeleton import get_skeleton

SEQUENCES = {
    ("S1", "Walking 1"): standing_world(10),
    ("S11", "Walking 1"): standing_world(130),  # P1 tests frames 0, 64 and 128 of camera 2
}


@pytest.fixture(scope="module")
def protocol_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """annotate h36m --protocol h36m-p1 on written official files, a grey image per test row, and a
    checkpoint of an untrained tiny model whose anchors are poses of the data."""
    root = tmp_path_factory.mktemp("h36m_eval")
    write_cameras_pkl(root / "cameras.pkl", ("S1", "S11"))
    write_official_tree(root / "official", SEQUENCES, load_cameras(root / "cameras.pkl"))
    annotate_h36m(H36MAnnotateConfig(data=str(root / "official"), out=str(root / "ann"), protocol="h36m-p1"))
    table = open_dataset(root / "ann" / "annotations").to_table()
    for split, image, w, h in zip(*(table.column(c).to_pylist() for c in ("split", "image", "image_width", "image_height"))):
        if split == "test":
            (root / "images" / image).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (w, h), (90, 90, 90)).save(root / "images" / image)
    poses = np.stack(table.column("pose_3d").to_numpy(zero_copy_only=False)[:4]).reshape(4, 13, 3)
    skeleton = get_skeleton("j13")
    anchors = anchors_from_poses(torch.from_numpy(poses.astype(np.float32)), skeleton)
    cfg = ModelConfig(num_anchors=4, backbone="resnet18_fpn", min_size=(64,), max_size=64, head_fc_dim=64,
                      refine_embed_dim=64, rpn_anchor_sizes=(8, 16, 32, 64, 128), rpn_post_nms_top_n_test=10,
                      score_thresh=0.0)  # fmt: skip
    torch.manual_seed(0)
    save_checkpoint(root / "model.pt", model=build_model(cfg, anchors), iteration=0)
    return {"ann": root / "ann", "images": root / "images", "checkpoint": root / "model.pt"}


def test_evaluate_protocol_gives_per_action_tables(protocol_data: dict[str, Path], tmp_path: Path) -> None:
    cfg = EvalConfig(checkpoint=str(protocol_data["checkpoint"]), data=(str(protocol_data["ann"]),),
                     images_root=str(protocol_data["images"]), out=str(tmp_path), split="test", workers=0,
                     protocol="h36m-p1")  # fmt: skip
    m = evaluate(cfg).metrics
    assert m["images"] == 3 and m["people"] == 3  # S11 camera 2, frames 0, 64, 128
    for method in METHODS:
        result = m[method]["h36m"]
        assert result["protocol"] == "h36m-p1" and result["joints"] == 13
        scored = sum(result.get("frames", {}).values())
        assert scored + result["missed"] == 3
        if scored:
            assert set(result["raw_mm"]) == {"Walking"} and f"h36m-p1: {scored} test frames" in result["table"]
            assert 0 < result["average"]["raw"] < 5000 and 0 < result["average"]["aligned"] < 5000  # mm, finite
    # The oracle picks among every proposal: it scores at least the people PPI found.
    assert m["upper_bound"]["h36m"]["missed"] <= m["ppi"]["h36m"]["missed"]


def test_evaluate_protocol_refuses_other_shards(protocol_data: dict[str, Path], tmp_path: Path) -> None:
    cfg = EvalConfig(checkpoint=str(protocol_data["checkpoint"]), data=(str(protocol_data["ann"]),),
                     images_root=str(protocol_data["images"]), out=str(tmp_path), split="test", workers=0,
                     protocol="h36m-p2")  # fmt: skip
    with pytest.raises(ValueError, match="h36m-p2"):
        evaluate(cfg)


def test_protocol_must_be_known() -> None:
    with pytest.raises(ValueError, match="h36m-p1, h36m-p2 or h36m-p3"):
        EvalConfig(protocol="p4")
