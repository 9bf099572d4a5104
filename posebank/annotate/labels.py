"""Pseudo-3D labels from the k best matches of a person (paper section 3.7 and beyond). Numpy only.

The paper's label is the best match's 3D pose (`top1`). The match ignores what the annotation says
beyond its normalised 2D shape; the other modes use it:
- `topk-mean`: score-weighted average of the k matches' 3D poses (camera frames as stored);
- `depth-transfer`: annotated x, y kept, depth from the best match;
- `fused-fit`: the k matches brought into the query's frame (2D similarity
  on the annotated joints), averaged with weights from their eq. 9 distances, then fitted by least
  squares to the annotated 2D joints with the matches' bone lengths and the fused pose as prior
  (`fit_to_annotation`). The hidden joints are completed in 2D from the fitted pose.
- `lifted-fit` (the default of `annotate`, the best measured): the same fit, with as prior the pose a
  network trained on the bank lifts from the annotation (posebank.annotate.lifter), mixed with the
  fused matches (LabelConfig.lifter_weight): the network combines limbs of different bank poses where
  the matches can only return whole ones.
Each person also gets an error estimate (mm) from the disagreement of the k matches around the
label: it ranks people by the error their label is likely to have (bench/bench_pseudo_gt.py measures
how well, and BENCHMARKS.md holds the numbers).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..geometry import masked_centre_scale
from ..skeleton import Skeleton, body_centre
from .complete import depth_transfer_3d, topk_weighted_3d
from .lifter import Lifted
from .matching import MatchedPoses

LABEL_MODES = ("fused-fit", "lifted-fit", "top1", "topk-mean", "depth-transfer")
DEFAULT_LABEL_MODE = "lifted-fit"


@dataclass(frozen=True)
class LabelConfig:
    """Settings of the `fused-fit` label and of the error estimate. Lengths are in the units of the
    query's normalisation (eq. 9: unit norm over the annotated joints; a whole body is about 1.3 m)."""

    temperature: float = 0.05  # match weights softmax(-(d - d_best) / temperature) over eq. 9 distances
    sigma_2d: float = 0.05  # fit: tolerance of the annotated joints (noise, perspective vs orthographic)
    sigma_bone: float = 0.1  # fit: tolerance of the matches' bone lengths
    sigma_prior: float = 0.1  # fit: tolerance of the fused matches (holds depth signs and hidden joints)
    iterations: int = 8  # fit: Gauss-Newton steps
    # lifted-fit: the prior is this x the lifted pose + the rest x the fused matches. 0.8 with the residual lifter:
    # 0.4-0.7 mm less MPJPE than 0.75 on both seeds of bench_pseudo_gt, no mean worse (BENCHMARKS.md).
    lifter_weight: float = 0.8
    hidden_weight: float = 2.0  # estimate: a hidden joint's 3D spread counts this much (its x, y unknown too)
    mismatch_weight: float = 0.5  # estimate: weight of the best match's per-joint 2D mismatch
    # The spread overstates the label's error by about these factors: median aligned MPJPE / median spread
    # on bench_pseudo_gt (seed 1, a run apart from the reported one): 0.54 around the fused-fit label (the
    # estimate of every mode but lifted-fit), 0.45 around the lifted-fit label (it lies nearer the truth).
    estimate_scale: float = 0.55
    estimate_scale_lifted: float = 0.45


@dataclass(frozen=True)
class PseudoLabels:
    """Labels of Q matched people.

    Attributes:
        pose_3d: (Q, J, 3) float64 m, body-centred, camera frame (x right, y down, z forward).
        completion_2d: (Q, J, 2) float64 the pose whose x, y complete the hidden joints (any units:
            `complete_2d` brings it into the image with the query's centre and scale).
        error_estimate_mm: (Q,) float64 the expected aligned MPJPE of the label (mm), for ranking people:
            the matches' disagreement around the lifted-fit label in that mode, around the fused-fit label
            in every other mode (it measures the matches, not the mode).
    """

    pose_3d: npt.NDArray[np.float64]
    completion_2d: npt.NDArray[np.float64]
    error_estimate_mm: npt.NDArray[np.float64]


def label_poses(
    mode: str,
    query_2d: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_],
    distances: npt.NDArray[np.floating],
    matched: MatchedPoses,
    skeleton: Skeleton,
    config: LabelConfig | None = None,
    lifted: Lifted | None = None,
) -> PseudoLabels:
    """The pseudo-3D poses of one label mode, the 2D completion source and the error estimate.

    Args:
        mode: one of LABEL_MODES.
        query_2d: (Q, J, 2) px; NaN (or anything) outside the mask.
        mask: (Q, J) bool, the annotated joints (at least 2 per person, not all at one point).
        distances: (Q, k) eq. 9 distances of the matches, best first (inf: no match).
        matched: the matches' poses, (Q, k, J, 2|3), best first (NaN where no match).
        skeleton: the bank's.
        lifted: the lifter's poses of the queries (lifter.Lifter.lift); needed by `lifted-fit` only.
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"unknown label mode {mode!r}; choose from {', '.join(LABEL_MODES)}")
    if mode == "lifted-fit" and lifted is None:
        raise ValueError("label mode 'lifted-fit' needs the lifted poses (posebank.annotate.lifter)")
    config = config or LabelConfig()
    best_2d = matched.pose_2d[:, 0].astype(np.float64)
    best_3d = matched.pose_3d[:, 0].astype(np.float64)
    fused = fuse_matches(query_2d, mask, distances, matched, skeleton, config.temperature)
    prior, target_2d = fused.pose, fused.query
    if mode == "lifted-fit":
        prior = config.lifter_weight * lifted.pose_3d + (1.0 - config.lifter_weight) * fused.pose
        # The fit's x, y meet the annotation orthographically; under perspective a joint nearer the camera than
        # the body is seen further out than its x, y. The network's 3D x, y minus its 2D is that offset.
        perspective = lifted.pose_3d[..., :2] - lifted.pose_2d
        target_2d = fused.query + perspective
    fitted = fit_to_annotation(prior, target_2d, mask, fused.bone_lengths, skeleton, sigma_2d=config.sigma_2d,
                               sigma_bone=config.sigma_bone, sigma_prior=config.sigma_prior,
                               iterations=config.iterations)  # fmt: skip
    size_m = fused.size_m
    spread = error_estimate(fused.aligned, fused.valid, fitted, mask, distances[:, 0], config)
    scale = config.estimate_scale_lifted if mode == "lifted-fit" else config.estimate_scale
    estimate = 1000.0 * scale * size_m * spread
    completion = best_2d
    if mode == "top1":
        pose_3d = best_3d
    elif mode == "topk-mean":
        pose_3d = topk_weighted_3d(np.nan_to_num(matched.pose_3d), np.where(fused.valid, distances, np.inf))
    elif mode == "depth-transfer":
        pose_3d = depth_transfer_3d(query_2d, mask, best_2d, best_3d, skeleton)
    else:
        pose_3d = fitted * size_m[:, None, None]
        centre = body_centre(pose_3d, skeleton)[:, None]
        pose_3d = pose_3d - centre
        completion = pose_3d[..., :2]
        if mode == "lifted-fit":
            # Hidden joints where the camera sees the fitted pose: its x, y less the perspective offset. The fit's
            # bone lengths put them 0.002-0.009 torso nearer the truth than the network's 2D alone (BENCHMARKS.md).
            completion = completion - perspective * size_m[:, None, None]
    return PseudoLabels(pose_3d, completion, estimate)


# People per thread below which label_poses_in_threads stays in one thread (a thread's start-up costs more).
MIN_PEOPLE_PER_THREAD = 256


def label_poses_in_threads(threads: int, mode: str, query_2d: npt.NDArray[np.floating], mask: npt.NDArray[np.bool_],
                           distances: npt.NDArray[np.floating], matched: MatchedPoses, skeleton: Skeleton,
                           config: LabelConfig | None = None, lifted: Lifted | None = None) -> PseudoLabels:  # fmt: skip
    """label_poses on `threads` contiguous chunks of the people at once: each person's label depends on its
    own inputs alone, and numpy releases the GIL in the loops that make up most of the work (1,500 people:
    0.24 -> 0.19 s with 2 threads, BENCHMARKS.md). The same labels as one call, to the last bit."""
    q = len(query_2d)
    threads = max(1, min(threads, q // MIN_PEOPLE_PER_THREAD))
    if threads == 1:
        return label_poses(mode, query_2d, mask, distances, matched, skeleton, config, lifted)
    from concurrent.futures import ThreadPoolExecutor

    from ..search.blas_engine import single_threaded_blas

    bounds = np.linspace(0, q, threads + 1).astype(int)
    chunks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def chunk(sl: slice) -> PseudoLabels:
        return label_poses(mode, query_2d[sl], mask[sl], distances[sl], matched.subset(sl), skeleton, config,
                           None if lifted is None else lifted.subset(sl))  # fmt: skip

    with single_threaded_blas(), ThreadPoolExecutor(max_workers=threads) as pool:
        parts = list(pool.map(chunk, chunks))
    return PseudoLabels(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(PseudoLabels)))


@dataclass(frozen=True)
class FusedMatches:
    """The k matches of Q queries in the query's normalised frame (`align_matches`) and their weighted mean.

    Attributes:
        aligned: (Q, k, J, 3) the matches in that frame. valid: (Q, k) the real matches.
        query: (Q, J, 2) the query in that frame (zero outside the mask).
        weights: (Q, k) softmax of the eq. 9 distances (`match_weights`), 0 for invalid matches.
        pose: (Q, J, 3) the weighted mean of the aligned matches (the prior of `fit_to_annotation`).
        bone_lengths: (Q, B) the weighted mean bone lengths of the aligned matches (skeleton.bones).
        size_m: (Q,) metres per normalised unit (the matches' weighted masked 2D scale).
    """

    aligned: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]
    query: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]
    pose: npt.NDArray[np.float64]
    bone_lengths: npt.NDArray[np.float64]
    size_m: npt.NDArray[np.float64]


def fuse_matches(
    query_2d: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_],
    distances: npt.NDArray[np.floating],
    matched: MatchedPoses,
    skeleton: Skeleton,
    temperature: float,
) -> FusedMatches:
    """The matches brought into the query's frame and averaged with weights from their eq. 9 distances.

    Args: as `label_poses`; temperature: LabelConfig.temperature.
    """
    valid = np.isfinite(distances) & np.isfinite(matched.pose_3d).all(axis=(-2, -1))  # (Q, k)
    aligned, query_n, scale = align_matches(query_2d, mask, np.nan_to_num(matched.pose_2d), np.nan_to_num(matched.pose_3d))
    w = match_weights(np.where(valid, distances, np.inf), temperature)
    bones = np.asarray(skeleton.bones)
    lengths = np.einsum("qk,qkb->qb", w, np.linalg.norm(aligned[:, :, bones[:, 0]] - aligned[:, :, bones[:, 1]], axis=-1))
    return FusedMatches(aligned=aligned, valid=valid, query=query_n, weights=w,
                        pose=np.einsum("qk,qkjc->qjc", w, aligned), bone_lengths=lengths,
                        size_m=(w * scale).sum(axis=1))  # fmt: skip


def error_estimate(
    aligned: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    label: npt.NDArray[np.float64],
    mask: npt.NDArray[np.bool_],
    best_distance: npt.NDArray[np.floating],
    config: LabelConfig,
) -> npt.NDArray[np.float64]:
    """The expected per-joint 3D error (Q,) of a label, in the query's normalised units.

    What the annotation leaves open is where the k matches disagree: the depth of an annotated joint
    (its x, y are given) and the whole position of a hidden one. Per joint, the mean distance of the
    valid matches to the label, in depth for annotated joints and in 3D (x `hidden_weight`) for hidden
    ones; averaged over joints, plus the best match's own misfit per annotated joint (eq. 9 distance
    / sqrt(annotated joints), x `mismatch_weight`). Unweighted over the matches on purpose: a second
    match as good as the first is the doubt to measure.

    Args:
        aligned: (Q, k, J, 3) the matches in the query's normalised frame (`align_matches`).
        valid: (Q, k) the real matches. label: (Q, J, 3) in the same frame. mask: (Q, J) annotated.
        best_distance: (Q,) eq. 9 distance of the best match.
    """
    m = np.asarray(mask, bool)
    n = np.maximum(valid.sum(axis=1), 1)[:, None]
    v = valid[:, :, None]
    dz = np.where(v, np.abs(aligned[..., 2] - label[:, None, :, 2]), 0.0).sum(axis=1) / n
    d3 = np.where(v, np.linalg.norm(aligned - label[:, None], axis=-1), 0.0).sum(axis=1) / n
    per_joint = np.where(m, dz, config.hidden_weight * d3).mean(axis=1)
    misfit = np.where(np.isfinite(best_distance), best_distance, 0.0) / np.sqrt(np.maximum(m.sum(axis=1), 1))
    return per_joint + config.mismatch_weight * misfit


def align_matches(
    query_2d: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_],
    match_2d: npt.NDArray[np.floating],
    match_3d: npt.NDArray[np.floating],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The k matches of each query brought into one frame, the query's normalised image frame.

    Eq. 9 compares poses after centring and scaling on the annotated joints, so two matches of one
    query may differ in size and roll (the bank draws rolls of +-15 degrees). Each match is moved by the
    2D similarity that takes its annotated joints onto the query's (Procrustes in the image plane:
    translation, scale to unit norm, rotation about the optical axis) and the same motion is applied
    to its 3D pose, so the k poses can be averaged joint by joint.

    Args:
        query_2d: (Q, J, 2) px, anything outside the mask. mask: (Q, J) bool, the annotated joints.
        match_2d: (Q, k, J, 2) m, orthographic. match_3d: (Q, k, J, 3) m, camera frame.

    Returns:
        poses: (Q, k, J, 3) the matches in the query's normalised frame (x, y, z divided by the match's
            masked 2D scale; masked 2D centre at the origin; depth centred on the masked joints).
        query: (Q, J, 2) the query normalised the same way (zero outside the mask).
        scale: (Q, k) each match's masked 2D scale in metres (its size, to go back to metres).
    """
    m = np.asarray(mask, bool)
    c_q, s_q = masked_centre_scale(query_2d, m)
    qn = np.where(m[..., None], (np.asarray(query_2d, np.float64) - c_q[:, None]) / np.maximum(s_q, 1e-12)[:, None, None], 0.0)
    mk = np.broadcast_to(m[:, None], match_2d.shape[:3])
    c_m, s_m = masked_centre_scale(match_2d, mk)  # (Q, k, 2), (Q, k)
    x = np.asarray(match_3d, np.float64)
    centre_z = np.where(mk, x[..., 2], 0.0).sum(-1) / np.maximum(mk.sum(-1), 1)
    centre = np.concatenate([c_m, centre_z[..., None]], axis=-1)
    xn = (x - centre[:, :, None]) / np.maximum(s_m, 1e-12)[..., None, None]
    # Rotation about z maximising sum over the mask of q . R m: angle atan2(sum q x m, sum q . m).
    mn = np.where(mk[..., None], xn[..., :2], 0.0)
    dot = np.einsum("qjc,qkjc->qk", qn, mn)
    cross = np.einsum("qj,qkj->qk", qn[..., 1], mn[..., 0]) - np.einsum("qj,qkj->qk", qn[..., 0], mn[..., 1])
    theta = np.arctan2(cross, dot)
    c, s = np.cos(theta)[..., None], np.sin(theta)[..., None]
    out = xn.copy()
    out[..., 0] = c * xn[..., 0] - s * xn[..., 1]
    out[..., 1] = s * xn[..., 0] + c * xn[..., 1]
    return out, qn, s_m


def match_weights(distances: npt.NDArray[np.floating], temperature: float) -> npt.NDArray[np.float64]:
    """Weights (Q, k) summing to 1: softmax(-(d - d_best) / temperature) of eq. 9 distances (Q, k)."""
    d = np.asarray(distances, dtype=np.float64)
    d = np.where(np.isfinite(d), d, np.inf)
    w = np.exp(-(d - d[:, :1]) / temperature)
    return w / w.sum(axis=1, keepdims=True)


def fit_to_annotation(
    prior: npt.NDArray[np.float64],
    target_2d: npt.NDArray[np.float64],
    mask: npt.NDArray[np.bool_],
    bone_lengths: npt.NDArray[np.float64],
    skeleton: Skeleton,
    *,
    sigma_2d: float,
    sigma_bone: float,
    sigma_prior: float,
    iterations: int = 8,
) -> npt.NDArray[np.float64]:
    """Least-squares 3D poses (Q, J, 3) that project (orthographically) onto the annotated joints,
    keep the match's bone lengths and stay near the match (the prior), all in one unit of length.

    Minimises, per person, sum_j in S |X_j,xy - t_j|^2 / sigma_2d^2 + sum_bones (|X_c - X_p| - L_b)^2
    / sigma_bone^2 + sum_j |X_j - P_j|^2 / sigma_prior^2 by Gauss-Newton from the prior with the
    annotated x, y put in. This is the classic lifting of a bone's depth from its length and its image
    length, solved jointly: the bone lengths fix the depth differences, the start (the match) picks
    their signs, the prior holds the hidden joints.

    Args:
        prior: (Q, J, 3) the match (or fused matches). target_2d: (Q, J, 2) the annotation in the same
            units and frame (meaningful on the mask). mask: (Q, J) bool.
        bone_lengths: (Q, B) the lengths of `skeleton.bones`.
    """
    q, j, _ = prior.shape
    m = np.asarray(mask, bool)
    target_2d = np.where(m[..., None], target_2d, 0.0)  # NaN outside the mask would poison the sums
    x = prior.copy()
    x[..., :2] = np.where(m[..., None], target_2d, x[..., :2])
    bones = np.asarray(skeleton.bones)
    incidence = np.zeros((len(bones), j))
    incidence[np.arange(len(bones)), bones[:, 0]] = 1.0
    incidence[np.arange(len(bones)), bones[:, 1]] = -1.0
    # The linear terms' normal matrix is diagonal: 1/sigma_2d^2 on the annotated x, y, 1/sigma_prior^2 everywhere.
    diag = np.full((q, j, 3), 1.0 / sigma_prior**2)
    diag[..., :2] += m[..., None] / sigma_2d**2
    inv_diag = 1.0 / diag.reshape(q, 3 * j)
    bone_diagonal = np.arange(len(bones))  # the diagonal of the B x B system
    # Batched matmul, not einsum: einsum's unoptimised loops took half the labelling time (BENCHMARKS.md).
    for _ in range(iterations):
        d = np.matmul(incidence, x)  # (Q, B, 3)
        length = np.linalg.norm(d, axis=-1)
        u = d / np.maximum(length, 1e-9)[..., None]
        r_bone = (length - bone_lengths) / sigma_bone
        g = (incidence[None, :, :, None] * u[:, :, None, :]).reshape(q, len(bones), 3 * j) / sigma_bone  # dr/dX
        grad = (x - prior) / sigma_prior**2
        grad[..., :2] += m[..., None] * (x[..., :2] - target_2d) / sigma_2d**2
        grad = grad.reshape(q, 3 * j) + np.matmul(r_bone[:, None, :], g)[:, 0]
        # The step h^-1 grad, h = diag + g^T g, by the Woodbury identity: one B x B system per person (B bones)
        # where h is 3J x 3J: the same step (to 1e-13), the fit in a third of the time at 1,500 people (BENCHMARKS.md).
        g_inv_diag = g * inv_diag[:, None, :]
        s = np.matmul(g_inv_diag, g.transpose(0, 2, 1))
        s[:, bone_diagonal, bone_diagonal] += 1.0
        y = np.linalg.solve(s, np.matmul(g_inv_diag, grad[..., None]))
        step = inv_diag * grad - np.matmul(g_inv_diag.transpose(0, 2, 1), y)[..., 0]
        x = x - step.reshape(q, j, 3)
    return x
