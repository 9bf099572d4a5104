"""lcrnet.checkpoint: a file that is not a posebank checkpoint is refused without being unpickled."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from lcrnet.checkpoint import load_checkpoint
from posebank.errors import InputError


class _Payload:
    """An object a weights-only loader must not build (unpickling could run its code)."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path("/tmp/posebank-test-never-created"),))


def test_a_pickle_with_code_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model": _Payload(), "format": 1}, path)
    with pytest.raises(InputError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "not a posebank checkpoint" in message and "never unpickles" in message
    assert "weights_only=False" not in message and "will likely succeed" not in message
    assert not Path("/tmp/posebank-test-never-created").exists()


def test_other_files_are_refused_naming_them(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(InputError, match=r"notes\.pt: cannot read checkpoint: not a posebank checkpoint"):
        load_checkpoint(text)
    plain = tmp_path / "plain.pt"
    with open(plain, "wb") as f:
        pickle.dump([1, 2, 3], f, protocol=2)  # a pickle, but not torch's format
    with pytest.raises(InputError, match="not a posebank checkpoint"):
        load_checkpoint(plain)
