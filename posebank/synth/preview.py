"""A contact sheet of synthetic images with their 2D annotations drawn over them, for a person to check.

It reads back what was written (images and shards), so it shows the data as a trainer will see it.
Colours and markers are posebank.drawing_style's, with its legend under the sheet: right side red,
left blue, centre grey; a visible joint is a filled dot, an occluded one a cross, one outside the image
hollow (it falls off its tile). Each person's index is written at its head.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..drawing_style import SYNTH_STATE_LABELS, draw_pose_pil, pil_legend
from ..skeleton import get_skeleton


def write_contact_sheet(out: str | Path, count: int = 16, tile: int = 256, path: str | Path | None = None) -> Path:
    """Write a grid of the first `count` images of a `posebank synth` output with their skeletons.

    Args:
        out: the synth output folder (images/, annotations/, manifest.json).
        count: images to show (fewer if the output has fewer).
        tile: size of each grid cell, px (images are scaled to fit).
        path: where to write the PNG; default out/preview.png.

    Returns:
        The PNG's path.
    """
    from PIL import Image, ImageDraw

    from ..provenance import atomic_path
    from ..shards import open_dataset, read_metadata
    from .writer import ANNOTATIONS_DIR, IMAGES_DIR, PREVIEW_FILE

    out = Path(out)
    shard_files = sorted((out / ANNOTATIONS_DIR).glob("part-*.parquet"))
    if not shard_files:
        raise FileNotFoundError(f"no annotation shards under {out / ANNOTATIONS_DIR}")
    skeleton = get_skeleton(read_metadata(shard_files[0])["skeleton"])
    j = skeleton.num_joints
    per_image: dict[str, list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = {}
    for f in shard_files:
        df = open_dataset(f).to_table(columns=["image", "person", "pose_2d", "visible", "occluded"]).to_pandas()
        for row in df.itertuples(index=False):
            if row.image not in per_image and len(per_image) >= count:
                break
            per_image.setdefault(row.image, []).append(
                (int(row.person), np.asarray(row.pose_2d).reshape(j, 2), np.asarray(row.visible), np.asarray(row.occluded))
            )
        if len(per_image) >= count:
            break
    cols = max(1, int(np.ceil(np.sqrt(len(per_image)))))
    rows = -(-len(per_image) // cols)
    legend = pil_legend(cols * tile, SYNTH_STATE_LABELS)
    sheet = Image.new("RGB", (cols * tile, rows * tile + legend.height), (24, 24, 24))
    sheet.paste(legend, (0, rows * tile))
    for k, (name, people) in enumerate(per_image.items()):
        img = Image.open(out / IMAGES_DIR / name).convert("RGB")
        s = tile / max(img.size)
        img = img.resize((max(1, round(img.size[0] * s)), max(1, round(img.size[1] * s))), Image.BILINEAR)
        draw = ImageDraw.Draw(img)
        for person, pose, visible, occluded in people:
            # Pixel centres are at integer coordinates: (x + 0.5) * s is the point in the scaled image.
            pts = (pose + 0.5) * s
            draw_pose_pil(draw, pts, skeleton.joint_names, skeleton.bones, visible, occluded)
            head = pts[skeleton.index("head")] if "head" in skeleton.joint_names else pts.min(axis=0)
            draw.text((float(head[0]) + 4, float(head[1]) - 12), f"#{person}", fill=(255, 255, 255))
        draw.text((3, 2), Path(name).stem, fill=(255, 255, 255))
        sheet.paste(img, ((k % cols) * tile, (k // cols) * tile))
    target = Path(path) if path is not None else out / PREVIEW_FILE
    with atomic_path(target) as tmp:
        sheet.save(tmp, format="PNG")
    return target
