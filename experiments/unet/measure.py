"""Time U-Net training steps at candidate input sizes / widths and pick one for a CPU budget.

Usage: python experiments/unet/measure.py TRAIN_IMAGES VAL_IMAGES BUDGET_S [MIN_EPOCHS]
Prints one line per candidate and, last, `SIZE WIDTH EPOCHS` of the first candidate (in order
of preference: larger input first, then wider) that fits MIN_EPOCHS epochs into BUDGET_S.
Run it under the same CPU lock as the training run: timings taken beside other jobs mean nothing.
"""

import sys
import time

import torch

from rustlab.registry import create_model
from rustlab.tasks.segmentation_metrics import segmentation_loss

CANDIDATES = [(160, 16), (128, 16), (128, 12), (112, 12), (96, 12)]  # (image size, base width)
BATCH = 16


def seconds_per_epoch(size: int, width: int, n_train: int, n_val: int) -> float:
    torch.manual_seed(0)
    model = create_model("unet", image_size=size, base_width=width, depth=4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(BATCH, 3, size, size)
    y = (torch.rand(BATCH, 1, size, size) > 0.7).to(torch.uint8)
    times = []
    model.train()
    for i in range(4):  # the first step pays for allocations and kernel choice: dropped
        start = time.perf_counter()
        loss = segmentation_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    train_step = sorted(times[1:])[1]  # median of three
    model.eval()
    with torch.inference_mode():
        start = time.perf_counter()
        model(x)
        eval_step = time.perf_counter() - start
    return train_step * n_train / BATCH + eval_step * n_val / BATCH


def main():
    n_train, n_val, budget = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    min_epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 18
    torch.set_num_threads(torch.get_num_threads())
    chosen = None
    for size, width in CANDIDATES:
        epoch = seconds_per_epoch(size, width, n_train, n_val)
        epochs = int(budget // epoch)
        print(f"size {size:>3} base_width {width:>2}: {epoch:6.1f} s/epoch -> {epochs} epochs in {budget:.0f} s",
              file=sys.stderr, flush=True)
        if chosen is None and epochs >= min_epochs:
            chosen = (size, width, min(epochs, 40))
    if chosen is None:
        size, width = CANDIDATES[-1]
        chosen = (size, width, max(1, int(budget // seconds_per_epoch(size, width, n_train, n_val))))
    print(*chosen)


if __name__ == "__main__":
    main()
