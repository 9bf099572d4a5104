"""One motion file -> canonical, resampled, body-centred 3D poses in metres (world frame, +Y up).

This is the per-file step of the bank build; it runs in worker processes, so it takes and returns
plain data only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..dataset_manifest import load_dataset_manifest
from ..errors import InputError
from ..mocap.motion import Motion
from ..mocap.sources import MotionJob
from ..skeleton import Skeleton, body_centre, to_canonical

# Sources whose poses form a time series (resampled to --fps); Pose Prior is an unordered set.
_TIME_SERIES = {"cmu": True, "hdm05": True, "bvh": True, "poseprior": False, "h36m": True}


@dataclass(frozen=True)
class CanonicalPoses:
    """The poses of one motion on the canonical skeleton.

    Attributes:
        job: where they come from.
        poses_m: (T, J, 3) float32 world frame (+Y up), metres, centred on the body centre.
        frames: (T,) int32 the source's own frame numbers of the kept frames.
        fps: the source's frame rate.
    """

    job: MotionJob
    poses_m: npt.NDArray[np.float32]
    frames: npt.NDArray[np.int32]
    fps: float


def read_job(job: MotionJob, *, poseprior_thorax: bool = True) -> Motion:
    """Read one motion with the reader of its source.

    poseprior_thorax: put back the thorax bone the Pose Prior release lacks (mocap.poseprior.restore_thorax).
    """
    if job.source in ("cmu", "hdm05"):
        from ..mocap.asf_amc import read_motion

        asf, amc = job.paths
        return read_motion(asf, amc, source=job.source, subject=job.subject, sequence=job.sequence)
    if job.source == "bvh":
        from ..mocap.bvh import read_bvh

        return read_bvh(job.paths[0], source="bvh", subject=job.subject, sequence=job.sequence)
    if job.source == "poseprior":
        from ..mocap.poseprior import read_poseprior, restore_thorax

        motion = read_poseprior(job.paths[0], subject=job.subject, sequence=job.sequence)
        return restore_thorax(motion) if poseprior_thorax else motion
    if job.source == "h36m":
        from ..h36m.source import read_h36m_motion

        return read_h36m_motion(job)
    raise ValueError(f"unknown source {job.source!r}")


def joint_table(motion: Motion) -> dict[str, tuple[str, ...]]:
    """The manifest's name table that maps this motion's joints onto the canonical skeleton."""
    manifest = load_dataset_manifest(motion.source)
    if motion.source == "bvh":
        from ..mocap.bvh import bvh_joint_table

        return bvh_joint_table(motion.joint_names, manifest, path=motion.path)
    return manifest.joints


def resample_indices(num_frames: int, source_fps: float, target_fps: float) -> npt.NDArray[np.int64]:
    """Indices of the source frames nearest to a `target_fps` clock (all frames when not slower).

    Nearest frames rather than interpolation: every kept pose is a real, captured pose, and bone
    lengths stay exact.
    """
    if target_fps <= 0 or target_fps >= source_fps:
        return np.arange(num_frames)
    times = np.arange(0.0, num_frames / source_fps, 1.0 / target_fps)
    return np.unique(np.minimum(np.rint(times * source_fps).astype(np.int64), num_frames - 1))


def canonical_poses(job: MotionJob, skeleton: Skeleton, fps: float, *, poseprior_thorax: bool = True) -> CanonicalPoses:
    """Read `job`, map it onto `skeleton`, resample it to `fps` and centre each pose on the body centre.

    poseprior_thorax: as `read_job`'s (BankConfig.poseprior_thorax).

    Raises:
        InputError (or a subclass): unreadable file, missing joints, non-finite values.
    """
    motion = read_job(job, poseprior_thorax=poseprior_thorax)
    path = motion.path or job.paths[-1]
    keep = resample_indices(motion.num_frames, motion.fps, fps) if _TIME_SERIES[job.source] else None
    positions = motion.positions_m if keep is None else motion.positions_m[keep]
    frames = motion.frame_numbers if keep is None else motion.frame_numbers[keep]
    poses = to_canonical(positions, motion.joint_names, joint_table(motion), skeleton, path=path)
    bad = ~np.isfinite(poses).all(axis=(1, 2))
    if bad.any():
        raise InputError(path, "non-finite joint positions", record=f"frame {int(frames[np.argmax(bad)])}")
    poses = poses - body_centre(poses, skeleton)[:, None, :]
    return CanonicalPoses(job, poses.astype(np.float32), frames.astype(np.int32), float(motion.fps))
