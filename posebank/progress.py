"""How long-running library loops report progress without printing: the caller passes a factory.

The CLI passes a rich progress bar (cli/console.py); tests and library users pass nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# (items, description, total) -> the same items, reported as they are consumed.
ProgressFactory = Callable[[Iterable[T], str, int], Iterator[T]]


def no_progress(items: Iterable[T], description: str, total: int) -> Iterator[T]:
    """The silent ProgressFactory."""
    yield from items


class Steps:
    """A bar over the stages of a job that is not one loop: `done()` after each stage.

    The factory's iterator is driven by hand: started at 0/total, each done() moves it on by one, and
    the last done() finishes it (total reached). Stages not run (an error) leave it where it stopped.
    """

    def __init__(self, progress: ProgressFactory, description: str, stages: Sequence[str]):
        self._steps = iter(progress(iter(stages), f"{description}: {', '.join(stages)}", len(stages)))
        next(self._steps, None)  # the bar is shown from the start of the first stage

    def done(self) -> None:
        """The current stage is finished."""
        next(self._steps, None)


class Tally:
    """A bar over units that are done in batches of any size (people searched): `add(n)` after each batch.

    Driven by hand as Steps is: shown at 0/total from the start, each unit moves the factory's iterator
    on by one, and the bar is finished when `total` units have been added.
    """

    def __init__(self, progress: ProgressFactory, description: str, total: int):
        self._units = iter(progress(iter(range(total)), description, total))
        next(self._units, None)

    def add(self, count: int) -> None:
        """`count` more units are done."""
        for _ in range(count):
            next(self._units, None)
