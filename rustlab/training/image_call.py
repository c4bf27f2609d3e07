"""The image-call head of a segmenter, fitted once after training (like a closed-form classifier).

A segmenter calls a photo "rust" from its rust area by default, and masks of corroded scenes teach
it little about web photos of rusty objects (experiments/unet/results.md). A model that offers
``fit_image_call(batches, rust)`` (e.g. ``unet-effnet-lite0`` with ``image_call = "head"``) learns
the call instead from photos labelled rust / no rust: the run's own training photos, by their
image labels (a masked scene is rust, a negative is not), and the training split of every
``--call-data`` source. Nothing else of the model changes, so the masks stay exactly what
training made them. The head goes into ``best.safetensors``; ``last.safetensors`` keeps the area call.

A photo that the run holds out (its validation or test split, any source) is never fitted: a
``--call-data`` photo that is the same file is dropped, as is one already in the training split.
"""

from __future__ import annotations

import os

from rustlab.errors import RustlabError


def offers_image_call_head(model) -> bool:
    """The model can fit an image-call head (whether or not its config asks for one)."""
    return callable(getattr(model, "fit_image_call", None))


def has_image_call_head(model) -> bool:
    """The model can fit an image-call head, and its config asks for one."""
    return offers_image_call_head(model) and getattr(getattr(model, "config", None), "image_call", "area") == "head"


def _identity(example) -> str:
    """The file behind an example (links resolved), or its key where it is not a file."""
    image = example.image
    path = image.get("path") if isinstance(image, dict) else image  # a datasets Image cell: {bytes, path}
    if isinstance(path, (str, os.PathLike)) and os.path.exists(path):
        return os.path.realpath(path)
    return example.key


def call_examples(data, specs, seed: int, log=None, corrections: str | None = None) -> list:
    """(source, train Examples) of each ``specs`` source, without the photos the run already
    trains on or holds out (``data``: the run's PreparedData; ``corrections``: the run's)."""
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits
    from rustlab.errors import DataError

    taken = {_identity(ex) for examples in data.splits.values() for ex in examples}
    result = []
    for spec in specs:
        try:
            source = load_source(spec, corrections=corrections)
        except DataError as exc:  # its messages name the flag --data; this one came from --call-data
            raise DataError(str(exc).replace("--data ", "--call-data ", 1)) from None
        train = [ex for ex in assign_splits(source, seed=seed)["train"] if ex.label is not None]
        kept = [ex for ex in train if _identity(ex) not in taken]
        taken.update(_identity(ex) for ex in kept)
        if log is not None:
            log(f"call data {spec}: {len(kept)} training photos"
                + (f" ({len(train) - len(kept)} already in the run's splits, left out)" if len(kept) < len(train) else ""))
        result.append((source, kept))
    return result


BOTH_KINDS = ("the image-call head needs training photos of both kinds (rust and no rust); "
              "add labelled photos with --call-data")


def check_both_kinds(data, call_sets) -> None:
    """Refuse, before any training, a head that would see one kind of photo only (``data``: the
    run's PreparedData; ``call_sets``: from ``call_examples``)."""
    import torch

    is_rust = torch.as_tensor(data.decoded["train"].labels) == data.source.rust_index
    kinds = {bool(v) for v in is_rust.unique()}
    kinds |= {ex.label == source.rust_index for source, examples in call_sets for ex in examples}
    if kinds != {True, False}:
        raise RustlabError(BOTH_KINDS)


def fit_image_call(model, data, call_sets, preprocessing: dict, device, batch_size: int = 64,
                   use_cache: bool = True) -> dict:
    """Fit ``model``'s image-call head on the run's training split and ``call_sets`` (from
    ``call_examples``), decoded and normalised as ``preprocessing`` says (as in training)."""
    import torch

    from rustlab.data.cache import load_decoded
    from rustlab.data.transforms import normalize

    train = data.decoded["train"]
    sets = [(train, train.labels == data.source.rust_index)]
    unreadable = 0
    for source, examples in call_sets:
        if examples:
            decoded = load_decoded(examples, int(preprocessing["image_size"]), use_cache=use_cache)
            unreadable += len(decoded.skipped)  # left out of the fit, counted in what it reports
            sets.append((decoded, decoded.labels == source.rust_index))
    rust = torch.cat([r.bool().cpu() for _, r in sets])
    if rust.all() or not rust.any():
        raise RustlabError(BOTH_KINDS)  # checked before training too; unreadable photos can still empty a kind

    def batches():
        for decoded, _ in sets:
            for i in range(0, len(decoded), batch_size):
                images = torch.as_tensor(decoded.images[i:i + batch_size]).to(device)
                yield normalize(images, preprocessing["mean"], preprocessing["std"])

    info = model.fit_image_call(batches(), rust)
    return {**info, "call_unreadable": unreadable} if unreadable else info
