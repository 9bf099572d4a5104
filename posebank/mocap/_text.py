"""Byte reading and number parsing shared by the MoCap text readers (ASF, AMC, BVH).

Why this module exists: every reader must turn an unreadable file or a bad number into the same kind of
`MocapParseError` (file, 1-based line, what was expected), so the rules live here once. It knows no
file format: no sections, no joints, no units.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..errors import MocapParseError

# A decimal number as Acclaim writers print it ("-6.59717e-015", "20", ".5"). Python's float() alone
# would also take "1_0" or "nan"; numbers are checked against this first so both AMC parsing paths agree.
_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INFINITY = re.compile(rb"[+-]?inf(?:inity)?", re.IGNORECASE)
_UTF8_BOM = b"\xef\xbb\xbf"


def read_bytes(path: Path) -> bytes:
    """The file's bytes, unchanged; MocapParseError naming the OS error when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MocapParseError(path, f"cannot read file: {exc.strerror or exc}") from None


def read_nonempty_bytes(path: Path) -> bytes:
    """The file's bytes without a leading UTF-8 byte-order mark; MocapParseError when empty or blank.

    Some editors write the mark; stripping it keeps line 1 line 1 and the first keyword intact.
    """
    data = read_bytes(path)
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if not data or data.isspace():  # isspace stops at the first other byte: no copy of a big file
        raise MocapParseError(path, "empty file")
    return data


def parse_number(path: Path, token: bytes | str, line: int, what: str, *, allow_inf: bool = False) -> float:
    """One finite decimal number (or ±inf when `allow_inf`); MocapParseError naming the line otherwise.

    Args:
        path: the file, for the message.
        token: the number as written (bytes, or str holding Latin-1 text).
        line: 1-based line of the token.
        what: what the number is ("bone length", "bone 'lfemur'"), for the message.
        allow_inf: also accept "inf", "-inf", "infinity" (ASF limits).

    Raises:
        MocapParseError: "non-numeric value ..." or "non-finite value ..." for `what`.
    """
    raw = token.encode("latin-1") if isinstance(token, str) else token
    text = raw.decode("latin-1")
    if _NUMBER.fullmatch(raw):
        value = float(raw)
        if math.isfinite(value):
            return value
        raise MocapParseError(path, f"non-finite value {text!r} for {what}", line=line)
    if allow_inf and _INFINITY.fullmatch(raw):
        return float(raw)
    kind = "non-finite" if text.lower().lstrip("+-") in ("nan", "inf", "infinity") else "non-numeric"
    raise MocapParseError(path, f"{kind} value {text!r} for {what}", line=line)
