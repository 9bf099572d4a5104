"""One description of the machine a benchmark ran on, shared by every script in bench/."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np


def machine_description() -> str:
    """CPU model (lscpu), usable cores, Python and numpy versions, e.g. "AMD EPYC, 2 cores, ..."."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    except OSError:
        model = platform.processor() or platform.machine()
    return (f"{model}, {len(os.sched_getaffinity(0))} cores available, Python {platform.python_version()}, "
            f"numpy {np.__version__}")  # fmt: skip


def round_or_none(value: Any, digits: int = 4) -> float | None:
    """A number rounded for a JSON result; None for a missing or non-finite one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(float(value), digits)


def emit_json(result: dict[str, Any], path: Path | None) -> None:
    """Print a benchmark's result as JSON, and also write it to `path` when given."""
    text = json.dumps(result, indent=1)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
