"""Overlay pictures of detections: 2D skeletons on the image and a small 3D view of the same people.

matplotlib with the Agg backend (no display needed), imported inside the function so that importing
lcrnet stays light.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from posebank.skeleton import Skeleton

_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990")


def draw_overlay(
    image: npt.NDArray[np.uint8],
    poses_2d: npt.NDArray[np.floating],
    poses_3d: npt.NDArray[np.floating],
    scores: npt.NDArray[np.floating],
    skeleton: Skeleton,
    path: str | Path,
) -> Path:
    """Write a PNG: the image with each person's 2D skeleton and score, and an inset 3D view.

    Args:
        image: (H, W, 3) uint8 RGB.
        poses_2d: (M, J, 2) px of `image`, origin top-left.
        poses_3d: (M, J, 3) metres, body-centred, camera frame (x right, y down, z forward). In the
            3D view the people stand side by side (1 m apart, in detection order), seen from the
            camera and slightly above, with y pointing down as in the image.
        scores: (M,) detection scores (shown next to each person).
        skeleton: the joint set (its bones are drawn).
        path: the PNG file.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    h, w = image.shape[:2]
    fig = plt.figure(figsize=(8.0, 8.0 * h / max(w, 1) * 0.75 + 0.5), dpi=100)
    ax = fig.add_axes((0.0, 0.0, 0.75, 1.0))
    ax.imshow(image)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.axis("off")
    for m, pose in enumerate(poses_2d):
        colour = _COLOURS[m % len(_COLOURS)]
        for a, b in skeleton.bones:
            ax.plot(pose[[a, b], 0], pose[[a, b], 1], color=colour, linewidth=2)
        ax.scatter(pose[:, 0], pose[:, 1], s=6, color=colour)
        head = pose[skeleton.index("head")] if "head" in skeleton.joint_names else pose.min(axis=0)
        ax.text(head[0], head[1] - 4, f"{float(scores[m]):.2f}", color=colour, fontsize=8, ha="center", va="bottom")

    ax3 = fig.add_axes((0.75, 0.25, 0.25, 0.5), projection="3d")
    for m, pose in enumerate(poses_3d):
        colour = _COLOURS[m % len(_COLOURS)]
        p = pose + np.array([1.0 * m, 0.0, 0.0])
        for a, b in skeleton.bones:
            # Plot (x, z, -y): matplotlib's vertical axis is the third one and points up.
            ax3.plot(p[[a, b], 0], p[[a, b], 2], -p[[a, b], 1], color=colour, linewidth=1.5)
    span = max(1.0, 0.5 * len(poses_3d))
    centre = 0.5 * (len(poses_3d) - 1) if len(poses_3d) else 0.0
    ax3.set_xlim(centre - span, centre + span)
    ax3.set_ylim(-1.0, 1.0)
    ax3.set_zlim(-1.0, 1.0)
    ax3.set_box_aspect((span, 1.0, 1.0))
    ax3.view_init(elev=10, azim=-90)
    ax3.set_xticks([])
    ax3.set_yticks([])
    ax3.set_zticks([])
    ax3.set_title("3D (m)", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
