"""Export a checkpoint to ONNX, with everything a consumer needs in the model's metadata.

The graph takes the normalised image batch and returns the model's raw outputs (logits); the
preprocessing, class names, rust index and calibration temperature travel as metadata_props
(JSON strings), so `rustlab predict --onnx` and non-Python consumers reproduce rustlab's
predictions without the checkpoint. Every export is checked against PyTorch in onnxruntime
before it is written: a graph that silently specialised to one input size is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rustlab import __version__
from rustlab.errors import RustlabError

FORMATS = ("onnx",)
ONNX_FORMAT = "rustlab-onnx"
ONNX_FORMAT_VERSION = 1
OPSET = 18
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
# Export-time check: onnxruntime vs PyTorch, float32 on CPU. Observed differences are ~1e-7.
TOLERANCE = 1e-4


@dataclass
class ExportResult:
    path: Path
    dynamic_axes: dict
    max_abs_diff: dict = field(default_factory=dict)  # "NxCxHxW" -> max |onnxruntime - PyTorch|


def onnx_metadata(meta: dict, target: str, dynamic_axes: dict) -> dict[str, str]:
    """metadata_props: string values, JSON where the value is structured."""
    from rustlab.tasks.calibration import temperature_of

    pre = meta["preprocessing"]
    source = Path(meta["path"])
    return {
        "rustlab_format": ONNX_FORMAT,
        "rustlab_format_version": str(ONNX_FORMAT_VERSION),
        "rustlab_version": __version__,
        "model": meta["model"],
        "task": meta["task"],
        "target": target,  # "label" (one row of class logits per image) or "mask" (a logit per pixel)
        "model_config": json.dumps(meta["model_config"]),
        "class_names": json.dumps(list(meta["class_names"])),
        "rust_index": str(int(meta["rust_index"])),
        "preprocessing": json.dumps(pre),
        "temperature": repr(temperature_of(meta.get("calibration"))),
        "calibration": json.dumps(meta.get("calibration")),
        "input": (f"{INPUT_NAME}: float32 N x 3 x H x W RGB (H = W = {pre['image_size']} as trained), "
                  f"resized as {pre.get('resize', 'square-bilinear')}, then (pixel / 255 - mean) / std"),
        "output": (f"{OUTPUT_NAME}: the model's raw outputs; classification: softmax(logits / temperature) "
                   "gives calibrated class probabilities"),
        "dynamic_axes": json.dumps(dynamic_axes),
        "source_checkpoint": f"{source.parent.name}/{source.name}",
        "epoch": str(meta.get("epoch", "")),
        "tta": meta.get("tta", "none"),  # test-time flips, inside the graph (rustlab.inference.tta)
    }


def export_onnx(checkpoint, out=None, verify: bool = True, tta: str | None = None) -> ExportResult:
    """Write ``checkpoint`` as an ONNX model (dynamic batch; dynamic H/W for per-pixel tasks). A
    segmenter's test-time flips (its checkpoint's ``tta``, or ``tta``) are part of the graph."""
    _require("onnxscript", "onnx")
    import torch

    from rustlab.checkpoint import atomic_write
    from rustlab.inference.loading import build_model_from_checkpoint
    from rustlab.registry import get_task

    model, meta = build_model_from_checkpoint(checkpoint, tta=tta)
    model = model.cpu().eval()
    out = Path(out) if out else Path(meta["path"]).with_suffix(".onnx")
    if out.is_dir():
        raise RustlabError(f"--out {out}: is a folder, expected a file name such as model.onnx")
    if not out.parent.is_dir():
        raise RustlabError(f"--out {out}: folder {out.parent} does not exist")
    size = int(meta["preprocessing"]["image_size"])
    target = get_task(meta["task"]).target
    spatial = target == "mask"  # per-pixel outputs work at any H x W
    axes = {0: "batch", 2: "height", 3: "width"} if spatial else {0: "batch"}
    dynamic_axes = {INPUT_NAME: axes, OUTPUT_NAME: axes if spatial else {0: "batch"}}

    # Batch 2: torch.export specialises a dimension whose example size is 0 or 1. Odd H x W for
    # per-pixel models: tracing follows the Python branches the example takes, and a shortcut for
    # "nice" sizes (e.g. a U-Net skipping its padding at multiples of 16) would otherwise be baked
    # into the graph. _verify then checks the trained size and other sizes against PyTorch.
    h, w = (size + 1, size + 3) if spatial else (size, size)
    example = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    program = _export_program(model, example, {k: torch.export.Dim.DYNAMIC for k in axes}, meta["model"])
    _name_dynamic_dims(program.model, axes)
    program.model.metadata_props.update(onnx_metadata(meta, target, dynamic_axes))
    program.model.doc_string = f"rustlab {meta['model']} ({meta['task']}): {', '.join(meta['class_names'])}"

    def write(tmp):
        program.save(tmp)
        if verify:
            diffs.update(_verify(model, tmp, size, spatial, meta["model"]))

    diffs: dict = {}
    atomic_write(out, write)
    return ExportResult(out, dynamic_axes, diffs)


def _require(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise RustlabError(f"ONNX export needs {', '.join(missing)}: pip install {' '.join(missing)}")


def _export_program(model, example, dims: dict, name: str):
    import contextlib
    import io
    import warnings

    import torch

    try:
        # The exporter reports progress, graph dumps and fallbacks on stdout, stderr and warnings;
        # the CLI prints one summary instead.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return torch.onnx.export(model, (example,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                     dynamic_shapes=(dims,), dynamo=True, opset_version=OPSET, optimize=True,
                                     verbose=False)
    except Exception as exc:  # noqa: BLE001 - exporter errors are pages long; the user needs the gist
        raise RustlabError(f"model {name!r} cannot be exported to ONNX: {_export_error_summary(exc)}") from None


def _export_error_summary(exc: Exception) -> str:
    """The root cause's first line and, where torch names it, the model line that raised it."""
    import re

    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(root)).strip()
    summary = (text.splitlines() or [type(root).__name__])[0]
    where = re.search(r'raised this error:\s*File "([^"]+)", line (\d+), in \w+\s*\n\s*(.+)', text)
    if where:
        summary += f" (at {Path(where.group(1)).name}:{where.group(2)}: {where.group(3).strip()})"
    return summary


def _name_dynamic_dims(model, axes: dict) -> None:
    """Rename the exporter's symbols (s77, ...) to batch/height/width wherever they appear."""
    import onnx_ir as ir

    graph = model.graph
    names = {}
    for axis, label in axes.items():
        dim = graph.inputs[0].shape[axis]
        if isinstance(dim, ir.SymbolicDim) and dim.value:
            names[dim.value] = label
    values = list(graph.inputs) + list(graph.outputs) + [v for node in graph.all_nodes() for v in node.outputs]
    for value in values:
        if value.shape is None:
            continue
        dims = [ir.SymbolicDim(names[d.value]) if isinstance(d, ir.SymbolicDim) and d.value in names else d
                for d in value.shape]
        value.shape = ir.Shape(dims)


def _verify(model, path, size: int, spatial: bool, name: str) -> dict:
    """Max |onnxruntime - PyTorch| on random inputs at every shape the export promises."""
    import numpy as np
    import torch

    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failure is reported below in one line, not in ORT's log
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    shapes = [(1, 3, size, size), (3, 3, size, size)]
    if spatial:  # another multiple of every pooling factor, and sizes that are not
        shapes += [(1, 3, 2 * size, size), (2, 3, size + size // 2 + 1, max(8, size - 5))]
    generator = torch.Generator().manual_seed(1)
    diffs = {}
    for shape in shapes:
        x = torch.randn(*shape, generator=generator)
        with torch.inference_mode():
            expected = model(x).float().numpy()
        try:
            got = session.run(None, {INPUT_NAME: x.numpy()})[0]
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise RustlabError(f"exported {name!r} fails in onnxruntime at input {'x'.join(map(str, shape))}: "
                               f"{str(exc).strip().splitlines()[0]}") from None
        if got.shape != expected.shape:
            raise RustlabError(f"exported {name!r} gives shape {got.shape} at input {'x'.join(map(str, shape))}, "
                               f"PyTorch {expected.shape}")
        diff = float(np.abs(got - expected).max())
        scale = max(1.0, float(np.abs(expected).max()))
        if not diff <= TOLERANCE * scale:
            raise RustlabError(f"exported {name!r} does not match PyTorch at input {'x'.join(map(str, shape))} "
                               f"(max abs diff {diff:.3g}); its graph depends on the input size in a way "
                               "ONNX did not capture")
        diffs["x".join(map(str, shape))] = diff
    return diffs
