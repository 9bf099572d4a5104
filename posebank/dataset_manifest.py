"""Read the per-dataset manifests (manifests/<name>.toml): joint tables, units, licences, checksums.

The manifests are the single place where a source's joint names meet the canonical skeleton.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class DatasetManifest:
    """One dataset's manifest.

    Attributes:
        name: short name ("cmu", "hdm05", "poseprior", "bvh", "mpii", ...).
        joints: canonical joint name -> source joint names whose mean it is.
        profiles: alternative joint tables by profile name (e.g. BVH naming conventions); the
            default table is `joints`.
        raw: the whole parsed TOML document (title, url, licence, units, layout, sha256, ...).
    """

    name: str
    joints: dict[str, tuple[str, ...]]
    profiles: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> dict[str, str]:
        """Known files (path relative to the dataset root) -> sha256 hex digest."""
        return dict(self.raw.get("sha256", {}))


def _joint_table(table: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {k: (v,) if isinstance(v, str) else tuple(v) for k, v in table.items()}


def load_dataset_manifest(name: str) -> DatasetManifest:
    """Load manifests/<name>.toml.

    Raises:
        ValueError: no manifest of that name.
    """
    resource = resources.files("posebank.manifests").joinpath(f"{name}.toml")
    if not resource.is_file():
        known = sorted(p.name[:-5] for p in resources.files("posebank.manifests").iterdir() if p.name.endswith(".toml"))
        raise ValueError(f"no manifest for dataset {name!r} (known: {', '.join(known)})")
    raw = tomllib.loads(resource.read_text(encoding="utf-8"))
    profiles = {k: _joint_table(v) for k, v in raw.get("profiles", {}).items()}
    return DatasetManifest(name=name, joints=_joint_table(raw.get("joints", {})), profiles=profiles, raw=raw)
