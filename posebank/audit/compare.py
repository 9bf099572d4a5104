"""Two banks on the same annotations: re-match every matched person's annotated 2D joints against a
second bank and compare the eq. 9 distances with those stored in the shards (the paper, section
4.2, reports that adding HDM05 and Pose Prior to CMU lowers the matching error by 13% on MPII).

The stored distance is the annotation's own top-1 distance against the bank it was made with; the
new one is the exact top-1 distance against the second bank (posebank.annotate.matching.search_bank), with
the same query and mask. Reduction % = 100 x (base - new) / base of the mean and of the median:
positive when the second bank matches better.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..bank import Bank
from .numeric import histogram, summarise

CHANGE_EDGES = np.round(np.arange(-0.51, 0.5101, 0.02), 2)  # new - base distance bins, one centred on 0


class BankComparison:
    """Re-matches people against `bank` batch by batch (a BatchHook of annotations_audit)."""

    def __init__(self, bank: Bank, engine: str = "auto", block_rows: int = 1 << 21):
        self.bank = bank
        self.engine = engine
        self.block_rows = block_rows
        self.base: dict[str, list[npt.NDArray[np.float64]]] = {}
        self.new: dict[str, list[npt.NDArray[np.float64]]] = {}

    def add(self, dataset: str, batch: dict[str, Any], rows: npt.NDArray[np.int64]) -> None:
        from ..annotate.matching import search_bank
        from ..search import SearchConfig

        base = batch["match_distance"][rows]
        rows = rows[np.isfinite(base)]  # people the base bank matched (enough joints, not degenerate)
        self.base.setdefault(dataset, []).append(batch["match_distance"][rows])
        if len(rows) == 0:
            self.new.setdefault(dataset, []).append(np.zeros(0))
            return
        mask = batch["visible"][rows]
        query = np.where(mask[..., None], batch["pose_2d"][rows].astype(np.float64), np.nan)
        if query.shape[1] != self.bank.skeleton.num_joints:
            raise ValueError(f"the compared bank has {self.bank.skeleton.num_joints} joints, the annotations {query.shape[1]}")
        found = search_bank(self.bank, query, mask, 1, config=SearchConfig(engine=self.engine), block_rows=self.block_rows)
        self.new.setdefault(dataset, []).append(found.distances[:, 0].astype(np.float64))

    def result(self, dataset: str) -> dict[str, Any]:
        base = np.concatenate(self.base.get(dataset, [np.zeros(0)]))
        new = np.concatenate(self.new.get(dataset, [np.zeros(0)]))
        ok = np.isfinite(base) & np.isfinite(new)
        base, new = base[ok], new[ok]
        out: dict[str, Any] = {"bank": str(self.bank.root), "engine": self.engine, "people": len(base),
                               "base": summarise(base), "compared": summarise(new)}  # fmt: skip
        if len(base):
            out["reduction_pct_mean"] = float(100.0 * (base.mean() - new.mean()) / base.mean())
            out["reduction_pct_median"] = float(100.0 * (np.median(base) - np.median(new)) / np.median(base))
            # 1e-6: the distances are exact to ~1e-7 (posebank.search), closer counts as equal
            out["share_better"] = float((new < base - 1e-6).mean())
            out["share_worse"] = float((new > base + 1e-6).mean())
            out["change_histogram"] = histogram(new - base, CHANGE_EDGES)
        return out
