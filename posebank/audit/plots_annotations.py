"""PNG plots of the annotation audit (per annotation input, one curve or bar group per dataset),
drawn from the report dict alone. See plots.py for the conventions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .plots import colours, legend_or_note, new_figure, save_figure


def _histogram_curves(ann: dict[str, Any], get: Any, xlabel: str, ylabel: str, out: Path, name: str, caption: str) -> dict[str, Any]:
    """One share curve per dataset of the histogram get(dataset entry) ({"edges", "counts"})."""
    fig = new_figure()
    ax = fig.add_subplot()
    for dataset, d, c in _datasets(ann):
        h = get(d)
        counts = np.array(h["counts"], dtype=float)
        if counts.sum():
            ax.stairs(counts / counts.sum(), h["edges"], color=c, label=f"{dataset} ({int(counts.sum())})", linewidth=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    legend_or_note(ax)
    return save_figure(fig, out, name, caption)


def _per_joint_shares(ann: dict[str, Any], share_of: Callable[[dict[str, Any]], list[float | None]], ylabel: str,
                      title: str, out: Path, name: str, caption: str) -> dict[str, Any]:
    """Grouped bars: per joint, one bar per dataset of the share `share_of(dataset)` gives (None drawn as 0)."""
    sets = _datasets(ann)
    joints = ann["joint_names"]
    fig = new_figure()
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(sets))
    x = np.arange(len(joints))
    for i, (label, d, c) in enumerate(sets):
        share = [v if v is not None else 0.0 for v in share_of(d)]
        ax.bar(x + (i - (len(sets) - 1) / 2) * width, share, width=width, color=c, label=label)
    ax.set_xticks(x, joints, rotation=60, fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    legend_or_note(ax)
    return save_figure(fig, out, name, caption)


def occlusion_per_joint(ann: dict[str, Any], out: Path, label: str) -> dict[str, Any]:
    """Per joint, the share of people whose joint the source marks occluded (synth: hidden by a body)."""
    return _per_joint_shares(ann, lambda d: d["occlusion_per_joint"]["occluded_share"], "share of people",
                             "joints marked occluded by the source", out, f"ann-{label}-occlusion.png",
                             "Occlusion per joint: people whose joint is marked occluded.")  # fmt: skip


def person_height(ann: dict[str, Any], out: Path, label: str) -> dict[str, Any]:
    """Share of people per height bin (px, the annotated joints' vertical extent)."""
    return _histogram_curves(ann, lambda d: d["person_height_px"]["histogram"],
                             "person height in the image (px, annotated joints' extent; the last bin holds >= 1000)",
                             "share of people", out, f"ann-{label}-height.png", "Person scale: height of the annotated joints (px).")  # fmt: skip


def people_per_image(ann: dict[str, Any], out: Path, label: str) -> dict[str, Any]:
    """Share of images per number of people in them."""
    return _histogram_curves(ann, lambda d: d["people_per_image"]["histogram"], "people in the image", "share of images",
                             out, f"ann-{label}-people-per-image.png", "People per image.")  # fmt: skip


def _datasets(ann: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
    names = list(ann["datasets"])
    return list(zip(names, (ann["datasets"][n] for n in names), colours(len(names))))


def _share_histogram(ann: dict[str, Any], key: str, xlabel: str, out: Path, name: str, caption: str,
                     counts_in_legend: bool) -> dict[str, str]:  # fmt: skip
    """Share of matched people per bin of the histogram `key` of each dataset, one curve per dataset."""
    fig = new_figure()
    ax = fig.add_subplot()
    for dataset, d, c in _datasets(ann):
        h = d[key]
        counts = np.array(h["counts"], dtype=float)
        if counts.sum():
            label = f"{dataset} ({int(counts.sum())})" if counts_in_legend else dataset
            ax.stairs(counts / counts.sum(), h["edges"], color=c, label=label, linewidth=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of matched people")
    ax.grid(alpha=0.3)
    legend_or_note(ax)
    return save_figure(fig, out, name, caption)


def distance_histogram(ann: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Share of matched people per match-distance bin, one curve per dataset."""
    return _share_histogram(ann, "match_distance_histogram", "match distance (eq. 9, unitless; the last bin holds >= 1.5)",
                            out, f"ann-{label}-distance.png", "Match-distance distribution per dataset.", True)  # fmt: skip


def distance_by_joints(ann: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Median and 90th percentile of the match distance per number of annotated joints."""
    fig = new_figure()
    ax = fig.add_subplot()
    for name, d, c in _datasets(ann):
        rows = [r for r in d["by_visible_joints"] if "q50" in r]
        if rows:
            x = [r["joints"] for r in rows]
            ax.plot(x, [r["q50"] for r in rows], "o-", color=c, label=f"{name} median")
            ax.plot(x, [r["q90"] for r in rows], "--", color=c, alpha=0.6, label=f"{name} 90th pct")
    ax.set_xlabel("annotated joints (query mask size)")
    ax.set_ylabel("match distance")
    ax.grid(alpha=0.3)
    legend_or_note(ax, fontsize=7)
    return save_figure(fig, out, f"ann-{label}-by-joints.png", "Match distance per number of annotated joints.")


def completions(ann: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Per joint, the share of matched people whose joint was completed by the match."""
    return _per_joint_shares(ann, lambda d: d["completions_per_joint"]["completed_share_of_matched"],
                             "share of matched people", "joints completed by the match (not annotated)", out,
                             f"ann-{label}-completions.png",
                             "Completions per joint: matched people whose joint was not annotated.")  # fmt: skip


def spread_histogram(ann: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Share of matched people per top-k spread bin (mm), one curve per dataset."""
    return _share_histogram(ann, "match_spread_histogram_mm",
                            "top-k spread (mm): mean per-joint 3D distance of matches 2..k to the best", out,
                            f"ann-{label}-spread.png", "Top-k spread: how much the k best matches disagree in 3D.", False)  # fmt: skip


def anchor_usage(ann: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Share of annotated people per anchor class against the bank's share (the anchors' members)."""
    fig = new_figure()
    ax = fig.add_subplot()
    bank_done = False
    for name, d, c in _datasets(ann):
        u = d.get("anchor_usage")
        if not u:
            continue
        counts = np.array(u["counts"], dtype=float)
        order = np.argsort(-np.array(u["bank_shares"]), kind="stable")
        if not bank_done:
            ax.bar(np.arange(len(order)), np.array(u["bank_shares"])[order], width=1.0, color="0.8", label="bank (members)")
            bank_done = True
        if counts.sum():
            ax.plot(np.arange(len(order)), counts[order] / counts.sum(), ".", color=c, label=name)
    ax.set_xlabel("anchor class (sorted by its share of the bank)")
    ax.set_ylabel("share")
    legend_or_note(ax)
    return save_figure(fig, out, f"ann-{label}-anchor-usage.png", "Anchor class usage of the annotated people vs the bank.")


def compare_change(ann: dict[str, Any], out: Path, label: str) -> dict[str, str]:
    """Per-person change of the match distance with the compared bank, one curve per dataset."""
    fig = new_figure()
    ax = fig.add_subplot()
    for name, d, c in _datasets(ann):
        h = d.get("compare", {}).get("change_histogram")
        if h and sum(h["counts"]):
            counts = np.array(h["counts"], dtype=float)
            ax.stairs(counts / counts.sum(), h["edges"], color=c, label=name, linewidth=1.5)
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    ax.set_xlabel("compared - stored match distance (negative: the compared bank matches better)")
    ax.set_ylabel("share of people")
    ax.grid(alpha=0.3)
    legend_or_note(ax)
    return save_figure(fig, out, f"ann-{label}-compare.png", "Per-person change of the match distance with the compared bank.")
