"""Inference: a trained model run on photos. Everything between a checkpoint and an answer.

Owns: loading a checkpoint for inference with its test-time flips (loading, tta), the Predictor
(predictor) and the folder pipeline it shares with the ONNX predictor (pipeline, onnx_runtime),
the results file (results_file), overlays and Grad-CAM (overlay, explain), the inference-only
rewrites (batchnorm_fold, layout), export to ONNX (export) and scoring on labelled data (evaluate).

May import the core only: errors, config, checkpoint, device, registry, hookspecs, data, tasks.
It never imports the trainer, the CLI, the GUI, the audit or the benchmarks; they import it.
The CLI, the GUI, evaluate and the trainer's validation all predict through this one path.

Re-exports are lazy: `onnx_runtime` must stay importable without torch.
"""

__all__ = ["Predictor", "OnnxPredictor", "build_model_from_checkpoint", "evaluate_checkpoint", "export_onnx"]

_WHERE = {"Predictor": "predictor", "OnnxPredictor": "onnx_runtime", "evaluate_checkpoint": "evaluate",
          "build_model_from_checkpoint": "loading", "export_onnx": "export"}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"rustlab.inference.{_WHERE[name]}"), name)
    raise AttributeError(name)
