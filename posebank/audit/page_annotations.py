"""The annotation sections of the audit page (see page.py): per dataset tables, flagged people,
worst cases and suspected swaps drawn, anchor class usage and the bank comparison."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from .page import fmt, section_title

_DIST = ("mean", "q50", "q90", "q95", "max")


def annotation_sections(label: str, a: dict[str, Any], table: Callable[..., str], figures: Callable[..., str]) -> str:
    """HTML of one annotation input: `table(header, rows, text_cols=..)` and `figures(list, css)` are page.py's."""
    ds = a["datasets"]
    note = (f'<p class="note">{fmt(a["files"])} shard(s), {fmt(a["people"])} people; matched against the bank '
            f'{html.escape(str(a["base_bank"]))}. Every flagged person is listed in '
            f'<a href="{html.escape(a["flagged_csv"])}">{html.escape(a["flagged_csv"])}</a>.</p>')
    parts = [f"<h2>{html.escape(section_title('annotations', label))}</h2>", note]
    flags = sorted({f for d in ds.values() for f in d["flags"]})
    parts.append(table(["dataset", "people", "matched", "unmatched", *flags, *(f"distance {k}" for k in _DIST),
                        "spread median mm", "spread 90th pct mm", "error estimate median mm",
                        "error estimate 90th pct mm"],
                       [[n, d["people"], d["matched"], d["unmatched"], *(d["flags"].get(f, 0) for f in flags),
                         *(d["match_distance"].get(k) for k in _DIST), d["match_spread_mm"].get("q50"),
                         d["match_spread_mm"].get("q90"), d["error_estimate_mm"].get("q50"),
                         d["error_estimate_mm"].get("q90")] for n, d in ds.items()]))  # fmt: skip
    parts.append("<h3>Match distance per number of annotated joints</h3>")
    parts.append(table(["dataset", "joints", "people", "matched", "mean", "median", "90th pct"],
                       [[n, r["joints"], r["people"], r["matched"], r.get("mean"), r.get("q50"), r.get("q90")]
                        for n, d in ds.items() for r in d["by_visible_joints"]], text_cols=1))  # fmt: skip
    parts.append("<h3>Completions per joint (matched people whose joint was not annotated)</h3>")
    joints = a["joint_names"]
    parts.append(table(["dataset", *joints], [[n, *d["completions_per_joint"]["completed"]] for n, d in ds.items()]))
    parts.append("<h3>Occlusion per joint (share of people whose joint the source marks occluded)</h3>")
    parts.append(table(["dataset", *joints], [[n, *d["occlusion_per_joint"]["occluded_share"]] for n, d in ds.items()]))
    parts.append("<h3>Person height (px) and people per image</h3>")
    parts.append(table(["dataset", "people", "height median px", "height 5th pct px", "height 95th pct px", "images",
                        "people per image: mean", "max"],
                       [[n, d["people"], d["person_height_px"].get("q50"), d["person_height_px"].get("q05"),
                         d["person_height_px"].get("q95"), d["people_per_image"]["images"],
                         d["people_per_image"].get("mean"), d["people_per_image"].get("max")] for n, d in ds.items()]))  # fmt: skip
    if not any(d["matched"] for d in ds.values()):
        parts.append('<p class="note">No person here was matched against a bank (synthetic shards carry their true '
                     '3D): the match plots are left out.</p>')  # fmt: skip
    parts.append(figures(a.get("figures", [])))
    if any("anchor_usage" in d for d in ds.values()):
        parts.append("<h3>Anchor class usage</h3>")
        parts.append(table(["dataset", "people", "classes", "used", "empty", "largest share", "effective classes",
                            "total variation to the bank"],
                           [[n, u["people"], u["classes"], u["used"], u["empty"], u["largest_share"],
                             u["effective_classes"], u["total_variation_to_bank"]]
                            for n, d in ds.items() if (u := d.get("anchor_usage"))]))  # fmt: skip
    if any("compare" in d for d in ds.values()):
        parts.append("<h3>Compared bank</h3>")
        rows = [[n, c["bank"], c["people"], c["base"].get("mean"), c["compared"].get("mean"), c.get("reduction_pct_mean"),
                 c["base"].get("q50"), c["compared"].get("q50"), c.get("reduction_pct_median"), c.get("share_better"),
                 c.get("share_worse")] for n, d in ds.items() if (c := d.get("compare"))]  # fmt: skip
        parts.append(table(["dataset", "compared bank", "people", "mean (stored)", "mean (compared)", "reduction % (mean)",
                            "median (stored)", "median (compared)", "reduction % (median)", "share better",
                            "share worse"], rows, text_cols=2))  # fmt: skip
        parts.append('<p class="note">Reduction: 100 x (stored - compared) / stored; positive when the compared bank '
                     'matches the same annotated joints better.</p>')  # fmt: skip
    for n, d in ds.items():
        parts.append(f"<h3>{html.escape(n)}: flagged people</h3>")
        rows = [[f, v["count"], "; ".join(f"{img} #{p}" for img, p in v["listed"][:20])
                 + (" ..." if v["count"] > 20 else "")] for f, v in d["flagged_people"].items()]  # fmt: skip
        parts.append(table(["flag", "count", "image #person (first 20)"], rows) if rows else '<p class="note">None.</p>')
        for kind, title in (("worst", "worst matches"), ("typical", "typical matches (a seeded random sample)"),
                            ("swaps", "suspected left/right swaps: both readings")):  # fmt: skip
            recs = d.get(kind, [])
            if not recs:
                continue
            parts.append(f"<h3>{html.escape(n)}: {title}</h3>")
            parts.append(table(["image", "person", "distance", "spread m", "error estimate mm", "annotated joints", "flags"],
                               [[r["image"], r["person"], r["match_distance"], r["match_spread"], r.get("error_estimate"),
                                 r["visible_joints"],
                                 ", ".join(r["flags"]) or "-"] for r in recs]))  # fmt: skip
            drawn = [{"file": r["figure"]["file"], "caption": f"{r['image']} person {r['person']}"
                      + (" (over the image)" if r["figure"]["over_image"] else "")} for r in recs if "figure" in r]  # fmt: skip
            parts.append(figures(drawn, "cases"))
    return "\n".join(parts)
