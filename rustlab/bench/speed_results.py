"""Committed speed results that a busy machine cannot spoil.

`rustlab bench speed --out DIR` writes DIR/results.json and DIR/results.md. Where DIR already
holds a results.json with a quiet figure (measured while other processes used at most
``timing.CONTENDED_CORES`` cores) that the new run measured under contention, the new run goes
to DIR/contended/ instead, and the quiet figures stay where they are (issue 16: the README once
quoted 4.1 ms while results.md, rerun beside another job, said 131.9 ms). A figure without a
meter reading (older files) counts as quiet. Reads and writes plain dicts only.
"""

from __future__ import annotations

import json
from pathlib import Path

from rustlab.bench.timing import is_contended
from rustlab.errors import RustlabError

CONTENDED_FOLDER = "contended"


def figure_contended(item: dict) -> bool:
    if "contended" in item:
        return bool(item["contended"])
    return is_contended(item.get("others_cores"))


def figures(results: dict) -> dict[str, bool]:
    """Each figure of a results.json by a stable key -> whether it was measured under contention."""
    out = {}
    for row in results.get("training") or []:
        out[f"train {row['name']}"] = figure_contended(row)
    for p in results.get("predict") or []:
        engine = "" if p.get("engine", "pytorch") == "pytorch" else f" {p['engine']}"  # older files: PyTorch
        out[f"predict {p['model']}{engine}{' channels_last' if p.get('channels_last') else ''}"] = figure_contended(p)
    for f in results.get("folder") or []:
        out[f"folder {f['model']} {f['engine']} {f['photos']}"] = figure_contended(f)
    for key in ("cache", "decode", "startup"):
        if results.get(key):
            out[key] = figure_contended(results[key])
    return out


def spoiled_figures(old: dict, new: dict) -> list[str]:
    """The quiet figures of ``old`` that ``new`` measured under contention."""
    new_figures = figures(new)
    return [key for key, contended in figures(old).items() if not contended and new_figures.get(key)]


def read_results(path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RustlabError(f"{path}: not a results.json of rustlab bench speed ({exc})") from None


def write_results(folder, results: dict, markdown: str) -> tuple[Path, list[str]]:
    """Write results.json and results.md into ``folder``, or into ``folder/contended`` where that
    would replace a quiet figure with a contended one. Returns (the folder written, the figures
    that kept their quiet values)."""
    folder = Path(folder)
    spoiled = []
    old = read_results(folder / "results.json") if (folder / "results.json").is_file() else None
    if old is not None:
        spoiled = spoiled_figures(old, results)
    target = folder / CONTENDED_FOLDER if spoiled else folder
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (target / "results.md").write_text(markdown + "\n")
    except OSError as exc:
        raise RustlabError(f"--out {folder}: cannot write results ({exc.strerror or exc})") from None
    return target, spoiled
