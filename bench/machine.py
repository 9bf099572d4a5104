"""One description of the machine a benchmark ran on, shared by every script in bench/."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
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


def user_env() -> dict[str, str]:
    """This environment as a user's shell has it: Python keeps the bytecode of what it imports (a sandbox that
    sets PYTHONDONTWRITEBYTECODE would make every timed command compile posebank's modules again)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd` in a fresh process (environment `env`, default this one's): its wall seconds, user + system CPU
    seconds and peak resident memory (GiB), from wait4 (this child's own usage), and the last line it printed.
    Raises when it fails."""
    import tempfile

    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, env=env)  # files, not pipes: wait4 then reaps it
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read().decode().strip(), err_f.read().decode()
    if code:
        raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{err[-3000:]}")
    return {"seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_gib": usage.ru_maxrss / 2**20,
            "summary": out.splitlines()[-1] if out else ""}  # fmt: skip
