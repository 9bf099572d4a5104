"""Find what a Human3.6M path holds and iterate over its sequences, in the world or per camera.

A path is an official tree (<root>/<S>/MyPoseFeatures/...), a VideoPose3D or mmpose npz, or a folder
holding such npz files. Camera parameters come from mmpose's cameras.pkl: given explicitly, or found
beside the data (cameras.pkl, or any *cameras*.pkl).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .cameras import Camera, camera_to_world, load_cameras, project_to_pixels, world_to_camera
from .names import camera_ids
from .readers import (
    H36MSequence,
    official_camera_views,
    official_world_files,
    read_mmpose,
    read_official_camera,
    read_official_world,
    read_videopose3d,
)

LAYOUTS = ("official", "videopose3d", "mmpose")


@dataclass(frozen=True)
class H36MData:
    """The files of one Human3.6M copy.

    Attributes:
        layout: "official" | "videopose3d" | "mmpose".
        root: the folder or npz given.
        files: the data files: D3_Positions CDFs (official) or npz files, sorted.
        cameras: cameras.pkl when given or found, else None.
    """

    layout: str
    root: Path
    files: tuple[Path, ...]
    cameras: Path | None


def _npz_layout(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError):
        return None
    if "positions_3d.npy" in names:
        return "videopose3d"
    if {"imgname.npy", "S.npy", "part.npy"} <= names:
        return "mmpose"
    return None


def _find_cameras(folder: Path) -> Path | None:
    exact = folder / "cameras.pkl"
    if exact.is_file():
        return exact
    found = sorted(folder.glob("*cameras*.pkl"))
    return found[0] if found else None


def open_h36m(path: str | Path, cameras: str | Path | None = None) -> H36MData:
    """Recognise the layout of `path` (manifests/h36m.toml, "layout").

    Raises:
        InputError: `path` missing, or holding no Human3.6M data in a known layout; an npz in no known layout.
    """
    root = Path(path)
    if root.is_file():
        layout = _npz_layout(root) if root.suffix.lower() == ".npz" else None
        if layout is None:
            raise InputError(root, "not a Human3.6M file: expected VideoPose3D's data_3d_h36m.npz (positions_3d) "
                                   "or an mmpose npz (imgname, part, S)")  # fmt: skip
        files, folder = (root,), root.parent
    elif root.is_dir():
        world = [f for _, f in official_world_files(root)]
        if world or official_camera_views(root):
            layout, files = "official", tuple(world)
        else:
            found = [(f, _npz_layout(f)) for f in sorted(root.rglob("*.npz"))]
            kinds = {k for _, k in found if k}
            if not kinds:
                raise InputError(root, "no Human3.6M data: expected <S>/MyPoseFeatures/D3_Positions/*.cdf, "
                                       "data_3d_h36m.npz (VideoPose3D) or an mmpose npz below")  # fmt: skip
            if len(kinds) > 1:
                raise InputError(root, "holds both VideoPose3D and mmpose npz files; give one of them")
            layout = kinds.pop()
            files = tuple(f for f, k in found if k == layout)
        folder = root
    else:
        raise InputError(root, "h36m: no such file or folder")
    camera_file = Path(cameras) if cameras else _find_cameras(folder)
    if camera_file is not None and not camera_file.is_file():
        raise InputError(camera_file, "no such camera file")
    return H36MData(layout, root, files, camera_file)


def require_cameras(data: H36MData) -> dict[tuple[str, str], Camera]:
    """The cameras of `data`; InputError when the layout needs them and none were given or found."""
    if data.cameras is None:
        raise InputError(data.root, f"the {data.layout} layout needs the camera parameters: give cameras.pkl "
                                    "(mmpose's, 44 calibrations) or put it beside the data")  # fmt: skip
    return load_cameras(data.cameras)


def _camera(cameras: dict[tuple[str, str], Camera], subject: str, camera: str, path: str) -> Camera:
    try:
        return cameras[(subject, camera)]
    except KeyError:
        raise InputError(path, f"no calibration for subject {subject} camera {camera} in the camera file") from None


def world_sequences(data: H36MData, subjects: tuple[str, ...] = ()) -> Iterator[H36MSequence]:
    """Every sequence in the world frame (z up, metres), one per sequence (not per camera).

    The mmpose layout has camera-frame poses only: they are taken to the world with their camera's
    calibration, from the first camera (dataset order) that saw each frame.
    """
    if data.layout == "official":
        for subject, f in official_world_files(data.root):
            if not subjects or subject in subjects:
                yield read_official_world(f, subject)
    elif data.layout == "videopose3d":
        for f in data.files:
            for seq in read_videopose3d(f):
                if not subjects or seq.subject in subjects:
                    yield seq
    else:
        cameras = require_cameras(data)
        order = {c: i for i, c in enumerate(camera_ids())}
        merged: dict[tuple[str, str], dict[int, np.ndarray]] = {}
        names: tuple[str, ...] = ()
        for f in data.files:
            views = sorted(read_mmpose(f), key=lambda s: order.get(s.camera or "", len(order)))
            for seq in views:
                if subjects and seq.subject not in subjects:
                    continue
                names = seq.joint_names
                world = camera_to_world(seq.positions_m, _camera(cameras, seq.subject, seq.camera or "", seq.path))
                frames = merged.setdefault((seq.subject, seq.sequence), {})
                for frame, pose in zip(seq.frames.tolist(), world):
                    frames.setdefault(frame, pose)
        for (subject, sequence), by_frame in sorted(merged.items()):
            frames = np.array(sorted(by_frame), np.int64)
            positions = np.stack([by_frame[f] for f in frames.tolist()])
            yield H36MSequence(subject, sequence, None, names, positions, None, frames, str(data.files[0]), "mmpose")


def camera_views(data: H36MData, subjects: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """(subject, sequence, camera) of every view `camera_sequences` yields, in its order, without holding
    the poses (an official tree is listed from its file names)."""
    if data.layout == "official":
        return [v for v in official_camera_views(data.root) if not subjects or v[0] in subjects]
    if data.layout == "mmpose":
        return [(s.subject, s.sequence, s.camera or "") for f in data.files for s in read_mmpose(f)
                if not subjects or s.subject in subjects]  # fmt: skip
    return [(s.subject, s.sequence, c) for s in world_sequences(data, subjects) for c in camera_ids()]


def camera_sequences(data: H36MData, subjects: tuple[str, ...] = ()) -> Iterator[H36MSequence]:
    """Every (sequence, camera) with camera-frame 3D (metres) and pixels.

    official: D3_Positions_mono and D2_Positions (the 2D is projected with cameras.pkl when D2_Positions
    is absent); videopose3d: world positions through each of the subject's four calibrations; mmpose: as stored.
    """
    if data.layout == "mmpose":
        for f in data.files:
            for seq in read_mmpose(f):
                if not subjects or seq.subject in subjects:
                    yield seq
        return
    cameras = require_cameras(data) if data.cameras is not None or data.layout == "videopose3d" else None
    if data.layout == "official":
        for subject, sequence, camera in official_camera_views(data.root):
            if subjects and subject not in subjects:
                continue
            seq = read_official_camera(data.root / subject, sequence, camera)
            if seq.pose_2d_px is None:
                if cameras is None:
                    raise InputError(seq.path, "no D2_Positions file beside it and no cameras.pkl to project the 3D")
                pose_2d = project_to_pixels(seq.positions_m, _camera(cameras, subject, camera, seq.path))
                seq = H36MSequence(seq.subject, seq.sequence, camera, seq.joint_names, seq.positions_m, pose_2d,
                                   seq.frames, seq.path, seq.layout)  # fmt: skip
            yield seq
        return
    assert cameras is not None
    for world in world_sequences(data, subjects):
        for camera in camera_ids():
            cam = _camera(cameras, world.subject, camera, world.path)
            positions = world_to_camera(world.positions_m, cam)
            yield H36MSequence(world.subject, world.sequence, camera, world.joint_names, positions,
                               project_to_pixels(positions, cam), world.frames, world.path, world.layout)  # fmt: skip
