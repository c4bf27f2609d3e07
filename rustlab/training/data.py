"""The trainer's data: a source read, split and decoded once, and the training loader over it."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from rustlab.errors import RustlabError


def log_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class PreparedData:
    source: object
    splits: dict  # split -> list[Example]
    decoded: dict  # split -> DecodedSet
    fingerprint: str
    sources: list = field(default_factory=list)  # rustlab.data.mixing.source_record of every source

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return [s for d in self.decoded.values() for s in d.skipped]


def prepare_data(cfg, task, image_size: int, log=log_line, train_masks: bool = False) -> PreparedData:
    """Read ``cfg.data`` (and ``cfg.extra_data``), split it with the run's split seed and decode
    every split at ``image_size`` (through the decode-once cache). ``train_masks``: decode the
    training split's masks even for a classifier (one whose closed-form fit learns from them)."""
    from rustlab.data.cache import load_decoded
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits, split_counts

    from rustlab.data.mixing import add_extra_sources, source_record

    source = load_source(cfg.data, negatives=cfg.negatives, needs_masks=task.requires_masks,
                         corrections=cfg.corrections)
    splits = assign_splits(source, seed=cfg.data_split_seed)
    fingerprint, sources = source.fingerprint(), [source_record(source, splits)]
    if cfg.extra_data:
        fingerprint, extra = add_extra_sources(source, splits, cfg.extra_data, cfg.data_split_seed,
                                               task.requires_masks and not task.learns_from_image_labels,
                                               corrections=cfg.corrections)
        sources += extra
    log(f"data {cfg.data}: {len(source.examples)} images, classes {source.class_names} (rust = "
        f"{source.class_names[source.rust_index]!r})")
    for note in source.notes:
        log(f"  {note}")
    for line in split_counts(splits, source.class_names).splitlines():
        log(f"  {line}")
    decoded = {}
    for name, examples in splits.items():
        if examples:
            with_masks = task.target == "mask" or (train_masks and name == "train")
            decoded[name] = load_decoded(examples, image_size, with_masks=with_masks,
                                         use_cache=cfg.cache, progress=sys.stderr.isatty())
            d = decoded[name]
            if task.target == "mask":
                d.weak = weak_rust(d, examples, source.rust_index)
            log(f"  {name}: {len(d)} decoded at {image_size}px in {d.seconds:.1f}s"
                f"{' (cache)' if d.from_cache else ''}, {d.nbytes / 2**20:.1f} MiB"
                f"{' read from the cache file per item' if d.on_disk else ''}"
                f"{f', {len(d.skipped)} unreadable skipped' if d.skipped else ''}"
                f"{f', {int(d.weak.sum())} rust photos without masks (image label only)' if d.weak is not None else ''}")
    if "train" not in decoded or len(decoded["train"]) == 0:
        raise RustlabError(f"--data {cfg.data}: no readable training images")
    if "validation" not in decoded or len(decoded["validation"]) == 0:
        raise RustlabError(f"--data {cfg.data}: too few images for a validation split")
    return PreparedData(source, splits, decoded, fingerprint, sources)


class TrainLoader:
    """The training DataLoader with what must be told the epoch (its sampler, the keyed augmentation).

    Iterating yields (uint8 images, targets, labels) batches; call ``set_epoch`` before each epoch."""

    def __init__(self, dataset, sampler, loader):
        self.dataset, self.sampler, self.loader = dataset, sampler, loader

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


def weak_rust(decoded, examples, rust_index: int):
    """bool N: the decoded rust photos that came without a mask (an --extra-data classification
    source), which a segmenter learns from by their label alone; None where there are none."""
    import torch

    weak_keys = {ex.key for ex in examples if ex.mask is None and ex.label == rust_index}
    if not weak_keys:
        return None
    return torch.tensor([key in weak_keys for key in decoded.keys], dtype=torch.bool)


def image_sources(decoded, examples) -> list:
    """The source of every decoded item (``examples``: its split's Examples, matched by key)."""
    source_of = {ex.key: ex.source for ex in examples}
    return [source_of.get(key) for key in decoded.keys]


def balance_groups(decoded, mode: str, examples=None) -> list | None:
    """The group of every decoded item that ``--balance mode`` makes equally likely; None: shuffle.

    ``examples`` (the split's Examples) tell each item's source, by key."""
    if mode == "none":
        return None
    labels = decoded.labels.tolist()
    if mode == "classes":
        return labels
    if examples is None:
        raise RustlabError(f"--balance {mode}: the training split's examples are needed to know each image's source")
    sources = image_sources(decoded, examples)
    return sources if mode == "sources" else list(zip(sources, labels))


def build_train_loader(decoded, task, cfg, image_size: int, dist=None, workers: int | None = None,
                       pin_memory: bool = False, examples=None) -> TrainLoader:
    """Augmented, keyed (seed, epoch, index) training batches of ``decoded`` for one process (rank).
    ``examples``: the training split's Examples, needed to balance by source."""
    import torch

    from rustlab.data.sampling import KeyedAugmentation
    from rustlab.data.transforms import DecodedDataset, build_augmentation
    from rustlab.training.distributed import Dist

    dist = dist or Dist()
    dataset = KeyedAugmentation(DecodedDataset(decoded, target=task.target,
                                               transform=build_augmentation(cfg.augment, image_size)), cfg.seed)
    sampler = dist.sampler(dataset, seed=cfg.seed, balance_groups=balance_groups(decoded, cfg.balance, examples))
    # Workers are not persistent: each epoch's workers are forked after set_epoch, so they see it.
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=dist.per_rank_batch(cfg.batch_size), sampler=sampler,
        drop_last=len(dataset) > cfg.batch_size, num_workers=cfg.workers if workers is None else workers,
        pin_memory=pin_memory)
    return TrainLoader(dataset, sampler, loader)
