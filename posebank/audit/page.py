"""The audit as one static HTML page next to its PNGs (relative <img src>, no external resource).

Every number in a table is a value of the report dict, formatted by `fmt` (the JSON holds them
all). A tiny inline script counts the images that loaded and writes "k/n images" into the page
title, so a headless browser can check that the page renders with its images.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; } h3 { margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 2px 7px; text-align: right; }
th { background: #f3f3f3; } td.t, th.t { text-align: left; }
tr.bad td { background: #fde8e8; }
figure { display: inline-block; margin: 0.4em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; } figcaption { font-size: 0.8em; color: #555; max-width: 640px; }
.cases figure { width: 48%; } div.wide { overflow-x: auto; max-width: 100%; } p.note { font-size: 0.85em; color: #555; max-width: 900px; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.title = "posebank audit: " + ok + "/" + imgs.length + " images";
  document.body.setAttribute("data-images-loaded", ok + "/" + imgs.length);
});
"""


def fmt(value: Any) -> str:
    """How a report value is shown: ints as they are, floats to 4 significant digits, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], text_cols: int = 1, bad: Sequence[bool] = ()) -> str:
    """A table in a horizontally scrolling box; text cells left-aligned, numbers right-aligned.
    `text_cols` first header cells are left-aligned; rows whose `bad` is True are highlighted."""
    bad, rows = list(bad), [list(r) for r in rows]
    # a header is left-aligned over text: the first `text_cols` columns, or text in the first row
    left = [i < text_cols or (bool(rows) and i < len(rows[0]) and isinstance(rows[0][i], str)) for i in range(len(header))]
    out = ['<div class="wide"><table><tr>' + "".join(f'<th class="{"t" if lf else ""}">{html.escape(h)}</th>'
                                                      for h, lf in zip(header, left)) + "</tr>"]  # fmt: skip
    for r, row in enumerate(rows):
        cls = ' class="bad"' if r < len(bad) and bad[r] else ""
        cells = "".join(f'<td class="{"t" if isinstance(v, str) else ""}">{html.escape(fmt(v))}</td>' for v in row)
        out.append(f"<tr{cls}>{cells}</tr>")
    return "\n".join(out) + "</table></div>"


def _figures(figures: Iterable[dict[str, Any]], css: str = "") -> str:
    items = [f'<figure><img src="{html.escape(f["file"])}" alt="{html.escape(f["caption"])}">'
             f'<figcaption>{html.escape(f["caption"])}</figcaption></figure>' for f in figures]  # fmt: skip
    return f'<div class="{css}">' + "\n".join(items) + "</div>" if items else ""


def section_title(kind: str, label: str) -> str:
    """"Bank cmu-small", but "Bank" alone for a folder named bank ("Bank bank" says nothing more)."""
    word = kind.capitalize()
    return word if label.lower() in (kind.lower(), kind.lower().rstrip("s")) else f"{word} {label}"


def _bank(label: str, b: dict[str, Any]) -> str:
    note = (f'<p class="note">{html.escape(b["path"])}: {fmt(b["rows"])} rows in {fmt(b["shards"])} shards, '
            f'skeleton {html.escape(b["skeleton"])}.</p>')
    parts = [f"<h2>{html.escape(section_title('bank', label))}</h2>", note]
    cols = ("subjects", "sequences", "poses_read", "poses_kept", "dedup_rate", "poses", "rows", "views_per_pose",
            "consistent_with_manifest")  # fmt: skip
    parts.append(_table(["source", *cols], [[s, *(v[c] for c in cols)] for s, v in b["sources"].items()],
                        bad=[not v["consistent_with_manifest"] for v in b["sources"].values()]))  # fmt: skip
    parts.append("<h3>Bone lengths: flagged subjects</h3>")
    if b["flagged_subjects"]:
        parts.append(_table(["source", "subject", "bone", "problem", "value", "limit"],
                            [[f["source"], f["subject"], f["bone"], f["problem"], *problem_text(f)]
                             for f in b["flagged_subjects"]], text_cols=6))  # fmt: skip
    else:
        parts.append('<p class="note">No subject flagged.</p>')
    parts.append('<p class="note">length: the mean length is outside the plausible range; varies: a rigid bone\'s '
                 'standard deviation is above the limit; asymmetric: left and right differ by more than the limit '
                 '(% of their mean).</p>')  # fmt: skip
    parts.append("<h3>Poses per subject</h3>")
    parts.append(_table(["source", "subject", "sequences", "poses", "rows", "views_per_pose"],
                        [[s["source"], s["subject"], s["sequences"], s["poses"], s["rows"], s["views_per_pose"]]
                         for s in b["subjects"]], text_cols=2,
                        bad=[bool(s.get("problems")) for s in b["subjects"]]))  # fmt: skip
    names = b["bones"]["names"]
    parts.append("<h3>Bone lengths per subject: mean (m)</h3>")
    parts.append(_table(["source", "subject", *names], [[s["source"], s["subject"], *s["bones"]["mean_m"]]
                                                        for s in b["subjects"] if "bones" in s], text_cols=2))  # fmt: skip
    parts.append("<h3>Bone lengths per subject: standard deviation (mm)</h3>")
    parts.append(_table(["source", "subject", *names], [[s["source"], s["subject"], *s["bones"]["std_mm"]]
                                                        for s in b["subjects"] if "bones" in s], text_cols=2))  # fmt: skip
    cov = b["coverage"]
    parts.append("<h3>Pose-space coverage</h3>")
    parts.append(f'<p class="note">{html.escape(cov["meaning"])}</p>')
    keys = [k for k in cov["pairs"][0] if k.startswith("share_over_")] if cov["pairs"] else []
    parts.append(_table(["from", "to", "poses", "mean mm", "median mm", "90th pct mm", *keys],
                        [[p["from"], p["to"], p["summary_mm"]["count"], p["summary_mm"].get("mean"),
                          p["summary_mm"].get("q50"), p["summary_mm"].get("q90"), *(p[k] for k in keys)]
                         for p in cov["pairs"]], text_cols=2))  # fmt: skip
    if b.get("coverage_2d", {}).get("pairs"):
        c2 = b["coverage_2d"]
        parts.append("<h3>2D pose-space coverage by source</h3>")
        parts.append(f'<p class="note">{html.escape(c2["meaning"])}</p>')
        parts.append(_table(["from", "to", "rows", "mean", "median", "90th pct"],
                            [[p["from"], p["to"], p["summary"]["count"], p["summary"].get("mean"), p["summary"].get("q50"),
                              p["summary"].get("q90")] for p in c2["pairs"]], text_cols=2))  # fmt: skip
    if "viewpoints" in b:
        vp = b["viewpoints"]
        parts.append("<h3>Viewpoints</h3>")
        parts.append(f'<p class="note">Azimuth and elevation of every row (histograms in the figure and audit.json); '
                     f'the views as configured: {html.escape(str(vp.get("config")))}.</p>')
    parts.append(_figures(b.get("figures", [])))
    return "\n".join(parts)


def _anchors(label: str, a: dict[str, Any]) -> str:
    s, n = a["bank_shares"], a["nearest_other_anchor_mm"]
    return "\n".join([
        f"<h2>{html.escape(section_title('anchors', label))}</h2>",
        _table(["path", "k", "members min", "members median", "members max", "effective classes",
                "nearest other anchor: min mm", "median mm"],
               [[a["path"], a["k"], a["members_summary"].get("min"), a["members_summary"].get("q50"),
                 a["members_summary"].get("max"), s["effective_classes"], n.get("min"), n.get("q50")]]),
        _figures(a.get("figures", [])),
    ])  # fmt: skip


def problem_text(flag: dict[str, Any]) -> list[str]:
    """[value, limit] of a flagged bone as text with units: lengths and spreads in mm, asymmetry in %."""
    def mm(v: float) -> str:
        return f"{1000.0 * v:.1f} mm"

    v, limit = flag["value"], flag["limit"]
    if flag["problem"] == "asymmetric":
        return [f"{100.0 * v:.1f} %", f"{100.0 * limit:.0f} %"]
    shown_limit = " to ".join(mm(x) for x in limit) if isinstance(limit, list) else mm(limit)
    return [mm(v), shown_limit]


def _annotations(label: str, a: dict[str, Any]) -> str:
    from .page_annotations import annotation_sections

    return annotation_sections(label, a, _table, _figures)


def render_page(report: dict[str, Any]) -> str:
    """The whole page as a string."""
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', "<title>posebank audit</title>",
             f"<style>{_STYLE}</style></head><body>", "<h1>posebank audit</h1>"]  # fmt: skip
    parts.append(_table(["input", "kind", "path"], [[i["label"], i["kind"], i["path"]] for i in report["inputs"]], text_cols=3))
    parts.append('<p class="note">Every number here is in audit.json (same names). Distances between 2D poses are '
                 'the eq. 9 masked normalised distance (unitless, 0 to 2); 3D lengths in metres unless marked mm.</p>')  # fmt: skip
    for label, b in report.get("banks", {}).items():
        parts.append(_bank(label, b))
    for label, a in report.get("anchors", {}).items():
        parts.append(_anchors(label, a))
    for label, a in report.get("annotations", {}).items():
        parts.append(_annotations(label, a))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def write_page(report: dict[str, Any], path: Path) -> None:
    """Write the page (atomically) to `path`; its images are expected beside it."""
    from ..provenance import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(render_page(report), encoding="utf-8")
