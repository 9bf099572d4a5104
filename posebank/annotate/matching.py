"""Masked nearest-neighbour search against a bank on disk, streamed in blocks (bounded memory).

posebank.search scores arrays; this module feeds it the bank's Parquet shards block by block, merges
the per-block top-k (adding each block's row offset), and gathers the matched rows' poses and ids.

Several query sets (annotate's people and the same people with left and right exchanged) share one
pass: each bank block is read and prepared once, then searched with every set. With the approximate
engine (faiss-ivf) each block's index is built once and stored beside the bank (posebank.search.
ivf_store), so a later run, or a run on another dataset, loads it instead of reading the bank.
Block sizes follow a memory budget (`block_rows_for_memory`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..bank import MANIFEST, Bank
from ..progress import ProgressFactory, Tally, no_progress
from ..provenance import sha256_file
from ..search import PreparedBank, QueryBatch, SearchConfig, prepare_bank, prepare_queries, resolve_engine, search_prepared

if TYPE_CHECKING:
    from ..search.approximate import IvfMaskedIndex

# Bank-side bytes per bank row and joint while a block is searched (measured peaks, BENCHMARKS.md):
# exact: the Arrow batches and their concatenation (2 x 8J), the float32 poses (8J), the prepared
# coordinates (8J) and joint norms (4J), rounded up; faiss-ivf while an index is built: the prepared
# block (20J), the sorted copies and the (3J, N) tables with their temporaries (~36J), row order (24 B).
_BYTES_PER_ROW_JOINT = {"exact": 48, "faiss-ivf": 60}
# Queries searched per engine call: the bar moves at least this often, and the per-call work (a GEMM per
# mask) stays large enough to run at BLAS speed.
QUERY_CHUNK = 8192
_BUDGET_SHARE = 0.75  # the rest of the budget: queries, matches, labels, the interpreter and libraries


@dataclass(frozen=True)
class Matches:
    """The k best bank rows of Q queries, best first.

    Attributes:
        distances: (Q, k) float32 eq. 9 distances in [0, 2] (inf: no valid row).
        rows: (Q, k) int64 global bank row indices (-1: none).
    """

    distances: npt.NDArray[np.float32]
    rows: npt.NDArray[np.int64]


@dataclass(frozen=True)
class QuerySet:
    """One set of queries for search_bank_sets: (Q, J, 2) poses (any units), (Q, J) bool masks, k.

    `check`: the set is searched only to check a match (annotate's left/right check), so faiss-ivf scans
    SearchConfig.ivf_nprobe_check cells per query (half for full-body ones); exact engines ignore it."""

    queries_2d: npt.NDArray[np.floating]
    masks: npt.NDArray[np.bool_]
    k: int
    check: bool = False


@dataclass(frozen=True)
class MatchedPoses:
    """What the matched bank rows hold, (Q, k, ...) in the order of `Matches.rows`."""

    pose_2d: npt.NDArray[np.float32]  # (Q, k, J, 2) orthographic, metres
    pose_3d: npt.NDArray[np.float32]  # (Q, k, J, 3) camera frame, body-centred, metres
    pose_id: npt.NDArray[np.int64]  # (Q, k)
    view_id: npt.NDArray[np.int32]  # (Q, k)

    def subset(self, rows: slice | npt.NDArray[np.intp]) -> MatchedPoses:
        return MatchedPoses(self.pose_2d[rows], self.pose_3d[rows], self.pose_id[rows], self.view_id[rows])


def merge_topk(
    d_a: npt.NDArray[np.float32], i_a: npt.NDArray[np.int64], d_b: npt.NDArray[np.float32], i_b: npt.NDArray[np.int64], k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:  # fmt: skip
    """The k smallest of two (Q, *) candidate lists, sorted; ties keep the earlier list first."""
    d = np.concatenate([d_a, d_b], axis=1)
    i = np.concatenate([i_a, i_b], axis=1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)


def block_rows_for_memory(memory_bytes: float, num_joints: int, engine: str) -> int:
    """Bank rows per block so that the bank side of a search stays within `memory_bytes`.

    engine: as resolved (resolve_engine). The approximate engine's blocks are also its index blocks
    (one stored index per block), so for it the block size is part of what the results depend on.
    """
    family = "faiss-ivf" if engine == "faiss-ivf" else "exact"
    per_row = _BYTES_PER_ROW_JOINT[family] * num_joints + 24
    rows = int(memory_bytes * _BUDGET_SHARE // per_row)
    if rows < 1024:
        raise ValueError(f"a memory budget of {memory_bytes / 2**30:.3g} GiB holds only {rows} bank rows per block; "
                         "give at least 0.1 GiB")  # fmt: skip
    return rows


def iter_bank_blocks(bank: Bank, block_rows: int, columns: Sequence[str] = ("pose_2d",)) -> Iterator[tuple[int, dict]]:
    """(first row, arrays) of consecutive bank blocks of exactly `block_rows` rows (the last may be
    shorter), across shard files: block boundaries depend on the bank's row count alone."""
    pending: list[dict] = []
    held = start = 0
    batch_size = max(1, min(block_rows, 1 << 20))
    for batch in bank.iter_poses(columns=tuple(columns), batch_size=batch_size):
        pending.append(batch)
        held += len(batch[columns[0]])
        while held >= block_rows:
            block = {c: np.concatenate([b[c] for b in pending]) for c in columns}
            # The batches are dropped before the block is handed out: not held twice while it is searched.
            pending, held = [{c: v[block_rows:] for c, v in block.items()}], held - block_rows
            yield start, {c: v[:block_rows] for c, v in block.items()}
            start += block_rows
    if held:
        yield start, {c: np.concatenate([b[c] for b in pending]) for c in columns}


def search_bank_sets(
    bank: Bank,
    sets: Sequence[QuerySet],
    *,
    config: SearchConfig | None = None,
    block_rows: int | None = None,
    memory_bytes: float = 8 * 2**30,
    progress: ProgressFactory | None = None,
    description: str = "searching the bank",
    content_sha256: str | None = None,
    store_index: bool = True,
) -> list[Matches]:
    """Masked top-k of every query of every set over the whole bank, in one pass over its blocks.

    Exactness: the result equals posebank.search's numpy reference (ties aside) for the exact engines
    (EXACT_ENGINES: numpy, blas, torch, faiss; and auto, which picks one of them). "faiss-ivf" is
    approximate: its misses are queries whose true neighbours lie outside the probed cells (recall in
    BENCHMARKS.md); its index is built once per block and stored beside the bank, keyed by the bank's
    content and the index parameters (posebank.search.ivf_store), and reused by later calls.

    Args:
        bank: an opened bank.
        sets: query sets; each query's joints outside its mask are ignored; masks have >= 2 joints and
            the masked joints do not coincide (annotate filters such people first). faiss-ivf scans fewer
            cells for a set marked `check` (QuerySet).
        config: the search config (engine, ivf parameters, threads); None: the defaults.
        block_rows: bank rows per block; None: from memory_bytes (block_rows_for_memory).
        memory_bytes: the bank-side memory budget when block_rows is None.
        progress: counts the queries searched (those of every set, once per bank block), in chunks
            of QUERY_CHUNK queries, under `description` and the number of blocks.
        content_sha256: the bank's content identity for the stored faiss-ivf index (default: the
            sha256 of its manifest.json, which lists every shard's sha256).
        store_index: False: nothing is read from or written to <bank>/.index (the faiss-ivf index, or
            the prepared bank of the exact engines, which later runs slice instead of decoding the shards).

    Returns:
        One Matches per set, (Q, k) each, global bank rows.
    """
    config = config or SearchConfig()
    engine = resolve_engine(config.engine)
    if block_rows is None:
        block_rows = block_rows_for_memory(memory_bytes, bank.skeleton.num_joints, engine)
    n = bank.num_rows
    sizes = [len(s.queries_2d) for s in sets]
    if not sum(sizes) or n == 0:
        return [Matches(np.full((q, s.k), np.inf, np.float32), np.full((q, s.k), -1, np.int64)) for q, s in zip(sizes, sets)]
    # All sets in one batch, searched for the largest k: each block is scored once for every query (annotate's
    # left/right check shares the match's masks, normalisers and GEMMs, and faiss-ivf's cells); each set then
    # keeps its own k of the result (a set's k best are the first k of its larger list, ties aside).
    k = max(s.k for s in sets)
    queries = prepare_queries(np.concatenate([np.asarray(s.queries_2d, np.float64).reshape(len(s.queries_2d), -1)
                                              for s in sets]),
                              np.concatenate([np.asarray(s.masks).reshape(len(s.masks), -1) for s in sets]),
                              bank.skeleton.num_joints)  # fmt: skip
    check, wanted = np.repeat([s.check for s in sets], sizes), np.repeat([s.k for s in sets], sizes)
    distances, rows_all = np.full((queries.num_queries, k), np.inf, np.float32), np.full((queries.num_queries, k), -1, np.int64)
    total = -(-n // block_rows)
    if engine == "faiss-ivf":
        blocks = _ivf_blocks(bank, block_rows, config, content_sha256, store_index)
    else:
        prepared = _prepared_blocks(bank, block_rows, config.degenerate_eps, content_sha256, store_index)
        blocks = ((start, _ExactBlock(block)) for start, block in prepared)
    blocks_text = f"{total} bank block" + ("s" if total > 1 else "")
    tally = Tally(progress or no_progress, f"{description}, {blocks_text}", queries.num_queries * total)
    for start, searcher in blocks:
        for lo in range(0, queries.num_queries, QUERY_CHUNK):
            sl = slice(lo, min(lo + QUERY_CHUNK, queries.num_queries))
            d, rows = searcher.search(queries.subset(sl), min(k, searcher.num_rows), config, check[sl], wanted[sl])
            rows = np.where(rows >= 0, rows + start, -1)  # block-local rows become global ones
            distances[sl], rows_all[sl] = merge_topk(distances[sl], rows_all[sl], d, rows, k)
            tally.add(sl.stop - sl.start)
    bounds = np.cumsum([0, *sizes])
    return [Matches(distances[a:b, : s.k], rows_all[a:b, : s.k]) for a, b, s in zip(bounds[:-1], bounds[1:], sets)]


def search_bank(
    bank: Bank,
    queries_2d: npt.NDArray[np.floating],
    masks: npt.NDArray[np.bool_],
    k: int,
    *,
    config: SearchConfig | None = None,
    block_rows: int | None = None,
    memory_bytes: float = 8 * 2**30,
    progress: ProgressFactory | None = None,
    description: str = "searching the bank",
) -> Matches:
    """Masked top-k of each query over the whole bank: search_bank_sets with one set (same exactness:
    exact for every engine but faiss-ivf, whose index is stored beside the bank and reused).

    Args:
        queries_2d: (Q, J, 2) any units (pixels); joints outside the mask are ignored.
        masks: (Q, J) bool, at least 2 joints each (non-degenerate).
        k: neighbours per query.
    """
    return search_bank_sets(bank, [QuerySet(queries_2d, masks, k)], config=config, block_rows=block_rows,
                            memory_bytes=memory_bytes, progress=progress, description=description)[0]  # fmt: skip


class _ExactBlock:
    """One prepared bank block, searched by an exact engine (shared by every query set)."""

    def __init__(self, prepared: PreparedBank) -> None:
        self.prepared = prepared
        self.num_rows = prepared.num_rows

    def search(self, queries: QueryBatch, k: int, config: SearchConfig, check: npt.NDArray[np.bool_],
               wanted: npt.NDArray[np.int64]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        return search_prepared(self.prepared, queries, k, config)  # exact: k for every query costs no more


class _IvfBlock:
    """One bank block's faiss-ivf index (stored or just built)."""

    def __init__(self, index: IvfMaskedIndex) -> None:
        self.index = index
        self.num_rows = index.bank.num_rows

    def search(self, queries: QueryBatch, k: int, config: SearchConfig, check: npt.NDArray[np.bool_],
               wanted: npt.NDArray[np.int64]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """check (Q,): the queries of a `check` set scan ivf_nprobe_check cells (half if full-body); wanted
        (Q,): each query's own k (its set's). The index searches with its own config (the caller's, as built
        or loaded)."""
        c = self.index.config
        return self.index.search_batch(queries, k, nprobe=np.where(check, c.ivf_nprobe_check, c.ivf_nprobe),
                                       nprobe_full=np.where(check, max(1, c.ivf_nprobe_check // 2), c.ivf_nprobe_full),
                                       k_query=wanted)  # fmt: skip


def _prepared_blocks(
    bank: Bank, block_rows: int, degenerate_eps: float, content_sha256: str | None, store: bool
) -> Iterator[tuple[int, PreparedBank]]:
    """Each block of the bank prepared for search (prepare_bank): sliced from the prepared bank stored
    beside it (<bank>/.index/prepared-<key>: PreparedBank.coords and .sqnorm in bank order, keyed by the
    bank's content and degenerate_eps), or read and prepared, and then stored (streamed into
    memory-mapped files during this pass, so memory stays bounded), so that later runs of any engine
    skip decoding and preparing. One copy serves both: the exact engines scan it, and the faiss-ivf
    index re-ranks its candidates from it (ivf_store keeps only the index's own arrays)."""
    if not store:
        for start, block in iter_bank_blocks(bank, block_rows):
            yield start, prepare_bank(block["pose_2d"], degenerate_eps=degenerate_eps)
        return
    import shutil
    import tempfile

    from ..provenance import sha256_bytes
    from ..search.ivf_store import INDEX_DIR
    from ..stored_arrays import load_arrays, save_arrays

    content = content_sha256 or sha256_file(bank.root / MANIFEST)
    key = sha256_bytes("prepared-bank", "1", content, repr(float(degenerate_eps)))[:32]
    folder = Path(bank.root) / INDEX_DIR / f"prepared-{key}"
    n, j = bank.num_rows, bank.skeleton.num_joints
    loaded = load_arrays(folder, key, ("coords", "sqnorm"))
    if loaded is not None:
        coords, sqnorm = loaded[0]["coords"], loaded[0]["sqnorm"]
        for start in range(0, n, block_rows):
            c = coords[start : start + block_rows]
            # poses_2d: the prepared rows are poses too (n_S ignores translation and scale).
            yield start, PreparedBank(c.reshape(len(c), j, 2), c, sqnorm[start : start + block_rows], degenerate_eps)
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.build.", suffix=".tmp", dir=folder.parent))
    except OSError:  # a read-only bank: prepare every block, store nothing
        yield from _prepared_blocks(bank, block_rows, degenerate_eps, content, False)
        return
    try:
        coords = np.lib.format.open_memmap(scratch / "coords.npy", mode="w+", dtype=np.float32, shape=(n, 2 * j))
        sqnorm = np.lib.format.open_memmap(scratch / "sqnorm.npy", mode="w+", dtype=np.float32, shape=(n, j))
        done = 0
        for start, block in iter_bank_blocks(bank, block_rows):
            prepared = prepare_bank(block["pose_2d"], degenerate_eps=degenerate_eps)
            coords[start : start + prepared.num_rows] = prepared.coords
            sqnorm[start : start + prepared.num_rows] = prepared.sqnorm
            done = start + prepared.num_rows
            yield start, prepared
        if done == n:  # a search stopped early (an error) stores nothing
            save_arrays(folder, key, {"coords": coords, "sqnorm": sqnorm},
                        {"kind": "prepared bank", "rows": n, "bank_manifest_sha256": content})  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _ivf_blocks(
    bank: Bank, block_rows: int, config: SearchConfig, content_sha256: str | None, store: bool
) -> Iterator[tuple[int, _IvfBlock]]:
    """Each block's index over its prepared rows (`_prepared_blocks`): loaded from <bank>/.index when
    stored there, else built and stored."""
    from ..search.approximate import build_ivf_index
    from ..search.ivf_store import INDEX_DIR, ivf_index_key, stored_ivf_index

    content = (content_sha256 or sha256_file(bank.root / MANIFEST)) if store else None
    for first, prepared in _prepared_blocks(bank, block_rows, config.degenerate_eps, content, store):
        if not store:
            yield first, _IvfBlock(build_ivf_index(prepared, config))
            continue
        last = first + prepared.num_rows
        key = ivf_index_key(content, first, last, config)
        extra = {"bank": str(Path(bank.root).resolve()), "bank_manifest_sha256": content, "bank_rows": [first, last]}
        index, _ = stored_ivf_index(Path(bank.root) / INDEX_DIR, key, config, prepared, extra)
        yield first, _IvfBlock(index)


class BankRows:
    """Random access to the bank rows that matches point at: pose_2d, pose_3d, pose_id, view_id.

    Parquet decodes whole row groups, so gathering the k best rows of many people from a large bank
    decodes most of it (measured ~3 s of CPU per 1.2M rows, on every run). `open_bank_rows` therefore
    stores those four columns once as plain arrays beside the bank (<bank>/.index/rows-<key>, keyed by
    the bank's content; posebank.stored_arrays: atomic, verified on reuse) and gathers from them,
    memory-mapped. Without a stored copy (store=False, or a read-only bank) it reads the shards.
    """

    COLUMNS = ("pose_2d", "pose_3d", "pose_id", "view_id")

    def __init__(self, bank: Bank, arrays: dict[str, np.ndarray] | None) -> None:
        self.bank = bank
        self.arrays = arrays

    def take(self, rows: npt.NDArray[np.int64]) -> dict[str, np.ndarray]:
        """The four columns of sorted unique global `rows`; poses (n, J, 2|3) float32."""
        if self.arrays is None:
            return self.bank.take(rows, columns=self.COLUMNS)
        return {c: np.asarray(self.arrays[c][rows]) for c in self.COLUMNS}


def open_bank_rows(bank: Bank, content_sha256: str | None = None, *, store: bool = True) -> BankRows:
    """BankRows of `bank`: its stored gather table, verified, or one built now in one pass over the
    bank (streamed into memory-mapped files, so memory stays bounded) and stored."""
    if not store:
        return BankRows(bank, None)
    import tempfile

    from ..provenance import sha256_bytes
    from ..search.ivf_store import INDEX_DIR
    from ..stored_arrays import load_arrays, save_arrays

    content = content_sha256 or sha256_file(bank.root / MANIFEST)
    key = sha256_bytes("bank-rows", "1", content)[:32]
    folder = Path(bank.root) / INDEX_DIR / f"rows-{key}"
    loaded = load_arrays(folder, key, BankRows.COLUMNS)
    if loaded is not None:
        return BankRows(bank, loaded[0])
    n, j = bank.num_rows, bank.skeleton.num_joints
    shapes = {"pose_2d": ((n, j, 2), np.float32), "pose_3d": ((n, j, 3), np.float32),
              "pose_id": ((n,), np.int64), "view_id": ((n,), np.int32)}  # fmt: skip
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.build.", suffix=".tmp", dir=folder.parent))
    except OSError:
        return BankRows(bank, None)  # a read-only bank: gather from the shards
    try:
        arrays = {c: np.lib.format.open_memmap(scratch / f"{c}.npy", mode="w+", dtype=t, shape=sh)
                  for c, (sh, t) in shapes.items()}  # fmt: skip
        start = 0
        for batch in bank.iter_poses(columns=BankRows.COLUMNS, batch_size=1 << 18):
            stop = start + len(batch["pose_id"])
            for c in BankRows.COLUMNS:
                arrays[c][start:stop] = batch[c]
            start = stop
        if start != n:
            raise RuntimeError(f"{bank.root}: read {start} rows, the manifest lists {n}")
        save_arrays(folder, key, arrays, {"kind": "bank rows", "rows": n, "bank_manifest_sha256": content})
        loaded = load_arrays(folder, key, BankRows.COLUMNS)
        return BankRows(bank, loaded[0] if loaded else {c: np.asarray(a) for c, a in arrays.items()})
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


def gather_matches(bank: Bank, rows: npt.NDArray[np.int64], bank_rows: BankRows | None = None) -> MatchedPoses:
    """The poses and ids of bank rows (Q, k) (-1 rows give NaN poses and id -1).

    bank_rows: open_bank_rows(bank) to gather from its stored table; None reads the shards."""
    shape = rows.shape
    flat = rows.reshape(-1)
    valid = flat >= 0
    unique, inverse = np.unique(flat[valid], return_inverse=True)
    j = bank.skeleton.num_joints
    pose_2d = np.full((len(flat), j, 2), np.nan, np.float32)
    pose_3d = np.full((len(flat), j, 3), np.nan, np.float32)
    pose_id = np.full(len(flat), -1, np.int64)
    view_id = np.full(len(flat), -1, np.int32)
    if len(unique):
        taken = (bank_rows or BankRows(bank, None)).take(unique)
        pose_2d[valid] = taken["pose_2d"][inverse]
        pose_3d[valid] = taken["pose_3d"][inverse]
        pose_id[valid] = taken["pose_id"][inverse]
        view_id[valid] = taken["view_id"][inverse]
    return MatchedPoses(pose_2d.reshape(*shape, j, 2), pose_3d.reshape(*shape, j, 3), pose_id.reshape(shape),
                        view_id.reshape(shape))  # fmt: skip
