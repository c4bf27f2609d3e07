"""Leave-one-collector-out: how a recipe does on photos from a collector it never saw.

For each source S of ``--data``: train the model (and the ``colour-rule`` baseline) on every
other source's train and validation splits, then score ALL of S. Then train on every source and
score each source's own held-out test split. Every cell is its own run folder under
``OUT/runs`` and its scores are kept in ``OUT/cells``: a killed run resumes where it stopped,
finished cells are never recomputed.

A thin driver: training is ``rustlab.training.trainer.train`` and scoring ``rustlab.inference.evaluate
.evaluate_checkpoint``, exactly what `rustlab train` and `rustlab evaluate` run. The report
(markdown, JSON, PNG) is made by rustlab.bench.collectors_report from plain data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from rustlab.errors import RustlabError

BASELINE = "colour-rule"
COLUMNS = ("accuracy", "recall", "specificity", "f1", "roc_auc", "n")


def slug(spec: str) -> str:
    """A file-name-safe short name of a --data value (its last path part)."""
    name = Path(str(spec).rstrip("/")).name or str(spec)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


@dataclass
class Plan:
    model: str
    sources: list[str]
    out: Path
    config: str | None = None  # the recipe (TOML) of the model; the baseline uses its own defaults
    seeds: tuple = (0,)
    epochs: int | None = None  # override the recipe's (a smaller budget per cell, said in the report)
    image_size: int | None = None
    sets: tuple = ()  # --set key=value for the model
    device: str = "auto"
    baseline: str = BASELINE
    split_seed: int = 0  # one split of every source for every cell and seed
    corrections: str | None = None  # --corrections of every cell, trained and scored (baseline too)
    extra_flags: dict = field(default_factory=dict)

    def cells(self):
        """(model, seed, trained-on sources, scored source, split) of every cell, in run order."""
        for held_out in self.sources:
            others = [s for s in self.sources if s != held_out]
            for model in (self.model, self.baseline):
                for seed in (self.seeds if model == self.model else self.seeds[:1]):
                    yield model, seed, others, held_out, "all"
        for model in (self.model, self.baseline):
            for seed in (self.seeds if model == self.model else self.seeds[:1]):
                for source in self.sources:
                    yield model, seed, list(self.sources), source, "test"


def _run_name(model: str, seed: int, trained_on: list[str], all_sources: list[str]) -> str:
    left_out = [s for s in all_sources if s not in trained_on]
    what = f"without-{slug(left_out[0])}" if left_out else "all-sources"
    return f"{slug(model)}-{what}-seed{seed}"


def _train_cell(plan: Plan, model: str, seed: int, trained_on: list[str], log) -> Path:
    """The best checkpoint of the cell's run: trained now, resumed, or found finished."""
    from rustlab.config import resolve_config
    from rustlab.training.trainer import train
    from rustlab.training.state import STATE_NAME, load_train_state, resume_config

    runs = plan.out / "runs"
    name = _run_name(model, seed, trained_on, plan.sources)
    run_dir = runs / name
    if (run_dir / STATE_NAME).is_file():
        state = load_train_state(run_dir)
        if state.progress.complete:
            return run_dir / "best.safetensors"
        log(f"resuming {run_dir}")
        train(resume_config(run_dir, device=plan.device), log=log, resume=run_dir)
        return run_dir / "best.safetensors"
    if run_dir.exists():
        raise RustlabError(f"{run_dir}: a run folder without a training state; remove it to run the cell again")
    is_model = model == plan.model
    flags = {"model": model, "data": list(trained_on), "extra_data": [], "seed": seed,
             "split_seed": plan.split_seed, "out": str(runs), "name": name, "device": plan.device,
             "corrections": plan.corrections}
    if is_model:
        flags.update({"epochs": plan.epochs, "image_size": plan.image_size, **plan.extra_flags})
    cfg = resolve_config(plan.config if is_model else None, flags, plan.sets if is_model else ())
    log(f"training {name} on {', '.join(slug(s) for s in trained_on)}")
    train(cfg, log=log)
    return run_dir / "best.safetensors"


def _score_cell(plan: Plan, checkpoint: Path, source: str, split: str, key: str) -> dict:
    from rustlab.inference.evaluate import evaluate_checkpoint

    path = plan.out / "cells" / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    result = evaluate_checkpoint(checkpoint, source, split, plan.device, per_image=True,
                                 corrections=plan.corrections)
    cell = {k: result.get(k) for k in COLUMNS}
    cell.update(data=source, split=split, checkpoint=str(checkpoint), per_image=result["per_image"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cell))
    tmp.replace(path)  # a killed run never leaves half a cell
    return cell


def run_collectors(plan: Plan, log=print) -> dict:
    """Train and score every cell of ``plan``; the report data (plain dicts) for collectors_report."""
    if len(plan.sources) < 2:
        raise RustlabError("bench collectors: give at least two --data sources (one is held out at a time)")
    if len(set(plan.sources)) != len(plan.sources):
        raise RustlabError("bench collectors: a --data source is given twice")
    if plan.model == plan.baseline:
        raise RustlabError(f"bench collectors: --model is the baseline ({plan.baseline}) itself")
    cells = []
    for model, seed, trained_on, source, split in plan.cells():
        checkpoint = _train_cell(plan, model, seed, trained_on, log)
        key = f"{_run_name(model, seed, trained_on, plan.sources)}-on-{slug(source)}-{split}"
        cell = _score_cell(plan, checkpoint, source, split, key)
        cells.append({"model": model, "seed": seed, "role": "held-out collector" if split == "all" else
                      "own test split", "trained_on": trained_on, **cell})
        log(f"{key}: accuracy {cell['accuracy']:.3f} (n {cell['n']})")
    from rustlab.bench.collectors_stats import summarise

    return {"plan": {"model": plan.model, "baseline": plan.baseline, "sources": plan.sources,
                     "config": plan.config, "seeds": list(plan.seeds), "epochs": plan.epochs,
                     "image_size": plan.image_size, "sets": list(plan.sets), "split_seed": plan.split_seed,
                     "corrections": plan.corrections},
            "rows": summarise(cells, plan.model, plan.baseline),
            "cells": [{k: v for k, v in c.items() if k != "per_image"} for c in cells]}
