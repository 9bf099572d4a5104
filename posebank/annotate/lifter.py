"""A 2D-to-3D lifting network learnt from the bank: the prior of the `lifted-fit` label.

A nearest-neighbour label can only return whole bank poses; a network trained on the same bank
combines the limbs of different poses (Martinez et al. 2017, "A simple yet effective baseline for 3D
human pose estimation"). Here it is an MLP, 3J -> width -> ... -> 5J, that maps a masked 2D pose in
the frame of paper eq. 9 to its 3D pose in the same frame, and to where the camera sees every joint:

    input   (3J,) the annotated joints centred on their mean and divided by their Frobenius norm
            (x, y; zero where hidden), then the mask (1 annotated, 0 hidden);
    output  (5J,) per joint x, y in the same units and frame as the input, depth (z forward) centred on
            the annotated joints, same units; then the joint's noise-free 2D position, same frame. The
            two differ by perspective: a hand nearer the camera than the body is seen further out than
            its x, y, and the hidden joints' 2D completion needs where it is seen. With residual_2d (the
            default) the layers give x, y and the 2D position as offsets from the input's x, y (input_offsets):
            an annotated joint's 2D is its input less the noise, which the layers need not learn to copy.

It learns from bank rows alone: each batch draws bank poses, turns each to a new random camera drawn as
the bank draws its views (fresh_views: every azimuth, not the bank's few per pose), exchanges limbs between
them (mix_limbs), gives them other body proportions (scale_proportions) and optionally mirrors them,
projects them with a pinhole camera at a random distance and off the optical axis (off_axis_image: real
images are perspective, people stand anywhere in them, the bank is orthographic), adds 2D noise
proportional to the person's height and hides the joints of masks drawn from the dataset's own visibility
patterns. Training uses torch, once per bank, mask set and LifterConfig; the
weights are stored beside the bank, keyed by all three (<bank>/.index/lifter-<key>, posebank.stored_arrays),
and inference is numpy matmuls, so a run that reuses them does not import torch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..config import ViewConfig
from ..geometry import camera_to_world, masked_centre_scale, ray_to_axis, rotate, view_rotation, world_to_camera
from ..progress import ProgressFactory, no_progress
from ..provenance import sha256_bytes
from ..skeleton import J13_NAMES, Skeleton

LOG = logging.getLogger(__name__)

_FORMAT = 2  # bump when the network, its input or its training changes meaning (2: the 2D output)
_LIFT_CHUNK = 8192  # people per forward pass of Lifter.lift: 32 MiB per hidden layer of 1024 units


@dataclass(frozen=True)
class LifterConfig:
    """Architecture and training of the lifter (the defaults are bench/bench_pseudo_gt.py's measured choice)."""

    width: int = 1024  # hidden units per layer
    hidden_layers: int = 2
    dropout: float = 0.1  # 0.2 gave 0.6 mm more MPJPE on held-out subjects (BENCHMARKS.md)
    # Batches: 12-13 minutes on 2 CPU cores, once per bank and dataset. 19200 gave 1 mm less MPJPE and 0.7-1 mm less
    # aligned error than 9600 on both seeds of bench_pseudo_gt, as 9600 gave 1.2 mm less than 4800 (BENCHMARKS.md).
    steps: int = 19200
    batch_size: int = 512
    lr: float = 1e-3  # AdamW, one-cycle schedule
    weight_decay: float = 1e-4
    noise_height: float = 0.01  # 2D noise sigma, fraction of the pose's image height
    distance_m: tuple[float, float] = (2.5, 7.0)  # camera to body distance of the training views (m)
    # Each training pose seen by a new random camera, drawn as the bank draws its views (the bank's ViewConfig
    # ranges), instead of the bank's few cameras per pose: every azimuth, elevation and roll, not 12 of them.
    # With off_axis, 80.3 -> 79.5 mm MPJPE and hidden-joint 2D 0.254 -> 0.251 torso (bench_pseudo_gt, BENCHMARKS.md).
    fresh_views: bool = True
    # The body centre up to this fraction of its distance off the optical axis (radially, uniform over the
    # disc), as people stand anywhere in a photo; the target is the pose turned so that its viewing ray is the
    # axis (what the image shows, posebank.geometry.ray_to_axis). 0 = always on the axis.
    off_axis: float = 0.25
    mirror: bool = True  # half of the training poses mirrored (left/right exchanged)
    # Chance that each limb of a training pose is another pose's, in its torso frame (mix_limbs): 0.5 took
    # 3 mm off the MPJPE of held-out subjects (87 -> 84 mm, BENCHMARKS.md).
    limb_mix: float = 0.5
    # Whether a limb the training view hides is exchanged too. A hidden limb has no 2D to learn its depth from:
    # exchanged, it only teaches that hidden limbs are anyone's; kept, the network learns where this pose's
    # own limbs are (the hidden legs of a sitting torso are a sitting person's legs). False: hidden-joint 2D
    # error 0.251 -> 0.246 and 0.252 -> 0.250 torso on the two seeds of bench_pseudo_gt (BENCHMARKS.md).
    mix_hidden_limbs: bool = False
    # Log-normal sigma of each body proportion of a training pose (scale_proportions): a bank of a few
    # subjects has few body shapes, the people to label have others. 0 keeps the bank's proportions.
    proportion_sigma: float = 0.06
    # The network's x, y and u, v are offsets from the input's x, y (zero where hidden): it need not learn to
    # copy the annotated joints. 0.7-0.9 mm less MPJPE on held-out subjects (BENCHMARKS.md).
    residual_2d: bool = True
    pool_rows: int = 1_000_000  # bank rows held in memory to draw batches from (all rows if fewer)
    seed: int = 0
    threads: int = 2  # torch CPU threads while training

    def __post_init__(self) -> None:
        if self.steps < 4:  # the one-cycle schedule needs a warm-up and a decay of 2 steps each at least
            raise ValueError(f"lifter steps must be >= 4, got {self.steps}")
        if not 0.0 <= self.off_axis < 1.0:
            raise ValueError(f"lifter off_axis must be in [0, 1), got {self.off_axis}")


@dataclass(frozen=True)
class Lifter:
    """A trained lifter: weights (in, out) and biases of its layers, ReLU between them (dropout gone,
    the inference network)."""

    weights: tuple[npt.NDArray[np.float32], ...]
    biases: tuple[npt.NDArray[np.float32], ...]
    flip_permutation: tuple[int, ...]  # the skeleton's, for the mirrored second pass
    residual_2d: bool = False  # LifterConfig.residual_2d of its training
    key: str = ""  # lifter_key of a stored lifter (its provenance in the annotation shards)

    def lift(self, pose_2d: npt.NDArray[np.floating], mask: npt.NDArray[np.bool_]) -> Lifted:
        """The network's poses for masked 2D poses (Q, J, 2) (any units; NaN outside the mask is fine), in
        their eq. 9 frame: the mean of the network's output and that of the mirrored input, mirrored back
        (test-time flip, as in pose estimation practice). People go through in chunks of _LIFT_CHUNK, so
        memory stays bounded (each hidden layer holds people x width floats)."""
        pose_2d, mask = np.asarray(pose_2d), np.asarray(mask, bool)
        if len(mask) == 0:  # the network's reshapes need rows
            return Lifted(np.zeros((0, mask.shape[1], 3)), np.zeros((0, mask.shape[1], 2)))
        parts = [self._lift(pose_2d[a : a + _LIFT_CHUNK], mask[a : a + _LIFT_CHUNK]) for a in range(0, len(mask), _LIFT_CHUNK)]
        if len(parts) == 1:
            return parts[0]
        return Lifted(np.concatenate([p.pose_3d for p in parts]), np.concatenate([p.pose_2d for p in parts]))

    def _lift(self, pose_2d: npt.NDArray[np.floating], mask: npt.NDArray[np.bool_]) -> Lifted:
        direct = self._forward(network_input(pose_2d, mask))
        flip = list(self.flip_permutation)
        mirrored_2d = np.asarray(pose_2d, np.float64)[:, flip] * np.array([-1.0, 1.0])
        mirror_xyzuv = np.array([-1.0, 1.0, 1.0, -1.0, 1.0])
        mirrored = self._forward(network_input(mirrored_2d, mask[:, flip]))[:, flip] * mirror_xyzuv
        mean = 0.5 * (direct + mirrored)
        return Lifted(pose_3d=mean[..., :3], pose_2d=mean[..., 3:])

    def _forward(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """(Q, 3J) network inputs -> (Q, J, 5): per joint the 3D pose, then the 2D pose (`network_target`)."""
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                np.maximum(h, 0.0, out=h)
        if self.residual_2d:
            h += input_offsets(x)
        return h.astype(np.float64).reshape(len(x), -1, 5)


@dataclass(frozen=True)
class Lifted:
    """A lifter's output for Q people, in the eq. 9 frame of their masked 2D poses (`network_target`).

    Attributes:
        pose_3d: (Q, J, 3) the 3D pose.
        pose_2d: (Q, J, 2) the noise-free 2D pose as the camera sees it, hidden joints included (where
            perspective puts them, which no orthographic projection of pose_3d does).
    """

    pose_3d: npt.NDArray[np.float64]
    pose_2d: npt.NDArray[np.float64]

    def subset(self, rows: slice | npt.NDArray[np.intp]) -> Lifted:
        return Lifted(self.pose_3d[rows], self.pose_2d[rows])


def network_input(pose_2d: npt.NDArray[np.floating], mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """(Q, 3J) float32: the masked 2D poses (Q, J, 2) centred and scaled as in eq. 9, zero where hidden, then the mask."""
    centre, scale = masked_centre_scale(pose_2d, mask)
    x = (np.asarray(pose_2d, np.float64) - centre[:, None]) / np.maximum(scale, 1e-12)[:, None, None]
    x = np.where(mask[..., None], x, 0.0)
    return np.concatenate([x.reshape(len(x), -1), mask], axis=1, dtype=np.float32)


def input_offsets(inputs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(Q, 5J) the x, y of network inputs (Q, 3J) laid out as network_target's x, y and u, v (depth 0): what a
    residual_2d network adds to its output."""
    j = inputs.shape[1] // 3
    xy = inputs[:, : 2 * j].reshape(len(inputs), j, 2)
    return np.concatenate([xy, np.zeros_like(xy[..., :1]), xy], axis=-1).reshape(len(inputs), -1)


def network_target(
    pose_3d: npt.NDArray[np.floating], pose_2d: npt.NDArray[np.floating], mask: npt.NDArray[np.bool_],
    clean_2d: npt.NDArray[np.floating] | None = None,
) -> npt.NDArray[np.float32]:
    """(Q, 5J) float32, per joint (x, y, z, u, v): 3D poses (Q, J, 3) in the eq. 9 frame of their (perspective,
    noisy) 2D poses (Q, J, 2), both in metres (x, y minus the masked 2D centre, depth minus the masked joints'
    mean depth, all over the 2D scale), then the noise-free 2D poses `clean_2d` (Q, J, 2) (default `pose_2d`)
    in the same frame."""
    centre, scale = masked_centre_scale(pose_2d, mask)
    depth = np.where(mask, pose_3d[..., 2], 0.0).sum(1) / np.maximum(mask.sum(1), 1)
    clean = pose_2d if clean_2d is None else clean_2d
    centred = np.concatenate([pose_3d[..., :2] - centre[:, None], (pose_3d[..., 2] - depth[:, None])[..., None],
                              clean - centre[:, None]], -1)  # fmt: skip
    return (centred / np.maximum(scale, 1e-12)[:, None, None]).reshape(len(pose_3d), -1).astype(np.float32)


def training_views(
    pose_3d_m: npt.NDArray[np.floating], mask: npt.NDArray[np.bool_], rng: np.random.Generator,
    config: LifterConfig, skeleton: Skeleton,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:  # fmt: skip
    """One batch: bank poses (B, J, 3) m, camera frame, body-centred, seen as images are -> (inputs, targets).

    Limbs exchanged between the poses (mix_limbs, config.limb_mix; not those `mask` hides unless
    config.mix_hidden_limbs); body proportions varied
    (scale_proportions, config.proportion_sigma); mirrored (x negated, left and right
    exchanged) with probability 1/2 when config.mirror; projected by a pinhole at a distance drawn from
    config.distance_m (the focal length drops out of eq. 9), off the optical axis by up to
    config.off_axis of that distance (the pose given is then the one seen turned to its viewing ray, and the
    2D is the off-axis image, shifted so that the body centre projects to 0); noise of
    config.noise_height x the projected height; joints outside `mask` (B, J) hidden. The targets hold the
    noise-free 2D too (network_target)."""
    p = np.asarray(pose_3d_m, np.float64)
    if config.limb_mix > 0:
        p = mix_limbs(p, rng, config.limb_mix, skeleton, None if config.mix_hidden_limbs else mask)
    if config.proportion_sigma > 0:
        p = scale_proportions(p, rng, config.proportion_sigma, skeleton)
    if config.mirror:
        flip = rng.random(len(p)) < 0.5
        p = np.where(flip[:, None, None], p[:, list(skeleton.flip_permutation)] * np.array([-1.0, 1.0, 1.0]), p)
    distance = rng.uniform(*config.distance_m, size=(len(p), 1))
    if config.off_axis > 0:
        radius = config.off_axis * distance[:, 0] * np.sqrt(rng.uniform(0.0, 1.0, len(p)))
        angle = rng.uniform(0.0, 2 * np.pi, len(p))
        clean_2d = off_axis_image(p, np.stack([radius * np.cos(angle), radius * np.sin(angle), distance[:, 0]], 1))
    else:
        clean_2d = p[..., :2] * (distance / (distance + p[..., 2]))[..., None]
    height = np.ptp(clean_2d[..., 1], axis=1)
    pose_2d = clean_2d + rng.normal(size=clean_2d.shape) * (config.noise_height * height)[:, None, None]
    return network_input(pose_2d, mask), network_target(p, pose_2d, mask, clean_2d)


def off_axis_image(pose_3d_m: npt.NDArray[np.floating], centre_m: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """(B, J, 2) the pinhole image of people whose body centres are at `centre_m` (B, 3) m, camera frame, and
    whose poses seen turned to their viewing rays are `pose_3d_m` (B, J, 3) m, body-centred: in units of
    metres at the centre's depth (focal length = that depth), less the image of the centre."""
    c = np.asarray(centre_m, np.float64)
    cam = rotate(np.asarray(pose_3d_m, np.float64), np.swapaxes(ray_to_axis(c), 1, 2)) + c[:, None]
    return (cam[..., :2] / cam[..., 2:] - (c[:, :2] / c[:, 2:])[:, None]) * c[:, None, 2:]


def fresh_views(
    pose_world_m: npt.NDArray[np.floating], rng: np.random.Generator, view: ViewConfig
) -> npt.NDArray[np.float64]:
    """Body-centred world poses (B, J, 3) m seen by one new random camera each (B, J, 3) m, camera frame:
    azimuth uniform over 360 degrees, elevation and roll uniform in `view`'s ranges, as the bank draws them
    (posebank.bank.views.draw_views)."""
    return world_to_camera(np.asarray(pose_world_m, np.float64), random_view_rotations(rng, len(pose_world_m), view))


def random_view_rotations(rng: np.random.Generator, n: int, view: ViewConfig) -> npt.NDArray[np.float64]:
    """(n, 3, 3) world-to-camera rotations of random cameras: azimuth uniform over 360 degrees, elevation and
    roll uniform in `view`'s ranges (the bank's kind of view, drawn from `rng` rather than hashed per pose)."""
    azimuth = rng.uniform(0.0, 2 * np.pi, n)
    elevation = np.deg2rad(rng.uniform(view.elevation_min_deg, view.elevation_max_deg, n))
    roll = np.deg2rad(rng.uniform(-view.roll_max_deg, view.roll_max_deg, n))
    return view_rotation(azimuth, elevation, roll)


# The arms and the legs as (root, middle, end) chains, in right/left pairs: mix_limbs exchanges each chain
# between poses; scale_proportions scales both chains of a pair by the same factors.
_LIMB_PAIRS = (
    (("right_shoulder", "right_elbow", "right_wrist"), ("left_shoulder", "left_elbow", "left_wrist")),
    (("right_hip", "right_knee", "right_ankle"), ("left_hip", "left_knee", "left_ankle")),
)


def torso_frames(pose_3d: npt.NDArray[np.float64], skeleton: Skeleton) -> npt.NDArray[np.float64]:
    """(B, 3, 3) orthonormal torso frames of poses (B, J, 3), as columns: to the body's left (the hip and
    shoulder lines), up the spine (orthogonalised), and their cross product."""
    j = skeleton.index
    left = (pose_3d[:, j("left_hip")] - pose_3d[:, j("right_hip")]
            + pose_3d[:, j("left_shoulder")] - pose_3d[:, j("right_shoulder")])  # fmt: skip
    up = (pose_3d[:, j("left_shoulder")] + pose_3d[:, j("right_shoulder")]
          - pose_3d[:, j("left_hip")] - pose_3d[:, j("right_hip")])  # fmt: skip
    e1 = left / np.maximum(np.linalg.norm(left, axis=1, keepdims=True), 1e-12)
    up = up - (up * e1).sum(1, keepdims=True) * e1
    e2 = up / np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-12)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def mix_limbs(
    pose_3d: npt.NDArray[np.float64], rng: np.random.Generator, chance: float, skeleton: Skeleton,
    visible: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.float64]:
    """Poses (B, J, 3) with each limb, with probability `chance`, taken from another pose of the batch;
    with `visible` (B, J), only limbs whose moved joints (middle and end) are both visible.

    The donor's limb, relative to its root joint and expressed in the donor's torso frame, is attached at
    the pose's own root in the pose's torso frame: an arm raised to the side stays raised to the side.
    A bank of a few subjects holds few combinations of limb positions; a lifter that sees these learns
    each limb's depth from its own 2D, not from the poses it memorised (the torso is unchanged, and with it
    the body centre)."""
    frames = torso_frames(pose_3d, skeleton)
    mixed = pose_3d.copy()
    for root_name, *joint_names in (chain for pair in _LIMB_PAIRS for chain in pair):
        root, joints = skeleton.index(root_name), [skeleton.index(n) for n in joint_names]
        take = rng.random(len(pose_3d)) < chance
        if visible is not None:
            take &= visible[:, joints].all(axis=1)
        donor = rng.integers(0, len(pose_3d), len(pose_3d))
        limb = pose_3d[donor[:, None], joints] - pose_3d[donor, root][:, None]
        local = np.einsum("bkc,bcd->bkd", limb, frames[donor])
        placed = pose_3d[:, root, None] + np.einsum("bkd,bcd->bkc", local, frames)
        mixed[:, joints] = np.where(take[:, None, None], placed, mixed[:, joints])
    return mixed


def scale_proportions(
    pose_3d: npt.NDArray[np.float64], rng: np.random.Generator, sigma: float, skeleton: Skeleton
) -> npt.NDArray[np.float64]:
    """Poses (B, J, 3) m given another body's proportions: per pose, hip width, shoulder width, torso
    length, head offset, upper arms, forearms, thighs and shins each scaled by exp(N(0, sigma)), the same
    factor on both sides (people are near-symmetric). The mid-hip stays put, the joint angles too: each
    segment keeps its direction, and what hangs from it moves with its end. j17's spine joints scale with
    the torso length about the mid-hip."""
    j = skeleton.index
    b = len(pose_3d)

    def factor() -> npt.NDArray[np.float64]:
        return np.exp(rng.normal(0.0, sigma, (b, 1)))

    p, out = pose_3d, pose_3d.copy()
    rh, lh, rs, ls, head = (j(n) for n in ("right_hip", "left_hip", "right_shoulder", "left_shoulder", "head"))
    mid_hip, mid_shoulder = 0.5 * (p[:, rh] + p[:, lh]), 0.5 * (p[:, rs] + p[:, ls])
    half_hips, half_shoulders = 0.5 * (p[:, lh] - p[:, rh]) * factor(), 0.5 * (p[:, ls] - p[:, rs]) * factor()
    torso = factor()
    new_mid_shoulder = mid_hip + (mid_shoulder - mid_hip) * torso
    out[:, rh], out[:, lh] = mid_hip - half_hips, mid_hip + half_hips
    out[:, rs], out[:, ls] = new_mid_shoulder - half_shoulders, new_mid_shoulder + half_shoulders
    out[:, head] = new_mid_shoulder + (p[:, head] - mid_shoulder) * factor()
    for pair in _LIMB_PAIRS:
        upper, lower = factor(), factor()
        for root, mid, end in ([j(n) for n in chain] for chain in pair):
            out[:, mid] = out[:, root] + (p[:, mid] - p[:, root]) * upper
            out[:, end] = out[:, mid] + (p[:, end] - p[:, mid]) * lower
    spine = [i for i, name in enumerate(skeleton.joint_names) if name not in J13_NAMES]  # j17's pelvis ... neck
    out[:, spine] = mid_hip[:, None] + (p[:, spine] - mid_hip[:, None]) * torso[:, None]
    return out


def train_lifter(
    pool_3d_m: npt.NDArray[np.floating], masks: npt.NDArray[np.bool_], skeleton: Skeleton, config: LifterConfig,
    progress: ProgressFactory = no_progress, *, pool_rotations: npt.NDArray[np.floating] | None = None,
    view: ViewConfig | None = None,
) -> Lifter:
    """Train a lifter on bank poses `pool_3d_m` (N, J, 3) m (camera frame) with visibility patterns `masks` (M, J).

    config.fresh_views needs the rows' world-to-camera rotations `pool_rotations` (N, 3, 3) (the bank's
    azimuth, elevation and roll columns through posebank.geometry.view_rotation) and the bank's `view` ranges.
    Deterministic for the same inputs, config and machine (seeded torch and numpy generators)."""
    import torch

    if len(pool_3d_m) == 0 or len(masks) == 0:
        raise ValueError("the lifter needs bank poses and at least one visibility pattern")
    if config.fresh_views:
        if pool_rotations is None or view is None:
            raise ValueError("fresh_views needs the bank rows' camera rotations and the bank's view ranges")
        pool_3d_m = camera_to_world(np.asarray(pool_3d_m, np.float64), pool_rotations).astype(np.float32)
    j = skeleton.num_joints
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        layers: list[torch.nn.Module] = []
        width_in = 3 * j
        for _ in range(config.hidden_layers):
            layers += [torch.nn.Linear(width_in, config.width), torch.nn.ReLU(), torch.nn.Dropout(config.dropout)]
            width_in = config.width
        net = torch.nn.Sequential(*layers, torch.nn.Linear(width_in, 5 * j))
        optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps,
                                                       pct_start=max(0.05, 2 / config.steps))  # fmt: skip
        start = time.perf_counter()
        net.train()
        for _ in progress(range(config.steps), "lifter: training batches (once per bank and dataset)", config.steps):
            rows = rng.integers(0, len(pool_3d_m), config.batch_size)
            poses = fresh_views(pool_3d_m[rows], rng, view) if view is not None and config.fresh_views else pool_3d_m[rows]
            inputs, targets = training_views(poses, masks[rng.integers(0, len(masks), config.batch_size)],
                                             rng, config, skeleton)  # fmt: skip
            if config.residual_2d:
                targets = targets - input_offsets(inputs)
            loss = (net(torch.from_numpy(inputs)) - torch.from_numpy(targets)).abs().mean()  # L1: robust to odd poses
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        LOG.info("lifter: %d steps in %.0f s, last L1 %.4f", config.steps, time.perf_counter() - start, loss.item())
        linear = [m for m in net if isinstance(m, torch.nn.Linear)]
        return Lifter(
            weights=tuple(m.weight.detach().numpy().T.copy() for m in linear),
            biases=tuple(m.bias.detach().numpy().copy() for m in linear),
            flip_permutation=tuple(skeleton.flip_permutation),
            residual_2d=config.residual_2d,
        )
    finally:
        torch.set_num_threads(previous_threads)


def visibility_patterns(mask: npt.NDArray[np.bool_], min_joints: int) -> npt.NDArray[np.bool_]:
    """The visibility patterns (M, J) to train on: every person's mask (Q, J) with at least `min_joints`
    joints, sorted, so the same dataset gives the same patterns in any order and any --part."""
    m = np.asarray(mask, bool)
    m = m[m.sum(1) >= max(min_joints, 2)]
    return m[np.lexsort(m.T[::-1])] if len(m) else m


def lifter_key(content_sha256: str, masks: npt.NDArray[np.bool_], config: LifterConfig) -> str:
    """The identity of a trained lifter: the bank's content, the visibility patterns and the config."""
    params = json.dumps(dataclasses.asdict(config), sort_keys=True)
    return sha256_bytes(str(_FORMAT), content_sha256, np.packbits(masks, axis=1).tobytes().hex(), str(masks.shape), params)[:32]


def stored_lifter(
    bank: Any, masks: npt.NDArray[np.bool_], config: LifterConfig | None = None, *,
    content_sha256: str | None = None, bank_rows: Any = None, store: bool = True,
    progress: ProgressFactory = no_progress,
) -> tuple[Lifter, bool]:  # fmt: skip
    """The lifter of `bank` (posebank.bank.Bank) for visibility patterns `masks` (M, J): loaded from
    <bank>/.index/lifter-<key> when there and verified (load_lifter), else trained on a seeded sample of
    the bank's rows and stored. Returns (lifter, reused).

    bank_rows: matching.open_bank_rows(bank), to draw the training rows from its stored table."""
    from ..search.ivf_store import INDEX_DIR
    from ..stored_arrays import save_arrays
    from .matching import BankRows

    config = config or LifterConfig()
    content = content_sha256 or _manifest_sha256(bank)
    loaded = load_lifter(bank, masks, config, content_sha256=content) if store else None
    if loaded is not None:
        return loaded, True
    key = lifter_key(content, masks, config)
    folder = Path(bank.root) / INDEX_DIR / f"lifter-{key}"
    rng = np.random.default_rng(config.seed)
    n = bank.num_rows
    rows = np.arange(n) if n <= config.pool_rows else np.sort(rng.choice(n, config.pool_rows, replace=False))
    pool = (bank_rows or BankRows(bank, None)).take(rows)["pose_3d"]
    rotations, view = None, None
    if config.fresh_views:
        rotations, view = bank_rotations(bank, rows), ViewConfig(**bank.manifest["config"]["view"])
    trained = train_lifter(pool, masks, bank.skeleton, config, progress, pool_rotations=rotations, view=view)
    lifter = dataclasses.replace(trained, key=key)
    if store:
        arrays = {f"weight{i}": w for i, w in enumerate(lifter.weights)} | {f"bias{i}": b for i, b in enumerate(lifter.biases)}
        meta = {"format": _FORMAT, "config": dataclasses.asdict(config), "patterns": int(len(masks)), "pool_rows": int(len(rows))}
        save_arrays(folder, key, arrays, meta)
    return lifter, False


def bank_rotations(bank: Any, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """(n, 3, 3) the world-to-camera rotations of sorted bank `rows`, from their view angle columns."""
    angles = bank.take(rows, columns=("azimuth_deg", "elevation_deg", "roll_deg"))
    return view_rotation(*(np.deg2rad(angles[c]) for c in ("azimuth_deg", "elevation_deg", "roll_deg")))


def load_lifter(bank: Any, masks: npt.NDArray[np.bool_], config: LifterConfig, *,
                content_sha256: str | None = None) -> Lifter | None:  # fmt: skip
    """The stored lifter of `bank` for `masks` and `config` (stored_lifter's), or None when none is stored."""
    from ..search.ivf_store import INDEX_DIR
    from ..stored_arrays import load_arrays

    key = lifter_key(content_sha256 or _manifest_sha256(bank), masks, config)
    names = [f"{kind}{i}" for i in range(config.hidden_layers + 1) for kind in ("weight", "bias")]
    loaded = load_arrays(Path(bank.root) / INDEX_DIR / f"lifter-{key}", key, names)
    if loaded is None:
        return None
    arrays = loaded[0]
    return Lifter(
        weights=tuple(np.asarray(arrays[f"weight{i}"]) for i in range(config.hidden_layers + 1)),
        biases=tuple(np.asarray(arrays[f"bias{i}"]) for i in range(config.hidden_layers + 1)),
        flip_permutation=tuple(bank.skeleton.flip_permutation),
        residual_2d=config.residual_2d,
        key=key,
    )


def _manifest_sha256(bank: Any) -> str:
    from ..bank import MANIFEST
    from ..provenance import sha256_file

    return sha256_file(bank.root / MANIFEST)
