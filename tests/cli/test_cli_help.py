"""`--help` of every command as a user reads it (rich rendering): text with brackets printed as written,
flags without a value type, choices listed, one --workers convention."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cli.console import DEFAULT_WORKERS
from cli.main import app
from lcrnet.config import BACKBONES
from posebank.anchors import KMEANS_ENGINES
from posebank.search.config import ENGINES

runner = CliRunner()
WIDE = {"COLUMNS": "400"}  # no wrapping: a phrase of the source is one run of text in the output


def _commands() -> Iterator[tuple[list[str], Any]]:
    """(argv prefix, click command) of every command and subcommand of the app."""
    root = typer.main.get_command(app)
    ctx = root.make_context("posebank", [], resilient_parsing=True)

    def walk(group: Any, prefix: list[str], ctx: Any) -> Iterator[tuple[list[str], Any]]:
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            yield [*prefix, name], cmd
            if hasattr(cmd, "list_commands"):
                yield from walk(cmd, [*prefix, name], cmd.make_context(name, [], parent=ctx, resilient_parsing=True))

    yield from walk(root, [], ctx)


COMMANDS = list(_commands())


def _help(argv: list[str]) -> str:
    result = runner.invoke(app, [*argv, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_walked() -> None:
    names = {" ".join(a) for a, _ in COMMANDS}
    assert {"build-bank", "anchors", "annotate mpii", "annotate coco", "synth", "audit", "train", "evaluate",
            "predict", "verify"} <= names  # fmt: skip


def test_anchors_help_prints_the_release_row_layout_with_its_brackets() -> None:
    assert "[x(J), y(J), X(J), Y(J), Z(J)]" in _help(["anchors"])


@pytest.mark.parametrize("argv", [a for a, _ in COMMANDS], ids=" ".join)
def test_bracketed_text_is_printed_as_written(argv: list[str]) -> None:
    """Every [..] of a docstring or option help reaches the screen (rich markup would eat [x(J) ...])."""
    cmd = dict((" ".join(a), c) for a, c in COMMANDS)[" ".join(argv)]
    texts = [cmd.help or "", *(getattr(p, "help", None) or "" for p in cmd.params)]
    shown = " ".join(_help(argv).split())
    for text in texts:
        for bracketed in re.findall(r"\\?\[[^\]\n]*\]", " ".join(text.split())):
            assert bracketed.lstrip("\\") in shown, f"{argv}: {bracketed!r} is not shown"


@pytest.mark.parametrize("argv", [a for a, _ in COMMANDS], ids=" ".join)
def test_flags_render_without_a_value_type(argv: list[str]) -> None:
    out = _help(argv)
    assert "<bool>" not in out
    help_line = next(line for line in out.splitlines() if "--help" in line)
    assert "<" not in help_line  # no type column after --help


def test_flags_still_work_after_rendering() -> None:
    """The metavar change is display only: a flag parses as before."""
    out = _help(["build-bank"])
    assert re.search(r"--overwrite\s+Replace", out) and re.search(r"--quiet\s+-q\s+No progress", out)
    result = runner.invoke(app, ["anchors", "--bank", "/nonexistent", "--out", "x", "--overwrite"])
    assert result.exit_code == 2 and "/nonexistent" in result.output  # refused for the path, not the flag


def test_engine_and_backbone_list_their_choices() -> None:
    for argv, choices in ((["annotate", "mpii"], ENGINES), (["audit"], ENGINES), (["h36m-baseline"], ENGINES),
                          (["anchors"], KMEANS_ENGINES)):  # fmt: skip
        assert f"<{'|'.join(choices)}>" in _help(argv), argv
    assert f"<{'|'.join(BACKBONES)}>" in _help(["train"])
    bad = runner.invoke(app, ["anchors", "--bank", ".", "--out", "x", "--engine", "fast"])
    assert bad.exit_code == 2 and "fast" in bad.output


def test_workers_agree_across_commands() -> None:
    seen = {}
    for argv, cmd in COMMANDS:
        for p in cmd.params:
            if p.name == "workers":
                seen[" ".join(argv)] = (p.default, p.type.min, p.help)  # an IntRange
    assert {"build-bank", "synth", "train", "evaluate"} <= set(seen)
    for name, (default, minimum, text) in seen.items():
        assert (default, minimum) == (DEFAULT_WORKERS, 0), name
        assert "0: all in this process" in text, name
