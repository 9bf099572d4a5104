"""Find the motions of a MoCap dataset folder, as distributed, and pair each motion with its skeleton.

CMU: subjects/NN/NN.asf with NN_MM.amc. HDM05: HDM_<actor>.asf and HDM_<actor>_*.amc anywhere below.
BVH: any *.bvh below. Pose Prior: the .mat files below that hold an `S` matrix (testingSet.mat).
Human3.6M: one job per sequence of any layout posebank.h36m reads (posebank/h36m/source.py).
A motion without a skeleton is reported, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError


@dataclass(frozen=True)
class MotionJob:
    """One motion to read.

    Attributes:
        source: "cmu" | "hdm05" | "poseprior" | "bvh" | "h36m".
        subject: subject / actor id.
        sequence: sequence name (the motion file's stem).
        paths: the files to read: (asf, amc) for Acclaim sources, (file,) otherwise; every file the poses depend on.
        member: the sequence inside a file that holds many ("S9/Walking 1" of a Human3.6M npz); "" otherwise.
    """

    source: str
    subject: str
    sequence: str
    paths: tuple[str, ...]
    member: str = ""


@dataclass(frozen=True)
class DiscoveryProblem:
    """A file that was found but cannot be used (e.g. an AMC without its ASF)."""

    path: str
    reason: str


def _files(root: Path, suffix: str) -> list[Path]:
    # Case-insensitive suffix: archives unpacked on Windows carry .ASF / .AMC.
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == suffix)


def _asf_for(amc: Path, asfs: list[Path]) -> Path | None:
    """The skeleton of an AMC: the ASF whose stem is the longest "<stem>_" prefix of the AMC's stem.

    CMU 09_12.amc -> 09.asf; HDM05 HDM_bd_depositFloorR_001_120.amc -> HDM_bd.asf. An ASF in the
    AMC's own folder wins over one elsewhere with the same stem.
    """
    matches = [a for a in asfs if amc.stem.lower().startswith(a.stem.lower() + "_")]
    if not matches:
        return None
    return max(matches, key=lambda a: (len(a.stem), a.parent == amc.parent))


def _acclaim_jobs(source: str, root: Path) -> tuple[list[MotionJob], list[DiscoveryProblem]]:
    asfs = _files(root, ".asf")
    jobs, problems = [], []
    for amc in _files(root, ".amc"):
        asf = _asf_for(amc, asfs)
        if asf is None:
            problems.append(DiscoveryProblem(str(amc), "no skeleton: no <subject>.asf matches this motion's name"))
            continue
        subject = asf.stem[4:] if source == "hdm05" and asf.stem.upper().startswith("HDM_") else asf.stem
        jobs.append(MotionJob(source, subject, amc.stem, (str(asf), str(amc))))
    return jobs, problems


def _bvh_jobs(root: Path) -> tuple[list[MotionJob], list[DiscoveryProblem]]:
    jobs = []
    for f in _files(root, ".bvh"):
        # cgspeed names files <subject>_<take>.bvh; elsewhere the folder names the subject.
        subject = f.stem.split("_")[0] if "_" in f.stem else f.parent.name
        jobs.append(MotionJob("bvh", subject, f.stem, (str(f),)))
    return jobs, []


def _poseprior_jobs(root: Path) -> tuple[list[MotionJob], list[DiscoveryProblem]]:
    from scipy.io import whosmat  # scipy is heavy: only when Pose Prior is asked for

    jobs, problems = [], []
    for f in _files(root, ".mat"):
        try:
            names = {name for name, _, _ in whosmat(f)}
        except Exception as err:  # noqa: BLE001 -- scipy raises several types for a damaged file
            # Reported, not skipped in silence: build-bank fails on it (or lists it with --skip-bad).
            problems.append(DiscoveryProblem(str(f), f"cannot read this MATLAB file ({type(err).__name__}: {err})"))
            continue
        if "S" in names:
            jobs.append(MotionJob("poseprior", "poseprior", f.stem, (str(f),)))
    return jobs, problems


def discover(source: str, root: str | Path) -> tuple[list[MotionJob], list[DiscoveryProblem]]:
    """List the motions of one dataset folder, sorted, and the files that cannot be used.

    Raises:
        InputError: the folder does not exist, or holds no motion of this source.
    """
    root = Path(root)
    if not root.is_dir() and not (source == "h36m" and root.is_file()):  # a Human3.6M npz may be given as such
        raise InputError(root, f"{source}: not a folder")
    if source in ("cmu", "hdm05"):
        jobs, problems = _acclaim_jobs(source, root)
    elif source == "bvh":
        jobs, problems = _bvh_jobs(root)
    elif source == "poseprior":
        jobs, problems = _poseprior_jobs(root)
    elif source == "h36m":
        from ..h36m.source import h36m_jobs

        jobs, problems = h36m_jobs(root)
    else:
        raise ValueError(f"unknown source {source!r}")
    if not jobs:
        what = {"cmu": "*.amc with their *.asf", "hdm05": "*.amc with their *.asf", "bvh": "*.bvh",
                "poseprior": ".mat files with an S matrix", "h36m": "Human3.6M sequences"}[source]  # fmt: skip
        detail = f" ({len(problems)} unusable file(s), e.g. {problems[0].path}: {problems[0].reason})" if problems else ""
        raise InputError(root, f"{source}: no motions found (looked for {what}){detail}")
    return jobs, problems
