"""How long-running library loops report progress without printing: the caller passes a factory.

The CLI passes a rich progress bar (cli/console.py); tests and library users pass nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

# (items, description, total) -> the same items, reported as they are consumed.
ProgressFactory = Callable[[Iterable[T], str, int], Iterator[T]]


def no_progress(items: Iterable[T], description: str, total: int) -> Iterator[T]:
    """The silent ProgressFactory."""
    yield from items
