"""Overlay pictures of detections: 2D skeletons on the image and, beside it at the same size, a 3D view of
the same people. Colours and markers are posebank.drawing_style's (right red, left blue, centre grey),
with its legend; each person is named by its detection index and score.

matplotlib with the Agg backend (no display needed), imported inside the function so that importing
lcrnet stays light.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from posebank.skeleton import Skeleton

def draw_overlay(
    image: npt.NDArray[np.uint8],
    poses_2d: npt.NDArray[np.floating],
    poses_3d: npt.NDArray[np.floating],
    scores: npt.NDArray[np.floating],
    skeleton: Skeleton,
    path: str | Path,
) -> Path:
    """Write a PNG: the image with each person's 2D skeleton, index and score, and a 3D view as large.

    Args:
        image: (H, W, 3) uint8 RGB.
        poses_2d: (M, J, 2) px of `image`, origin top-left.
        poses_3d: (M, J, 3) metres, body-centred, camera frame (x right, y down, z forward). In the
            3D view the people stand side by side (1 m apart, in detection order, each labelled with
            its index), seen from the camera and slightly above, up pointing up.
        scores: (M,) detection scores (shown next to each person).
        skeleton: the joint set (its bones are drawn).
        path: the PNG file.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from posebank.drawing_style import draw_pose_2d, draw_pose_3d, legend_handles

    names = list(skeleton.joint_names)
    bones = list(skeleton.bones)
    h, w = image.shape[:2]
    panel = 6.0  # inches: the image panel's width, and the 3D panel's
    fig = plt.figure(figsize=(2 * panel, panel * h / max(w, 1) + 0.6), dpi=100)
    legend_share = 0.6 / (panel * h / max(w, 1) + 0.6)
    ax = fig.add_axes((0.0, legend_share, 0.5, 1.0 - legend_share))
    ax.imshow(image)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.axis("off")
    for m, pose in enumerate(poses_2d):
        draw_pose_2d(ax, pose, names, bones, linewidth=2.0, markersize=3.0, outline=True)
        head = pose[skeleton.index("head")] if "head" in names else pose.min(axis=0)
        ax.text(head[0], head[1] - 4, f"#{m} {float(scores[m]):.2f}", color="black", fontsize=8, ha="center", va="bottom",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1.0})  # fmt: skip

    ax3 = fig.add_axes((0.5, legend_share, 0.5, 1.0 - legend_share), projection="3d")
    for m, pose in enumerate(poses_3d):
        p = pose + np.array([1.0 * m, 0.0, 0.0])
        draw_pose_3d(ax3, p, names, bones, linewidth=1.8)
        top = p[:, 1].min()  # y points down: the highest joint
        ax3.text(1.0 * m, 0.0, -top + 0.15, f"#{m}", fontsize=8, ha="center")
    span = max(1.0, 0.5 * len(poses_3d))
    centre = 0.5 * (len(poses_3d) - 1) if len(poses_3d) else 0.0
    ax3.set_xlim(centre - span, centre + span)
    ax3.set_ylim(-1.0, 1.0)
    ax3.set_zlim(-1.0, 1.0)
    ax3.set_box_aspect((span, 1.0, 1.0), zoom=1.1)
    ax3.view_init(elev=10, azim=-90)
    ax3.set_xticks([])
    ax3.set_yticks([])
    ax3.set_zticks([])
    ax3.set_title("3D (m), people 1 m apart in detection order", fontsize=9)
    fig.legend(handles=legend_handles(states=()), loc="lower center", ncol=3, fontsize=8, frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
