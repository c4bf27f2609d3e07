"""channels_last (NHWC) on or off, per model, on this CPU (issue 16 item 3), side by side in one run.

For each model: a training step (TrainStep: normalise, forward, loss, backward, AdamW) at the
trainer's batch size, and predict latency (the forward on one image, and on a batch of 8), with the model and its input in contiguous (NCHW) and in channels_last layout, alternating
in ROUNDS rounds (median of each round's steps, the best round kept), with the cores other
processes kept busy meanwhile (rustlab.bench.timing.CpuMeter; > 0.25 = contended).

The pretrained plugin's models convert themselves and their input (their config field
``channels_last``, default on); here both layouts are forced from outside for every model.

    .venv/bin/python experiments/speed/channels_last.py [--models cnn,unet,effnet-lite0] [--rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent
# Each model at its default input size; the training batch: the trainer's 32 for the cnn, smaller
# for the larger nets so one step stays within seconds on 2 shared cores.
SETUPS = {"cnn": ({}, 32), "unet": ({}, 2), "effnet-lite0": ({"weights": "none"}, 8)}
PREDICT_BATCH = 8


def _model(name: str, model_config: dict, channels_last: bool):
    import dataclasses

    import torch

    from rustlab.registry import get_model_spec, get_task
    from rustlab.training import build_model, input_preprocessing

    spec = get_model_spec(name)
    task = get_task(spec.task)
    cfg = dict(model_config)
    if "channels_last" in {f.name for f in dataclasses.fields(spec.config_cls)}:
        cfg["channels_last"] = channels_last  # the plugin's own switch, so "off" is really off
    size = int(getattr(spec.make_config(cfg), "image_size", 64))
    net, config = build_model(spec, task, ["no_rust", "rust"], size, cfg, seed=0)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return task, net, input_preprocessing(config, size), size


def measure_train(name, model_config, batch, channels_last, steps, warmup):
    import torch

    from rustlab.bench.timing import timed_round
    from rustlab.config import TrainConfig
    from rustlab.training import TrainStep, make_optimizer

    task, net, pre, size = _model(name, model_config, channels_last)
    cfg = TrainConfig(model=name, epochs=1, batch_size=batch)
    optimizer, scheduler = make_optimizer(net, cfg, steps + warmup + 1)
    step = TrainStep(net, task, optimizer, scheduler, torch.device("cpu"), pre, amp=False, channels_last=channels_last)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    if task.target == "mask":
        targets = (torch.rand(batch, 1, size, size) > 0.7).to(torch.uint8)
    else:
        targets = torch.randint(0, 2, (batch,))
    net.train()
    timing, others = timed_round(lambda b: (step(*b), batch)[1], itertools.repeat((images, targets)), steps, warmup)
    return {"train_step_ms": round(timing.median_ms, 1), "train_img_s": round(1000 * batch / timing.median_ms, 1),
            "train_others": others, "size": size}


def measure_predict(name, model_config, channels_last, steps, warmup):
    import torch

    from rustlab.bench.timing import timed_round
    from rustlab.data.transforms import normalize

    task, net, pre, size = _model(name, model_config, channels_last)
    net.eval()
    out = {}
    for n in (1, PREDICT_BATCH):
        batch = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)

        def forward(b):
            with torch.inference_mode():
                x = normalize(b, pre["mean"], pre["std"])
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                net(x)
            return len(b)

        timing, others = timed_round(forward, itertools.repeat(batch), steps if n == 1 else max(3, steps // 2),
                                     1 if n > 1 else warmup)
        out[f"predict_b{n}_ms"] = round(timing.median_ms, 2)
        out[f"predict_b{n}_others"] = others
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="cnn,unet,effnet-lite0")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads [default: torch's]")
    parser.add_argument("--out", default=str(OUT / "channels_last"))
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from rustlab.registry import get_registry

    rounds: dict = {}
    batches = {}
    for name in args.models.split(","):
        if name not in get_registry().models:
            continue
        model_config, batch = SETUPS.get(name, ({}, 16))
        batches[name] = batch
        for r in range(args.rounds):
            for cl in (False, True):
                m = {**measure_train(name, model_config, batch, cl, args.steps, 1),
                     **measure_predict(name, model_config, cl, 2 * args.steps, 3)}
                print(f"  {name} round {r} channels_last={cl}: {m}", file=sys.stderr, flush=True)
                rounds.setdefault((name, cl), []).append(m)
    result = []
    for (name, cl), ms in rounds.items():
        row = {"model": name, "channels_last": cl, "batch": batches[name], "size": ms[0]["size"]}
        # each figure from its best round: the one least slowed by other jobs on the shared cores
        for key, others in (("train_step_ms", "train_others"), ("predict_b1_ms", "predict_b1_others"),
                            ("predict_b8_ms", "predict_b8_others")):
            best = min(ms, key=lambda m: m[key])
            row[key], row[others] = best[key], best[others]
        row["train_img_s"] = round(1000 * row["batch"] / row["train_step_ms"], 1)
        row["rounds"] = ms
        result.append(row)
    Path(args.out + ".json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result, args, torch.get_num_threads())
    Path(args.out + ".md").write_text(text)
    print(text)


def report(result, args, threads) -> str:
    def cell(v, others):
        return f"{v} ({'?' if others is None else f'{others:.2f}'}){' **C**' if others and others > 0.25 else ''}"


    lines = ["# channels_last per model on CPU (issue 16 item 3)", "",
             f"`{' '.join(['python', 'experiments/speed/channels_last.py'] + sys.argv[1:])}`, {os.cpu_count()} cores, "
             f"torch {__import__('torch').__version__}, {threads} threads, {time.strftime('%Y-%m-%d %H:%M')} UTC; "
             f"medians of {args.steps} training steps / {2 * args.steps} batch-1 forwards, best of {args.rounds} "
             "alternating rounds. In brackets: cores other processes kept busy; **C** = contended (> 0.25).", "",
             "| model | px | train batch | layout | train step ms | train img/s | predict batch 1 ms | predict batch 8 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result:
        lines.append(f"| {r['model']} | {r['size']} | {r['batch']} | {'channels_last' if r['channels_last'] else 'NCHW'} | "
                     f"{cell(r['train_step_ms'], r['train_others'])} | {r['train_img_s']} | "
                     f"{cell(r['predict_b1_ms'], r['predict_b1_others'])} | "
                     f"{cell(r['predict_b8_ms'], r['predict_b8_others'])} |")
    lines += ["", "| model | train speed-up | predict b1 speed-up | predict b8 speed-up |", "|---|---|---|---|"]
    by = {(r["model"], r["channels_last"]): r for r in result}
    for model in dict.fromkeys(r["model"] for r in result):
        a, b = by.get((model, False)), by.get((model, True))
        if a and b:
            lines.append(f"| {model} | {a['train_step_ms'] / b['train_step_ms']:.2f}x | "
                         f"{a['predict_b1_ms'] / b['predict_b1_ms']:.2f}x | {a['predict_b8_ms'] / b['predict_b8_ms']:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
