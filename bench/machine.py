"""One description of the machine a benchmark ran on, shared by every script in bench/."""

from __future__ import annotations

import os
import platform
import subprocess

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
