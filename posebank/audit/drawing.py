"""The worst cases drawn: the completed 2D pose in pixels (over the image when it can be found under
--images-root) beside a small 3D view of its pseudo-3D pose.

Annotated joints are filled dots, joints completed by the match hollow; right side red, left blue.
The 3D view shows the camera frame turned so that up is up (x right, z away from the camera, -y up).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .plots import draw_skeleton_2d, new_figure, save_figure

_MARGIN = 0.35  # crop around the person: this share of the pose's box on every side


def _image(images_root: Path | None, relative: str) -> Any:
    """The image as an (H, W, 3) uint8 array, or None when there is no root or no such file.

    Raises:
        InputError: `relative` leaves the images root (posebank.verify.image_file).
    """
    if images_root is None:
        return None
    from ..verify import image_file

    path = image_file(images_root, relative)
    if not path.is_file():
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError):
        return None


def draw_case(record: dict[str, Any], out: Path, name: str, joint_names: list[str], bones: list[tuple[int, int]],
              images_root: Path | None) -> dict[str, Any]:  # fmt: skip
    """Draw one person record (records.person_record) into out/name.

    Returns:
        {"file", "caption", "over_image": whether the image was found and drawn under the pose}.
    """
    xy = np.array(record["pose_2d"], dtype=float)
    vis = np.array(record["visible"], dtype=bool)
    image = _image(images_root, record["image"])
    fig = new_figure(7.0, 3.3, layout=None)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.86, wspace=0.1)
    ax2d = fig.add_subplot(1, 2, 1)
    finite = np.isfinite(xy).all(1)
    lo, hi = (xy[finite].min(0), xy[finite].max(0)) if finite.any() else (np.zeros(2), np.ones(2))
    # a square view around the person, so that every case is drawn at the same aspect
    half = (0.5 + _MARGIN) * max(float((hi - lo).max()), 20.0)
    (cx, cy) = 0.5 * (lo + hi)
    x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
    if image is not None:
        h, w = image.shape[:2]
        ax2d.imshow(image, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="antialiased")
        x0, y0, x1, y1 = max(x0, -0.5), max(y0, -0.5), min(x1, w - 0.5), min(y1, h - 0.5)
    if finite.all():
        draw_skeleton_2d(ax2d, xy, joint_names, bones, vis, outline=image is not None)
    ax2d.set_xlim(x0, x1)
    ax2d.set_ylim(y1, y0)  # image rows grow downwards
    ax2d.set_aspect("equal")
    ax2d.tick_params(labelsize=6)
    d = record["match_distance"]
    ax2d.set_title(f"{record['dataset']} {record['image']} person {record['person']}\n"
                   f"distance {'-' if d is None else f'{d:.3f}'}, {record['visible_joints']} joints annotated",
                   fontsize=7)  # fmt: skip
    ax3d = fig.add_axes((0.5, 0.0, 0.5, 0.9), projection="3d")
    if record["pose_3d"] is not None:
        p = np.array(record["pose_3d"], dtype=float)
        shown = np.stack([p[:, 0], p[:, 2], -p[:, 1]], axis=1)  # x right, z depth, up = -y
        colour = {"right_": "tab:red", "left_": "tab:blue"}
        for c, q in bones:
            a = next((v for k, v in colour.items() if joint_names[c].startswith(k)), "0.4")
            b = next((v for k, v in colour.items() if joint_names[q].startswith(k)), "0.4")
            ax3d.plot(*shown[[c, q]].T, color=a if a == b else "0.4", linewidth=2)
        r = max(0.9, float(np.abs(shown).max()) * 1.05)
        ax3d.set_xlim(-r, r)
        ax3d.set_ylim(-r, r)
        ax3d.set_zlim(-r, r)
        ax3d.set_box_aspect((1, 1, 1), zoom=1.15)
        ax3d.view_init(elev=12, azim=-70)
        for axis in (ax3d.xaxis, ax3d.yaxis, ax3d.zaxis):
            axis.set_ticks([-0.5, 0.0, 0.5])  # a 0.5 m grid; the numbers would only crowd the view
            axis.set_ticklabels([])
    ax3d.set_title("pseudo-3D, camera frame turned up (grid 0.5 m)" if record["pose_3d"] is not None
                   else "no 3D (not matched)", fontsize=7)  # fmt: skip
    flags = ", ".join(record["flags"]) or "no flag"
    saved = save_figure(fig, out, name, f"{record['dataset']} {record['image']} person {record['person']} ({flags})")
    return {**saved, "over_image": image is not None}


def draw_cases(report: dict[str, Any], out: Path, images_root: Path | None) -> int:
    """Draw every worst case and suspected swap of every annotation input; each record gets a
    "figure" entry (file name and whether it is over its image). Returns the number of drawings."""
    from ..skeleton import get_skeleton

    count = 0
    for label, ann in report.get("annotations", {}).items():
        bones = list(get_skeleton(ann["skeleton"]).bones)
        for ds, d in ann["datasets"].items():
            for kind in ("worst", "swaps"):
                for i, rec in enumerate(d[kind]):
                    drawn = draw_case(rec, out, f"case-{label}-{ds}-{kind}-{i:03d}.png", ann["joint_names"], bones, images_root)
                    rec["figure"] = {"file": drawn["file"], "over_image": drawn["over_image"]}
                    count += 1
    return count
