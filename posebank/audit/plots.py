"""PNG plots of the audit, drawn from the report dict alone (so every plotted number is in the JSON).

matplotlib's object API (Figure + savefig, Agg) is used, not pyplot: no global figure state, no
display needed. Each function writes one file into `out` and returns {"file", "caption"}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

DPI = 90


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    """A matplotlib Figure (inches, DPI) not attached to pyplot."""
    from matplotlib.figure import Figure

    # constrained layout is slow on grids of small axes and on 3D axes: those place axes by hand
    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


def save_figure(fig: Any, out: Path, name: str, caption: str) -> dict[str, str]:
    """Write `fig` as out/name (PNG) and return {"file": name, "caption": caption}."""
    # Fixed metadata: the PNG bytes then depend on the data only.
    fig.savefig(out / name, metadata={"Software": None})
    return {"file": name, "caption": caption}


def legend_or_note(ax: Any, fontsize: float = 8) -> None:
    """A legend when something was drawn, else a note that there was nothing to draw."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.5")


def colours(n: int) -> list[Any]:
    """n distinct colours (tab10, cycled)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def bank_poses(bank: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Bar chart: poses per subject (view-0 rows), coloured by source."""
    subjects = bank["subjects"]
    sources = list(bank["sources"])
    colour = dict(zip(sources, colours(len(sources))))
    fig = new_figure(7.5, 1.2 + 0.16 * max(1, len(subjects)))
    ax = fig.add_subplot()
    y = np.arange(len(subjects))
    ax.barh(y, [s["poses"] for s in subjects], color=[colour[s["source"]] for s in subjects])
    ax.set_yticks(y, [f"{s['source']}/{s['subject']}" for s in subjects], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("poses (after deduplication; each seen from views_per_pose views)")
    handles = [ax.bar(0, 0, color=colour[s], label=s) for s in sources]
    ax.legend(handles=handles, loc="best", fontsize=8)
    return save_figure(fig, out, f"bank-{label}-poses.png", "Poses per subject, coloured by source.")


def bank_bones(bank: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Heatmaps subjects x bones: mean length relative to the median subject (%), and log10 of the
    length's standard deviation (mm); flagged bones outlined."""
    subjects = [s for s in bank["subjects"] if "bones" in s]
    names = bank["bones"]["names"]
    mean = np.array([s["bones"]["mean_m"] for s in subjects]).reshape(len(subjects), len(names))
    std_mm = 1000.0 * np.array([s["bones"]["std_m"] for s in subjects]).reshape(len(subjects), len(names))
    median = np.median(mean, axis=0) if len(mean) else np.zeros(len(names))
    rel = 100.0 * (mean / np.where(median > 0, median, 1.0) - 1.0)
    fig = new_figure(11, 2.2 + 0.2 * max(1, len(subjects)))
    axes = fig.subplots(1, 2, sharey=True)
    ylabels = [f"{s['source']}/{s['subject']}" for s in subjects]
    im0 = axes[0].imshow(rel, cmap="coolwarm", vmin=-50, vmax=50, aspect="auto")
    axes[0].set_title("mean length vs the median subject (%)", fontsize=9)
    im1 = axes[1].imshow(np.log10(np.maximum(std_mm, 1e-3)), cmap="viridis", vmin=-3, vmax=2, aspect="auto")
    axes[1].set_title("std of the length (log10 mm; rigid bones ~ -3)", fontsize=9)
    flagged = {(f["source"], f["subject"], f["bone"]) for f in bank["flagged_subjects"]}
    for ax in axes:
        ax.set_xticks(range(len(names)), names, rotation=75, fontsize=7)
        ax.set_yticks(range(len(subjects)), ylabels, fontsize=7)
        for i, s in enumerate(subjects):
            for b, name in enumerate(names):
                if (s["source"], s["subject"], name) in flagged:
                    ax.add_patch(_rect(b, i))
    fig.colorbar(im0, ax=axes[0], shrink=0.6)
    fig.colorbar(im1, ax=axes[1], shrink=0.6)
    return save_figure(fig, out, f"bank-{label}-bones.png",
                 "Bone lengths per subject (3D, over every pose). Flagged bones are outlined in black.")  # fmt: skip


def _rect(x: int, y: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5)


def bank_coverage(bank: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Median nearest-pose distance between sources (mm) and, per source, the cumulative share of
    its poses within a distance of the reference source."""
    cov = bank["coverage"]
    sources = cov["sources"]
    n = len(sources)
    m = np.array([[np.nan if cov["matrix_median_mm"][a][b] is None else cov["matrix_median_mm"][a][b]
                   for b in sources] for a in sources]).reshape(n, n)  # fmt: skip
    fig = new_figure(10, 3.8)
    ax0, ax1 = fig.subplots(1, 2)
    ax0.imshow(m, cmap="magma_r", vmin=0)
    ax0.set_xticks(range(n), [f"to {s}" for s in sources], fontsize=8)
    ax0.set_yticks(range(n), [f"from {s}" for s in sources], fontsize=8)
    for i in range(n):
        for j in range(n):
            if np.isfinite(m[i, j]):
                ax0.text(j, i, f"{m[i, j]:.0f}", ha="center", va="center", fontsize=9,
                         bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5})  # fmt: skip
    ax0.set_title("median nearest-pose distance (mm)", fontsize=9)
    edges = np.array(cov["histogram_edges_mm"])
    ref = cov["reference"]
    for s, c in zip(sources, colours(n)):
        counts = np.array(cov["histograms"].get(f"{s}->{ref}", []))
        if counts.sum():
            ax1.plot(edges[1:], np.cumsum(counts) / counts.sum(), color=c, label=f"{s} -> {ref}")
    ax1.set_xlabel("distance to the nearest pose of the reference (mm, body frame)")
    ax1.set_ylabel("share of poses")
    ax1.grid(alpha=0.3)
    legend_or_note(ax1)
    return save_figure(fig, out, f"bank-{label}-coverage.png",
                 f"Pose-space coverage: nearest-pose distances between sources (reference: {ref}).")  # fmt: skip


def anchor_members(anchors: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Bar chart: bank poses per anchor, sorted."""
    fig = new_figure(7, 2.6)
    ax = fig.add_subplot()
    members = np.sort(np.array(anchors["members"]))[::-1]
    ax.bar(np.arange(len(members)), members, color="tab:blue", width=1.0)
    ax.set_xlabel("anchor (sorted by size)")
    ax.set_ylabel("bank poses (members)")
    return save_figure(fig, out, f"anchors-{label}-members.png", "Bank poses per anchor-pose (K-means cluster sizes).")


def draw_skeleton_2d(ax: Any, xy: np.ndarray, joint_names: list[str], bones: list[tuple[int, int]],
                     visible: np.ndarray | None = None, linewidth: float = 2.0, outline: bool = False) -> None:  # fmt: skip
    """Bones of a (J, 2) pose: right side red, left blue, centre grey; annotated joints filled,
    completed joints (visible False) hollow. `outline` draws a white edge (readable over photos)."""
    from matplotlib import patheffects

    def colour(name: str) -> str:
        return "tab:red" if name.startswith("right_") else "tab:blue" if name.startswith("left_") else "0.4"

    effects = [patheffects.withStroke(linewidth=linewidth + 2.0, foreground="white")] if outline else None

    for c, p in bones:
        # a bone takes its side's colour when both ends are on that side (hips-to-hips is central)
        a, b = colour(joint_names[c]), colour(joint_names[p])
        ax.plot(xy[[c, p], 0], xy[[c, p], 1], color=a if a == b else "0.4", linewidth=linewidth,
                solid_capstyle="round", path_effects=effects)  # fmt: skip
    for j, name in enumerate(joint_names):
        filled = True if visible is None else bool(visible[j])
        ax.plot(xy[j, 0], xy[j, 1], "o", markersize=4, markeredgecolor=colour(name),
                markerfacecolor=colour(name) if filled else "white")  # fmt: skip


def anchor_poses(anchors: dict[str, Any], out: Path, label: str, joint_names: list[str],
                 bones: list[tuple[int, int]], limit: int = 100) -> dict[str, str]:  # fmt: skip
    """The anchor-poses (largest `limit` first) as 2D front views of their 3D pose (x, y in metres)."""
    poses = np.array(anchors["pose_3d"])
    order = np.argsort(-np.array(anchors["members"]), kind="stable")[:limit]
    cols = min(10, len(order))
    rows = int(np.ceil(len(order) / cols))
    fig = new_figure(1.0 * cols + 0.2, 1.25 * rows + 0.3, layout=None)
    height = 1.25 * rows + 0.3
    axes = np.atleast_1d(fig.subplots(rows, cols, gridspec_kw={"left": 0.02, "right": 0.98, "bottom": 0.02,
                                                               "top": 1.0 - 0.3 / height, "hspace": 0.35})).reshape(-1)  # fmt: skip
    for ax in axes:
        ax.set_axis_off()
    for ax, k in zip(axes, order):
        draw_skeleton_2d(ax, poses[k][:, :2], joint_names, bones, linewidth=1.2)
        ax.set_aspect("equal")
        ax.invert_yaxis()  # camera frame: y points down
        ax.set_title(f"#{k} ({anchors['members'][k]})", fontsize=6)
    shown = f"the {len(order)} largest" if len(order) < len(poses) else "all"
    return save_figure(fig, out, f"anchors-{label}-poses.png",
                 f"Anchor-poses ({shown}, by size): orthographic front view; #id (members).")  # fmt: skip
