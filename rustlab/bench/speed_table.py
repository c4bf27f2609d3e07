"""The summary speed table of docs/benchmarks.md, generated from committed `rustlab bench speed`
results, so that the docs and experiments/speed/ cannot disagree (tests/test_speed_table.py
compares them).

Each figure comes from the first results file, in ``SOURCES`` order, that holds it measured
quietly (other processes at most ``timing.CONTENDED_CORES`` cores; no reading counts as quiet);
where none does, the first file that has it, marked "(measured under contention)". The training
rows and their ratios come from one run, never mixed across files.

    python -m rustlab.bench.speed_table experiments/speed                         # print the table
    python -m rustlab.bench.speed_table experiments/speed --write docs/benchmarks.md  # refresh it there
"""

from __future__ import annotations

import sys
from pathlib import Path

from rustlab.bench.speed_results import figure_contended, read_results
from rustlab.errors import RustlabError

# The runs of experiments/speed/run.sh at the models' default sizes (seed-32px/ is another size)
SOURCES = ("results.json", "predict/results.json", "predict-path/results.json", "contended/results.json")
BEGIN = ("<!-- speed-table: generated from experiments/speed by `python -m rustlab.bench.speed_table "
         "experiments/speed --write docs/benchmarks.md`; tests/test_speed_table.py checks it -->")
END = "<!-- /speed-table -->"
TRAIN_ROWS = ("naive", "rustlab workers=0", "bound", "rustlab channels_last workers=0", "bound channels_last")
CONTENDED = " (measured under contention)"


def load_sources(folder) -> list[tuple[str, dict]]:
    folder = Path(folder)
    out = [(name, read_results(folder / name)) for name in SOURCES]
    out = [(name, data) for name, data in out if data is not None]
    if not out:
        raise RustlabError(f"{folder}: no results.json of rustlab bench speed ({', '.join(SOURCES)})")
    return out


def _pick(sources, get):
    """(value, file, contended) of the first quiet figure ``get(data)`` returns, else the first one."""
    found = [(name, item) for name, data in sources if (item := get(data)) is not None]
    if not found:
        return None, None, False
    quiet = [(name, item) for name, item in found if not figure_contended(item)]
    name, item = (quiet or found)[0]
    return item, name, not quiet


def _training(sources):
    for name, data in sources:
        rows = {r["name"]: r for r in data.get("training") or []}
        if all(n in rows for n in TRAIN_ROWS) and not any(figure_contended(rows[n]) for n in TRAIN_ROWS):
            return rows, name, data, False
    for name, data in sources:
        rows = {r["name"]: r for r in data.get("training") or []}
        if all(n in rows for n in TRAIN_ROWS):
            return rows, name, data, True
    return None, None, None, False


def _predict(model):
    return lambda data: next((p for p in data.get("predict") or [] if p["model"] == model
                              and not p.get("channels_last")), None)


def _engine_rows(sources) -> list[str]:
    """The default predict path (onnxruntime) beside PyTorch, and folder predict beside the 2-core
    bound (issue 33), from the first file that measured them."""
    for name, data in sources:
        rows = data.get("predict") or []
        defaults = [p for p in rows if p.get("default_path") and p.get("engine") == "onnxruntime"]
        if not defaults and not data.get("folder"):
            continue
        lines = []
        where = f"{name}, {data.get('machine', {}).get('cpu', 'another machine')}"  # may differ from the header's
        for d in defaults:
            pt = next((p for p in rows if p["model"] == d["model"] and p.get("engine") == "pytorch"
                       and not p.get("channels_last")), None)
            if pt is None:
                continue
            mark = CONTENDED if figure_contended(d) or figure_contended(pt) else ""
            lines.append(f"| {d['model']} warm predict, {d['image_size']} px, from a JPEG path: default path "
                         f"(onnxruntime) / PyTorch | {d['path_ms']:.1f} / {pt['path_ms']:.1f} ms "
                         f"(PyTorch {pt['path_ms'] / d['path_ms']:.2f}x){mark} | default <= 1.3x onnxruntime | {where} |")
        for f in data.get("folder") or []:
            mark = CONTENDED if figure_contended(f) else ""
            lines.append(f"| {f['model']} folder predict ({f['engine']}), {f['photos']}, images/s: pipeline / "
                         f"2-core bound | {f['pipeline_per_s']:.0f} / {f['bound_per_s']:.0f} = "
                         f"{f['pipeline_per_s'] / f['bound_per_s']:.2f}{mark} | >= 0.85 | {where} |")
        return lines
    return []


def render(folder) -> str:
    """The table, from the results files under ``folder``."""
    sources = load_sources(folder)
    lines = []
    rows, train_file, train_data, train_contended = _training(sources)
    machine = (train_data or sources[0][1])["machine"]
    settings = (train_data or {}).get("settings", {})
    data_name = Path(str(settings.get("data", "?"))).name
    lines += [f"| {machine['cores']} CPU cores ({machine['cpu']}), torch {machine['torch'].split('+')[0]}, "
              f"{machine['torch_threads']} threads, {data_name} | measured | target | from experiments/speed/ |",
              "|---|---:|---:|---|"]
    if rows:
        mark = CONTENDED if train_contended else ""
        r = {n: rows[n] for n in TRAIN_ROWS}
        size = settings.get("image_size", "?")
        lines += [
            f"| {settings.get('model', '?').upper()} training at {size} px, images/s: naive / rustlab / bound | "
            f"{r['naive']['images_per_s']:.0f} / {r['rustlab workers=0']['images_per_s']:.0f} / "
            f"{r['bound']['images_per_s']:.0f}{mark} | | {train_file} |",
            f"| the same with channels_last (rustlab, bound) | "
            f"{r['rustlab channels_last workers=0']['images_per_s']:.0f} / "
            f"{r['bound channels_last']['images_per_s']:.0f}{mark} | | {train_file} |",
            f"| rustlab / naive | {r['rustlab workers=0']['vs_naive']:.2f}x "
            f"({r['rustlab channels_last workers=0']['vs_naive']:.2f}x channels_last){mark} | >= 5x | {train_file} |",
            f"| rustlab / compute-only bound | {r['rustlab workers=0']['vs_bound']:.2f} "
            f"({r['rustlab channels_last workers=0']['vs_bound']:.2f} of the channels_last bound){mark} | >= 0.70 | "
            f"{train_file} |"]
    for model, label, goal in (("cnn", "CNN", "< 15 ms"), ("unet", "UNet", "< 150 ms")):
        p, name, contended = _pick(sources, _predict(model))
        if p is not None:
            lines.append(f"| {label} warm predict, {p['image_size']} px, from a JPEG path / a PIL image | "
                         f"{p['path_ms']:.1f} / {p['pil_ms']:.1f} ms{CONTENDED if contended else ''} | {goal} | "
                         f"{name} |")
    lines += _engine_rows(sources)
    st, name, contended = _pick(sources, lambda data: data.get("startup"))
    if st is not None:
        cold = f" / {st['predict_s']:.1f} s" if st.get("predict_s") is not None else ""
        lines.append(f"| `rustlab --help` (imports {'torch' if st['help_imports_torch'] else 'no torch'})"
                     f"{' / `rustlab predict` one JPEG, cold' if cold else ''} | {st['help_s']:.2f} s{cold}"
                     f"{CONTENDED if contended else ''} | < 0.5 s | {name} |")
    c, name, contended = _pick(sources, lambda data: data.get("cache"))
    if c is not None:
        lines.append(f"| decode-once cache, {c['images']} images at {c['image_size']} px | "
                     f"{c['decode_seconds']:.2f} s to build, {c['load_seconds']:.3f} s to load, "
                     f"{c['memory_bytes'] / 2**20:.1f} MiB in memory{CONTENDED if contended else ''} | "
                     f"reused across runs | {name} |")
    return "\n".join(lines)


def block(folder) -> str:
    return f"{BEGIN}\n{render(folder)}\n{END}"


def embedded(text: str) -> str | None:
    """The generated block inside a Markdown file's text, markers included (None where absent)."""
    start = text.find(BEGIN)
    end = text.find(END, start)
    return None if start < 0 or end < 0 else text[start:end + len(END)]


def write(folder, path) -> None:
    path = Path(path)
    text = path.read_text()
    old = embedded(text)
    if old is None:
        raise RustlabError(f"{path}: no generated speed table (the line {BEGIN[:40]}...) to replace")
    path.write_text(text.replace(old, block(folder)))


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    folder = args[0] if args and not args[0].startswith("--") else "experiments/speed"
    try:
        if "--write" in args:
            write(folder, args[args.index("--write") + 1])
        else:
            print(render(folder))
    except (RustlabError, IndexError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
