"""Small streaming statistics: grouped running moments, seeded sampling by hash, quantile summaries.

Everything here is numpy only and deterministic: running moments merge per-batch results exactly
(Chan et al.'s pairwise update, so the result does not depend on the batch size beyond float
rounding), and samples are the rows of smallest hash key, so they do not depend on the read order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.9, 0.95)


def summarise(values: npt.NDArray[np.floating], scale: float = 1.0) -> dict[str, Any]:
    """count, mean, std, min, quantiles (q05 .. q95) and max of the finite values, times `scale`.

    Returns the count alone when there is no finite value (the other keys are absent, not NaN,
    so the JSON stays valid).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)] * scale
    out: dict[str, Any] = {"count": len(v)}
    if len(v) == 0:
        return out
    qs = np.quantile(v, QUANTILES)
    out.update(mean=float(v.mean()), std=float(v.std()), min=float(v.min()))
    out.update({f"q{round(q * 100):02d}": float(x) for q, x in zip(QUANTILES, qs)})
    out["max"] = float(v.max())
    return out


def histogram(values: npt.NDArray[np.floating], edges: npt.NDArray[np.floating]) -> dict[str, list[float] | list[int]]:
    """Counts of the finite values in bins of `edges`; values beyond the last edge go to the last bin."""
    v = np.asarray(values, dtype=np.float64)
    v = np.clip(v[np.isfinite(v)], edges[0], edges[-1])
    counts, _ = np.histogram(v, bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def hash_keys(ids: npt.NDArray[np.integer], seed: int) -> npt.NDArray[np.uint64]:
    """A uniform 64-bit key per id (splitmix64 of id xor a seed-derived constant).

    The sample of a set of ids is then the ids of smallest keys: the same for any read order or
    batch size, and independent between seeds.
    """
    x = np.asarray(ids).astype(np.uint64) ^ np.uint64((0x9E3779B97F4A7C15 * (seed + 1)) & 0xFFFFFFFFFFFFFFFF)
    # uint64 arithmetic wraps modulo 2^64, which is what splitmix64 wants.
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass
class BottomK:
    """The `size` items of smallest key seen so far (a seeded sample without replacement).

    Items are arrays with a leading row axis; `add` keeps memory at `size` rows plus one batch.
    """

    size: int
    keys: npt.NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, np.uint64))
    items: npt.NDArray[Any] | None = None

    def add(self, keys: npt.NDArray[np.uint64], items: npt.NDArray[Any]) -> None:
        if len(keys) == 0:
            return
        all_keys = np.concatenate([self.keys, keys])
        all_items = items if self.items is None else np.concatenate([self.items, items])
        order = np.argsort(all_keys, kind="stable")[: self.size]
        self.keys, self.items = all_keys[order], all_items[order]


@dataclass
class GroupedMoments:
    """Running count, mean, M2 (sum of squared deviations), min and max of D values per group.

    Groups are integer codes that may grow between batches.
    """

    dims: int
    n: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    mean: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    m2: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    lo: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    hi: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))

    def _grow(self, groups: int) -> None:
        g0 = len(self.n)
        if groups <= g0:
            return
        extra = groups - g0
        self.n = np.concatenate([self.n, np.zeros(extra, np.int64)])
        pad = np.zeros((extra, self.dims))
        self.mean = np.concatenate([self.mean.reshape(g0, self.dims), pad])
        self.m2 = np.concatenate([self.m2.reshape(g0, self.dims), pad])
        self.lo = np.concatenate([self.lo.reshape(g0, self.dims), pad + np.inf])
        self.hi = np.concatenate([self.hi.reshape(g0, self.dims), pad - np.inf])

    def add(self, codes: npt.NDArray[np.integer], values: npt.NDArray[np.floating]) -> None:
        """Add rows `values` (n, D) belonging to groups `codes` (n,)."""
        if len(codes) == 0:
            return
        values = np.asarray(values, dtype=np.float64)
        order = np.argsort(codes, kind="stable")
        c, v = np.asarray(codes)[order], values[order]
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        groups = c[starts]
        self._grow(int(groups.max()) + 1)
        nb = np.diff(np.r_[starts, len(c)])
        mb = np.add.reduceat(v, starts, axis=0) / nb[:, None]
        m2b = np.add.reduceat((v - np.repeat(mb, nb, axis=0)) ** 2, starts, axis=0)
        na = self.n[groups].astype(np.float64)
        n = na + nb
        delta = mb - self.mean[groups]
        self.mean[groups] += delta * (nb / n)[:, None]
        self.m2[groups] += m2b + delta**2 * (na * nb / n)[:, None]
        self.n[groups] += nb
        self.lo[groups] = np.minimum(self.lo[groups], np.minimum.reduceat(v, starts, axis=0))
        self.hi[groups] = np.maximum(self.hi[groups], np.maximum.reduceat(v, starts, axis=0))

    @property
    def std(self) -> npt.NDArray[np.float64]:
        """Population standard deviation per group and dimension (G, D)."""
        return np.sqrt(np.maximum(self.m2, 0.0) / np.maximum(self.n, 1)[:, None])


def run_starts(*columns: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Indices where any of the columns changes value (0 included): bank rows come in long runs of
    one source, subject and sequence, so grouping by runs is far cheaper than hashing every string."""
    n = len(columns[0])
    if n == 0:
        return np.zeros(0, np.int64)
    change = np.zeros(n, bool)
    change[0] = True
    for col in columns:
        change[1:] |= col[1:] != col[:-1]
    return np.flatnonzero(change)
