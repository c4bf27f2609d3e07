"""The file-backed decode cache (issue 16 item 2): peak memory bounded, epoch speed kept.

Part 1, memory: one training epoch of a small CNN on `builtin:N` for two N, each in a fresh child
process, with the cache held in memory (RUSTLAB_CACHE_MEMORY_MIB large) and read from its file
per item (RUSTLAB_CACHE_MEMORY_MIB = CAP, the set >= 4x CAP). Peak RSS from
resource.getrusage(RUSAGE_SELF).ru_maxrss at the end of the epoch; the cache is built by an
unmeasured child first, so both modes read the same file.

Part 2, speed: one process, the trainer's pieces (prepare_data, build_train_loader, TrainStep,
train_one_epoch) on corrosion-cls's train split at 96 px, one epoch in memory and one from the
file, alternating for ROUNDS rounds (best kept), with the cores other processes used meanwhile.

    .venv/bin/python experiments/speed/memmap_cache.py [--sizes 1500,3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "corrosion-cls"
OUT = Path(__file__).resolve().parent
SMALL_CNN = {"widths": [8, 16, 16], "hidden": 32}


def _config(data: str, image_size: int, model_config: dict):
    from rustlab.config import TrainConfig

    return TrainConfig(model="cnn", data=data, epochs=1, batch_size=32, image_size=image_size, device="cpu",
                       augment="light", model_config=model_config)


def _parts(cfg, image_size):
    from rustlab.registry import get_model_spec, get_task
    from rustlab.training import build_model, input_preprocessing, make_optimizer

    spec = get_model_spec(cfg.model)
    task = get_task(spec.task)
    net, config = build_model(spec, task, ["no_rust", "rust"], image_size, cfg.model_config, seed=0)
    return task, net, input_preprocessing(config, image_size), lambda steps: make_optimizer(net, cfg, steps)


def child_epoch(data: str, image_size: int) -> dict:
    """In a child: prepare the data through the cache, train one epoch, report peak RSS."""
    import resource

    from rustlab.training import TrainStep, build_train_loader, prepare_data, train_one_epoch

    cfg = _config(data, image_size, SMALL_CNN)
    task, net, pre, optim = _parts(cfg, image_size)
    prepared = prepare_data(cfg, task, image_size, log=lambda *_: None)
    train = prepared.decoded["train"]
    loader = build_train_loader(train, task, cfg, image_size)
    optimizer, scheduler = optim(len(loader))
    step = TrainStep(net, task, optimizer, scheduler, net_device(net), pre, amp=False)
    start = time.perf_counter()
    train_one_epoch(step, loader, 1)
    seconds = time.perf_counter() - start
    return {"images": len(train), "on_disk": train.on_disk, "cache_mib": round(cache_bytes(prepared) / 2**20, 1),
            "epoch_s": round(seconds, 1), "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                                / 1024, 1)}


def net_device(_net):
    import torch

    return torch.device("cpu")  # the CPU path is what this machine has


def cache_bytes(prepared) -> int:
    return sum(d.nbytes for d in prepared.decoded.values())


def child_read(path: str, in_memory: bool) -> dict:
    """In a child: one pass of the trainer's Dataset (DataLoader, batch 32) over a cache file, in
    memory or read per item; peak RSS above the RSS after imports (the cache's own share)."""
    import resource

    import torch

    from rustlab.data.cache import DecodedSet
    from rustlab.data.cache_store import open_cache
    from rustlab.data.transforms import DecodedDataset

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stored = open_cache(path)
    images = stored["images"].load() if in_memory else stored["images"]
    decoded = DecodedSet(images, stored["labels"], None, stored["keys"])
    total = 0
    for batch, _, _ in torch.utils.data.DataLoader(DecodedDataset(decoded), batch_size=32):
        total += int(batch[:, 0, 0, 0].sum())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"images": len(decoded), "peak_rss_mib": round(peak / 1024, 1), "above_imports_mib": round((peak - base) / 1024, 1)}


def reader_part(counts, image_size) -> list[dict]:
    """Synthetic cache files of ``counts`` images (random pixels: the reader does not care), each
    read by a fresh child in memory and per item."""
    import numpy as np

    from rustlab.data.cache_store import CacheWriter

    rows = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        for n in counts:
            path = Path(folder) / f"n{n}.rlcache"
            writer = CacheWriter(path, n, image_size, False)
            for i in range(n):
                writer.add(f"k{i}", i % 2, rng.integers(0, 255, (image_size, image_size, 3), dtype=np.uint8), None)
            writer.finish()
            for in_memory in (True, False):
                code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import memmap_cache as m; "
                        f"print(json.dumps(m.child_read({str(path)!r}, {in_memory})))")
                done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"child failed: {done.stderr[-2000:]}")
                r = json.loads(done.stdout.strip().splitlines()[-1])
                r.update({"cache_mib": round(path.stat().st_size / 2**20, 1),
                          "mode": "in memory" if in_memory else "file, per item"})
                print(f"  {r}", file=sys.stderr, flush=True)
                rows.append(r)
    return rows


def run_child(data: str, image_size: int, memory_mib: float, cache: str) -> dict:
    env = {**os.environ, "RUSTLAB_CACHE": cache, "RUSTLAB_CACHE_MEMORY_MIB": str(memory_mib),
           "HF_HUB_OFFLINE": "1"}
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import memmap_cache as m; "
            f"print(json.dumps(m.child_epoch({data!r}, {image_size})))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_part(sizes, image_size, cap_mib) -> list[dict]:
    from rustlab.bench.timing import CpuMeter

    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for n in sizes:
            data = f"builtin:{n}"
            run_child(data, image_size, 1e9, cache)  # builds the parquet and the cache file: not measured
            for mode, mib in (("in memory", 1e9), ("file, per item", cap_mib)):
                meter = CpuMeter()
                r = run_child(data, image_size, mib, cache)
                r.update({"data": data, "mode": mode, "cap_mib": cap_mib if mode != "in memory" else None,
                          "others_cores": meter.others_cores()})
                print(f"  {r}", file=sys.stderr, flush=True)
                rows.append(r)
    return rows


def speed_part(rounds: int, image_size: int) -> list[dict]:
    from rustlab.bench.timing import CpuMeter, is_contended
    from rustlab.data.cache import load_decoded
    from rustlab.training import TrainStep, build_train_loader, prepare_data, train_one_epoch

    cfg = _config(str(SHARED), image_size, {"image_size": image_size})
    task, net, pre, optim = _parts(cfg, image_size)
    prepared = prepare_data(cfg, task, image_size, log=lambda *_: None)
    sets = {"in memory": prepared.decoded["train"],
            "file, per item": load_decoded(prepared.splits["train"], image_size, in_memory=False)}
    assert sets["file, per item"].on_disk and not sets["in memory"].on_disk
    best: dict = {}
    for r in range(rounds):
        for mode, decoded in sets.items():
            loader = build_train_loader(decoded, task, cfg, image_size)
            loader.set_epoch(r)
            optimizer, scheduler = optim(len(loader))
            step = TrainStep(net, task, optimizer, scheduler, net_device(net), pre, amp=False)
            meter = CpuMeter()
            start = time.perf_counter()
            train_one_epoch(step, loader, prepared.source.rust_index)
            seconds = time.perf_counter() - start
            others = meter.others_cores()
            m = {"mode": mode, "images": len(decoded), "epoch_s": round(seconds, 2),
                 "img_s": round(len(decoded) / seconds, 1), "others_cores": others, "contended": is_contended(others)}
            print(f"  round {r}: {m}", file=sys.stderr, flush=True)
            if mode not in best or m["img_s"] > best[mode]["img_s"]:
                best[mode] = m
    return list(best.values())


def report(memory_rows, speed_rows, args, reader_rows=()) -> str:
    def others(v):
        return "?" if v is None else f"{v:.2f}{' **C**' if v > 0.25 else ''}"

    lines = ["# The file-backed decode cache (issue 16 item 2)", "",
             f"`{' '.join(['python', 'experiments/speed/memmap_cache.py'] + sys.argv[1:])}`, "
             f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')} UTC. "
             "Others = cores other processes kept busy meanwhile; **C** = contended (> 0.25): the "
             "machine was shared with other agents' jobs.", ""]
    if memory_rows:
        lines += [f"## Peak memory: one epoch of a small CNN at {args.image_size} px on builtin:N (child process each)",
                  "", "| data | images in train | cache (all splits) MiB | mode | peak RSS MiB | epoch s | others |",
                  "|---|---|---|---|---|---|---|"]
        for r in memory_rows:
            cap = f" (cap {r['cap_mib']} MiB)" if r["cap_mib"] else ""
            lines.append(f"| {r['data']} | {r['images']} | {r['cache_mib']} | {r['mode']}{cap} | {r['peak_rss_mib']} | "
                         f"{r['epoch_s']} | {others(r['others_cores'])} |")
        lines.append("")
    if reader_rows:
        lines += [f"## The cache's own share: one pass of the Dataset over a cache file (batch 32, {args.image_size} px, "
                  "fresh child each)", "", "| images | cache MiB | mode | peak RSS MiB | peak above the imports MiB |",
                  "|---|---|---|---|---|"]
        for r in reader_rows:
            lines.append(f"| {r['images']} | {r['cache_mib']} | {r['mode']} | {r['peak_rss_mib']} | "
                         f"{r['above_imports_mib']} |")
        lines.append("")
    if speed_rows:
        lines += [f"## Epoch speed on corrosion-cls (train split, cnn at {args.image_size} px, batch 32, "
                  f"best of {args.rounds} alternating rounds, one process)", "",
                  "| mode | images | epoch s | img/s | others |", "|---|---|---|---|---|"]
        for m in speed_rows:
            lines.append(f"| {m['mode']} | {m['images']} | {m['epoch_s']} | {m['img_s']} | {others(m['others_cores'])} |")
        if len(speed_rows) == 2:
            lines.append(f"\nfile / memory: {speed_rows[1]['img_s'] / speed_rows[0]['img_s']:.2f} (target >= 0.90)")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1500,3000", help="builtin:N sizes for the memory part")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--cap-mib", type=float, default=16.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reader-sizes", default="2000,4000,8000", help="cache files read by the Dataset alone")
    parser.add_argument("--skip", choices=["memory", "speed"], default=None)
    parser.add_argument("--out", default=str(OUT / "memmap_cache"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    memory_rows, reader_rows = [], []
    if args.skip != "memory":
        memory_rows = memory_part([int(n) for n in args.sizes.split(",")], args.image_size, args.cap_mib)
        reader_rows = reader_part([int(n) for n in args.reader_sizes.split(",")], args.image_size)
    speed_rows = [] if args.skip == "speed" or not SHARED.is_dir() else speed_part(args.rounds, args.image_size)
    Path(args.out + ".json").write_text(json.dumps({"memory": memory_rows, "reader": reader_rows,
                                                    "speed": speed_rows}, indent=2) + "\n")
    text = report(memory_rows, speed_rows, args, reader_rows)
    Path(args.out + ".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
