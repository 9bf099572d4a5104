"""How `--help` renders: boolean flags as flags, not as options that take a `<bool>` value.

Typer's rich help prints every option's type, flags included (`--overwrite <bool>`), although a flag
takes no value. A flag's metavar set to "" prints nothing in that column (the plain-text help already
leaves flags bare). `FlagGroup` does this for its own options and for every subcommand it hands out,
`--help` included, so each command of the app is covered without a class on each `app.command`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from typer.core import TyperGroup


def flags_as_flags(params: Iterable[Any]) -> list[Any]:
    """The same params; each boolean flag (`--x`, `--x/--no-x`, `--help`) shows no value type."""
    params = list(params)
    for p in params:
        if getattr(p, "is_flag", False) and not getattr(p, "count", False) and p.metavar is None:
            p.metavar = ""
    return params


class FlagGroup(TyperGroup):
    """A Typer group whose help, and whose subcommands' help, show flags without a value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return flags_as_flags(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            flags_as_flags(command.get_params(ctx))
        return command
