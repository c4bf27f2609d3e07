"""``rustlab audit``: read the sources, score every photo out of fold, rank labels and masks.

The model is a closed-form one (``fit``, no epochs), so k folds cost k head fits: by default the
recommended ``effnet-lite0-cells`` (its rust cells need a source with masks; without one, the
``effnet-lite0-probe``), or ``--model`` / a recipe's (``--config``). Every photo of every split
is scored, with the labels as corrected so far (``--corrections``), by a model that never saw it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rustlab.errors import RustlabError

DEFAULT_MODEL = "effnet-lite0-cells"
DEFAULT_WITHOUT_MASKS = "effnet-lite0-probe"
CLASS_NAMES = ["no_rust", "rust"]  # every source's labels are mapped by meaning: rust or not


@dataclass
class AuditPlan:
    sources: list[str]
    out: Path
    model: str | None = None
    config: str | None = None  # a recipe (TOML): its model, model_config, image size, balance, data
    folds: int = 5
    seed: int = 0
    image_size: int | None = None
    corrections: str | None = None
    sets: tuple = ()
    device: str = "auto"  # the backbone's pass (the folds' closed-form fits run on the CPU)


@dataclass
class AuditData:
    """Every photo of every source, decoded, with what the audit needs of each."""

    images: object  # uint8 N x 3 x S x S
    masks: object  # uint8 N x 1 x S x S (zeros where a photo has none)
    labels: np.ndarray  # 1 rust, 0 not, -1 unknown
    has_mask: np.ndarray  # bool N
    sources: list  # each photo's --data value
    files: list  # each photo's name in a corrections file
    groups: list
    images_of: list  # what the decoder reads (a path or a datasets cell): thumbnails
    skipped: list = field(default_factory=list)


def resolve(plan: AuditPlan) -> tuple[str, dict, int, str, str | None]:
    """(model name, model_config, image size, balance, corrections) from the plan and its recipe."""
    from rustlab.config import load_toml, parse_overrides

    recipe = load_toml(plan.config) if plan.config else {}
    if not plan.sources:
        data = recipe.get("data") or []
        plan.sources = [data] if isinstance(data, str) else list(data) + list(recipe.get("extra_data") or [])
    if not plan.sources:
        raise RustlabError("audit: give --data (repeatable) or a --config whose recipe names its data")
    model = plan.model or recipe.get("model")
    model_config = {**(recipe.get("model_config") or {}), **parse_overrides(plan.sets)}
    size = plan.image_size or recipe.get("image_size")
    balance = recipe.get("balance", "sources+classes")
    corrections = plan.corrections if plan.corrections is not None else recipe.get("corrections")
    return model, model_config, size, balance, corrections


def read_all(sources: list, size: int, log) -> AuditData:
    """Every photo of every (loaded) source, decoded at ``size`` through the decode-once cache."""
    import torch

    from rustlab.data.cache import load_decoded
    from rustlab.data.corrections import example_file

    parts = []
    for source in sources:
        spec = source.spec
        decoded = load_decoded(source.examples, size, with_masks=source.has_masks)
        by_key = {ex.key: ex for ex in source.examples}
        examples = [by_key[k] for k in decoded.keys]
        labels = decoded.labels.numpy()
        rust = np.where(labels < 0, -1, (labels == source.rust_index).astype(np.int64))
        masks = decoded.masks if decoded.masks is not None else torch.zeros(len(decoded), 1, size, size,
                                                                            dtype=torch.uint8)
        has_mask = np.array([source.has_masks and ex.mask is not None for ex in examples], dtype=bool)
        parts.append((decoded.images, masks, rust, has_mask, [spec] * len(examples),
                      [example_file(ex.key, spec) for ex in examples],
                      [f"{spec}|{ex.group or ex.key}" for ex in examples], [ex.image for ex in examples],
                      [(spec, *s) for s in decoded.skipped]))
        log(f"  {spec}: {len(examples)} photos decoded at {size} px in {decoded.seconds:.1f}s"
            + (f", {len(decoded.skipped)} unreadable" if decoded.skipped else ""))
    cat = lambda i: [x for p in parts for x in p[i]]  # noqa: E731 - one line per column below
    return AuditData(torch.cat([torch.as_tensor(p[0][:]) for p in parts]), torch.cat([p[1] for p in parts]),
                     np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]),
                     cat(4), cat(5), cat(6), cat(7), cat(8))


def run_audit(plan: AuditPlan, log=print) -> dict:
    """Score, rank and write the audit; returns the report's numbers (rustlab.audit.report)."""
    import torch

    from rustlab.audit.folds import fold_of, out_of_fold
    from rustlab.audit.masks import rank_masks
    from rustlab.audit.rank import rank_labels
    from rustlab.audit.report import write_outputs
    from rustlab.data.sampling import group_weights
    from rustlab.data.sources import load_source
    from rustlab.device import resolve_device
    from rustlab.registry import get_model_spec, get_task
    from rustlab.training.model import build_model, input_preprocessing
    from rustlab.training.step import is_closed_form

    start = time.perf_counter()
    model_name, model_config, size, balance, corrections = resolve(plan)
    if plan.folds < 2:
        raise RustlabError("--folds must be at least 2")
    try:  # before minutes of work, not after
        Path(plan.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RustlabError(f"--out {plan.out}: cannot create folder ({exc.strerror or exc})") from None
    log(f"audit of {', '.join(plan.sources)}")
    sources = [load_source(spec, corrections=corrections) for spec in plan.sources]
    for source in sources:
        for note in source.notes:
            log(f"  {source.spec}: {note}")
    probe_only = model_name is None and not any(s.has_masks for s in sources)
    model_name = model_name or (DEFAULT_WITHOUT_MASKS if probe_only else DEFAULT_MODEL)
    spec = get_model_spec(model_name)
    task = get_task(spec.task)
    if task.target != "label":
        raise RustlabError(f"audit: --model {model_name} is a {spec.task} model; the audit needs a classifier "
                           "fitted in closed form (e.g. effnet-lite0-cells, effnet-lite0-probe, colour-rule)")
    torch.manual_seed(plan.seed)
    model, config = build_model(spec, task, CLASS_NAMES, size or getattr(spec.default_config(), "image_size", 224),
                                model_config, device=resolve_device(plan.device), seed=plan.seed)
    if not is_closed_form(model):
        raise RustlabError(f"audit: --model {model_name} is trained by epochs; k folds of it would take k "
                           "trainings. Use a model fitted in closed form (effnet-lite0-cells, effnet-lite0-probe, "
                           "colour-rule)")
    size = int(getattr(config, "image_size", size or 224))
    data = read_all(sources, size, log)
    labels = data.labels
    known = labels >= 0
    if len(np.unique(labels[known])) < 2:
        raise RustlabError("audit: the photos' labels are all of one kind; give sources with rust and no-rust photos")
    strata = [f"{s}|{y}" for s, y in zip(data.sources, labels)]
    fold = fold_of(labels, strata, data.groups, plan.folds, plan.seed)
    groups = {"none": None, "classes": list(labels), "sources": data.sources,
              "sources+classes": strata}.get(balance, strata)
    log(f"out-of-fold scores: {model_name} at {size} px, {plan.folds} folds")
    oof = out_of_fold(model, data.images, torch.as_tensor(labels), fold, 1, masks=data.masks, sources=data.sources,
                      sample_weight=None if groups is None else group_weights(groups),
                      preprocessing=input_preprocessing(config, size), log=log)
    ranked = rank_labels(labels[known], oof.probabilities[known])
    mask_rows = np.flatnonzero(data.has_mask)
    masks = rank_masks(oof.cells[mask_rows], data.masks[mask_rows, 0].numpy(), labels[mask_rows] == 1) \
        if oof.cells is not None and len(mask_rows) else None
    summary = write_outputs(plan.out, data, oof, known, ranked, mask_rows, masks,
                            model=model_name, size=size, folds=plan.folds, log=log)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    log(f"audit took {summary['seconds']:.0f}s")
    return summary
