"""Predict's overlay picture: the image and a 3D view of the same size, in the shared drawing style."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lcrnet.visualize import draw_overlay
from posebank.drawing_style import LEFT, RIGHT, side_rgb
from posebank.skeleton import get_skeleton

# j13 standing pose, metres, camera frame (x right, y down): the person's right side on the image's left
STANDING = np.array([[-0.12, 0.9, 0], [0.12, 0.9, 0], [-0.11, 0.5, 0], [0.11, 0.5, 0], [-0.1, 0.1, 0], [0.1, 0.1, 0],
                     [-0.3, 0.1, 0], [0.3, 0.1, 0], [-0.27, -0.15, 0], [0.27, -0.15, 0], [-0.19, -0.4, 0],
                     [0.19, -0.4, 0], [0.0, -0.65, 0]], dtype=np.float32)  # fmt: skip


def _near(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 30) -> int:
    return int((np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= tol).sum())


def test_overlay_has_a_3d_panel_as_large_as_the_image(tmp_path: Path) -> None:
    image = np.full((200, 300, 3), 235, np.uint8)
    poses_2d = np.stack([STANDING[:, :2] * 100 + [90, 100], STANDING[:, :2] * 100 + [210, 100]])
    path = draw_overlay(image, poses_2d, np.stack([STANDING, STANDING]), np.array([0.9, 0.6]), get_skeleton("j13"),
                        tmp_path / "overlay.png")  # fmt: skip
    with Image.open(path) as im:
        png = np.asarray(im.convert("RGB"))
    h, w = png.shape[:2]
    assert w == 1200 and h == 460  # two 600 px panels; 6 in x 200/300 + 0.6 in of legend
    left, right = png[:, : w // 2], png[:, w // 2 :]
    for side in (RIGHT, LEFT):  # bones in their side's colour in both panels (the legend is under both)
        assert _near(left[:400], side_rgb(side)) > 50 and _near(right[:400], side_rgb(side)) > 50, side
