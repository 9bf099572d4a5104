"""Files already hashed and unchanged since: skip hashing them again (the idea of git's index).

Reading a large output checks its files' sha256 against its manifest; at a gigabyte that is about a
second on every run. A StatCache records, per file, the size and modification time it had when its
sha256 was last seen right; a file whose size and mtime still match is trusted without hashing. A
change that keeps both (rare: a tool that restores mtimes) is not seen; `posebank verify` always
hashes. The cache is a hidden JSON file written atomically and at best effort: when it cannot be
written (a read-only folder), the next reader simply hashes again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from .provenance import current_umask

LOG = logging.getLogger(__name__)


class StatCache:
    """{name: [bytes, mtime_ns, sha256]} of the files last seen whole, stored in the JSON file `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries = self._read()
        self._changed = False

    def _read(self) -> dict[str, list]:
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
            return entries if isinstance(entries, dict) else {}
        except (OSError, ValueError):
            return {}

    def trusted(self, name: str, file: Path, sha256: str) -> bool:
        """True when `file` has the size and mtime it had when its sha256 was last `sha256`."""
        st = file.stat()
        return self._entries.get(name) == [st.st_size, st.st_mtime_ns, sha256]

    def verified(self, name: str, file: Path, sha256: str) -> None:
        """`file`'s content has just been seen to hash to `sha256` (or was just written with it)."""
        st = file.stat()
        self._entries[name] = [st.st_size, st.st_mtime_ns, sha256]
        self._changed = True

    def save(self) -> None:
        """Write the cache if anything was recorded (atomic rename; errors only logged)."""
        if not self._changed:
            return
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._entries, f)
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, self.path)
            self._changed = False
        except OSError as err:
            LOG.debug("cannot write %s (%s)", self.path, err)
