"""`make demo`: rustlab as a new user meets it, in about two minutes on 2 cores.

1. The packaged default model predicts photos with no training: synthetic samples, and held-out
   test photos of the shared collectors where ../shared/data exists. Every call is checked
   against the photo's label, and a wrong one is said to be wrong, with why.
2. A plugin is trained on the built-in synthetic set (a closed-form probe: seconds) and predicts
   the same samples, to show the train-then-predict loop.

Each step prints the `rustlab` command it runs, so a user can copy it.
Usage (repo root): python demo/demo.py [OUT]   (default OUT: runs/demo)
"""

from __future__ import annotations

import csv
import random
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

SHARED = Path("../shared/data")
SOURCES = ("metal-cls", "corrosion-cls")  # classification collectors: each photo's label is its folder


def rustlab(*args: str) -> None:
    print(f"\n$ rustlab {' '.join(shlex.quote(a) for a in args)}", flush=True)
    code = subprocess.call([sys.executable, "-m", "rustlab", *args])
    if code not in (0,):
        sys.exit(f"demo: `rustlab {args[0]}` exited with {code}")


def check(results: Path, truth: dict[str, str], why_wrong: str) -> None:
    """Each call against its label; the wrong ones named, with ``why_wrong``."""
    rows = list(csv.DictReader(results.open()))
    wrong = [r for r in rows if r["label"] != truth[r["source"]]]
    print(f"  -> {len(rows) - len(wrong)} of {len(rows)} calls right", flush=True)
    for r in wrong:
        print(f"  -> WRONG: {Path(r['source']).name} is {truth[r['source']]}, called {r['label']} "
              f"({float(r['confidence']):.2f}). {why_wrong}", flush=True)


def held_out_photos(count: int = 3) -> dict[str, str]:
    """``count`` rust and ``count`` clean photos from each shared source's test split (the split
    the default model was never fitted on), labels as corrected in data/corrections."""
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits

    picked = {}
    for name in SOURCES:
        source = load_source(SHARED / name, corrections="data/corrections")
        test = assign_splits(source, seed=0)["test"]  # the recipe's split_seed
        rng = random.Random(0)
        for label in range(len(source.class_names)):
            of_label = sorted((e for e in test if e.label == label), key=lambda e: e.key)
            for example in rng.sample(of_label, min(count, len(of_label))):
                image = example.image  # a folder source's image: a path, or datasets' {"path": ...}
                path = Path(image["path"] if isinstance(image, dict) else image)
                picked[str(SHARED / name / path.relative_to(path.parents[1]))] = source.class_names[label]
    return picked


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    print("== 1. The default model, packaged with rustlab: no training", flush=True)
    rustlab("models")
    samples = out / "samples"
    subprocess.run([sys.executable, "-m", "rustlab", "samples", str(samples), "--count", "3"], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"\n(rustlab samples wrote 6 synthetic photos to {samples}: rust_*.png show rust)")
    rustlab("predict", str(samples), "--results", str(out / "samples.csv"))
    truth = {str(p): p.name.rsplit("_", 1)[0] for p in samples.iterdir()}
    check(out / "samples.csv", truth, "These are rustlab's synthetic drawings, not photos: the default model "
          "was fitted on real photos only, so drawn rust can look unlike rust to it (docs/model-card.md).")
    if SHARED.is_dir():
        photos = held_out_photos()
        print(f"\n{len(photos)} held-out test photos of {', '.join(SOURCES)} (never fitted on):", flush=True)
        rustlab("predict", *photos, "--results", str(out / "shared.csv"))
        check(out / "shared.csv", photos, "The default model is right on about 9 in 10 held-out photos "
              "(docs/model-card.md lists what it gets wrong).")
    else:
        print(f"\n({SHARED} is not here: the shared collectors' photos are skipped)")
    print("\n== 2. Train a plugin on your own photos (here: the built-in synthetic set), then predict", flush=True)
    rustlab("train", "--model", "effnet-lite0-probe", "--data", "builtin:200", "--image-size", "96",
            "--out", str(out), "--name", "probe")
    rustlab("predict", "--checkpoint", str(out / "probe"), str(samples), "--results", str(out / "probe.csv"))
    check(out / "probe.csv", truth, "A model fitted on 200 synthetic photos should call these right; "
          "a miss here is a bug worth reporting.")
    print(f"\ndone: everything is in {out}/. Next: rustlab gui (drag photos onto the window), "
          "rustlab --help", flush=True)


if __name__ == "__main__":
    main()
