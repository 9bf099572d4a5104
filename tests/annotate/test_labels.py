"""Label modes (posebank.annotate.labels): the matches' common frame, the fit to the annotation, and
the fused-fit label and its error estimate on real MoCap poses the bank never saw."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from posebank.annotate.labels import LABEL_MODES, align_matches, fit_to_annotation, label_poses, label_poses_in_threads
from posebank.annotate.lifter import LifterConfig, stored_lifter, visibility_patterns
from posebank.annotate.matching import gather_matches, search_bank
from posebank.bank import open_bank
from posebank.bank.build import build_bank
from posebank.bank.canonical import canonical_poses
from posebank.config import BankConfig, ViewConfig
from posebank.geometry import masked_centre_scale, view_rotation
from posebank.mocap.sources import discover
from posebank.skeleton import body_centre, get_skeleton

SK = get_skeleton("j13")
DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "cmu"


def _rot_z(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _real_poses(n: int) -> np.ndarray:
    """(n, 13, 3) body-centred camera-frame poses of the real CMU 09_12 fixture seen from varied views."""
    job = [j for j in discover("cmu", DEMO)[0] if j.subject == "09"][0]
    poses = canonical_poses(job, SK, 30.0).poses_m.astype(np.float64)[:n]
    rng = np.random.default_rng(0)
    rot = view_rotation(rng.uniform(0, 2 * np.pi, len(poses)), rng.uniform(-0.2, 0.6, len(poses)), np.zeros(len(poses)))
    return np.einsum("nij,nkj->nki", rot, poses)


def test_align_matches_undoes_a_2d_similarity() -> None:
    """A match that is the query turned about the optical axis, scaled and shifted comes back onto the
    query's normalised joints, and its 3D pose is moved by the same similarity."""
    pose = _real_poses(3)  # (3, J, 3) m
    mask = np.ones((3, SK.num_joints), bool)
    mask[:, [0, 3]] = False
    px = 300.0 * pose[..., :2] + 500.0
    match_3d = 0.8 * np.einsum("ij,nkj->nki", _rot_z(0.2), pose) + np.array([0.1, -0.2, 3.0])
    aligned, query_n, scale = align_matches(px, mask, match_3d[:, None, :, :2], match_3d[:, None])
    np.testing.assert_allclose(aligned[:, 0, :, :2][mask], query_n[mask], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(query_n, axis=(1, 2)), 1.0)
    # Depth: the query's own depths (centred on the annotated joints) over the query's 2D scale.
    z = pose[..., 2] - np.where(mask, pose[..., 2], 0).sum(1, keepdims=True) / mask.sum(1, keepdims=True)
    _, s_true = masked_centre_scale(pose[..., :2], mask)  # the query's masked 2D size, m
    np.testing.assert_allclose(aligned[:, 0, :, 2], z / s_true[:, None], atol=1e-9)
    np.testing.assert_allclose(scale[:, 0], 0.8 * s_true)


def test_fit_keeps_a_consistent_pose_and_repairs_depth() -> None:
    """The truth is a fixed point of the fit; a prior with the right depth order but squashed depths is
    pulled back towards the truth by the bone lengths, with the annotated x, y matched."""
    true = _real_poses(20)
    mask = np.ones(true.shape[:2], bool)
    mask[:10, 12] = False
    bones = np.asarray(SK.bones)
    lengths = np.linalg.norm(true[:, bones[:, 0]] - true[:, bones[:, 1]], axis=-1)
    kw = dict(sigma_2d=0.01, sigma_bone=0.01, sigma_prior=0.3)
    np.testing.assert_allclose(fit_to_annotation(true, true[..., :2], mask, lengths, SK, **kw), true, atol=1e-6)
    squashed = true * np.array([1.0, 1.0, 0.4])
    fitted = fit_to_annotation(squashed, true[..., :2], mask, lengths, SK, **kw)
    before = np.abs(squashed[..., 2] - true[..., 2]).mean()
    after = np.abs(fitted[..., 2] - true[..., 2]).mean()
    assert after < 0.6 * before, (before, after)
    np.testing.assert_allclose(fitted[..., :2][mask], true[..., :2][mask], atol=0.02)


@pytest.fixture(scope="module")
def held_out(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A bank of the real CMU 09 and 135 motions (8 views) and queries of subject 131 (never in it):
    perspective views at 3 m with 2D noise, the lower legs hidden for a third of them."""
    root = tmp_path_factory.mktemp("cmu")
    for subject in ("09", "135"):
        shutil.copytree(shared_data / "cmu" / "subjects" / subject, root / "subjects" / subject)
    out = tmp_path_factory.mktemp("bank")
    build_bank(BankConfig(sources=(("cmu", str(root)),), out=str(out), view=ViewConfig(views=8)))
    job = [j for j in discover("cmu", shared_data / "cmu" / "subjects")[0] if j.subject == "131"][0]
    world = canonical_poses(job, SK, 30.0).poses_m.astype(np.float64)[::4]
    rng = np.random.default_rng(1)
    n = len(world)
    rot = view_rotation(rng.uniform(0, 2 * np.pi, n), np.deg2rad(rng.uniform(-15, 45, n)), np.zeros(n))
    true = np.einsum("nij,nkj->nki", rot, world)
    cam = true + np.array([0.0, 0.0, 3.0])
    px = 1200.0 * cam[..., :2] / cam[..., 2:] + rng.normal(scale=2.0, size=cam.shape[:2] + (2,))
    mask = np.ones(true.shape[:2], bool)
    mask[: n // 3, :4] = False
    bank = open_bank(out)
    matches = search_bank(bank, np.where(mask[..., None], px, np.nan), mask, 20)
    # lifted-fit's network, shorter trained than the default to keep the test quick
    lifter, _ = stored_lifter(bank, visibility_patterns(mask, 3), LifterConfig(steps=300))
    return {"true": true, "px": px, "mask": mask, "matches": matches, "got": gather_matches(bank, matches.rows),
            "lifted": lifter.lift(np.where(mask[..., None], px, np.nan), mask)}  # fmt: skip


def _aligned_mpjpe_mm(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    mp, mt = pred.mean(1, keepdims=True), true.mean(1, keepdims=True)
    u, _, vt = np.linalg.svd(np.einsum("nji,njk->nik", pred - mp, true - mt))
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, -1] *= d[:, None]
    return 1000 * np.linalg.norm(np.einsum("nji,nik->njk", pred - mp, u @ vt) + mt - true, axis=-1).mean(1)


def test_fits_beat_top1_on_a_held_out_subject(held_out: dict) -> None:
    h = held_out
    errors = {}
    for mode in LABEL_MODES:
        labels = label_poses(mode, h["px"], h["mask"], h["matches"].distances, h["got"], SK, lifted=h["lifted"])
        assert labels.pose_3d.shape == h["true"].shape and np.isfinite(labels.pose_3d).all()
        np.testing.assert_allclose(body_centre(labels.pose_3d, SK), 0.0, atol=1e-6 if mode.endswith("-fit") else 0.05)
        errors[mode] = np.median(_aligned_mpjpe_mm(labels.pose_3d, h["true"]))
    assert errors["fused-fit"] < 0.9 * errors["top1"], errors
    assert errors["lifted-fit"] < 0.9 * errors["top1"], errors
    with pytest.raises(ValueError, match="lifted"):
        label_poses("lifted-fit", h["px"], h["mask"], h["matches"].distances, h["got"], SK)
    again = label_poses("fused-fit", h["px"], h["mask"], h["matches"].distances, h["got"], SK)
    first = label_poses("fused-fit", h["px"], h["mask"], h["matches"].distances, h["got"], SK)
    np.testing.assert_array_equal(again.pose_3d, first.pose_3d)  # same inputs, same labels


def test_lifted_fit_completes_hidden_joints_nearer_the_truth_than_top1(held_out: dict) -> None:
    from posebank.annotate.complete import complete_2d

    h = held_out
    cam = h["true"] + np.array([0.0, 0.0, 3.0])
    clean_px = 1200.0 * cam[..., :2] / cam[..., 2:]  # the queries' image before their noise
    hidden = ~h["mask"]
    errors = {}
    for mode in ("top1", "lifted-fit"):
        labels = label_poses(mode, h["px"], h["mask"], h["matches"].distances, h["got"], SK, lifted=h["lifted"])
        completed = complete_2d(np.where(h["mask"][..., None], h["px"], np.nan), h["mask"], labels.completion_2d)
        np.testing.assert_array_equal(completed[h["mask"]], h["px"][h["mask"]])  # annotated joints stay exact
        errors[mode] = np.median(np.linalg.norm(completed - clean_px, axis=-1)[hidden])
    assert errors["lifted-fit"] < 0.8 * errors["top1"], errors


def test_error_estimate_ranks_people(held_out: dict) -> None:
    from scipy.stats import spearmanr

    h = held_out
    labels = label_poses("fused-fit", h["px"], h["mask"], h["matches"].distances, h["got"], SK)
    err = _aligned_mpjpe_mm(labels.pose_3d, h["true"])
    est = labels.error_estimate_mm
    assert np.isfinite(est).all() and (est > 0).all()
    assert spearmanr(est, err).statistic > 0.3
    hidden = ~h["mask"].all(1)
    assert np.median(est[hidden]) > np.median(est[~hidden])  # hidden lower legs: more doubt


def test_labels_in_threads_are_the_labels_of_one_call(held_out: dict) -> None:
    """annotate labels chunks of people in threads: every array equal, to the last bit, to one call's."""
    h = held_out
    n = len(h["px"])
    for mode in ("lifted-fit", "top1"):
        one = label_poses(mode, h["px"], h["mask"], h["matches"].distances, h["got"], SK, lifted=h["lifted"])
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("posebank.annotate.labels.MIN_PEOPLE_PER_THREAD", max(1, n // 5))
            threaded = label_poses_in_threads(3, mode, h["px"], h["mask"], h["matches"].distances, h["got"], SK,
                                              lifted=h["lifted"])  # fmt: skip
        for name in ("pose_3d", "completion_2d", "error_estimate_mm"):
            np.testing.assert_array_equal(getattr(threaded, name), getattr(one, name))
