"""Write small Human3.6M files in the exact layouts users hold (official CDF tree, VideoPose3D npz),
from poses built here, so the readers are tested on the real formats without shipping the licensed data.

The poses are a standing body in the 32-joint official order: metres, world frame z up, walking
forward a little every frame so each frame differs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posebank.h36m.cameras import Camera, project_to_pixels, world_to_camera
from posebank.h36m.names import joint_names

# A standing person (metres, z up, facing -y): name -> (x, y, z). Unlisted joints sit on their neighbours.
_STANDING = {
    "pelvis": (0.0, 0.0, 0.95), "right_hip": (-0.13, 0.0, 0.93), "right_knee": (-0.13, -0.02, 0.50),
    "right_ankle": (-0.13, 0.0, 0.08), "right_toe": (-0.13, -0.12, 0.02), "right_toe_end": (-0.13, -0.18, 0.02),
    "left_hip": (0.13, 0.0, 0.93), "left_knee": (0.13, -0.02, 0.50), "left_ankle": (0.13, 0.0, 0.08),
    "left_toe": (0.13, -0.12, 0.02), "left_toe_end": (0.13, -0.18, 0.02), "spine_base": (0.0, 0.0, 0.95),
    "spine": (0.0, 0.0, 1.18), "thorax": (0.0, 0.0, 1.45), "neck_nose": (0.0, -0.05, 1.58),
    "head_top": (0.0, 0.0, 1.72), "left_clavicle": (0.0, 0.0, 1.45), "left_shoulder": (0.18, 0.0, 1.42),
    "left_elbow": (0.22, 0.0, 1.15), "left_wrist": (0.24, -0.05, 0.90), "left_thumb": (0.24, -0.08, 0.86),
    "left_thumb_end": (0.24, -0.09, 0.84), "left_hand": (0.24, -0.06, 0.84), "left_hand_end": (0.24, -0.06, 0.80),
    "right_clavicle": (0.0, 0.0, 1.45), "right_shoulder": (-0.18, 0.0, 1.42), "right_elbow": (-0.22, 0.0, 1.15),
    "right_wrist": (-0.24, -0.05, 0.90), "right_thumb": (-0.24, -0.08, 0.86), "right_thumb_end": (-0.24, -0.09, 0.84),
    "right_hand": (-0.24, -0.06, 0.84), "right_hand_end": (-0.24, -0.06, 0.80),
}  # fmt: skip


def standing_world(frames: int, *, step_m: float = 0.01, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(frames, 32, 3) world metres (z up): the standing body, raising its right arm a little each frame."""
    base = np.array([_STANDING[n] for n in joint_names("official")], np.float64)
    out = np.repeat(base[None], frames, axis=0)
    out[:, :, 0] += offset[0]
    out[:, :, 1] += offset[1] - step_m * np.arange(frames)[:, None]
    names = joint_names("official")
    for j in ("right_elbow", "right_wrist", "right_hand", "right_hand_end", "right_thumb", "right_thumb_end"):
        out[:, names.index(j), 2] += 0.02 * np.arange(frames)
    return out


def write_cdf(path: Path, values: np.ndarray) -> None:
    """Write `values` (T, 32, D) as the official files store them: variable Pose, (1, T, 32*D) float."""
    from cdflib.cdfwrite import CDF

    path.parent.mkdir(parents=True, exist_ok=True)
    data = values.reshape(1, len(values), -1).astype(np.float32)
    cdf = CDF(str(path), cdf_spec={"Majority": "Row_major"})
    cdf.write_var({"Variable": "Pose", "Data_Type": CDF.CDF_FLOAT, "Num_Elements": 1, "Rec_Vary": True,
                   "Dim_Sizes": list(data.shape[1:])}, var_data=data)  # fmt: skip
    cdf.close()


def write_official_tree(
    root: Path, sequences: dict[tuple[str, str], np.ndarray], cameras: dict[tuple[str, str], Camera], *, with_2d: bool = True
) -> None:
    """<root>/<S>/MyPoseFeatures/{D3_Positions, D3_Positions_mono, D2_Positions}/... in millimetres and pixels.

    Args:
        sequences: (subject, sequence) -> (T, 32, 3) world metres.
        cameras: the calibrations; each sequence is written for every camera of its subject.
    """
    for (subject, sequence), world in sequences.items():
        poses = root / subject / "MyPoseFeatures"
        write_cdf(poses / "D3_Positions" / f"{sequence}.cdf", world * 1000.0)
        for (s, camera_id), camera in sorted(cameras.items()):
            if s != subject:
                continue
            cam = world_to_camera(world, camera)
            write_cdf(poses / "D3_Positions_mono" / f"{sequence}.{camera_id}.cdf", cam * 1000.0)
            if with_2d:
                write_cdf(poses / "D2_Positions" / f"{sequence}.{camera_id}.cdf", project_to_pixels(cam, camera))


def write_videopose3d(path: Path, sequences: dict[tuple[str, str], np.ndarray]) -> None:
    """data_3d_h36m.npz as VideoPose3D's prepare_data_h36m.py writes it: positions_3d = {S: {seq: (T,32,3) float32}}."""
    output: dict[str, dict[str, np.ndarray]] = {}
    for (subject, sequence), world in sequences.items():
        output.setdefault(subject, {})[sequence] = world.astype(np.float32)
    np.savez_compressed(path, positions_3d=output)


def look_at_camera(subject: str, camera_id: str, centre: tuple[float, float, float]) -> dict[str, object]:
    """One cameras.pkl entry (mmpose's fields) for a camera at `centre` (metres) looking at the room centre."""
    c = np.array(centre, np.float64)
    z = np.array([0.0, 0.0, 1.0]) - c
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return {"R": np.stack([x, y, z], axis=1), "T": c.reshape(3, 1), "c": np.array([[500.0], [500.0]]),
            "f": np.array([[1145.0], [1144.0]]), "k": np.array([[-0.2], [0.24], [-0.003]]),
            "p": np.array([[-0.0014], [-0.001]]), "w": 1000, "h": 1000, "name": "camera", "id": camera_id}  # fmt: skip


def write_cameras_pkl(path: Path, subjects: tuple[str, ...]) -> None:
    """cameras.pkl in mmpose's layout: four cameras per subject at the corners of the room, 1.5 m high."""
    import pickle

    from posebank.h36m.names import camera_ids

    corners = [(2.0, 5.0, 1.5), (2.0, -5.0, 1.6), (-1.8, 5.2, 1.5), (-1.6, -3.8, 1.6)]
    data = {(s, cam): look_at_camera(s, cam, xyz) for s in subjects for cam, xyz in zip(camera_ids(), corners)}
    path.write_bytes(pickle.dumps(data, protocol=3))
