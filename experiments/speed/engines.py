"""PyTorch against onnxruntime, per model: what `--engine auto` runs on CPU (rustlab.inference.engine).

For each registered model, a checkpoint with untrained weights at its own input size (the
trainer's pieces build it, as `rustlab bench speed` does), loaded by the Predictor once per
engine. Alternating rounds (so a host that speeds up or slows down meets both engines alike) of
the forward pass on a uint8 batch of 1 and of 16 (normalise, model, float); the best round of
each is kept. Prints a Markdown table.

Usage (repo root): python experiments/speed/engines.py [--models cnn,unet,...] [--rounds 3] [--n 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="cnn,unet,effnet-lite0,effnet-lite0-probe,effnet-lite0-cells,unet-effnet-lite0")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()

    import torch

    from rustlab.bench.speed_predict import forward_ms, speed_checkpoint
    from rustlab.inference.predictor import Predictor

    print(f"torch threads {torch.get_num_threads()}, cores {len(os.sched_getaffinity(0))}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| model | input | batch 1: PyTorch ms | batch 1: onnxruntime ms | batch 16: PyTorch img/s | "
          "batch 16: onnxruntime img/s | onnxruntime speed-up (batch 1 / 16) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("RUSTLAB_CACHE", os.path.join(folder, "cache"))
        for model in args.models.split(","):
            ckpt = speed_checkpoint(model, folder)
            engines = {e: Predictor(ckpt, device="cpu", engine=e) for e in ("torch", "onnx")}
            s = engines["torch"].image_size
            best = {(e, b): float("inf") for e in engines for b in (1, 16)}
            for _ in range(args.rounds):
                for e, predictor in engines.items():
                    for b in (1, 16):
                        batch = torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8)
                        best[e, b] = min(best[e, b], forward_ms(predictor, batch, args.n, 3))
            print(f"| {model} | {s} px | {best['torch', 1]:.2f} | {best['onnx', 1]:.2f} | "
                  f"{16000 / best['torch', 16]:.0f} | {16000 / best['onnx', 16]:.0f} | "
                  f"{best['torch', 1] / best['onnx', 1]:.2f}x / {best['torch', 16] / best['onnx', 16]:.2f}x |",
                  flush=True)


if __name__ == "__main__":
    main()
