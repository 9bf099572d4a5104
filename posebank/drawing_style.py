"""One look for every picture of a pose (synth preview, audit cases and anchors, predict overlays):
side colours for joints and bones, one marker per joint state, and the legend that says so.

Sides: a joint named right_* is red, left_* blue, any other (head, pelvis, ...) grey; a bone takes its
side's colour when both its ends are on that side, else grey (hip to hip is central).

Joint states (from the annotation schema's `visible` and `occluded`, docs/design.md):
    annotated  visible and not occluded: a filled dot;
    occluded   the source marks it hidden (its position is annotated, or known in synthetic data): a cross;
    completed  not visible and not occluded: filled in by the bank match (annotations), or outside the
               image (synthetic data): a hollow dot.

matplotlib is imported inside the functions that draw with it (importing posebank stays light); the
PIL functions draw on an ImageDraw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

RIGHT, LEFT, CENTRE = "right", "left", "centre"
SIDE_COLOURS = {RIGHT: "#d62728", LEFT: "#1f77b4", CENTRE: "#7f7f7f"}  # matplotlib tab:red, tab:blue, grey
SIDE_LABELS = {RIGHT: "right side", LEFT: "left side", CENTRE: "centre"}

ANNOTATED, OCCLUDED, COMPLETED = "annotated", "occluded", "completed"
STATE_LABELS = {ANNOTATED: "annotated joint (filled)", OCCLUDED: "occluded joint (cross)",
                COMPLETED: "completed by the match (hollow)"}  # fmt: skip
SYNTH_STATE_LABELS = {ANNOTATED: "visible joint (filled)", OCCLUDED: "occluded joint (cross)",
                      COMPLETED: "outside the image (hollow)"}  # fmt: skip
_MPL_MARKERS = {ANNOTATED: "o", OCCLUDED: "X", COMPLETED: "o"}


def side_rgb(side: str) -> tuple[int, int, int]:
    """The side's colour as 8-bit RGB (for PIL)."""
    h = SIDE_COLOURS[side].lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def joint_side(name: str) -> str:
    """RIGHT, LEFT or CENTRE from a canonical joint name."""
    return RIGHT if name.startswith("right_") else LEFT if name.startswith("left_") else CENTRE


def bone_side(joint_names: Sequence[str], a: int, b: int) -> str:
    """The side of the bone (a, b): its ends' side when they agree, else CENTRE."""
    sa, sb = joint_side(joint_names[a]), joint_side(joint_names[b])
    return sa if sa == sb else CENTRE


def joint_states(num_joints: int, visible: Any = None, occluded: Any = None) -> list[str]:
    """The state of each joint (ANNOTATED, OCCLUDED, COMPLETED); None masks: all annotated / none occluded."""
    vis = np.ones(num_joints, bool) if visible is None else np.asarray(visible, bool)
    occ = np.zeros(num_joints, bool) if occluded is None else np.asarray(occluded, bool)
    return [OCCLUDED if o else ANNOTATED if v else COMPLETED for v, o in zip(vis, occ)]


def draw_pose_2d(ax: Any, xy: npt.NDArray[np.floating], joint_names: Sequence[str], bones: Sequence[tuple[int, int]],
                 visible: Any = None, occluded: Any = None, *, linewidth: float = 2.0, markersize: float = 4.0,
                 outline: bool = False) -> None:  # fmt: skip
    """Bones and joints of a (J, 2) pose on a matplotlib Axes, in the axes' data units.

    `outline` draws a white edge around the bones (readable over photos).
    """
    from matplotlib import patheffects

    effects = [patheffects.withStroke(linewidth=linewidth + 2.0, foreground="white")] if outline else None
    for a, b in bones:
        ax.plot(xy[[a, b], 0], xy[[a, b], 1], color=SIDE_COLOURS[bone_side(joint_names, a, b)], linewidth=linewidth,
                solid_capstyle="round", path_effects=effects)  # fmt: skip
    for j, state in enumerate(joint_states(len(joint_names), visible, occluded)):
        colour = SIDE_COLOURS[joint_side(joint_names[j])]
        ax.plot(xy[j, 0], xy[j, 1], _MPL_MARKERS[state], markersize=markersize * (1.3 if state == OCCLUDED else 1.0),
                markeredgecolor=colour if state != OCCLUDED else "white",
                markerfacecolor="white" if state == COMPLETED else colour, markeredgewidth=1.0)  # fmt: skip


def draw_pose_3d(ax3d: Any, pose_3d: npt.NDArray[np.floating], joint_names: Sequence[str],
                 bones: Sequence[tuple[int, int]], *, linewidth: float = 2.0) -> None:  # fmt: skip
    """Bones of a (J, 3) camera-frame pose (x right, y down, z forward) on a 3D Axes, drawn as
    (x, z, -y): matplotlib's third axis is the vertical one and points up."""
    shown = np.stack([pose_3d[:, 0], pose_3d[:, 2], -pose_3d[:, 1]], axis=1)
    for a, b in bones:
        ax3d.plot(*shown[[a, b]].T, color=SIDE_COLOURS[bone_side(joint_names, a, b)], linewidth=linewidth)


def legend_handles(states: Sequence[str] = (ANNOTATED, OCCLUDED, COMPLETED), *, sides: bool = True,
                   state_labels: dict[str, str] | None = None) -> list[Any]:  # fmt: skip
    """matplotlib legend handles: the side colours (bones) and the joint markers asked for."""
    from matplotlib.lines import Line2D

    labels = state_labels or STATE_LABELS
    handles = [Line2D([], [], color=SIDE_COLOURS[s], linewidth=2.5, label=SIDE_LABELS[s]) for s in (RIGHT, LEFT, CENTRE)] if sides else []  # fmt: skip
    for state in states:
        handles.append(Line2D([], [], linestyle="none", marker=_MPL_MARKERS[state], markersize=6,
                              markerfacecolor="white" if state == COMPLETED else "0.3",
                              markeredgecolor="0.3", label=labels[state]))  # fmt: skip
    return handles


def draw_pose_pil(draw: Any, pts: npt.NDArray[np.floating], joint_names: Sequence[str], bones: Sequence[tuple[int, int]],
                  visible: Any = None, occluded: Any = None, *, width: int = 2, radius: int = 3) -> None:  # fmt: skip
    """The same look on a PIL ImageDraw: (J, 2) points in the image's pixel coordinates."""
    for a, b in bones:
        draw.line([tuple(pts[a]), tuple(pts[b])], fill=side_rgb(bone_side(joint_names, a, b)), width=width)
    for j, state in enumerate(joint_states(len(joint_names), visible, occluded)):
        colour = side_rgb(joint_side(joint_names[j]))
        _pil_marker(draw, pts[j], state, colour, radius)


def _pil_marker(draw: Any, q: Any, state: str, colour: tuple[int, int, int], radius: int) -> None:
    x, y, r = float(q[0]), float(q[1]), radius
    if state == OCCLUDED:
        draw.line([(x - r, y - r), (x + r, y + r)], fill=colour, width=2)
        draw.line([(x - r, y + r), (x + r, y - r)], fill=colour, width=2)
    elif state == ANNOTATED:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(0, 0, 0))
    else:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=None, outline=colour, width=1)


def pil_legend(width: int, state_labels: dict[str, str] | None = None, row_px: int = 20) -> Any:
    """A PIL strip `width` px wide with the side colours and joint markers, to paste under a sheet; its
    items wrap onto as many rows of `row_px` as the width needs."""
    from PIL import Image, ImageDraw

    labels = state_labels or STATE_LABELS
    items = [("side", s, SIDE_LABELS[s]) for s in (RIGHT, LEFT, CENTRE)]
    items += [("state", s, labels[s]) for s in (ANNOTATED, OCCLUDED, COMPLETED)]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    places, x, row = [], 6, 0
    for kind, key, text in items:
        size = 34 + int(measure.textlength(text))
        if x + size > width and x > 6:
            x, row = 6, row + 1
        places.append((kind, key, text, x, row))
        x += size
    strip = Image.new("RGB", (width, (row + 1) * row_px), (245, 245, 245))
    draw = ImageDraw.Draw(strip)
    for kind, key, text, x, row in places:
        y = row * row_px + row_px // 2
        if kind == "side":
            draw.line([(x, y), (x + 18, y)], fill=side_rgb(key), width=3)
        else:
            _pil_marker(draw, (x + 9, y), key, (80, 80, 80), 4)
        draw.text((x + 24, y - 6), text, fill=(0, 0, 0))
    return strip
