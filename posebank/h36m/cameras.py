"""Human3.6M cameras: the calibration file (read without running arbitrary pickled code) and the geometry.

cameras.pkl (mmpose's preprocessing of the official metadata) is a pickle: loading a pickle with the
standard `pickle.load` can run any code the file names. `load_cameras` therefore uses an unpickler
that only rebuilds numpy arrays (and the dicts, tuples, strings and numbers around them); any other
global in the file is refused with an error naming the file.

Conventions (checked on the real sample, see manifests/h36m.toml): R rotates camera axes into the
world and T is the camera centre in the world, so X_cam = R^T (X_world - T). World: z up, metres.
Camera: x right, y down, z forward, metres. Pixels: origin top-left.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError

# The only callables a numpy array pickle needs (numpy 1 wrote numpy.core, numpy 2 writes numpy._core).
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {}


def _allowed() -> dict[tuple[str, str], Any]:
    if not _ALLOWED_GLOBALS:
        from numpy._core import multiarray

        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            _ALLOWED_GLOBALS[(module, "_reconstruct")] = multiarray._reconstruct
            _ALLOWED_GLOBALS[(module, "scalar")] = multiarray.scalar
        _ALLOWED_GLOBALS[("numpy", "ndarray")] = np.ndarray
        _ALLOWED_GLOBALS[("numpy", "dtype")] = np.dtype
        for module in ("numpy.dtypes", "numpy._core.dtypes"):  # numpy 2 may name the dtype class
            for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "ObjectDType", "StrDType"):
                cls = getattr(np.dtypes, name, None)
                if cls is not None:
                    _ALLOWED_GLOBALS[(module, name)] = cls
    return _ALLOWED_GLOBALS


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and plain Python containers, and refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _allowed()[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: only numpy arrays may be unpickled") from None


def restricted_loads(data: bytes, *, path: str | Path) -> Any:
    """Unpickle `data` with NumpyOnlyUnpickler.

    Raises:
        InputError: naming `path`, for a refused global or a corrupt pickle.
    """
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as err:
        raise InputError(path, f"unsafe or corrupt pickle: {err}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise InputError(path, f"corrupt pickle: {err}") from None


@dataclass(frozen=True)
class Camera:
    """One calibrated camera of one subject.

    Attributes:
        subject: "S1" ... "S11".
        camera_id: "54138969" | "55011271" | "58860488" | "60457274".
        rotation: (3, 3) float64 camera axes -> world axes (columns: camera x, y, z in the world).
        centre_m: (3,) float64 camera centre in the world, metres.
        focal_px: (2,) fx, fy. centre_px: (2,) cx, cy.
        radial: (3,) k1, k2, k3. tangential: (2,) p1, p2.
        width, height: image size in px.
    """

    subject: str
    camera_id: str
    rotation: npt.NDArray[np.float64]
    centre_m: npt.NDArray[np.float64]
    focal_px: npt.NDArray[np.float64]
    centre_px: npt.NDArray[np.float64]
    radial: npt.NDArray[np.float64]
    tangential: npt.NDArray[np.float64]
    width: int
    height: int


def _vector(entry: dict[str, Any], key: str, size: int, path: Path, record: str) -> npt.NDArray[np.float64]:
    try:
        value = np.asarray(entry[key], dtype=np.float64).reshape(-1)
    except KeyError:
        raise InputError(path, f"camera has no {key!r}", record=record) from None
    except (TypeError, ValueError):
        raise InputError(path, f"camera {key!r} is not numeric", record=record) from None
    if value.size != size or not np.isfinite(value).all():
        raise InputError(path, f"camera {key!r} must hold {size} finite numbers, got {value.size}", record=record)
    return value


def load_cameras(path: str | Path) -> dict[tuple[str, str], Camera]:
    """Read mmpose's cameras.pkl (44 calibrations keyed by (subject, camera id)) with restricted unpickling.

    Returns:
        {(subject, camera_id): Camera}.

    Raises:
        InputError: unreadable or unsafe file, a missing or malformed field (naming the (subject, camera)),
            or a rotation that is not a rotation.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(path, f"cannot read: {err.strerror}") from None
    raw = restricted_loads(data, path=path)
    if not isinstance(raw, dict):
        raise InputError(path, f"expected a dict keyed by (subject, camera), got {type(raw).__name__}")
    cameras = {}
    for key, entry in raw.items():
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(entry, dict)):
            raise InputError(path, "expected {(subject, camera id): {R, T, f, c, k, p, w, h}}", record=repr(key))
        subject, camera_id = str(key[0]), str(key[1])
        record = f"{subject}, {camera_id}"
        rotation = _vector(entry, "R", 9, path, record).reshape(3, 3)
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-5) or np.linalg.det(rotation) < 0:
            raise InputError(path, "R is not a rotation (orthonormal, det +1)", record=record)
        size = entry.get("w"), entry.get("h")
        if not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
            raise InputError(path, f"camera w, h must be positive integers, got {size}", record=record)
        cameras[(subject, camera_id)] = Camera(
            subject, camera_id, rotation, _vector(entry, "T", 3, path, record), _vector(entry, "f", 2, path, record),
            _vector(entry, "c", 2, path, record), _vector(entry, "k", 3, path, record),
            _vector(entry, "p", 2, path, record), int(size[0]), int(size[1]),
        )  # fmt: skip
    if not cameras:
        raise InputError(path, "no cameras in the file")
    return cameras


def world_to_camera(points_world: npt.NDArray[np.floating], camera: Camera) -> npt.NDArray[np.float64]:
    """(..., 3) world metres (z up) -> (..., 3) camera frame metres: R^T (X - T)."""
    points = np.asarray(points_world, np.float64)
    if points.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) points, got {points.shape}")
    return (points - camera.centre_m) @ camera.rotation


def camera_to_world(points_cam: npt.NDArray[np.floating], camera: Camera) -> npt.NDArray[np.float64]:
    """(..., 3) camera frame metres -> (..., 3) world metres (z up): R X + T. Inverse of world_to_camera."""
    points = np.asarray(points_cam, np.float64)
    if points.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) points, got {points.shape}")
    return points @ camera.rotation.T + camera.centre_m


def project_to_pixels(points_cam: npt.NDArray[np.floating], camera: Camera) -> npt.NDArray[np.float64]:
    """Perspective projection with the radial and tangential distortion of H36M's calibration.

    Args:
        points_cam: (..., 3) camera frame metres, z > 0.

    Returns:
        (..., 2) pixels, origin top-left (the formula is in manifests/h36m.toml, "projection").
    """
    points = np.asarray(points_cam, np.float64)
    if points.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) points, got {points.shape}")
    xy = points[..., :2] / points[..., 2:3]
    r2 = (xy**2).sum(-1, keepdims=True)
    k1, k2, k3 = camera.radial
    p1, p2 = camera.tangential
    d = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3 + p1 * xy[..., 1:2] + p2 * xy[..., 0:1]
    distorted = xy * d + r2 * np.array([p2, p1])
    return distorted * camera.focal_px + camera.centre_px
