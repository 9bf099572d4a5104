"""The terminal summary of an audit: a few rich tables built from the report dict (the CLI prints
them; nothing here prints)."""

from __future__ import annotations

from typing import Any

from .page import fmt, problem_text, section_title


def _table(title: str, header: list[str], rows: list[list[Any]]) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left", min_width=len(title))  # titles never wrap
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*(fmt(v) for v in row))
    return t


def _flag_rows(flagged: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per (subject, problem): how many bones, and the first of them with its value."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in flagged:
        groups.setdefault((f"{f['source']}/{f['subject']}", f["problem"]), []).append(f)
    return [[subject, problem, len(fs), fs[0]["bone"], problem_text(fs[0])[0]] for (subject, problem), fs in groups.items()]


def summary_tables(report: dict[str, Any]) -> list[Any]:
    """rich Tables: per bank its sources, flagged subjects and coverage; per anchor table its size;
    per annotation input its datasets (and the bank comparison)."""
    tables = []
    for label, b in report.get("banks", {}).items():
        tables.append(_table(section_title("bank", label), ["source", "subjects", "poses read", "kept", "dedup rate", "rows", "views/pose"],
                             [[s, v["subjects"], v["poses_read"], v["poses_kept"], v["dedup_rate"], v["rows"],
                               v["views_per_pose"]] for s, v in b["sources"].items()]))  # fmt: skip
        if b["flagged_subjects"]:
            tables.append(_table(f"{section_title('bank', label)}: flagged subjects (every bone in the page and audit.json)",
                                 ["subject", "problem", "bones", "first bone", "value"], _flag_rows(b["flagged_subjects"])))  # fmt: skip
        cov = b["coverage"]
        if cov["pairs"]:
            tables.append(_table(f"{section_title('bank', label)}: median nearest-pose mm",
                                 ["from", *cov["sources"]],
                                 [[a, *(cov["matrix_median_mm"][a][s] for s in cov["sources"])] for a in cov["sources"]]))  # fmt: skip
    for label, a in report.get("anchors", {}).items():
        tables.append(_table(section_title("anchors", label), ["k", "members min", "median", "max", "nearest other anchor median mm"],
                             [[a["k"], a["members_summary"].get("min"), a["members_summary"].get("q50"),
                               a["members_summary"].get("max"), a["nearest_other_anchor_mm"].get("q50")]]))  # fmt: skip
    for label, a in report.get("annotations", {}).items():
        ds = a["datasets"]
        flags = sorted({f for d in ds.values() for f in d["flags"]})
        tables.append(_table(section_title("annotations", label), ["dataset", "people", "matched", *flags, "distance median", "90th pct",
                                                      "spread median mm"],
                             [[n, d["people"], d["matched"], *(d["flags"].get(f, 0) for f in flags),
                               d["match_distance"].get("q50"), d["match_distance"].get("q90"),
                               d["match_spread_mm"].get("q50")] for n, d in ds.items()]))  # fmt: skip
        compared = [[n, c["people"], c.get("reduction_pct_mean"), c.get("reduction_pct_median"), c.get("share_better")]
                    for n, d in ds.items() if (c := d.get("compare"))]  # fmt: skip
        if compared:
            tables.append(_table(f"{section_title('annotations', label)}: compared bank", ["dataset", "people", "reduction % mean",
                                                                        "reduction % median", "share better"], compared))  # fmt: skip
    return tables
