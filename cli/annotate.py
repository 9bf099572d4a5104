"""`posebank annotate mpii|lsp|coco`: one subcommand per dataset, sharing every option."""

# No `from __future__ import annotations`: the options below are built per dataset at definition time.

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from .console import SearchEngine, fail, progress_bar, stderr_console
from .help_format import FlagGroup

annotate_app = typer.Typer(
    cls=FlagGroup,
    help="Complete partial 2D annotations and add pseudo-3D poses by masked nearest-neighbour search in a bank.",
    no_args_is_help=True,
)

_FORMATS = {
    "mpii": "the official release mpii_human_pose_v1_u12_1.mat, an HRNet-style .json or a Stacked-Hourglass .h5",
    "lsp": "joints.mat of LSP (3x14x2000) or LSP-extended (14x3x10000)",
    "coco": "person_keypoints_<split>.json",
}


def _make_command(dataset: str):  # noqa: ANN202 -- a Typer command function
    def command(
        annotation_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, resolve_path=True,
                                                        help=f"Annotation file: {_FORMATS[dataset]}.")],  # fmt: skip
        bank: Annotated[Path, typer.Option(exists=True, file_okay=False, resolve_path=True, help="Bank folder (build-bank --out).")],
        out: Annotated[Path, typer.Option(help="Output folder: annotations/part-NNNNN.parquet and manifest.json.")],
        engine: Annotated[SearchEngine, typer.Option(help="Search engine (faiss-ivf is approximate; auto: torch on a GPU, else blas).")] = "auto",
        k: Annotated[int, typer.Option(min=1, help="Matches kept per person (fused-fit, topk-mean, spread, error estimate).")] = 20,
        label_mode: Annotated[str, typer.Option(help="Pseudo-3D: lifted-fit (best measured: a network trained on the bank, the prior of a fit to the "
                                                            "annotated joints; trained once per bank and dataset, 12-13 minutes on 2 cores, then stored "
                                                            "beside the bank) | fused-fit (the same fit, the fused matches as prior) | top1 (the paper) | "
                                                            "topk-mean | depth-transfer. BENCHMARKS.md compares them.")] = "lifted-fit",
        lifter_steps: Annotated[Optional[int], typer.Option(min=4, help="lifted-fit: training batches of 512 of the network "
                                                                        "(default: posebank.annotate.lifter.LifterConfig's, 19200; the README's demo uses 4800).")] = None,
        images_root: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, resolve_path=True,
                                                            help="Images folder the file's image names are relative to: read for image sizes the file lacks, "
                                                                 "and recorded in the shards so that train/evaluate find the images without --images-root.")] = None,  # fmt: skip
        split: Annotated[Optional[str], typer.Option(help="Split of every person, overriding the file's: MPII .mat img_train (train/test); "
                                                      "a .json/.h5 or COCO file named train/valid/val2017... (train/val); "
                                                      "COCO image folders; LSP's halves. Default: those, else 'unknown'.")] = None,
        min_joints: Annotated[int, typer.Option(min=2, help="People with fewer annotated joints are kept unmatched, flagged.")] = 3,
        seed: Annotated[int, typer.Option(help="Seeds the approximate engine (exact engines need no seed).")] = 0,
        part: Annotated[Optional[str], typer.Option(help="Only part I of N (e.g. 3/8): a deterministic slice of the shards, "
                                                     "for a scheduler's array jobs; the parts' shards together are one run's.")] = None,
        memory_gb: Annotated[float, typer.Option(min=0.1, help="Memory for the bank side of the search, GiB: the bank is streamed "
                                                       "in blocks that fit (faiss-ivf: one stored index per block).")] = 8.0,
        people_per_shard: Annotated[int, typer.Option(min=1, help="People per Parquet file (the unit of resume and of --part).")] = 50_000,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace another job's annotations in --out.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    ) -> None:
        from posebank.annotate import AnnotateConfig, LifterConfig, annotate
        from posebank.errors import PosebankError
        from posebank.parts import parse_part

        config = AnnotateConfig(
            dataset=dataset, annotation_file=str(annotation_file), bank=str(bank), out=str(out), engine=engine, k=k,
            label_mode=label_mode, min_joints=min_joints, images_root=str(images_root) if images_root else None, split=split,
            seed=seed, memory_gb=memory_gb, people_per_shard=people_per_shard,
        )  # fmt: skip
        if lifter_steps is not None:
            config = dataclasses.replace(config, lifter=LifterConfig(steps=lifter_steps))
        try:
            if part:
                config = dataclasses.replace(config, part=parse_part(part))
            report = annotate(config, overwrite=overwrite, progress=progress_bar(stderr_console(), quiet))
        except (PosebankError, ValueError) as err:
            raise fail(err) from None
        flags = ", ".join(f"{k} {v}" for k, v in sorted(report.flags.items())) or "none"
        print(f"{dataset}: {report.people} people, {report.matched} matched ({report.engine}); flags: {flags}; "
              f"shards written {report.shards_written}, reused {report.shards_reused}; {report.seconds:.1f} s -> {out}"
              + (f" (part {part})" if part else ""))  # fmt: skip

    command.__doc__ = f"Annotate {dataset.upper()} ({_FORMATS[dataset]}) against a bank."
    return command


for _name in ("mpii", "lsp", "coco"):
    annotate_app.command(_name)(_make_command(_name))


def register(app: typer.Typer) -> None:
    app.add_typer(annotate_app, name="annotate")
