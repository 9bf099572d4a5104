"""Scene sampling and backgrounds: deterministic per generator, within the configured ranges."""

from __future__ import annotations

import numpy as np
import pytest

from posebank.synth import SynthConfig, sample_scene
from posebank.synth.backgrounds import KINDS, make_background


def test_scenes_are_a_function_of_the_generator(pose_pool: np.ndarray) -> None:
    config = SynthConfig(people=(2, 5))
    a = sample_scene(np.random.default_rng(11), pose_pool, config)
    b = sample_scene(np.random.default_rng(11), pose_pool, config)
    for name in ("poses_3d", "scales", "offsets", "distances", "thickness", "palettes", "light"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_scene_ranges(pose_pool: np.ndarray) -> None:
    config = SynthConfig(size=(300, 200), people=(2, 4), scale_range=(50.0, 150.0), truncation_prob=0.0)
    ref = 200 / 512
    for i in range(20):
        s = sample_scene(np.random.default_rng(i), pose_pool, config)
        assert 2 <= s.num_people <= 4 and s.width == 300 and s.height == 200
        # Scales shrink only to fit a person into the image.
        assert (s.scales <= 150.0 * ref + 1e-9).all() and (s.scales > 0).all()
        # Without truncation every joint is inside.
        assert ((s.poses_2d >= -0.5) & (s.poses_2d < np.array([299.5, 199.5]))).all()
        assert np.isclose(np.linalg.norm(s.light), 1.0) and s.light[2] < 0


def test_truncation_puts_joints_outside(pose_pool: np.ndarray) -> None:
    config = SynthConfig(people=(1, 1), truncation_prob=1.0)
    outside = [not ((s.poses_2d >= -0.5) & (s.poses_2d < 511.5)).all()
               for s in (sample_scene(np.random.default_rng(i), pose_pool, config) for i in range(20))]  # fmt: skip
    assert np.mean(outside) > 0.7


@pytest.mark.parametrize("kind", KINDS)
def test_backgrounds(kind: str) -> None:
    a = make_background(np.random.default_rng(1), 96, 128, kind)
    b = make_background(np.random.default_rng(1), 96, 128, kind)
    assert a.shape == (96, 128, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert a.std() > 1.0  # not a flat colour
    with pytest.raises(ValueError, match="unknown background"):
        make_background(np.random.default_rng(1), 8, 8, "plasma")
