"""The lifter (posebank.annotate.lifter): its input and target frames, its training views, and a
trained network stored with its bank, reused, and better than the mean pose on real poses it never saw."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from posebank.annotate.lifter import (
    Lifter,
    LifterConfig,
    bank_rotations,
    fresh_views,
    lifter_key,
    mix_limbs,
    network_input,
    network_target,
    off_axis_image,
    scale_proportions,
    stored_lifter,
    training_views,
    visibility_patterns,
)
from posebank.bank import MANIFEST, open_bank
from posebank.bank.build import build_bank
from posebank.bank.canonical import canonical_poses
from posebank.config import BankConfig, ViewConfig
from posebank.geometry import camera_to_world, masked_centre_scale, ray_to_axis, view_rotation
from posebank.mocap.sources import discover
from posebank.provenance import sha256_file
from posebank.skeleton import get_skeleton

SK = get_skeleton("j13")
J = SK.num_joints


def _poses(shared_data: Path, subject: str, step: int) -> np.ndarray:
    """(n, J, 3) m body-centred camera-frame poses of a real CMU subject, each from a random view."""
    job = [j for j in discover("cmu", shared_data / "cmu" / "subjects")[0] if j.subject == subject][0]
    world = canonical_poses(job, SK, 30.0).poses_m.astype(np.float64)[::step]
    rng = np.random.default_rng(2)
    n = len(world)
    rot = view_rotation(rng.uniform(0, 2 * np.pi, n), np.deg2rad(rng.uniform(-15, 45, n)), np.zeros(n))
    return np.einsum("nij,nkj->nki", rot, world)


def test_input_and_target_share_the_eq9_frame() -> None:
    rng = np.random.default_rng(0)
    pose_3d = rng.normal(size=(5, J, 3))
    mask = rng.random((5, J)) < 0.7
    mask[:, :3] = True
    x = network_input(200.0 * pose_3d[..., :2] + 40.0, mask)  # any 2D units: the frame removes them
    assert x.shape == (5, 3 * J) and x.dtype == np.float32
    xy = x[:, : 2 * J].reshape(5, J, 2)
    np.testing.assert_array_equal(x[:, 2 * J :], mask)
    np.testing.assert_array_equal(xy[~mask], 0.0)
    np.testing.assert_allclose(xy.sum(1), 0.0, atol=1e-5)  # centred on the annotated joints
    np.testing.assert_allclose(np.linalg.norm(xy, axis=(1, 2)), 1.0, rtol=1e-5)  # unit Frobenius norm
    t = network_target(pose_3d, pose_3d[..., :2], mask).reshape(5, J, 5)
    np.testing.assert_allclose(t[..., :2][mask], xy[mask], atol=1e-5)  # orthographic: x, y = the input's
    np.testing.assert_allclose(np.where(mask, t[..., 2], 0).sum(1), 0.0, atol=1e-5)  # depth centred on the mask
    np.testing.assert_allclose(t[..., 3:], t[..., :2], atol=1e-6)  # the 2D target: the 2D pose, hidden joints too
    # The 2D target is the clean 2D pose, in the frame of the (noisy) input's annotated joints.
    t = network_target(pose_3d, pose_3d[..., :2], mask, clean_2d=pose_3d[..., :2] + 0.5).reshape(5, J, 5)
    _, scale = masked_centre_scale(pose_3d[..., :2], mask)
    np.testing.assert_allclose(t[..., 3:] - t[..., :2], np.broadcast_to(0.5 / scale[:, None, None], (5, J, 2)), rtol=1e-5)


def test_training_views_are_pinhole_projections(shared_data: Path) -> None:
    pose = _poses(shared_data, "09", 40)[:8]
    mask = np.ones((8, J), bool)
    exact = {"noise_height": 0.0, "mirror": False, "limb_mix": 0.0, "proportion_sigma": 0.0, "off_axis": 0.0}
    far = LifterConfig(**exact, distance_m=(1e6, 1e6 + 1))
    x, _ = training_views(pose, mask, np.random.default_rng(0), far, SK)
    np.testing.assert_allclose(x, network_input(pose[..., :2], mask), atol=1e-5)  # far away: orthographic
    near = LifterConfig(**exact, distance_m=(3.0, 3.0))
    x, _ = training_views(pose, mask, np.random.default_rng(0), near, SK)
    cam = pose + np.array([0.0, 0.0, 3.0])
    np.testing.assert_allclose(x, network_input(cam[..., :2] / cam[..., 2:], mask), atol=1e-5)


def test_an_off_axis_image_turned_to_its_ray_is_the_pose_on_the_axis(shared_data: Path) -> None:
    # Turning the camera to look along the person's viewing ray (a rotation of the image rays, no intrinsics
    # but the focal) must give the pinhole image of the target pose straight ahead at the person's range.
    pose = _poses(shared_data, "09", 40)[:6]
    rng = np.random.default_rng(4)
    centre = np.column_stack([rng.uniform(-1.5, 1.5, (6, 2)), rng.uniform(2.5, 7.0, 6)])
    image = off_axis_image(pose, centre)
    f = centre[:, 2:]  # the focal of off_axis_image's unit: metres at the centre's depth
    rays = np.concatenate([image / f[:, None] + (centre[:, :2] / f)[:, None], np.ones((6, J, 1))], axis=-1)
    turned = np.einsum("nij,nkj->nki", ray_to_axis(centre), rays)
    ahead = pose + np.linalg.norm(centre, axis=1)[:, None, None] * np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(turned[..., :2] / turned[..., 2:], ahead[..., :2] / ahead[..., 2:], atol=1e-12)
    # On the axis it is the plain pinhole image at that depth.
    on_axis = np.column_stack([np.zeros((6, 2)), centre[:, 2]])
    want = pose[..., :2] * (f / (f + pose[..., 2]))[..., None]
    np.testing.assert_allclose(off_axis_image(pose, on_axis), want, atol=1e-12)


def test_fresh_views_are_the_banks_kind_of_camera(shared_data: Path) -> None:
    world = camera_to_world(_poses(shared_data, "09", 40)[:1], np.eye(3)[None])
    view = ViewConfig(elevation_min_deg=-10.0, elevation_max_deg=30.0, roll_max_deg=5.0)
    seen = fresh_views(np.repeat(world, 400, axis=0), np.random.default_rng(0), view)
    # Each is a rotation of the same pose (Kabsch on the centred joints), with the camera's angles in range.
    u, _, vt = np.linalg.svd(np.einsum("nkc,kd->ncd", seen, world[0]))
    rot = u @ vt  # world -> camera
    np.testing.assert_allclose(np.einsum("nij,kj->nki", rot, world[0]), seen, atol=1e-9)
    elevation = np.rad2deg(np.arcsin(-rot[:, 2, 1]))  # the optical axis' downward tilt (geometry.view_rotation)
    roll = np.rad2deg(np.arctan2(rot[:, 0, 1], -rot[:, 1, 1]))
    azimuth = np.rad2deg(np.arctan2(-rot[:, 2, 0], -rot[:, 2, 2])) % 360
    assert -10.0 - 1e-6 <= elevation.min() and elevation.max() <= 30.0 + 1e-6
    assert np.abs(roll).max() <= 5.0 + 1e-6
    assert np.histogram(azimuth, bins=8, range=(0, 360))[0].min() > 20  # every direction


def test_a_residual_network_starts_from_the_annotated_joints() -> None:
    # With every weight zero, a residual_2d lifter outputs the annotation itself for x, y and u, v (depth 0,
    # hidden joints at the centre): the network only learns what to add to it.
    rng = np.random.default_rng(0)
    pose_2d = 300.0 * rng.normal(size=(4, J, 2))
    mask = rng.random((4, J)) < 0.8
    mask[:, :4] = True
    zero = Lifter(weights=(np.zeros((3 * J, 8), np.float32), np.zeros((8, 5 * J), np.float32)),
                  biases=(np.zeros(8, np.float32), np.zeros(5 * J, np.float32)),
                  flip_permutation=tuple(SK.flip_permutation), residual_2d=True)  # fmt: skip
    lifted = zero.lift(np.where(mask[..., None], pose_2d, np.nan), mask)
    xy = network_input(pose_2d, mask)[:, : 2 * J].reshape(4, J, 2)
    np.testing.assert_allclose(lifted.pose_2d, xy, atol=1e-6)
    np.testing.assert_allclose(lifted.pose_3d[..., :2], xy, atol=1e-6)
    np.testing.assert_array_equal(lifted.pose_3d[..., 2], 0.0)


def test_mixed_limbs_keep_the_donors_pose_in_the_torso_frame(shared_data: Path) -> None:
    # One real pose seen from 16 directions: every donor's limb, in its own torso frame, is the pose's own,
    # so mixing every limb gives back the same poses; bone lengths are the donors'.
    world = _poses(shared_data, "09", 40)[:1].repeat(16, 0)
    n = len(world)
    rng = np.random.default_rng(3)
    rot = view_rotation(rng.uniform(0, 2 * np.pi, n), np.deg2rad(rng.uniform(-30, 60, n)), rng.uniform(-0.5, 0.5, n))
    poses = np.einsum("nij,nkj->nki", rot, world)
    np.testing.assert_allclose(mix_limbs(poses, rng, 1.0, SK), poses, atol=1e-9)
    np.testing.assert_array_equal(mix_limbs(poses, rng, 0.0, SK), poses)
    # Different poses: the torso stays, each limb's bones are some pose's, and limbs do change.
    poses = _poses(shared_data, "09", 7)[:64]
    mixed = mix_limbs(poses, np.random.default_rng(0), 1.0, SK)
    np.testing.assert_array_equal(mixed[:, list(SK.torso)], poses[:, list(SK.torso)])
    for c, q in SK.bones:
        length = np.linalg.norm(mixed[:, c] - mixed[:, q], axis=-1)
        assert np.abs(length[:, None] - np.linalg.norm(poses[:, c] - poses[:, q], axis=-1)[None]).min(1).max() < 1e-9
    assert np.abs(mixed - poses).max() > 0.1
    # With a visibility mask, a limb with a hidden middle or end joint is never exchanged; the others are.
    visible = np.random.default_rng(1).random((64, J)) < 0.6
    mixed = mix_limbs(poses, np.random.default_rng(0), 1.0, SK, visible)
    for side in ("right", "left"):
        for chain in ((f"{side}_elbow", f"{side}_wrist"), (f"{side}_knee", f"{side}_ankle")):
            moved = [SK.index(n) for n in chain]
            kept = ~visible[:, moved].all(axis=1)
            np.testing.assert_array_equal(mixed[kept][:, moved], poses[kept][:, moved])
            assert np.abs(mixed[~kept][:, moved] - poses[~kept][:, moved]).max() > 0.1


def test_scaled_proportions_keep_joint_angles_and_body_symmetry(shared_data: Path) -> None:
    poses = _poses(shared_data, "09", 7)[:64]
    np.testing.assert_allclose(scale_proportions(poses, np.random.default_rng(0), 1e-12, SK), poses, atol=1e-9)
    scaled = scale_proportions(poses, np.random.default_rng(0), 0.1, SK)
    j = SK.index

    def segment(p: np.ndarray, a: str, b: str) -> np.ndarray:
        return p[:, j(b)] - p[:, j(a)]

    hips = [0.5 * (p[:, j("left_hip")] + p[:, j("right_hip")]) for p in (poses, scaled)]
    np.testing.assert_allclose(hips[1], hips[0], atol=1e-12)
    limbs = [(f"{side}_{a}", f"{side}_{b}") for side in ("left", "right")
             for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))]  # fmt: skip
    for a, b in [*limbs, ("right_hip", "left_hip"), ("right_shoulder", "left_shoulder")]:
        before, after = segment(poses, a, b), segment(scaled, a, b)
        unit = before / np.linalg.norm(before, axis=1, keepdims=True)
        np.testing.assert_allclose(after / np.linalg.norm(after, axis=1, keepdims=True), unit, atol=1e-9)
    # Left and right segments get the same factor; factors differ from pose to pose.
    ratio = {(a, b): np.linalg.norm(segment(scaled, a, b), axis=1) / np.linalg.norm(segment(poses, a, b), axis=1)
             for a, b in limbs}  # fmt: skip
    for (a, b), left in list(ratio.items())[:4]:
        np.testing.assert_allclose(left, ratio[a.replace("left", "right"), b.replace("left", "right")], rtol=1e-9)
        assert 0.05 < np.log(left).std() < 0.15
    # j17: the spine joints follow the torso length about the mid-hip.
    sk17 = get_skeleton("j17")
    p17 = np.random.default_rng(1).normal(size=(32, sk17.num_joints, 3))
    s17 = scale_proportions(p17, np.random.default_rng(2), 0.1, sk17)
    hips = 0.5 * (p17[:, sk17.index("left_hip")] + p17[:, sk17.index("right_hip")])
    shoulders = [0.5 * (x[:, sk17.index("left_shoulder")] + x[:, sk17.index("right_shoulder")]) for x in (p17, s17)]
    torso = np.linalg.norm(shoulders[1] - hips, axis=1) / np.linalg.norm(shoulders[0] - hips, axis=1)
    neck = sk17.index("neck")
    np.testing.assert_allclose(s17[:, neck] - hips, (p17[:, neck] - hips) * torso[:, None], atol=1e-9)


def test_visibility_patterns_do_not_depend_on_order() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((50, J)) < 0.6
    a = visibility_patterns(mask, 3)
    b = visibility_patterns(mask[::-1], 3)
    np.testing.assert_array_equal(a, b)
    assert (a.sum(1) >= 3).all() and len(a) == (mask.sum(1) >= 3).sum()
    assert lifter_key("x", a, LifterConfig()) != lifter_key("x", a[1:], LifterConfig())


@pytest.fixture(scope="module")
def bank(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cmu")
    for subject in ("09", "135"):
        shutil.copytree(shared_data / "cmu" / "subjects" / subject, root / "subjects" / subject)
    out = tmp_path_factory.mktemp("bank")
    build_bank(BankConfig(sources=(("cmu", str(root)),), out=str(out), view=ViewConfig(views=8)))
    return open_bank(out)


def test_the_banks_views_of_a_pose_turn_back_to_one_world_pose(bank) -> None:
    # What fresh_views training starts from: each row's camera-frame pose taken back to the world frame.
    rows = np.arange(min(bank.num_rows, 64))
    got = bank.take(rows, columns=("pose_3d", "pose_id"))
    world = camera_to_world(got["pose_3d"].astype(np.float64), bank_rotations(bank, rows))
    ids = got["pose_id"]
    assert len(np.unique(ids)) < len(ids)  # the 8 views of each pose
    for pid in np.unique(ids):
        views = world[ids == pid]
        np.testing.assert_allclose(views, np.broadcast_to(views[0], views.shape), atol=1e-5)


def test_stored_lifter_learns_is_stored_and_reused(bank, shared_data: Path) -> None:
    """Trained on the bank, it lifts real poses of a subject the bank never saw (CMU 131) better than the
    bank's mean pose does; a second call loads the same weights instead of training."""
    rng = np.random.default_rng(3)
    masks = visibility_patterns(rng.random((200, J)) < 0.8, 3)
    config = LifterConfig(steps=300, seed=5)
    lifter, reused = stored_lifter(bank, masks, config)
    assert not reused
    again, reused = stored_lifter(bank, masks, config)
    assert reused
    for a, b in zip(lifter.weights + lifter.biases, again.weights + again.biases):
        np.testing.assert_array_equal(a, b)
    assert again.key == lifter.key == lifter_key(sha256_file(bank.root / MANIFEST), masks, config)
    # Training is deterministic: the same inputs and seed give the same weights.
    short = LifterConfig(steps=60, seed=5)
    first, _ = stored_lifter(bank, masks, short, store=False)
    second, _ = stored_lifter(bank, masks, short, store=False)
    for a, b in zip(first.weights + first.biases, second.weights + second.biases):
        np.testing.assert_array_equal(a, b)

    true = _poses(shared_data, "131", 6)
    mask = masks[rng.integers(0, len(masks), len(true))]
    cam = true + np.array([0.0, 0.0, 4.0])
    px = 1000.0 * cam[..., :2] / cam[..., 2:]
    lifted = lifter.lift(np.where(mask[..., None], px, np.nan), mask)
    target = network_target(true, px / 1000.0 * 4.0, mask).reshape(-1, J, 5)  # same frame, m at the body's distance
    for got, want in ((lifted.pose_3d, target[..., :3]), (lifted.pose_2d, target[..., 3:])):
        err = np.linalg.norm(got - want, axis=-1).mean()
        baseline = np.linalg.norm(want.mean(0) - want, axis=-1).mean()  # the subject's mean pose
        assert np.isfinite(got).all() and err < 0.75 * baseline, (err, baseline)
    # The 2D output of a hidden joint is where the camera sees it, better than the mean pose says.
    hidden = ~mask
    err_2d = np.linalg.norm(lifted.pose_2d - target[..., 3:], axis=-1)[hidden].mean()
    assert err_2d < 0.75 * np.linalg.norm(target[..., 3:].mean(0) - target[..., 3:], axis=-1)[hidden].mean()
    # People go through in chunks (bounded memory): any chunk size gives the same poses, to float32 rounding (a
    # product of a few rows may take another BLAS path than one of many).
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("posebank.annotate.lifter._LIFT_CHUNK", 7)
        chunked = lifter.lift(np.where(mask[..., None], px, np.nan), mask)
    np.testing.assert_allclose(chunked.pose_3d, lifted.pose_3d, rtol=0, atol=1e-5)
    np.testing.assert_allclose(chunked.pose_2d, lifted.pose_2d, rtol=0, atol=1e-5)
