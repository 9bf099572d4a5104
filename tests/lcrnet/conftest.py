"""Tiny LCR-Net++ configurations and synthetic scenes, so full models run on CPU in seconds."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from lcrnet.anchors import PoseAnchors, anchors_from_poses
from lcrnet.config import ModelConfig
from posebank.skeleton import Skeleton, get_skeleton

K = 4  # anchors in the tiny models
BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="session")
def bench_script() -> Callable[[str], ModuleType]:
    """Loads a script of bench/ by name (e.g. "learn_cpu") as a module: bench/ is not a package."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module

    return load


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Run the model tests with one intra-op thread: on small shared VMs (2 cores, another process on
    one of them) two OpenMP threads made them about 10x slower than one. Module scope, so that it is
    in place before the modules' own module-scoped fixtures (autouse fixtures come first in a scope)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def standing_pose(skeleton: Skeleton) -> torch.Tensor:
    """(J, 3) metres: an upright person facing the camera (y down, so feet have the largest y)."""
    xyz = {
        "right_ankle": (-0.12, 0.85, 0.0), "left_ankle": (0.12, 0.85, 0.0),
        "right_knee": (-0.11, 0.45, 0.02), "left_knee": (0.11, 0.45, 0.02),
        "right_hip": (-0.1, 0.0, 0.0), "left_hip": (0.1, 0.0, 0.0),
        "right_wrist": (-0.25, 0.05, 0.05), "left_wrist": (0.25, 0.05, 0.05),
        "right_elbow": (-0.22, -0.25, 0.02), "left_elbow": (0.22, -0.25, 0.02),
        "right_shoulder": (-0.18, -0.5, 0.0), "left_shoulder": (0.18, -0.5, 0.0),
        "head": (0.0, -0.72, 0.0),
    }  # fmt: skip
    return torch.tensor([xyz[name] for name in skeleton.joint_names])


def anchor_poses(skeleton: Skeleton, k: int = K) -> torch.Tensor:
    """(k, J, 3) distinct poses: the standing pose with arms raised by different amounts, turned about y."""
    base = standing_pose(skeleton)
    arms = [skeleton.index(n) for n in ("right_wrist", "left_wrist", "right_elbow", "left_elbow")]
    poses = []
    for i in range(k):
        p = base.clone()
        p[arms, 1] -= 0.25 * i
        angle = torch.tensor(0.4 * i)
        rot = torch.tensor(
            [[torch.cos(angle), 0.0, torch.sin(angle)], [0.0, 1.0, 0.0], [-torch.sin(angle), 0.0, torch.cos(angle)]]
        )
        poses.append(p @ rot.T)
    return torch.stack(poses)


@pytest.fixture(scope="session")
def skeleton() -> Skeleton:
    return get_skeleton("j13")


@pytest.fixture(scope="session")
def anchors(skeleton: Skeleton) -> PoseAnchors:
    return anchors_from_poses(anchor_poses(skeleton), skeleton)


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., ModelConfig]:
    """Factory of tiny configs (small images, few proposals, narrow heads); keyword overrides allowed."""

    def make(**overrides: object) -> ModelConfig:
        values: dict[str, object] = dict(
            num_anchors=K,
            min_size=(96,),
            max_size=160,
            rpn_anchor_sizes=(16, 32, 48, 64, 96),
            rpn_aspect_ratios=(1.0, 2.0),
            rpn_pre_nms_top_n_train=300,
            rpn_post_nms_top_n_train=60,
            rpn_pre_nms_top_n_test=200,
            rpn_post_nms_top_n_test=10,
            box_batch_size_per_image=8,
            head_fc_dim=128,
            refine_embed_dim=128,
            trainable_layers=0,
        )
        values.update(overrides)
        return ModelConfig(**values)  # type: ignore[arg-type]

    return make


def make_person(anchors: PoseAnchors, k: int, box: tuple[float, float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor k placed in a full-body pose box (px): 2D (J, 2) px and 3D (J, 3) metres."""
    x0, y0, x1, y1 = box
    pose_2d = anchors.poses_2d_full[k] * torch.tensor([x1 - x0, y1 - y0]) + torch.tensor([x0, y0])
    return pose_2d, anchors.poses_3d[k].clone()


def synthetic_scene(
    anchors: PoseAnchors, people: list[tuple[int, tuple[float, float, float, float]]], size: tuple[int, int] = (96, 128)
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """An image (3, H, W) in [0, 1] with one coloured rectangle per person, and its target dict.

    The rectangle covers the person's pose box and its colour depends on the anchor class, so the
    network has something to localise and classify.
    """
    h, w = size
    image = torch.full((3, h, w), 0.2)
    poses_2d, poses_3d = [], []
    palette = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9], [0.9, 0.9, 0.1]])
    for k, box in people:
        p2, p3 = make_person(anchors, k, box)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        image[:, max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)] = palette[k % len(palette), :, None, None]
        poses_2d.append(p2)
        poses_3d.append(p3)
    j = anchors.num_joints
    target = {
        "pose_2d": torch.stack(poses_2d) if people else torch.zeros((0, j, 2)),
        "visible": torch.ones((len(people), j), dtype=torch.bool),
        "pose_3d": torch.stack(poses_3d) if people else torch.zeros((0, j, 3)),
    }
    return image, target


@pytest.fixture(scope="session")
def scene(anchors: PoseAnchors) -> Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """synthetic_scene bound to the tiny anchors: scene([(k, box), ...], size=(H, W))."""

    def make(
        people: list[tuple[int, tuple[float, float, float, float]]], size: tuple[int, int] = (96, 128)
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return synthetic_scene(anchors, people, size)

    return make


@pytest.fixture(scope="session")
def standing(skeleton: Skeleton) -> torch.Tensor:
    """(J, 3) metres, an upright person."""
    return standing_pose(skeleton)


# --- Annotation shards for the data, training, evaluation and CLI tests ---------------------------


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real pipeline in miniature: a bank from the bundled CMU 135_08 take, K=4 anchors, and 12
    synthetic 128x128 images of 1-3 people (9 train, 3 val). Keys: bank, anchors, synth."""
    import shutil

    from posebank.anchors import AnchorConfig
    from posebank.anchors.build import build_anchors
    from posebank.bank.build import build_bank
    from posebank.config import BankConfig, ViewConfig
    from posebank.synth import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("lcrnet_data")
    subject = root / "cmu" / "subjects" / "135"
    subject.mkdir(parents=True)
    for name in ("135.asf", "135_08.amc"):
        shutil.copy(Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "cmu" / "subjects" / "135" / name, subject)
    build_bank(BankConfig(sources=(("cmu", str(root / "cmu")),), out=str(root / "bank"), dedup_mm=0.0,
                          view=ViewConfig(views=2)))  # fmt: skip
    build_anchors(AnchorConfig(bank=str(root / "bank"), out=str(root / "anchors"), k=K, engine="numpy"))
    synthesize(SynthConfig(images=12, size=(128, 128), people=(1, 3), val_fraction=0.25, seed=3),
               root / "bank", root / "synth")  # fmt: skip
    return {"bank": root / "bank", "anchors": root / "anchors", "synth": root / "synth"}
