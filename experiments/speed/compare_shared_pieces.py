"""Issue 13: do the speed figures survive the move onto the trainer's shared pieces?

Runs the training rows of `rustlab bench speed` two ways, alternating in one process on the same
data, so both see the same machine load:

- before: rustlab/bench/speed.py as committed in 1b6cb36 (its own copy of the DataLoader, the
  model build and the training step), read with `git show` and patched only where modules moved
  (``make_optimizer`` to rustlab.training, ``KeyedAugmentation`` to rustlab.data.sampling, the
  new ``load_source`` signature);
- after: rustlab.bench.speed_train (build_train_loader, build_model, make_optimizer, TrainStep,
  train_one_epoch).

Each pair runs old then new, then new then old on the next repeat. Every run records the cores
other processes used meanwhile (rustlab.bench.timing). Needs git and the repository history.

Beside images/s (wall time, which another job's load inflates), each run reports the CPU seconds
this process and its workers spent in the whole call (model build, warm-up, timed batches, the
loader alone): with one torch thread (THREADS=1) that figure hardly depends on the neighbours,
so it compares the two code paths even on a busy machine.

Usage: python experiments/speed/compare_shared_pieces.py [DATA] [REPEATS] [THREADS] [STEPS] [ROWS]
  e.g. ... ../shared/data/corrosion-cls 2 > experiments/speed/shared-pieces/compare.md
       ... ../shared/data/corrosion-cls 2 1 15 naive,rustlab,bound > experiments/speed/shared-pieces/compare-1thread.md
"""

from __future__ import annotations

import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from rustlab.bench.speed_train import TrainingBench
from rustlab.bench.timing import CONTENDED_CORES, machine_info

OLD_COMMIT = "1b6cb36"
# the rows whose code changed most: the step (all), the loader (rustlab), channels_last (TrainStep's own)
ROWS = [("naive", {}), ("rustlab", {"workers": 0}), ("bound", {}), ("rustlab", {"workers": 0, "channels_last": True})]
PATCHES = [
    ("from rustlab.training.trainer import make_optimizer", "from rustlab.training import make_optimizer"),
    ("from rustlab.training.distributed import Dist, KeyedAugmentation",
     "from rustlab.data.sampling import KeyedAugmentation\n        from rustlab.training.distributed import Dist"),
    ("load_source(self.data, task=self.task.name)", "load_source(self.data, needs_masks=self.task.requires_masks)"),
]


def old_module(folder: Path):
    text = subprocess.run(["git", "show", f"{OLD_COMMIT}:rustlab/bench/speed.py"], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    for old, new in PATCHES:
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "old_speed.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("old_speed", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_speed"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def name(kind, kw):
    return " ".join([kind] + (["channels_last"] if kw.get("channels_last") else [])
                    + ([f"workers={kw['workers']}"] if kind == "rustlab" else []))


def cpu_seconds() -> float:
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def main():
    import torch

    args = sys.argv[1:]
    data = args[0] if len(args) > 0 else "../shared/data/corrosion-cls"
    repeats = int(args[1]) if len(args) > 1 else 2
    threads = int(args[2]) if len(args) > 2 else None
    steps = int(args[3]) if len(args) > 3 else 30
    kinds = args[4].split(",") if len(args) > 4 else None
    if threads:
        torch.set_num_threads(threads)
    rows = [(k, kw) for k, kw in ROWS if kinds is None or k in kinds]
    with tempfile.TemporaryDirectory() as tmp:
        old = old_module(Path(tmp)).TrainingBench(data, "cnn")
        old.build_cache()
        new = TrainingBench(data, "cnn")
        new.build_cache()
        results = {name(k, kw): {"before": [], "after": [], "cpu_before": [], "cpu_after": []} for k, kw in rows}
        for repeat in range(repeats):
            order = [("before", old), ("after", new)][:: 1 if repeat % 2 == 0 else -1]
            for kind, kw in rows:
                for label, bench in order:
                    cpu0 = cpu_seconds()
                    row = getattr(bench, kind)(steps, 3, **kw)
                    cpu = round(cpu_seconds() - cpu0, 2)
                    results[name(kind, kw)][label].append((round(row.images_per_s, 1), row.others_cores))
                    results[name(kind, kw)][f"cpu_{label}"].append(cpu)
                    print(f"{name(kind, kw):<32} {label:<6} {row.images_per_s:7.1f} images/s, {cpu:6.2f} CPU s, "
                          f"others {row.others_cores} cores", file=sys.stderr, flush=True)
    m = machine_info()
    print(f"machine: {m['cores']} cores ({m['cpu']}), torch {m['torch']}, {m['torch_threads']} threads; "
          f"{len(new.examples)} training images of {data} at {new.image_size} px, batch {new.batch_size}, "
          f"{steps} timed batches after 3 warm-up, {repeats} repeats in alternating order\n")
    print(f"command: `python experiments/speed/compare_shared_pieces.py {' '.join(args)}`\n")
    print("| pipeline | before: own copy of the step, images/s (each repeat) | after: trainer's pieces, images/s "
          "(each repeat) | best after / best before | CPU s per call, before | CPU s per call, after | "
          "least CPU after / before | other processes, cores (max) |")
    print("|---|---|---|---:|---|---|---:|---:|")
    worst = 0.0
    for row, r in results.items():
        best_b, best_a = max(v for v, _ in r["before"]), max(v for v, _ in r["after"])
        others = max((o for _, o in r["before"] + r["after"] if o is not None), default=None)
        worst = max(worst, others or 0.0)
        mark = " *" if others is not None and others > CONTENDED_CORES else ""
        cb, ca = r["cpu_before"], r["cpu_after"]
        print(f"| {row} | {', '.join(str(v) for v, _ in r['before'])} | {', '.join(str(v) for v, _ in r['after'])} | "
              f"{best_a / best_b:.2f} | {', '.join(map(str, cb))} | {', '.join(map(str, ca))} | "
              f"{min(ca) / min(cb):.2f} | {others}{mark} |")
    if worst > CONTENDED_CORES:
        print(f"\n\\* measured under contention: other processes kept more than {CONTENDED_CORES} cores busy.")
    print("\n<!-- " + json.dumps(results) + " -->")


if __name__ == "__main__":
    main()
