"""Shared terminal helpers of the CLI: a stderr console, progress bars, and error reporting."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lcrnet.config import BACKBONES  # light: no torch
from posebank.anchors import KMEANS_ENGINES
from posebank.search.config import ENGINES

T = TypeVar("T")


def stderr_console() -> Console:
    """Progress and warnings go to stderr; results go to stdout."""
    return Console(stderr=True)


def fail(err: Exception) -> typer.Exit:
    """Print `error: <err>` to stderr and return the exit (code 1) to raise. Soft-wrapped: a long
    path or message is never broken across lines, so it can be copied and grepped whole."""
    # The message is text, not rich markup: a path such as br[old]/x or a hint such as "[x, y, v] * 17"
    # must print as written (and "[/x]" must not make the printer itself fail).
    stderr_console().print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def progress_bar(console: Console, quiet: bool = False):  # noqa: ANN201 -- a posebank.progress.ProgressFactory
    """A progress factory for library loops: (iterable, description, total) -> iterator with a rich bar."""

    def track(items: Iterable[T], description: str, total: int) -> Iterator[T]:
        if quiet:
            yield from items
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(description, total=total)
            for item in items:
                yield item
                bar.advance(task)

    return track


# The choices of --engine (search) and --backbone as types: the help lists them and the parser checks them.
SearchEngine = Literal[ENGINES]  # type: ignore[valid-type]
KMeansEngine = Literal[KMEANS_ENGINES]  # type: ignore[valid-type]
Backbone = Literal[BACKBONES]  # type: ignore[valid-type]

DEFAULT_WORKERS = 2  # every command's --workers default: the same number of processes everywhere


def workers_option(work: str) -> typer.models.OptionInfo:
    """The --workers option of every command: one minimum (0) and one meaning of 0 everywhere."""
    return typer.Option(min=0, help=f"Processes that {work} in parallel (0: all in this process; the output is the same "
                                    "for any value).")  # fmt: skip
