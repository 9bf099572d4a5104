"""The cases drawn (worst matches, a random typical sample, suspected left/right swaps): the annotated
2D pose in pixels (over the image when it can be found under --images-root), beside its match (the
pseudo-3D label seen from the camera, placed on the annotated joints as the matching does) and a 3D
view of it. A suspected swap adds its other reading: the same points with left and right exchanged.

Colours and markers are posebank.drawing_style's (right red, left blue, centre grey; annotated filled,
occluded cross, completed hollow), with its legend under every picture. The 3D view shows the camera
frame turned so that up is up (x right, z away from the camera, -y up).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..drawing_style import draw_pose_2d, draw_pose_3d, legend_handles
from ..geometry import masked_centre_scale
from .plots import new_figure, save_figure

CASE_KINDS = ("worst", "typical", "swaps")  # record lists of each dataset that are drawn
_MARGIN = 0.35  # crop around the person: this share of the pose's box on every side
_PANEL_IN = 3.6  # each panel's width, inches


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


def _square_view(xy: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): a square around the finite joints, so that every case has the same aspect."""
    finite = np.isfinite(xy).all(1)
    lo, hi = (xy[finite].min(0), xy[finite].max(0)) if finite.any() else (np.zeros(2), np.ones(2))
    half = (0.5 + _MARGIN) * max(float((hi - lo).max()), 20.0)
    (cx, cy) = 0.5 * (lo + hi)
    return cx - half, cy - half, cx + half, cy + half


def _panel_2d(ax: Any, xy: np.ndarray, names: list[str], bones: list[tuple[int, int]], vis: np.ndarray, occ: np.ndarray,
              image: Any, title: str) -> None:  # fmt: skip
    x0, y0, x1, y1 = _square_view(xy)
    if image is not None:
        h, w = image.shape[:2]
        ax.imshow(image, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="antialiased")
        x0, y0, x1, y1 = max(x0, -0.5), max(y0, -0.5), min(x1, w - 0.5), min(y1, h - 0.5)
    if np.isfinite(xy).all():
        draw_pose_2d(ax, xy, names, bones, vis, occ, outline=image is not None)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # image rows grow downwards
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=7)


def match_on_query(pose_3d: np.ndarray, query_2d: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """The label's orthographic 2D (x, y of the camera-frame pose) placed on the query's annotated
    joints: both centred on those joints and the label scaled to the query's norm over them (eq. 9).

    Returns:
        (J, 2) px; NaN when fewer than two joints are annotated.
    """
    label_2d = pose_3d[:, :2]
    c_label, s_label = masked_centre_scale(label_2d, visible)
    c_query, s_query = masked_centre_scale(np.nan_to_num(query_2d), visible)
    if visible.sum() < 2 or s_label <= 0:
        return np.full_like(label_2d, np.nan)
    return (label_2d - c_label) / s_label * s_query + c_query


def draw_case(record: dict[str, Any], out: Path, name: str, joint_names: list[str], bones: list[tuple[int, int]],
              images_root: Path | None, flip: list[int] | None = None) -> dict[str, Any]:  # fmt: skip
    """Draw one person record (records.person_record) into out/name; with `flip` (the skeleton's
    left/right permutation) also the swapped reading.

    Returns:
        save_figure's dict and "over_image": whether the image was found and drawn under the pose.
    """
    xy = np.array(record["pose_2d"], dtype=float)
    vis = np.array(record["visible"], dtype=bool)
    occ = np.array(record.get("occluded") or np.zeros(len(vis)), dtype=bool)
    image = _image(images_root, record["image"])
    has_3d = record["pose_3d"] is not None
    panels = 3 + (flip is not None)
    fig = new_figure(_PANEL_IN * panels, 4.0, layout=None)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.2, top=0.86, wspace=0.12)
    d = record["match_distance"]
    _panel_2d(fig.add_subplot(1, panels, 1), xy, joint_names, bones, vis, occ, image,
              f"{record['dataset']} {record['image']} person {record['person']}\n{record['visible_joints']} joints "
              f"annotated{' (over the image)' if image is not None else ''}")  # fmt: skip
    at = 2
    if flip is not None:  # the other reading: every point keeps its place, left and right labels exchange
        _panel_2d(fig.add_subplot(1, panels, at), xy[flip], joint_names, bones, vis[flip], occ[flip], image,
                  "the same points, left and right exchanged\n(the swap the flag suspects)")  # fmt: skip
        at += 1
    ax_match = fig.add_subplot(1, panels, at)
    if has_3d:
        placed = match_on_query(np.array(record["pose_3d"], dtype=float), xy, vis)
        ax_match.plot(*xy[vis].T, "s", color="black", markersize=4, fillstyle="none", label="query (annotated)")
        _panel_2d(ax_match, placed, joint_names, bones, np.ones(len(vis), bool), np.zeros(len(vis), bool), None,
                  f"its match: the label seen from the camera\nplaced on the annotated joints; distance "
                  f"{'-' if d is None else f'{d:.3f}'}")  # fmt: skip
        ax_match.legend(fontsize=6, loc="upper right")
    else:
        ax_match.set_axis_off()
        ax_match.set_title("not matched", fontsize=7)
    ax3d = fig.add_subplot(1, panels, at + 1, projection="3d")
    if has_3d:
        p = np.array(record["pose_3d"], dtype=float)
        draw_pose_3d(ax3d, p, joint_names, bones)
        r = max(0.9, float(np.abs(p).max()) * 1.05)
        ax3d.set_xlim(-r, r)
        ax3d.set_ylim(-r, r)
        ax3d.set_zlim(-r, r)
        ax3d.set_box_aspect((1, 1, 1), zoom=1.1)
        ax3d.view_init(elev=12, azim=-70)
        for axis in (ax3d.xaxis, ax3d.yaxis, ax3d.zaxis):
            axis.set_ticks([-0.5, 0.0, 0.5])  # a 0.5 m grid; the numbers would only crowd the view
            axis.set_ticklabels([])
    ax3d.set_title("pseudo-3D, camera frame turned up (grid 0.5 m)" if has_3d else "no 3D (not matched)", fontsize=7)
    fig.legend(handles=legend_handles(), loc="lower center", ncol=6, fontsize=7, frameon=False)
    flags = ", ".join(record["flags"]) or "no flag"
    saved = save_figure(fig, out, name, f"{record['dataset']} {record['image']} person {record['person']} ({flags})")
    return {**saved, "over_image": image is not None}


def draw_cases(report: dict[str, Any], out: Path, images_root: Path | None) -> int:
    """Draw every worst case, typical case and suspected swap of every annotation input; each record
    gets a "figure" entry (file name and whether it is over its image). Returns the number of drawings."""
    from ..skeleton import get_skeleton

    count = 0
    for label, ann in report.get("annotations", {}).items():
        skeleton = get_skeleton(ann["skeleton"])
        bones, flip = list(skeleton.bones), [int(i) for i in skeleton.flip_permutation]
        for ds, d in ann["datasets"].items():
            for kind in CASE_KINDS:
                for i, rec in enumerate(d.get(kind, [])):
                    drawn = draw_case(rec, out, f"case-{label}-{ds}-{kind}-{i:03d}.png", ann["joint_names"], bones,
                                      images_root, flip if kind == "swaps" else None)  # fmt: skip
                    rec["figure"] = {k: drawn[k] for k in ("file", "over_image", "size_px", "legend", "cut_text")}
                    count += 1
    return count
