"""Warm single-image prediction latency of checkpoints (the Predictor, as `rustlab predict` serves).

One warm-up call, then ``--repeats`` timed calls of ``Predictor.predict`` on one photo at a time
(decode, resize, forward, interpretation) and of the forward + interpretation alone. Prints the
medians per checkpoint.

A path ending in .onnx (from `rustlab export --format onnx`) is timed through onnxruntime, as
`rustlab predict --onnx` serves it.

Usage (repo root): python experiments/pretrained/predict_ms.py CKPT [CKPT ...] [--images DIR] [--repeats 30]
    [--tta none|hflip|hvflip]   (a segmenter's test-time flips; default: each checkpoint's own)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def warm_ms(checkpoint: str, images: list[Path], repeats: int, tta: str | None = None) -> tuple[float, float]:
    """(median ms of ``Predictor.predict(path)``: decode + resize + forward + interpretation,
    median ms of the forward pass and interpretation alone on the preprocessed image)."""
    if str(checkpoint).endswith(".onnx"):  # `rustlab predict --onnx`: onnxruntime, no torch in the path
        from rustlab.inference.onnx_runtime import OnnxPredictor

        predictor = OnnxPredictor(checkpoint, device="cpu")
        interpret = predictor.task.interpret_numpy
    else:
        from rustlab.inference.predictor import Predictor

        predictor = Predictor(checkpoint, device="cpu", tta=tta)
        interpret = predictor.task.interpret
    predictor.predict(images[0])  # warm-up
    whole, model = [], []
    for i in range(repeats):
        path = images[i % len(images)]
        start = time.perf_counter()
        predictor.predict(path)
        whole.append(time.perf_counter() - start)
        tensor, _ = predictor.preprocess(path)
        start = time.perf_counter()
        interpret(predictor.forward(tensor[None]), predictor.meta)
        model.append(time.perf_counter() - start)
    return 1000 * statistics.median(whole), 1000 * statistics.median(model)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--images", default="../shared/data/corrosion-cls/rust")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--tta", default=None)
    args = parser.parse_args()
    images = sorted(Path(args.images).glob("*.jpg"))[:10]
    for checkpoint in args.checkpoints:
        whole, model = warm_ms(checkpoint, images, args.repeats, args.tta)
        print(f"{checkpoint}{f' (tta {args.tta})' if args.tta else ''}: warm predict {whole:.1f} ms/image with JPEG decode, {model:.1f} ms model only (medians)")


if __name__ == "__main__":
    main()
