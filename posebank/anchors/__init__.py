"""Anchor-poses (paper sections 3 and 4): K-means on the oriented, body-centred 3D poses of a bank.

Each anchor is a cluster centre in 3D (metres, camera frame), its orthographic 2D projection
normalised to [0, 1] in its full-body box, and the same 2D normalised to a box around the upper body
only (the paper's truncation classes: legs fall outside that box). Training labels a pose with the
anchor nearest in 3D (`assign_classes`, mean per-joint distance), here so that every user agrees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..boxes import normalise_to_box, pose_box
from ..skeleton import Skeleton, upper_body_mask
from ._lloyd import cluster_sums

LOG = logging.getLogger(__name__)


KMEANS_ENGINES: tuple[str, ...] = ("auto", "faiss", "torch", "numpy")  # the --engine choices of `posebank anchors`


@dataclass(frozen=True)
class AnchorConfig:
    """Configuration of `posebank anchors`."""

    bank: str = ""  # bank folder (build-bank's --out)
    out: str = "anchors"  # output folder: anchors.parquet, manifest.json (and the LCR-Net export)
    k: int = 200  # number of anchor-poses (the paper's best for MPII)
    sample: int = 1_000_000  # bank rows drawn (seeded) for K-means; 0 = all rows
    seed: int = 0  # seeds the sample and the K-means initialisation
    engine: str = "auto"  # auto | faiss | torch | numpy: auto = torch on a GPU, else faiss on the CPU
    niter: int = 25  # Lloyd iterations


@dataclass(frozen=True)
class AnchorSet:
    """K anchor-poses.

    Attributes:
        pose_3d: (K, J, 3) float32 metres, camera frame, body-centred (the cluster centres).
        pose_2d_full: (K, J, 2) float32 orthographic projection normalised to [0, 1] in the full-body box.
        pose_2d_upper: (K, J, 2) float32 the same projection normalised to the upper-body box.
        members: (K,) int64 bank poses assigned to each anchor.
    """

    pose_3d: npt.NDArray[np.float32]
    pose_2d_full: npt.NDArray[np.float32]
    pose_2d_upper: npt.NDArray[np.float32]
    members: npt.NDArray[np.int64]

    @property
    def k(self) -> int:
        return int(len(self.pose_3d))


def make_anchor_set(centres_3d: npt.NDArray[np.floating], members: npt.NDArray[np.integer], skeleton: Skeleton) -> AnchorSet:
    """Anchor-poses from 3D cluster centres (K, J, 3): project, and normalise to both boxes."""
    centres_3d = np.asarray(centres_3d, dtype=np.float64)
    pose_2d = centres_3d[..., :2]
    full = normalise_to_box(pose_2d, pose_box(pose_2d))
    upper = normalise_to_box(pose_2d, pose_box(pose_2d, np.broadcast_to(upper_body_mask(skeleton), pose_2d.shape[:-1])))
    return AnchorSet(centres_3d.astype(np.float32), full.astype(np.float32), upper.astype(np.float32),
                     np.asarray(members, dtype=np.int64))  # fmt: skip


def assign_classes(
    poses_3d: npt.NDArray[np.floating], anchors_3d: npt.NDArray[np.floating], *, engine: str = "numpy",
    block: int = 8192,
) -> npt.NDArray[np.int64]:  # fmt: skip
    """Label each pose with its nearest anchor in 3D: argmin_k D3D(A_k, P) (paper section 3.1).

    D3D is the mean per-joint Euclidean distance between body-centred, oriented poses.

    Args:
        poses_3d: (N, J, 3) metres.
        anchors_3d: (K, J, 3) metres.
        engine: "numpy", or "torch" (CUDA when available): the same result.
        block: poses per block, bounding memory to block x K x J.

    Returns:
        (N,) int64 anchor indices in [0, K).
    """
    poses_3d = np.asarray(poses_3d, dtype=np.float32)
    anchors_3d = np.asarray(anchors_3d, dtype=np.float32)
    if poses_3d.shape[1:] != anchors_3d.shape[1:]:
        raise ValueError(f"poses {poses_3d.shape} and anchors {anchors_3d.shape} have different joints")
    labels = np.empty(len(poses_3d), dtype=np.int64)
    if engine == "torch":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        a = torch.from_numpy(anchors_3d).to(device)
        for s in range(0, len(poses_3d), block):
            p = torch.from_numpy(poses_3d[s : s + block]).to(device)
            labels[s : s + block] = nearest_anchor_torch(p, a).cpu().numpy()
        return labels
    if engine != "numpy":
        raise ValueError(f"unknown engine {engine!r} (numpy | torch)")
    for s in range(0, len(poses_3d), block):
        d = np.linalg.norm(poses_3d[s : s + block, None] - anchors_3d[None], axis=-1).mean(-1)
        labels[s : s + block] = d.argmin(1)
    return labels


def nearest_anchor_torch(poses_3d: Any, anchors_3d: Any) -> Any:
    """The nearest anchor in 3D of each pose, on torch tensors (any device): the kernel of
    `assign_classes(engine="torch")` and of the model's training labels (lcrnet.anchors), so that
    training labels poses as the anchors stage counted them.

    Args:
        poses_3d: (N, J, 3) torch tensor, metres, body-centred, camera frame.
        anchors_3d: (K, J, 3) torch tensor of the same dtype and device.

    Returns:
        (N,) int64 tensor: argmin_k D3D(A_k, P), D3D the mean per-joint Euclidean distance.
    """
    import torch

    return torch.linalg.vector_norm(poses_3d[:, None] - anchors_3d[None], dim=-1).mean(-1).argmin(1)


def _nearest_l2(points: npt.NDArray[np.float32], centres: npt.NDArray[np.float32], block: int = 65536) -> npt.NDArray[np.int64]:
    """Nearest centre (squared L2, the K-means criterion) of each point (N, D)."""
    c_sq = (centres.astype(np.float64) ** 2).sum(1)
    out = np.empty(len(points), dtype=np.int64)
    for s in range(0, len(points), block):
        x = points[s : s + block]
        out[s : s + block] = (c_sq[None] - 2.0 * (x @ centres.T)).argmin(1)
    return out


def finalise_clusters(
    points: npt.NDArray[np.float32], centres: npt.NDArray[np.float32], max_rounds: int = 10
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Make every centre the exact mean of its members, with no empty cluster.

    K-means stops after its last update, so a final assignment may differ and leave a cluster empty.
    Alternate assignment and mean update until stable; an empty cluster takes the point farthest
    from its centre in the largest cluster (deterministic).

    Returns:
        centres (K, D) float32, assignment (N,) int64, member counts (K,) int64.
    """
    k = len(centres)
    if len(points) < k:
        raise ValueError(f"{len(points)} poses cannot make {k} non-empty clusters")
    centres = centres.astype(np.float32).copy()
    for _ in range(max_rounds):
        assign = _nearest_l2(points, centres)
        counts = np.bincount(assign, minlength=k)
        for empty in np.flatnonzero(counts == 0):
            big = int(np.argmax(counts))
            idx = np.flatnonzero(assign == big)
            far = idx[np.argmax(((points[idx] - centres[big]) ** 2).sum(1))]
            assign[far] = empty
            counts[big] -= 1
            counts[empty] = 1
        new = (cluster_sums(points, assign, k) / counts[:, None]).astype(np.float32)
        stable = np.array_equal(_nearest_l2(points, new), assign)
        centres = new
        if stable:
            break
    return centres, assign, counts.astype(np.int64)


def kmeans(
    points: npt.NDArray[np.float32], k: int, *, niter: int, seed: int, engine: str
) -> tuple[npt.NDArray[np.float32], list[dict[str, Any]]]:
    """K-means centres (k, D) of points (N, D) and per-iteration statistics (objective, seconds).

    Engines: "faiss" (faiss.Kmeans, on the GPU when the installed faiss has one), "torch" (Lloyd's
    algorithm on CUDA when available, else CPU), "numpy" (Lloyd's algorithm, the reference).
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    if engine == "faiss":
        import faiss

        km = faiss.Kmeans(points.shape[1], k, niter=niter, seed=seed, verbose=False,
                          max_points_per_centroid=max(256, len(points) // k + 1), gpu=faiss.get_num_gpus() > 0)  # fmt: skip
        km.train(points)
        return km.centroids.copy(), [dict(s) for s in km.iteration_stats]
    if engine in ("torch", "numpy"):
        from ._lloyd import lloyd

        return lloyd(points, k, niter=niter, seed=seed, use_torch=engine == "torch")
    raise ValueError(f"unknown K-means engine {engine!r} (faiss | torch | numpy)")


def resolve_engine(engine: str) -> str:
    """auto -> torch when a CUDA device is present, else faiss (CPU). The device check is the search
    engines' (posebank.search.cuda_present), so every stage picks the GPU the same way."""
    if engine != "auto":
        return engine
    from ..search import cuda_present

    return "torch" if cuda_present() else "faiss"


def to_lcrnet_layout(anchors: AnchorSet) -> npt.NDArray[np.float32]:
    """The LCR-Net release layout: float32 (2K, 5J), rows [x(J), y(J), X(J), Y(J), Z(J)].

    Full-body anchors first, then upper-body ones (same 3D). The release stores 3D with X and Y
    negated relative to our camera frame (its Y points up), so X and Y change sign here.
    """
    k, j, _ = anchors.pose_3d.shape
    xyz = anchors.pose_3d * np.array([-1.0, -1.0, 1.0], np.float32)
    rows = []
    for p2 in (anchors.pose_2d_full, anchors.pose_2d_upper):
        rows.append(np.concatenate([p2[..., 0], p2[..., 1], xyz[..., 0], xyz[..., 1], xyz[..., 2]], axis=1))
    return np.concatenate(rows).astype(np.float32).reshape(2 * k, 5 * j)


def from_lcrnet_layout(array: npt.NDArray[np.floating], num_joints: int) -> AnchorSet:
    """Inverse of `to_lcrnet_layout` (members unknown: set to 0)."""
    array = np.asarray(array, dtype=np.float32)
    k2, width = array.shape
    if width != 5 * num_joints or k2 % 2:
        raise ValueError(f"expected (2K, {5 * num_joints}) anchors, got {array.shape}")
    k = k2 // 2
    parts = array.reshape(k2, 5, num_joints)
    xyz = np.stack([-parts[:k, 2], -parts[:k, 3], parts[:k, 4]], axis=-1)
    full = np.stack([parts[:k, 0], parts[:k, 1]], axis=-1)
    upper = np.stack([parts[k:, 0], parts[k:, 1]], axis=-1)
    return AnchorSet(xyz, full, upper, np.zeros(k, np.int64))
