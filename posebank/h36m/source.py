"""Human3.6M as a bank source (`posebank build-bank --source h36m=PATH`): one motion per sequence.

The bank draws its own random views, so it reads world positions: D3_Positions (official), the
VideoPose3D npz, or the mmpose npz taken to the world with cameras.pkl. A file that holds many
sequences (the npz layouts) gives one job per sequence, told apart by `MotionJob.member`
("<subject>/<sequence>"); the file is parsed once per process.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import InputError
from ..mocap.motion import Motion
from ..mocap.sources import DiscoveryProblem, MotionJob
from .canonical import world_motion
from .dataset import H36MData, open_h36m, world_sequences
from .readers import H36MSequence, official_world_files, read_official_world


@lru_cache(maxsize=2)
def _sequences_of(files: tuple[str, ...], cameras: str | None, stamp: tuple[int, ...]) -> dict[tuple[str, str], H36MSequence]:
    """All world sequences of the npz files of one copy (cached per process: the bank reads one
    sequence per job; `stamp`, the files' mtimes, invalidates the cache when a file changes)."""
    layout = open_h36m(files[0]).layout
    data = H36MData(layout, Path(files[0]).parent, tuple(Path(f) for f in files), Path(cameras) if cameras else None)
    return {(s.subject, s.sequence): s for s in world_sequences(data)}


def _stamp(files: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(Path(f).stat().st_mtime_ns for f in files)


def h36m_jobs(root: str | Path) -> tuple[list[MotionJob], list[DiscoveryProblem]]:
    """The sequences of a Human3.6M copy as bank jobs (subject "S9", sequence "Walking 1").

    Raises:
        InputError: no Human3.6M data at `root`; an mmpose copy without cameras.pkl beside it.
    """
    data: H36MData = open_h36m(root)
    if data.layout == "official":
        jobs = [MotionJob("h36m", subject, f.stem, (str(f),)) for subject, f in official_world_files(data.root)]
        if not jobs:
            raise InputError(data.root, "h36m: the official tree has no D3_Positions files (the bank needs world poses)")
        return jobs, []
    if data.layout == "mmpose" and data.cameras is None:
        raise InputError(data.root, "h36m: an mmpose npz holds camera-frame poses; the bank needs cameras.pkl beside it")
    files = tuple(str(f) for f in data.files)
    cameras = str(data.cameras) if data.cameras else None
    paths = files + ((cameras,) if cameras else ())  # every file the poses depend on (hashed into the bank's identity)
    sequences = _sequences_of(files, cameras, _stamp(files))
    jobs = [MotionJob("h36m", subject, sequence, paths, member=f"{subject}/{sequence}") for subject, sequence in sorted(sequences)]
    return jobs, []


def read_h36m_motion(job: MotionJob) -> Motion:
    """Read one bank job as a Motion (+Y up, metres, 50 Hz)."""
    if not job.member:
        return world_motion(read_official_world(job.paths[0], job.subject))
    files = tuple(p for p in job.paths if p.lower().endswith(".npz"))
    cameras = next((p for p in job.paths if p.lower().endswith(".pkl")), None)
    sequences = _sequences_of(files, cameras, _stamp(files))
    try:
        return world_motion(sequences[(job.subject, job.sequence)])
    except KeyError:
        raise InputError(files[0], "sequence not in the file (changed since discovery?)", record=job.member) from None
