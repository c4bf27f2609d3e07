"""What runs a checkpoint's forward pass: onnxruntime on a cached export by default on CPU, else
PyTorch with its BatchNorms folded.

Measured per model (experiments/speed/engines.md; docs/benchmarks.md, "Default predict path"):
onnxruntime is at least as fast as PyTorch for every registered model, and 1.5-2x faster for the
EfficientNet-Lite0 ones (depthwise convolutions); on the recommended model neither channels_last,
TorchScript freezing nor torch.compile brought PyTorch within 1.3x of it. So a checkpoint is exported once (rustlab.inference.export, which checks the export against
PyTorch at every input shape it promises), cached under ``<cache>/onnx/`` keyed by the
checkpoint's sha256 and its test-time flips, and every later Predictor, `rustlab evaluate` and GUI
session on that checkpoint opens the cached file. Each open checks one input against PyTorch
again (a cache written by another onnxruntime, or damaged, is rebuilt once, then given up on).
Where onnxruntime or the exporter is missing, or the model does not export, PyTorch runs it and
the caller gets a one-line note saying why.

On CUDA the model stays in PyTorch (mixed precision, no export); ``engine="torch"`` forces
PyTorch, ``engine="onnx"`` refuses to fall back.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from rustlab.errors import RustlabError

ENGINES = ("auto", "onnx", "torch")
# The first export of a checkpoint costs 10-20 s on 2 cores (the recommended model: 12 s, then
# 18 s to the first answer); onnxruntime saves ~9 ms a photo on it. So "auto" exports only for a
# job of at least this many photos, or of unknown size (the Python API); a smaller job whose
# export is not cached yet runs in PyTorch: a first `rustlab predict photo.jpg` answers in 5 s
# instead of 19 s (docs/predict.md#engine).
EXPORT_PAYS_FROM = 1000
PARITY_TOLERANCE = 1e-4  # max |onnxruntime - PyTorch| relative to the output's scale, as at export


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_path(checkpoint, tta: str) -> Path:
    """Where the export of ``checkpoint`` (with test-time flips ``tta``) is cached."""
    from rustlab.data.locations import cache_dir
    from rustlab.inference.export import ONNX_FORMAT_VERSION

    return cache_dir() / "onnx" / f"{file_sha256(checkpoint)[:40]}-{tta}-v{ONNX_FORMAT_VERSION}.onnx"


class OnnxRunner:
    """A callable like the PyTorch model: a normalised float32 N x 3 x H x W tensor in, the raw
    outputs out, computed by an onnxruntime session on the cached export."""

    engine = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        from rustlab.inference.export import INPUT_NAME

        options = ort.SessionOptions()
        options.log_severity_level = 4  # failures are reported by rustlab in one line
        if threads:
            options.intra_op_num_threads = int(threads)
        # Idle intra-op threads sleep instead of spinning: the folder pipeline's decode threads
        # share these cores. Measured on 2 cores (2026-12-08, one run each): the 96 px CNN's folder
        # predict on web photos 566 img/s against 411 spinning; the recommended model's within the
        # run-to-run noise (117-153 img/s either way), its single-photo latency no slower.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = INPUT_NAME

    def __call__(self, x):
        import numpy as np
        import torch

        array = np.ascontiguousarray(x.detach().cpu().float().numpy())
        return torch.from_numpy(self.session.run(None, {self.input: array})[0])


def _missing_modules() -> list[str]:
    return [m for m in ("onnxruntime", "onnx", "onnxscript") if importlib.util.find_spec(m) is None]


def _matches(runner, model, size: int) -> bool:
    import torch

    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = model(x).float()
    got = runner(x)
    if got.shape != expected.shape:
        return False
    scale = max(1.0, float(expected.abs().max()))
    return float((got - expected).abs().max()) <= PARITY_TOLERANCE * scale


def onnx_runner(checkpoint, model, meta: dict, threads: int | None = None, path: Path | None = None) -> OnnxRunner:
    """The cached export of ``checkpoint`` opened in onnxruntime, made first where it is not
    cached; checked against ``model`` (the PyTorch model, test-time flips included) on one input.
    Raises RustlabError with the reason where onnxruntime cannot serve it."""
    from rustlab.inference.export import export_onnx  # writes atomically: a reader never sees half a file

    missing = _missing_modules()
    if missing:
        raise RustlabError(f"{', '.join(missing)} not installed")
    path = path or cache_path(checkpoint, meta["tta"])  # ``path``: the caller hashed the checkpoint already
    size = int(meta["preprocessing"]["image_size"])
    for attempt in range(2):
        if attempt or not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            export_onnx(checkpoint, path, verify=True, tta=meta["tta"])
        try:
            runner = OnnxRunner(path, threads)
        except Exception:  # noqa: BLE001 - a damaged cache file: rebuilt once below
            path.unlink(missing_ok=True)
            continue
        if _matches(runner, model, size):
            return runner
        path.unlink(missing_ok=True)
    raise RustlabError("the cached ONNX export does not match PyTorch")


def resolve_engine(engine: str = "auto") -> str:
    """``engine``, where "auto" may be narrowed by ``$RUSTLAB_ENGINE`` (onnx or torch): the test
    suite runs PyTorch by default, so that each tiny checkpoint it trains is not exported too."""
    if engine not in ENGINES:
        raise RustlabError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "auto":
        chosen = os.environ.get("RUSTLAB_ENGINE", "auto").strip().lower() or "auto"
        if chosen not in ENGINES:
            raise RustlabError(f"RUSTLAB_ENGINE={chosen!r}: expected one of {', '.join(ENGINES)}")
        return chosen
    return engine


def choose_runner(checkpoint, model, meta: dict, device, engine: str = "auto", channels_last: bool = False,
                  threads: int | None = None, photos: int | None = None):
    """(callable running the forward pass on normalised batches, note or None).

    ``model`` is the loaded PyTorch model on ``device``; the note is one line for the user where
    ``engine="auto"`` fell back to PyTorch on CPU (on CUDA PyTorch is the choice, not a fallback).
    ``threads``: onnxruntime's intra-op threads (default: one per physical core). ``photos``: how
    many photos the job holds, where known: under EXPORT_PAYS_FROM, "auto" uses an export only
    if it is cached already."""
    from rustlab.inference.batchnorm_fold import fold_for_inference

    engine = resolve_engine(engine)
    note = None
    small = photos is not None and photos < EXPORT_PAYS_FROM
    cached = cache_path(checkpoint, meta["tta"]) if engine != "torch" and device.type == "cpu" else None
    if engine == "auto" and cached is not None and small and not cached.is_file():
        engine = "torch"  # not worth an export now: no note, this is the choice, not a fallback
    if engine != "torch" and device.type == "cpu":
        try:
            return onnx_runner(checkpoint, model, meta, threads, cached), None
        except RustlabError as exc:
            if engine == "onnx":
                raise RustlabError(f"--engine onnx: {exc}") from None
            note = f"predicting in PyTorch, not onnxruntime ({exc}); it is slower (docs/benchmarks.md)"
    elif engine == "onnx":
        raise RustlabError(f"--engine onnx runs on the CPU; --device is {device}")
    return fold_for_inference(model, meta["preprocessing"], device, channels_last), note
