"""Synthetic multi-person training images rendered from bank poses (LCR-Net++ sec. 4.1-4.2).

People are drawn as shaded capsules (a crude body around the skeleton) in depth order, so they
occlude each other and themselves, over procedural backgrounds, at random scales and places, some
cut by the image border. Each image comes with annotation rows in the project's annotation schema
(posebank.shards.annotations_schema): the true 2D pose, visibility, occlusion and the true 3D pose.

    >>> from posebank.synth import SynthConfig, synthesize
    >>> report = synthesize(SynthConfig(images=100, seed=1), "demo/bank", "demo/synth", preview=16)

Modules: config (SynthConfig), raster (z-buffered capsules and triangles), body (skeleton -> body
primitives), scene (placing people), render (image + labels), backgrounds, writer (the job), preview.
Nothing here imports torch.
"""

from .body import BodyModel, body_model
from .config import SynthConfig
from .render import Labels, Rendered, label_scene, render_scene
from .scene import Scene, make_scene, sample_scene
from .writer import SynthReport, synthesize

__all__ = [
    "BodyModel", "Labels", "Rendered", "Scene", "SynthConfig", "SynthReport", "body_model", "label_scene",
    "make_scene", "render_scene", "sample_scene", "synthesize",
]  # fmt: skip
