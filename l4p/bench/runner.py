"""The loop every protocol shares: resumable per item, a lazily built model, JSON + markdown out.

A protocol lists its items (sequences, videos, clips), gives a function that scores one item
given a predictor, and a function that turns the per-item records into dataset scores. The
runner stores one record per item under ``<out>/per_sequence/<key>.json`` (atomically), skips
items already done (unless ``overwrite``), builds the model only when an item needs it, and
writes ``summary.json`` / ``summary.md``, with the paper's numbers beside ours when the released
checkpoint is used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from l4p.bench.io import ResultStore, check_run_config, fmt, markdown_table, run_metadata, write_summary
from l4p.bench.paper import PAPER_L4P

logger = logging.getLogger(__name__)

RELEASED_CHECKPOINT = "l4p_depth_flow_2d3dtrack_camray_dynseg_v1.ckpt"


@dataclass
class BenchContext:
    """What a protocol run needs.

    Attributes:
        data: Dataset root (layout: see the protocol's module docstring).
        out: Output folder.
        make_predictor: Builds the predictor (called at most once, only when an item needs it).
        model: Model name, recorded in the summary.
        checkpoint: Checkpoint path or None (random weights), recorded.
        overwrite: Redo items already done.
        limit: Score only the first N items.
        only: Score only these item names.
        options: Protocol options (``--set KEY=VALUE``), as strings.
        settings: Values that must match for a run to resume into ``out``.
    """

    data: Path
    out: Path
    make_predictor: Callable[[], Any]
    model: str = "l4p_vitg14"
    checkpoint: str | None = None
    overwrite: bool = False
    limit: int | None = None
    only: Sequence[str] | None = None
    options: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    _predictor: Any = None

    def predictor(self) -> Any:
        """The predictor, built on first use."""
        if self._predictor is None:
            self._predictor = self.make_predictor()
        return self._predictor

    def option(self, key: str, default: str) -> str:
        """A protocol option (``--set key=value``) or its default."""
        return self.options.get(key, default)


@dataclass(frozen=True)
class Item:
    """One evaluated unit: a name (the record key, may contain ``/``) and what loads it."""

    name: str
    payload: Any = None


def select(ctx: BenchContext, items: Sequence[Item]) -> list[Item]:
    """Apply ``--only`` and ``--limit``; an unknown ``--only`` name is an error."""
    chosen = list(items)
    if ctx.only:
        names = {i.name for i in chosen}
        missing = sorted(set(ctx.only) - names)
        if missing:
            raise FileNotFoundError(f"items {missing} are not in {ctx.data} (found {len(names)} items)")
        chosen = [i for i in chosen if i.name in set(ctx.only)]
    if ctx.limit is not None:
        chosen = chosen[: ctx.limit]
    if not chosen:
        raise FileNotFoundError(
            f"no item to evaluate under {ctx.data}; check --data and the layout (l4p bench NAME --help)"
        )
    return chosen


def run_items(
    ctx: BenchContext, name: str, items: Sequence[Item], evaluate: Callable[[Item, BenchContext], dict]
) -> dict[str, dict]:
    """Score every item, resuming: returns ``{item name: record}``."""
    check_run_config(ctx.out, {"protocol": name, "model": ctx.model, "checkpoint": ctx.checkpoint,
                               "options": ctx.options, **ctx.settings}, overwrite=ctx.overwrite)  # fmt: skip
    store = ResultStore(ctx.out / "per_sequence")
    records: dict[str, dict] = {}
    for item in tqdm(select(ctx, items), desc=name, unit="item"):
        record = None if ctx.overwrite else store.load(item.name)
        if record is None:
            record = {"item": item.name, **evaluate(item, ctx)}
            store.save(item.name, record)
        else:
            logger.debug("%s done, skipped", item.name)
        records[item.name] = record
    return records


def uses_released_checkpoint(checkpoint: str | None) -> bool:
    """Whether the run used the released weights (then the paper's numbers are comparable)."""
    return checkpoint is not None and Path(checkpoint).name == RELEASED_CHECKPOINT


def paper_table(protocol: str, scores: Mapping[str, Any], checkpoint: str | None) -> str:
    """Markdown comparing the paper's L4P numbers with ours ('' when the paper reports none)."""
    numbers = PAPER_L4P.get(protocol)
    if not numbers:
        return "\nThe L4P paper reports no number for this protocol.\n"
    if not uses_released_checkpoint(checkpoint):
        return (f"\nThe paper's L4P numbers are shown only for runs with the released checkpoint "
                f"({RELEASED_CHECKPOINT}); this run used {checkpoint or 'random weights'}.\n")  # fmt: skip
    rows = [
        [n.label, fmt(n.value, 1, n.digits), fmt(scores.get(n.metric), n.scale, n.digits + 1), n.note]
        for n in numbers
    ]
    return "\n## Paper (L4P) vs this run\n\n" + markdown_table(["metric", "paper", "ours", "source"], rows)


def finish(
    ctx: BenchContext,
    protocol: str,
    records: Mapping[str, dict],
    scores: Mapping[str, Any],
    table_md: str,
    *,
    title: str,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """Write ``summary.json`` and ``summary.md``; returns the summary."""
    summary = {
        "meta": run_metadata(),
        "protocol": protocol,
        "data": str(ctx.data),
        "model": {"name": ctx.model, "checkpoint": ctx.checkpoint},
        "options": ctx.options,
        "items": list(records),
        "scores": dict(scores),
        "paper_l4p": {n.label: n.value for n in PAPER_L4P.get(protocol, ())},
        **(extra or {}),
    }
    write_summary(ctx.out, summary, table_md + paper_table(protocol, scores, ctx.checkpoint), title=title)
    return summary
