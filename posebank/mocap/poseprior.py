"""Read the 3D poses of the Akhter & Black Pose Prior release (testingSet.mat) into a `Motion`.

Why this module exists: the release ("Pose-conditioned joint angle limits for 3D human pose
reconstruction", CVPR 2015) ships an `S` matrix of 1000 varied 3D poses with no joint names, no side
labels and no units. This reader names the points, converts to metres and documents the evidence for
each choice. Like every reader it never resamples, centres, orients or projects.

Layout: S is (3F, 18) float64; rows 3f..3f+2 (0-based) are x, y, z of pose f, one column per point. The
authors' demo drops column 9 (1-based) to get their 17-point skeleton (skeleton_17Pts.mat `edges`, 1-based:
1 root, 2 upper torso, 3-5 and 6-8 arms, 9 head, 10-13 and 14-17 legs). Column names used here, 0-based:

    0 root          pelvis, the ASF root (the hips are one ASF hipjoint bone, 2.56-2.58 units, from it)
    1 upper_torso   neck base, where both clavicles and the neck start
    2-4 left_shoulder, left_elbow, left_wrist      (17-point 3-5)
    5-7 right_shoulder, right_elbow, right_wrist   (17-point 6-8)
    8 mid_neck      the column the demo drops: between the neck base and the head point
    9 head_base     17-point "head" (9): the top of the neck = the start of the skull bone, NOT the head top
    10-13 left_hip, left_knee, left_ankle, left_foot       (17-point 10-13)
    14-17 right_hip, right_knee, right_ankle, right_foot   (17-point 14-17)
    18 head_centre_est  added here: head_base + 0.5 * (head_base - mid_neck), see below

Evidence, from the data (tests/mocap/test_poseprior.py checks each point):
- Units: ASF length units (1/0.45 inch), as the release's CMU origin suggests: every bone has one length
  over all 1000 poses (the release is retargeted to one skeleton) and those lengths are CMU ASF bone
  lengths: hipjoint 2.56/2.58, femur 7.76/7.61, tibia 7.64/7.68, foot 1.94/2.01, clavicle 3.66/3.43,
  humerus 5.15/5.44, radius 3.49/3.58, lowerneck 1.74, upperneck 1.72 (CMU subjects 09/131/135: 2.1-2.6,
  7.1-7.6, 6.9-7.8, 2.1-2.3, 3.1-3.6, 4.2-5.9, 3.1-3.7, 1.6-1.9, 1.6-1.9). Legs are 0.87 m in metres.
- Neck and head: the clavicles start at the upper torso point, as they start at the neck base in CMU.
  From there two bones of 1.74 and 1.72 units lead to column 9 (1-based) and then to the 17-point head:
  the ASF lowerneck and upperneck. So the dropped column is the mid-neck and the "head" point is the top of
  the upper neck (the skull base); the ASF head bone (~1.6-1.9 units, 9-11 cm) to the head top is absent.
  The root-to-upper-torso distance (4.11-4.18 units, the only length that varies) matches the ASF lowerback
  plus upperback: like the cgspeed BVH conversions, this skeleton has no thorax bone.
- Up: +Y. In all 1000 poses the head point lies above the root and the spine (root -> upper torso) has a
  positive Y component (median 22 degrees from +Y); feet hang at Y ~ -15 units.
- Forward: the foot points (17-point 13 and 17, the ends of the ASF foot bones) lie in front of the ankles:
  ankle -> foot agrees with the side to which the bent knees stick out in 99% of the poses.
- Left: with up = root -> upper torso and forward = ankle -> foot, left = up x forward in a right-handed
  frame. Points 10-13 lie on that left side in 1000 of 1000 poses and 3-5 likewise, so they are LEFT.
- Handedness: positions alone cannot tell a body from its mirror image; the frame is taken as right-handed
  because it is the CMU world frame (Y up, ASF units, CMU bones) and the release's cameras `Rs` are proper
  rotations (det +1 for all 1000) with W = Rs[:2] @ S and the image y axis pointing down the world.
  Third-party ports that label edge (2,3) "R-shldr" (EvoSkeleton's H36M adapter swaps y and z; a
  PosePriorPython-based checker flips z) both apply a reflection first, which is the same statement: in a
  right-handed frame the first arm and leg are the left ones. The authors' viewer plots (x, z, y), a mirror
  image, which would explain "R-".
  So no axis change and no reflection is applied: the data already is the Motion frame (+Y up, right-handed).
- Head centre: j13 "head" is the middle of the skull bone, which the release lacks. It is extrapolated half
  an upper-neck length beyond head_base along the upper neck (CMU head bones are 1.02-1.04 upper necks long);
  this ignores the head's own nod (error ~2 cm at 30 degrees), where mapping head to head_base would be ~5 cm
  low in every pose.
- Thorax: the root-to-upper-torso distance (4.11-4.18 units) is the ASF lowerback plus upperback; the
  thorax bone that follows them in every CMU and HDM05 skeleton (1.98-2.70 units, as long as the upperback
  to 4%) is missing, so the release's torsos (mid-hip to mid-shoulder) are 0.40 m where the CMU and HDM05
  subjects' are 0.46-0.53 m, and its legs look 30% longer against them. `restore_thorax` puts the bone back
  (the bank does, BankConfig.poseprior_thorax); `read_poseprior` returns the release as it is.
- Order: the poses are an unordered set. fps is 1.0 only because Motion needs a rate; nothing may resample
  them (posebank.bank.canonical treats "poseprior" as not a time series).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import MocapParseError
from .motion import Motion

ASF_UNIT_M = 0.0254 / 0.45  # ASF `:units length 0.45`: 1 unit = 1/0.45 inch

POINT_NAMES: tuple[str, ...] = (
    "root", "upper_torso",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
    "mid_neck", "head_base",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
)  # fmt: skip
HEAD_CENTRE = "head_centre_est"
JOINT_NAMES: tuple[str, ...] = POINT_NAMES + (HEAD_CENTRE,)

DROPPED_COLUMN = 8  # 0-based column of S that the authors' demo drops (the mid-neck)
# The release's 17-point edges (skeleton_17Pts.mat `edges`, 1-based), parent first.
EDGES_17: tuple[tuple[int, int], ...] = (
    (1, 2), (2, 3), (3, 4), (4, 5), (2, 6), (6, 7), (7, 8), (2, 9),
    (1, 10), (10, 11), (11, 12), (12, 13), (1, 14), (14, 15), (15, 16), (16, 17),
)  # fmt: skip
# Column of S (0-based) of each 17-point index: POINT_17_COLUMNS[p - 1] for the release's 1-based point p.
POINT_17_COLUMNS: tuple[int, ...] = tuple(c for c in range(len(POINT_NAMES)) if c != DROPPED_COLUMN)


def _parents() -> tuple[int, ...]:
    """Parent of each joint of JOINT_NAMES, from EDGES_17 with the mid-neck put back inside edge (2, 9)."""
    parents = [-1] * len(JOINT_NAMES)
    for parent, child in EDGES_17:
        parents[POINT_17_COLUMNS[child - 1]] = POINT_17_COLUMNS[parent - 1]
    head_base = POINT_17_COLUMNS[9 - 1]
    parents[DROPPED_COLUMN] = parents[head_base]  # upper torso -> mid neck -> head base
    parents[head_base] = DROPPED_COLUMN
    parents[JOINT_NAMES.index(HEAD_CENTRE)] = head_base
    return tuple(parents)


PARENTS: tuple[int, ...] = _parents()


def read_poseprior(
    path: str | Path,
    *,
    subject: str | None = None,
    sequence: str | None = None,
    key: str = "S",
) -> Motion:
    """Read the poses of a Pose Prior .mat file.

    Args:
        path: a .mat file of the release holding an (3F, 18) matrix (testingSet.mat).
        subject: default "poseprior" (the release is retargeted to one skeleton).
        sequence: default the file stem.
        key: the variable holding the poses.

    Returns:
        Motion with joint_names JOINT_NAMES (J = 19), parents PARENTS, positions_m (F, 19, 3) float64
        metres, +Y up, right-handed, root at the origin; fps 1.0 (an unordered set, never resample it);
        frame_numbers = pose index in S (0-based).

    Raises:
        MocapParseError: unreadable file, no `key` variable, a matrix of the wrong shape (names the layout
            found), or a pose with NaN/inf values (names the pose and its rows).
    """
    path = Path(path)
    matrix = _load_matrix(path, key)
    poses = _split_poses(path, matrix, key)
    positions_m = poses * ASF_UNIT_M  # ASF units -> metres; the axes already are the Motion frame
    head_base, mid_neck = positions_m[:, POINT_17_COLUMNS[9 - 1]], positions_m[:, DROPPED_COLUMN]
    head_centre = head_base + 0.5 * (head_base - mid_neck)
    return Motion(
        joint_names=JOINT_NAMES,
        parents=PARENTS,
        positions_m=np.concatenate([positions_m, head_centre[:, None]], axis=1),
        fps=1.0,
        source="poseprior",
        subject=subject if subject is not None else "poseprior",
        sequence=sequence if sequence is not None else path.stem,
        path=str(path),
    )


# The joints above the missing thorax bone: they move together when it is put back.
UPPER_BODY: tuple[str, ...] = (
    "upper_torso", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
    "mid_neck", "head_base", HEAD_CENTRE,
)  # fmt: skip


def restore_thorax(motion: Motion) -> Motion:
    """The release's poses with the thorax bone the release lacks put back (see the module docstring).

    CMU and HDM05 skeletons have three spine bones of about one length (lowerback, upperback, thorax); the
    release keeps two, whose chord root -> upper torso it gives. Every joint above the spine (upper torso,
    arms, neck, head) moves along that chord by half the file's median chord length: the thorax continues
    the spine, and no other bone length or direction changes.

    Args:
        motion: a Motion from `read_poseprior` (JOINT_NAMES, metres).

    Returns:
        The same Motion with positions_m (F, 19, 3) moved; the root, hips and legs unchanged.
    """
    names = motion.joint_names
    positions = np.array(motion.positions_m, dtype=np.float64)
    spine = positions[:, names.index("upper_torso")] - positions[:, names.index("root")]
    chord = np.linalg.norm(spine, axis=-1, keepdims=True)
    thorax = 0.5 * float(np.median(chord)) * spine / np.maximum(chord, 1e-12)
    positions[:, [names.index(n) for n in UPPER_BODY]] += thorax[:, None]
    return dataclasses.replace(motion, positions_m=positions)


def sides_agree(positions: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
    """Per pose: do the points named left lie on the body's left in a right-handed frame?

    Up is root -> upper torso, forward the sum of both ankle -> foot vectors, left = up x forward. A pose agrees
    when both the hip and the shoulder differences (left minus right) point to that left.

    Args:
        positions: (N, J, 3) with J >= 18 in JOINT_NAMES order (any unit).

    Returns:
        (N,) bool.
    """
    idx = {n: i for i, n in enumerate(JOINT_NAMES)}
    p = np.asarray(positions, dtype=np.float64)
    up = p[:, idx["upper_torso"]] - p[:, idx["root"]]
    forward = sum(p[:, idx[f"{side}_foot"]] - p[:, idx[f"{side}_ankle"]] for side in ("left", "right"))
    left = np.cross(up, forward)
    hips = p[:, idx["left_hip"]] - p[:, idx["right_hip"]]
    shoulders = p[:, idx["left_shoulder"]] - p[:, idx["right_shoulder"]]
    return (np.einsum("ni,ni->n", hips, left) > 0) & (np.einsum("ni,ni->n", shoulders, left) > 0)


def _load_matrix(path: Path, key: str) -> npt.NDArray[np.float64]:
    from scipy.io import loadmat  # scipy.io is only needed when Pose Prior is read
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise MocapParseError(path, "no such file")
    try:
        data = loadmat(path)
    except (MatReadError, ValueError, OSError, TypeError) as e:
        raise MocapParseError(path, f"not a readable MATLAB .mat file ({e})") from None
    if key not in data:
        found = ", ".join(sorted(k for k in data if not k.startswith("__"))) or "none"
        raise MocapParseError(path, f"no {key!r} matrix (variables: {found})", record=key)
    matrix = data[key]
    if not isinstance(matrix, np.ndarray) or matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        got = getattr(matrix, "dtype", type(matrix).__name__)
        raise MocapParseError(path, f"{key!r} is not a numeric matrix (got {got})", record=key)
    if np.iscomplexobj(matrix):
        raise MocapParseError(path, f"{key!r} is complex", record=key)
    return matrix.astype(np.float64, copy=False)


def _split_poses(path: Path, matrix: npt.NDArray[np.float64], key: str) -> npt.NDArray[np.float64]:
    """(3F, 18) -> (F, 18, 3) with checks; values unchanged (ASF units)."""
    rows, columns = matrix.shape
    if columns != len(POINT_NAMES):
        hint = " (the 17-point layout with the mid-neck column dropped is not read)" if columns == 17 else ""
        raise MocapParseError(
            path, f"{key!r} has {columns} columns; the release's layout has {len(POINT_NAMES)} points{hint}", record=key
        )
    if rows == 0 or rows % 3:
        raise MocapParseError(
            path, f"{key!r} has {rows} rows; expected x, y, z rows per pose (a positive multiple of 3)", record=key
        )
    poses = matrix.reshape(rows // 3, 3, columns).transpose(0, 2, 1)
    bad = np.flatnonzero(~np.isfinite(poses).all(axis=(1, 2)))
    if bad.size:
        f = int(bad[0])
        raise MocapParseError(
            path,
            f"{bad.size} pose(s) hold NaN or infinite values, the first is pose {f} (0-based)",
            record=f"{key} pose {f}, rows {3 * f + 1}-{3 * f + 3} (1-based)",
        )
    return np.ascontiguousarray(poses)
