"""PNG plots of the audit, drawn from the report dict alone (so every plotted number is in the JSON).

matplotlib's object API (Figure + savefig, Agg) is used, not pyplot: no global figure state, no
display needed. Each function writes one file into `out` and returns {"file", "caption", "size_px",
"legend"}: the PNG's (width, height) and the labels of its legends, so audit.json says what each picture
shows. Plots are PLOT_SIZE_IN at DPI (800 x 400 px) unless their content needs more room.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..drawing_style import draw_pose_2d, legend_handles

DPI = 100
PLOT_SIZE_IN = (8.0, 4.0)  # the one-plot figures: 800 x 400 px


def new_figure(width: float = PLOT_SIZE_IN[0], height: float = PLOT_SIZE_IN[1], layout: str | None = "constrained") -> Any:
    """A matplotlib Figure (inches, DPI) not attached to pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # constrained layout is slow on grids of small axes and on 3D axes: those place axes by hand
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)  # its own canvas (not pyplot's): save_figure measures the drawn texts with it
    return fig


def save_figure(fig: Any, out: Path, name: str, caption: str) -> dict[str, Any]:
    """Write `fig` as out/name (PNG); returns {"file", "caption", "size_px": [w, h], "legend": labels,
    "cut_text": texts that reach past the picture's edge (a cut label; none expected)}."""
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
    labels = [t.get_text() for lg in legends if lg is not None for t in lg.get_texts()]
    # Fixed metadata: the PNG bytes then depend on the data only.
    fig.savefig(out / name, metadata={"Software": None})
    w, h = fig.canvas.get_width_height()
    return {"file": name, "caption": caption, "size_px": [int(w), int(h)], "legend": labels, "cut_text": _cut_text(fig, w, h)}


def _cut_text(fig: Any, width: int, height: int) -> list[str]:
    """The titles, axis labels, legend and free texts of a drawn figure whose box leaves the canvas by
    more than a pixel (tick labels are left out: those beyond the axes' limits are kept but not drawn)."""
    renderer = fig.canvas.get_renderer()
    texts = [*fig.texts, *(t for lg in fig.legends for t in lg.get_texts())]
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        texts += ax.get_legend().get_texts() if ax.get_legend() is not None else []
    cut = []
    for t in texts:
        if not t.get_visible() or not t.get_text().strip():
            continue
        box = t.get_window_extent(renderer)
        if box.x0 < -1 or box.y0 < -1 or box.x1 > width + 1 or box.y1 > height + 1:
            cut.append(t.get_text())
    return cut


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
    fig = new_figure(8.0, max(PLOT_SIZE_IN[1], 1.2 + 0.16 * len(subjects)))
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
    fig = new_figure(11, max(PLOT_SIZE_IN[1], 2.2 + 0.2 * len(subjects)))
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
    fig = new_figure(10, 4.0)
    ax0, ax1 = fig.subplots(1, 2)
    _distance_matrix(ax0, m, sources, "median nearest-pose distance (mm)", "{:.0f}")
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


def bank_viewpoints(bank: dict[str, Any], out: Path, label: str) -> dict[str, Any]:
    """Histograms of the views' azimuth and elevation (degrees), every row, one curve per source."""
    vp = bank["viewpoints"]
    fig = new_figure()
    ax0, ax1 = fig.subplots(1, 2)
    sources = list(vp["azimuth_counts"])
    for s, c in zip(sources, colours(len(sources))):
        for ax, key, edges in ((ax0, "azimuth_counts", "azimuth_edges_deg"), (ax1, "elevation_counts", "elevation_edges_deg")):
            counts = np.array(vp[key][s], dtype=float)
            if counts.sum():
                ax.stairs(counts / counts.sum(), vp[edges], color=c, label=f"{s} ({int(counts.sum())} rows)", linewidth=1.5)
    ax0.set_xlabel("azimuth (deg; 0: the camera faces the person's front)")
    ax1.set_xlabel("elevation (deg; positive: looking down)")
    for ax in (ax0, ax1):
        ax.set_ylabel("share of rows")
        ax.grid(alpha=0.3)
        legend_or_note(ax, fontsize=7)
    return save_figure(fig, out, f"bank-{label}-viewpoints.png", "Viewpoints: azimuth and elevation of the bank's views.")


def bank_coverage_2d(bank: dict[str, Any], out: Path, label: str) -> dict[str, Any]:
    """Median nearest-row eq. 9 distance between the sources' 2D rows (pose and view)."""
    cov = bank["coverage_2d"]
    sources = cov["sources"]
    m = np.array([[np.nan if cov["matrix_median"][a][b] is None else cov["matrix_median"][a][b] for b in sources]
                  for a in sources], dtype=float).reshape(len(sources), len(sources))  # fmt: skip
    fig = new_figure()
    ax = fig.add_subplot()
    _distance_matrix(ax, m, sources, "median nearest 2D row, eq. 9 distance (unitless)", "{:.3f}")
    return save_figure(fig, out, f"bank-{label}-coverage-2d.png",
                       "2D pose-space coverage by source: eq. 9 distance from each sampled row to the nearest of each source.")  # fmt: skip


def _distance_matrix(ax: Any, m: np.ndarray, sources: list[str], title: str, number: str) -> None:
    """A sources x sources matrix of distances with its numbers; one source is said in words (a 1x1
    image would be one flat colour, black at the top of the scale)."""
    n = len(sources)
    finite = m[np.isfinite(m)]
    if n == 1:
        value = number.format(m[0, 0]) if np.isfinite(m[0, 0]) else "-"
        ax.text(0.5, 0.5, f"one source ({sources[0]}): {title}\nwithin it (leave-one-out): {value}", ha="center",
                va="center", fontsize=10, transform=ax.transAxes, wrap=True)  # fmt: skip
        ax.set_axis_off()
        return
    ax.imshow(m, cmap="magma_r", vmin=0, vmax=float(finite.max()) * 1.25 if len(finite) else 1.0)
    ax.set_xticks(range(n), [f"to {s}" for s in sources], fontsize=8)
    ax.set_yticks(range(n), [f"from {s}" for s in sources], fontsize=8)
    for i in range(n):
        for j in range(n):
            if np.isfinite(m[i, j]):
                ax.text(j, i, number.format(m[i, j]), ha="center", va="center", fontsize=9,
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5})  # fmt: skip
    ax.set_title(title, fontsize=9)


def anchor_members(anchors: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Bar chart: bank poses per anchor, sorted."""
    fig = new_figure()
    ax = fig.add_subplot()
    members = np.sort(np.array(anchors["members"]))[::-1]
    ax.bar(np.arange(len(members)), members, color="tab:blue", width=1.0)
    ax.set_xlabel("anchor (sorted by size)")
    ax.set_ylabel("bank poses (members)")
    return save_figure(fig, out, f"anchors-{label}-members.png", "Bank poses per anchor-pose (K-means cluster sizes).")


def anchor_poses(anchors: dict[str, Any], out: Path, label: str, joint_names: list[str],
                 bones: list[tuple[int, int]], limit: int = 100) -> dict[str, str]:  # fmt: skip
    """The anchor-poses (largest `limit` first) as 2D front views of their 3D pose (x, y in metres)."""
    poses = np.array(anchors["pose_3d"])
    order = np.argsort(-np.array(anchors["members"]), kind="stable")[:limit]
    cols = min(10, len(order))
    rows = int(np.ceil(len(order) / cols))
    height = 1.25 * rows + 0.7  # 0.3 in for the titles, 0.4 in for the legend below
    fig = new_figure(max(PLOT_SIZE_IN[0], 1.0 * cols + 0.2), height, layout=None)
    axes = np.atleast_1d(fig.subplots(rows, cols, gridspec_kw={"left": 0.02, "right": 0.98, "bottom": 0.4 / height,
                                                               "top": 1.0 - 0.3 / height, "hspace": 0.35})).reshape(-1)  # fmt: skip
    for ax in axes:
        ax.set_axis_off()
    for ax, k in zip(axes, order):
        draw_pose_2d(ax, poses[k][:, :2], joint_names, bones, linewidth=1.2, markersize=2.5)
        ax.set_aspect("equal")
        ax.invert_yaxis()  # camera frame: y points down
        ax.set_title(f"#{k} ({anchors['members'][k]})", fontsize=6)
    fig.legend(handles=legend_handles(states=()), loc="lower center", fontsize=7, ncol=3, frameon=False)
    shown = f"the {len(order)} largest" if len(order) < len(poses) else "all"
    return save_figure(fig, out, f"anchors-{label}-poses.png",
                 f"Anchor-poses ({shown}, by size): orthographic front view; #id (members).")  # fmt: skip
