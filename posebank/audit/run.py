"""`posebank audit`: recognise the inputs, compute every figure, write audit.json, the PNGs and
index.html into --out.

The report dict is the single source: plots, drawings, the page and the terminal summary are all
made from it, so audit.json holds every number shown. It holds no timing and no absolute time, so
the same inputs and config give the same file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import to_dict
from ..errors import InputError, OutputConflictError
from ..provenance import package_version, sha256_bytes, write_json_atomic
from .config import AuditConfig
from .inputs import AuditInput, resolve_inputs

LOG = logging.getLogger(__name__)
REPORT_FILE = "audit.json"
PAGE_FILE = "index.html"
REPORT_VERSION = 1


@dataclass
class AuditResult:
    """What an audit wrote: the report (the content of audit.json) and the files in `out`."""

    out: Path
    report: dict[str, Any]
    files: list[str] = field(default_factory=list)

    @property
    def page(self) -> Path:
        return self.out / PAGE_FILE


def _identity(config: AuditConfig, inputs: list[AuditInput]) -> str:
    job = {k: v for k, v in to_dict(config).items() if k not in ("out", "paths")}
    return sha256_bytes(json.dumps(job, sort_keys=True), *(f"{i.kind}:{i.path}" for i in inputs))


def _prepare_out(out: Path, identity: str, overwrite: bool) -> None:
    """Refuse an --out holding another audit (unless overwrite); remove the files an earlier audit
    wrote there, so no stale plot survives."""
    previous = out / REPORT_FILE
    if previous.is_file():
        try:
            old = json.loads(previous.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        if old.get("identity") != identity and not overwrite:
            raise OutputConflictError(f"{out} holds an audit of other inputs or options; use another --out or --overwrite")
        for name in [*old.get("files", []), REPORT_FILE]:
            f = out / name
            if "/" not in name and f.is_file():
                f.unlink()
    elif out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputConflictError(f"{out} is not empty and holds no audit; use another --out or --overwrite")
    out.mkdir(parents=True, exist_ok=True)


def _usage_anchors(config: AuditConfig, inputs: list[AuditInput]) -> Path | None:
    """--anchors, else the one anchor table among the inputs (none when there are several)."""
    if config.anchors:
        return Path(config.anchors).expanduser().resolve()
    tables = [i.files[0] for i in inputs if i.kind == "anchors"]
    return tables[0] if len(tables) == 1 else None


def run_audit(config: AuditConfig, *, overwrite: bool = False, progress: Any = None) -> AuditResult:
    """Audit every input of `config.paths` and write the results into `config.out`.

    Args:
        config: the inputs and options (see AuditConfig).
        overwrite: replace an --out that holds another audit.
        progress: wraps the long loops (iterable, description, total) -> iterator; None for silence.

    Returns:
        An AuditResult (report = the content of audit.json).

    Raises:
        InputError: a path that is none of bank, anchors or annotations; a bad --anchors or --compare-bank.
        OutputConflictError: `config.out` holds another audit and `overwrite` is False.
    """
    from ..anchors_build import load_anchors
    from ..bank import open_bank
    from .anchors_audit import AnchorUsage, audit_anchor_table
    from .annotations_audit import audit_annotations
    from .bank_audit import audit_bank
    from .compare import BankComparison

    if not config.paths:
        raise ValueError("nothing to audit: give one or more banks, anchor tables or annotation folders")
    inputs = resolve_inputs(config.paths)
    out = Path(config.out)
    identity = _identity(config, inputs)
    _prepare_out(out, identity, overwrite)
    usage_path = _usage_anchors(config, inputs)
    usage_anchors = load_anchors(usage_path) if usage_path else None
    compare_bank = open_bank(config.compare_bank) if config.compare_bank else None
    images_root = Path(config.images_root).expanduser().resolve() if config.images_root else None
    if images_root is not None and not images_root.is_dir():
        raise InputError(images_root, "--images-root is not a folder")

    report: dict[str, Any] = {
        "kind": "audit", "report_version": REPORT_VERSION, "posebank_version": package_version(),
        "identity": identity, "config": to_dict(config),
        "inputs": [{"label": i.label, "kind": i.kind, "path": str(i.path)} for i in inputs],
        "banks": {}, "anchors": {}, "annotations": {},
    }  # fmt: skip
    for item in inputs:
        if item.kind == "bank":
            report["banks"][item.label] = audit_bank(open_bank(item.path), config, progress)
        elif item.kind == "anchors":
            report["anchors"][item.label] = audit_anchor_table(load_anchors(item.files[0]), item.files[0])
        else:
            hooks: dict[str, Any] = {}
            if usage_anchors is not None and usage_path is not None:
                hooks["anchor_usage"] = AnchorUsage(usage_anchors, usage_path)
            if compare_bank is not None:
                hooks["compare"] = BankComparison(compare_bank, engine=config.engine)
            report["annotations"][item.label] = audit_annotations(
                item.files, config, out / f"flagged-{item.label}.csv", hooks, progress)  # fmt: skip

    files = _draw(report, out, images_root)
    report["files"] = sorted([*files, PAGE_FILE, *(f"flagged-{k}.csv" for k in report["annotations"])])
    from .page import write_page

    write_page(report, out / PAGE_FILE)
    write_json_atomic(out / REPORT_FILE, report)
    return AuditResult(out, report, [*report["files"], REPORT_FILE])


def _draw(report: dict[str, Any], out: Path, images_root: Path | None) -> list[str]:
    """Every PNG; each section gets its "figures" list. Returns the file names."""
    from ..skeleton import get_skeleton
    from . import plots, plots_annotations
    from .drawing import draw_cases

    for label, b in report["banks"].items():
        b["figures"] = [plots.bank_poses(b, out, label), plots.bank_bones(b, out, label)]
        if b["coverage"]["pairs"]:
            b["figures"].append(plots.bank_coverage(b, out, label))
    for label, a in report["anchors"].items():
        # anchors carry no skeleton name: j13 and j17 differ in their joint count
        sk = get_skeleton("j13" if len(a["pose_3d"][0]) == 13 else "j17")
        a["figures"] = [plots.anchor_members(a, out, label),
                        plots.anchor_poses(a, out, label, list(sk.joint_names), list(sk.bones))]  # fmt: skip
    for label, a in report["annotations"].items():
        figs = [plots_annotations.distance_histogram(a, out, label), plots_annotations.distance_by_joints(a, out, label),
                plots_annotations.completions(a, out, label), plots_annotations.spread_histogram(a, out, label)]  # fmt: skip
        if any("anchor_usage" in d for d in a["datasets"].values()):
            figs.append(plots_annotations.anchor_usage(a, out, label))
        if any("compare" in d for d in a["datasets"].values()):
            figs.append(plots_annotations.compare_change(a, out, label))
        a["figures"] = figs
    draw_cases(report, out, images_root)
    names = [f["file"] for sec in ("banks", "anchors", "annotations") for s in report[sec].values() for f in s["figures"]]
    names += [r["figure"]["file"] for a in report["annotations"].values() for d in a["datasets"].values()
              for kind in ("worst", "swaps") for r in d[kind] if "figure" in r]  # fmt: skip
    return names
