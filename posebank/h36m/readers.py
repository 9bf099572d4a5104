"""Readers of the three Human3.6M layouts users hold (manifests/h36m.toml, "layout").

- official: the release's CDF files, D3_Positions (world), D3_Positions_mono (camera frame) and
  D2_Positions (pixels), read with cdflib;
- videopose3d: data_3d_h36m.npz, world positions of every sequence (a pickled dict: restricted unpickling);
- mmpose: the preprocessed npz (camera-frame 3D and pixels per image) with cameras.pkl beside it.

Each reader returns `H36MSequence`s in the file's own joint set, in metres, with the source's frame
numbers; it never resamples, centres or maps joints (posebank.h36m.canonical does that by name).
"""

from __future__ import annotations

import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from .cameras import restricted_loads
from .names import joint_names, official_sequence, parse_image_path

POSES_DIR = "MyPoseFeatures"


@dataclass(frozen=True)
class H36MSequence:
    """The poses of one sequence, seen from one camera or in the world.

    Attributes:
        subject: "S1" ... "S11".
        sequence: the official name ("Walking 1"; mmpose's "Walking_1" is converted).
        camera: camera id when `positions_m` is in that camera's frame; None for world positions.
        joint_names: (J,) the layout's names (manifests/h36m.toml: 32 official or 17 mmpose joints).
        positions_m: (T, J, 3) float64 metres: world frame (z up) when camera is None, else camera frame
            (x right, y down, z forward).
        pose_2d_px: (T, J, 2) float64 pixels in `camera`'s image, origin top-left; None when the file has none.
        frames: (T,) int64 0-based MoCap frame numbers (50 Hz).
        path: the file read (for messages and provenance).
        layout: "official" | "videopose3d" | "mmpose".
    """

    subject: str
    sequence: str
    camera: str | None
    joint_names: tuple[str, ...]
    positions_m: npt.NDArray[np.float64]
    pose_2d_px: npt.NDArray[np.float64] | None
    frames: npt.NDArray[np.int64]
    path: str
    layout: str

    def __post_init__(self) -> None:
        t, j = len(self.frames), len(self.joint_names)
        if self.positions_m.shape != (t, j, 3):
            raise ValueError(f"positions_m must be ({t}, {j}, 3), got {self.positions_m.shape}")
        if self.pose_2d_px is not None and self.pose_2d_px.shape != (t, j, 2):
            raise ValueError(f"pose_2d_px must be ({t}, {j}, 2), got {self.pose_2d_px.shape}")


def _check_finite(values: npt.NDArray[np.float64], path: Path | str) -> None:
    bad = ~np.isfinite(values).all(axis=tuple(range(1, values.ndim)))
    if bad.any():
        raise InputError(path, "non-finite joint positions", record=f"frame {int(np.argmax(bad))}")


def read_cdf_pose(path: str | Path, coords: int) -> npt.NDArray[np.float64]:
    """The `Pose` variable of an official CDF file as (T, 32, coords) float64, in the file's units.

    Args:
        path: a D3_Positions / D3_Positions_mono (coords 3, mm) or D2_Positions (coords 2, px) file.
        coords: 3 or 2.

    Raises:
        InputError: not a CDF file, no `Pose` variable, or not 32 x `coords` values per frame.
    """
    import cdflib  # only the official layout needs it

    path = Path(path)
    try:
        cdf = cdflib.CDF(str(path))
        values = np.asarray(cdf.varget("Pose"), dtype=np.float64)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except ValueError as err:  # cdflib: "Variable name 'Pose' not found", or not a CDF file
        raise InputError(path, f"not a Human3.6M pose CDF: {err}") from None
    except (OSError, KeyError, IndexError) as err:
        raise InputError(path, f"unreadable CDF: {err}") from None
    width = 32 * coords
    if values.size == 0 or values.size % width or values.shape[-1] not in (width, coords):
        raise InputError(path, f"variable Pose has shape {values.shape}; expected (1, T, {width})")
    values = values.reshape(-1, 32, coords)
    _check_finite(values, path)
    return values


def read_official_world(path: str | Path, subject: str) -> H36MSequence:
    """One D3_Positions file (<root>/<S>/MyPoseFeatures/D3_Positions/<Sequence>.cdf): world positions."""
    path = Path(path)
    positions = read_cdf_pose(path, 3) / 1000.0  # millimetres -> metres
    frames = np.arange(len(positions), dtype=np.int64)
    return H36MSequence(subject, path.stem, None, joint_names("official"), positions, None, frames, str(path), "official")


def read_official_camera(subject_dir: str | Path, sequence: str, camera: str) -> H36MSequence:
    """One sequence seen by one camera: D3_Positions_mono (camera frame, mm) and, when present, D2_Positions (px).

    Args:
        subject_dir: <root>/<S> of the official release.
        sequence: "Walking 1". camera: "54138969".

    Raises:
        InputError: a missing D3_Positions_mono file, unreadable files, or 2D and 3D of different lengths.
    """
    subject_dir = Path(subject_dir)
    poses = subject_dir / POSES_DIR
    mono = poses / "D3_Positions_mono" / f"{sequence}.{camera}.cdf"
    positions = read_cdf_pose(mono, 3) / 1000.0  # millimetres -> metres
    flat = poses / "D2_Positions" / f"{sequence}.{camera}.cdf"
    pose_2d = read_cdf_pose(flat, 2) if flat.is_file() else None
    if pose_2d is not None and len(pose_2d) != len(positions):
        raise InputError(flat, f"{len(pose_2d)} frames of 2D for {len(positions)} frames of 3D in {mono.name}")
    frames = np.arange(len(positions), dtype=np.int64)
    return H36MSequence(subject_dir.name, sequence, camera, joint_names("official"), positions, pose_2d, frames,
                        str(mono), "official")  # fmt: skip


def official_world_files(root: str | Path) -> list[tuple[str, Path]]:
    """(subject, D3_Positions file) of an official tree, sorted; [] when `root` holds none."""
    root = Path(root)
    files = []
    for f in sorted(root.glob(f"*/{POSES_DIR}/D3_Positions/*.cdf")):
        files.append((f.parents[2].name, f))
    return files


def official_camera_views(root: str | Path) -> list[tuple[str, str, str]]:
    """(subject, sequence, camera) of every D3_Positions_mono file of an official tree, sorted."""
    views = []
    for f in sorted(Path(root).glob(f"*/{POSES_DIR}/D3_Positions_mono/*.cdf")):
        sequence, _, camera = f.stem.rpartition(".")
        if sequence and camera:
            views.append((f.parents[2].name, sequence, camera))
    return views


def _npz_member(path: Path, name: str) -> npt.NDArray[np.generic]:
    """One array of an npz, object arrays included, unpickled with the numpy-only unpickler."""
    try:
        with zipfile.ZipFile(path) as z:
            member = f"{name}.npy"
            if member not in z.namelist():
                raise InputError(path, f"no array {name!r} (has: {', '.join(n[:-4] for n in z.namelist())})")
            with z.open(member) as f:
                version = np.lib.format.read_magic(f)
                # read_array_header_2_0 also parses version 3.0's (UTF-8) headers of plain ASCII names.
                header = np.lib.format.read_array_header_1_0 if version[0] == 1 else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = header(f)
                data = f.read()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise InputError(path, f"not a readable npz: {err}") from None
    if dtype.hasobject:
        return np.asarray(restricted_loads(data, path=path))
    array = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)))
    return array.reshape(shape, order="F" if fortran else "C")


def read_videopose3d(path: str | Path) -> list[H36MSequence]:
    """data_3d_h36m.npz of VideoPose3D: every sequence's world positions (32 joints, metres).

    Raises:
        InputError: no positions_3d, not {subject: {sequence: (T, 32, 3)}}, or non-finite values (naming the sequence).
    """
    path = Path(path)
    raw = _npz_member(path, "positions_3d")
    data = raw.item() if raw.dtype == object and raw.shape == () else None
    if not isinstance(data, dict):
        raise InputError(path, "positions_3d is not a pickled {subject: {sequence: (T, 32, 3)}} dict")
    names = joint_names("official")
    out = []
    for subject in sorted(data):
        if not isinstance(data[subject], dict):
            raise InputError(path, "expected {sequence: (T, 32, 3)}", record=str(subject))
        for sequence in sorted(data[subject]):
            record = f"{subject}/{sequence}"
            positions = np.asarray(data[subject][sequence], dtype=np.float64)  # already metres
            if positions.ndim != 3 or positions.shape[1:] != (32, 3):
                raise InputError(path, f"expected (T, 32, 3) world positions, got {positions.shape}", record=record)
            try:
                _check_finite(positions, path)
            except InputError as err:
                raise InputError(path, err.message, record=f"{record}, {err.record}") from None
            frames = np.arange(len(positions), dtype=np.int64)
            out.append(H36MSequence(str(subject), str(sequence), None, names, positions, None, frames, str(path), "videopose3d"))
    if not out:
        raise InputError(path, "positions_3d holds no sequence")
    return out


def read_mmpose(path: str | Path) -> list[H36MSequence]:
    """mmpose's preprocessed npz (imgname, part, S): camera-frame 3D and pixels, one H36MSequence per
    (subject, sequence, camera), frames in file order.

    Raises:
        InputError: missing arrays, wrong shapes, image names not in mmpose's layout (naming the row).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("imgname", "part", "S") if k not in z.files]
            if missing:
                raise InputError(path, f"not an mmpose Human3.6M npz: no {', '.join(missing)} (has: {', '.join(z.files)})")
            names, part, s = z["imgname"], np.asarray(z["part"], np.float64), np.asarray(z["S"], np.float64)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise InputError(path, f"not a readable npz: {err}") from None
    n = len(names)
    if part.shape != (n, 17, 3) or s.shape != (n, 17, 4):
        raise InputError(path, f"expected part (N,17,3) and S (N,17,4) for {n} images, got {part.shape} and {s.shape}")
    groups: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
    for row, name in enumerate(names):
        try:
            key = parse_image_path(str(name))
        except ValueError as err:
            raise InputError(path, str(err), record=f"row {row}") from None
        groups[(key.subject, key.sequence, key.camera)].append((key.frame, row))
    out = []
    for (subject, sequence, camera), items in sorted(groups.items()):
        frames = np.array([f for f, _ in items], np.int64)
        rows = np.array([r for _, r in items], np.int64)
        positions, pose_2d = s[rows, :, :3], part[rows, :, :2]  # S is already metres in the camera frame
        for values in (positions, pose_2d):
            bad = ~np.isfinite(values).all(axis=(1, 2))
            if bad.any():
                raise InputError(path, "non-finite joint values", record=f"row {int(rows[np.argmax(bad)])}")
        out.append(H36MSequence(subject, official_sequence(sequence), camera, joint_names("mmpose"), positions, pose_2d,
                                frames, str(path), "mmpose"))  # fmt: skip
    return out
