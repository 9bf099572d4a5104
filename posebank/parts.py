"""`--part I/N`: a deterministic slice of a command's units of work, for any scheduler.

A command whose work splits into independent units (annotate: its shards of people; build-bank: its
motion files) runs part I of N (1-based) on units [floor((I-1) U / N), floor(I U / N)) of its U units, in
the order one whole run processes them. The N parts cover every unit exactly once, whatever runs them
(Slurm array tasks, Kubernetes indexed jobs, Ray tasks, a shell loop), and each part's output is the
one run's output for those units.
"""

from __future__ import annotations

import re

_PART = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_part(text: str) -> tuple[int, int]:
    """"I/N" -> (I, N) with 1 <= I <= N. Raises ValueError naming the problem."""
    m = _PART.match(text)
    if not m:
        raise ValueError(f"--part must look like I/N (e.g. 3/8), got {text!r}")
    index, count = int(m.group(1)), int(m.group(2))
    check_part((index, count))
    return index, count


def check_part(part: tuple[int, int]) -> None:
    index, count = part
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"--part {index}/{count}: I must be in 1..N and N >= 1")


def part_range(units: int, part: tuple[int, int] | None) -> range:
    """The units of `part` (I, N) among `units` (None: all of them)."""
    if part is None:
        return range(units)
    check_part(part)
    index, count = part
    return range((index - 1) * units // count, index * units // count)
