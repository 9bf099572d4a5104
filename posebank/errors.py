"""Typed errors of the library. The CLI turns them into one line and exit code 1."""

from __future__ import annotations

from pathlib import Path


class PosebankError(Exception):
    """Base class of every error posebank raises on purpose."""


class InputError(PosebankError):
    """Bad input data: names the file and, where known, the line or record.

    Args:
        path: the offending file.
        message: what is wrong, in words a user can act on.
        line: 1-based line number in a text file (None when not applicable).
        record: a frame number, person index or other record id (None when not applicable).
    """

    def __init__(self, path: str | Path, message: str, *, line: int | None = None, record: str | None = None):
        self.path = Path(path)
        self.line = line
        self.record = record
        self.message = message
        where = str(self.path)
        if line is not None:
            where += f":{line}"
        if record is not None:
            where += f" ({record})"
        super().__init__(f"{where}: {message}")


class MocapParseError(InputError):
    """A MoCap file (ASF, AMC, BVH, .mat) that cannot be read."""


class MappingError(InputError):
    """A source skeleton that lacks a joint the canonical skeleton needs."""


class OutputConflictError(PosebankError):
    """An --out directory that holds another job's output."""
