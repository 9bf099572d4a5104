"""`posebank audit`: how good is a bank, an anchor set, a set of pseudo ground truth?

    >>> from posebank.audit import AuditConfig, run_audit
    >>> result = run_audit(AuditConfig(paths=("bank", "annotations/mpii"), out="audit"))
    >>> result.report["banks"]["bank"]["sources"]["cmu"]["dedup_rate"]

Inputs are recognised by posebank's own metadata (inputs.py); every figure is computed streaming
(bank_audit.py, annotations_audit.py) into one report dict, which becomes audit.json, PNG plots
(plots*.py, drawing.py), index.html (page*.py) and the terminal summary (summary.py).
Importing this package imports neither torch, faiss, pyarrow nor matplotlib.
"""

from .config import AuditConfig
from .inputs import AuditInput, detect_kind, resolve_inputs
from .run import PAGE_FILE, REPORT_FILE, AuditResult, run_audit
from .summary import summary_tables

__all__ = ["PAGE_FILE", "REPORT_FILE", "AuditConfig", "AuditInput", "AuditResult", "detect_kind", "resolve_inputs",
           "run_audit", "summary_tables"]
