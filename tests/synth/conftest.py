"""Fixtures of the synth tests: a hand-made standing pose, and a small real bank (CMU 135_08)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from posebank.skeleton import body_centre, get_skeleton

DEMO_135 = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "cmu" / "subjects" / "135"

# j13, metres, camera frame (x right, y down, z forward), facing the camera: the person's right side
# is on the image's left. Arms hang beside the body, clear of the torso.
_STANDING = np.array([
    [-0.12, 1.05, 0.00], [0.12, 1.05, 0.00],    # ankles
    [-0.11, 0.64, -0.02], [0.11, 0.64, -0.02],  # knees
    [-0.10, 0.22, 0.00], [0.10, 0.22, 0.00],    # hips
    [-0.30, 0.22, 0.00], [0.30, 0.22, 0.00],    # wrists
    [-0.27, -0.02, 0.00], [0.27, -0.02, 0.00],  # elbows
    [-0.19, -0.26, 0.00], [0.19, -0.26, 0.00],  # shoulders
    [0.00, -0.52, 0.00],                         # head
])  # fmt: skip


def rotate_y(poses: np.ndarray, degrees: float) -> np.ndarray:
    """Turn poses (..., J, 3) about the vertical (y) axis through the origin."""
    a = np.deg2rad(degrees)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    return poses @ rot.T


@pytest.fixture(scope="session")
def standing() -> np.ndarray:
    """(13, 3) float32 body-centred standing pose facing the camera."""
    pose = _STANDING - body_centre(_STANDING, get_skeleton("j13"))
    return pose.astype(np.float32)


@pytest.fixture(scope="session")
def pose_pool(standing: np.ndarray) -> np.ndarray:
    """(24, 13, 3) float32: the standing pose turned every 15 degrees."""
    return np.stack([rotate_y(standing, a) for a in range(0, 360, 15)]).astype(np.float32)


@pytest.fixture(scope="session")
def demo_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bank built from the real CMU 135_08 take (2 views per pose)."""
    from posebank.bank.build import build_bank
    from posebank.config import BankConfig, ViewConfig

    root = tmp_path_factory.mktemp("cmu")
    subject = root / "subjects" / "135"
    subject.mkdir(parents=True)
    for name in ("135.asf", "135_08.amc"):
        shutil.copy(DEMO_135 / name, subject)
    out = tmp_path_factory.mktemp("bank")
    # dedup_mm=0 keeps every frame: more distinct poses for the images.
    build_bank(BankConfig(sources=(("cmu", str(root)),), out=str(out), dedup_mm=0.0, view=ViewConfig(views=2)))
    return out
