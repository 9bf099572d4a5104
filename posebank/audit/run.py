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
from ..errors import InputError
from ..jobs import JobSpec, OutputFolder
from ..provenance import package_version, write_json_atomic
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


def _job_spec(config: AuditConfig, inputs: list[AuditInput]) -> JobSpec:
    """The audit's options (all but --out) and its inputs by kind and path. The folder is the audit's
    alone (file names depend on the inputs' labels), and an audit is always recomputed whole."""
    settings = {k: v for k, v in to_dict(config).items() if k not in ("out", "paths")}
    settings["inputs"] = [f"{i.kind}:{i.path}" for i in inputs]
    return JobSpec("audit", settings, exclusive=True)


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
    if not config.paths:
        raise ValueError("nothing to audit: give one or more banks, anchor tables or annotation folders")
    inputs = resolve_inputs(config.paths)
    spec = _job_spec(config, inputs)
    with OutputFolder(Path(config.out), spec, overwrite=overwrite) as job:
        job.clear()  # recomputed whole: no plot of an earlier run survives
        result = _audit(job, config, inputs, progress)
        job.record_many(f for f in result.files if job.path(f).is_file())
    return result


def _audit(job: OutputFolder, config: AuditConfig, inputs: list[AuditInput], progress: Any) -> AuditResult:
    """Every figure, the page and audit.json, into an opened output folder."""
    from ..anchors.build import load_anchors
    from ..bank import open_bank
    from .anchors_audit import AnchorUsage, audit_anchor_table
    from .annotations_audit import audit_annotations
    from .bank_audit import audit_bank
    from .compare import BankComparison

    out = job.out
    identity = job.spec.identity
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
    from .drawing import CASE_KINDS, draw_cases

    for label, b in report["banks"].items():
        b["figures"] = [plots.bank_poses(b, out, label), plots.bank_bones(b, out, label),
                        plots.bank_viewpoints(b, out, label)]  # fmt: skip
        if b["coverage"]["pairs"]:
            b["figures"].append(plots.bank_coverage(b, out, label))
        if b["coverage_2d"]["pairs"]:
            b["figures"].append(plots.bank_coverage_2d(b, out, label))
    for label, a in report["anchors"].items():
        # anchors carry no skeleton name: j13 and j17 differ in their joint count
        sk = get_skeleton("j13" if len(a["pose_3d"][0]) == 13 else "j17")
        a["figures"] = [plots.anchor_members(a, out, label),
                        plots.anchor_poses(a, out, label, list(sk.joint_names), list(sk.bones))]  # fmt: skip
    for label, a in report["annotations"].items():
        figs = []
        if any(d["matched"] for d in a["datasets"].values()):  # synthetic shards carry true 3D: no match to plot
            figs += [plots_annotations.distance_histogram(a, out, label), plots_annotations.distance_by_joints(a, out, label),
                     plots_annotations.completions(a, out, label), plots_annotations.spread_histogram(a, out, label)]  # fmt: skip
        figs += [plots_annotations.occlusion_per_joint(a, out, label), plots_annotations.person_height(a, out, label),
                 plots_annotations.people_per_image(a, out, label)]  # fmt: skip
        if any("anchor_usage" in d for d in a["datasets"].values()):
            figs.append(plots_annotations.anchor_usage(a, out, label))
        if any("compare" in d for d in a["datasets"].values()):
            figs.append(plots_annotations.compare_change(a, out, label))
        a["figures"] = figs
    draw_cases(report, out, images_root)
    names = [f["file"] for sec in ("banks", "anchors", "annotations") for s in report[sec].values() for f in s["figures"]]
    names += [r["figure"]["file"] for a in report["annotations"].values() for d in a["datasets"].values()
              for kind in CASE_KINDS for r in d[kind] if "figure" in r]  # fmt: skip
    return names
