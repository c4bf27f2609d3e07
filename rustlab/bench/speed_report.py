"""`rustlab bench speed` results as Markdown tables, and the issue-7 targets they are held to.

The tables of experiments/speed/ come from ``format_report``. It reads the plain records of
``speed_data`` and measures nothing. A figure measured while other processes used more than
``timing.CONTENDED_CORES`` cores is marked with an asterisk and a note under its table.
"""

from __future__ import annotations

from rustlab.bench.speed_data import PipelineResult, SpeedReport
from rustlab.bench.timing import CONTENDED_CORES

CONTENDED_MARK = " *"
CONTENDED_NOTE = (f"\\* measured under contention: other processes kept more than {CONTENDED_CORES} cores busy "
                  "meanwhile (the last column); slower than on a quiet machine.")

TARGETS = {  # issue 7, on the 2-core development machine
    "rustlab_vs_naive": 5.0,
    "rustlab_vs_bound": 0.70,
    "cnn_predict_ms": 15.0,
    "folder_of_bound": 0.85,  # issue 33: folder predict at least 0.85 of the 2-core bound
    "unet_predict_ms": 150.0,
    "help_s": 0.5,
}


def check_targets(report: SpeedReport) -> list[dict]:
    """Each issue-7 target: what was measured, and whether it is met."""
    out = []

    def add(name, value, target, ok, unit="", contended=False):
        out.append({"target": name, "measured": round(value, 3), "goal": target, "unit": unit, "met": bool(ok),
                    "contended": bool(contended)})

    rustlab_rows = [r for r in report.training if r.kind == "rustlab"]
    if rustlab_rows:
        best = max(rustlab_rows, key=lambda r: r.images_per_s)
        if best.vs_naive is not None:
            naive = next(r for r in report.training if r.kind == "naive")
            add(f"{best.name} / naive", best.vs_naive, TARGETS["rustlab_vs_naive"],
                best.vs_naive >= TARGETS["rustlab_vs_naive"], "x", best.contended or naive.contended)
        if best.vs_bound is not None:
            bound = next(r for r in report.training if r.kind == "bound" and r.channels_last == best.channels_last
                         and r.compiled == best.compiled)
            add(f"{best.name} / bound", best.vs_bound, TARGETS["rustlab_vs_bound"],
                best.vs_bound >= TARGETS["rustlab_vs_bound"], "x", best.contended or bound.contended)
    for p in report.predict:
        if p.channels_last or not p.default_path:  # targets are about what rustlab predict does
            continue
        key = f"{p.model}_predict_ms"
        if key in TARGETS:
            worst = max(p.pil_ms, p.path_ms)
            add(f"{p.model} warm predict at {p.image_size}px", worst, TARGETS[key], worst < TARGETS[key], "ms",
                p.contended)
    for f in report.folder:
        add(f"{f.model} folder predict / 2-core bound, {f.photos}", round(f.of_bound, 2), TARGETS["folder_of_bound"],
            f.of_bound >= TARGETS["folder_of_bound"], "x", f.contended)
    if report.startup is not None:
        st = report.startup
        add("rustlab --help", st.help_s, TARGETS["help_s"], st.help_s < TARGETS["help_s"], "s", st.contended)
        out.append({"target": "rustlab --help imports torch", "measured": st.help_imports_torch,
                    "goal": False, "unit": "", "met": not st.help_imports_torch, "contended": False})
    return out


def report_dict(report: SpeedReport) -> dict:
    """results.json: every number of the report, each figure's contended mark, and the targets."""
    return {**report.to_dict(), "targets": check_targets(report)}


def _mark(item) -> str:
    return CONTENDED_MARK if item is not None and item.contended else ""


def default_mark(row: PipelineResult) -> str:
    """Marks the row that `rustlab train` runs today (TrainConfig's workers, contiguous layout)."""
    from rustlab.config import TrainConfig

    is_default = row.kind == "rustlab" and not row.channels_last and row.workers == TrainConfig().workers
    return " (what `rustlab train` runs)" if is_default else ""


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _other(item) -> str:
    """The other-processes column: cores, marked where the figure is contended."""
    return _fmt(item.others_cores) + _mark(item)


def format_report(report: SpeedReport) -> str:
    """The report as Markdown: the tables that go to experiments/speed/ (and, through
    ``speed_table``, the docs' summary table)."""
    m = report.machine
    lines = [f"machine: {m['cores']} cores ({m['cpu']}), torch {m['torch']}, torchvision {m['torchvision']}, "
             f"pillow {m['pillow']}, python {m['python']}, torch threads {m['torch_threads']} "
             f"(interop {m['torch_interop_threads']}), device {m['device']}"
             + (f" ({m['gpu']})" if m.get("gpu") else "")
             + f"; load average {m.get('load_average')} before, {m.get('load_average_after')} after"]
    if report.command:
        lines.append(f"command: `{report.command}`")
    s = report.settings
    contended = False
    if report.training:
        gpu = any(r.gpu_memory_mib is not None for r in report.training)
        lines += ["", f"Training throughput: {s['model']} at {s['image_size']}px, batch {s['batch_size']}, "
                      f"{s['train_images']} training images of {s['data']}, augment {s['augment']}, "
                      f"{s['steps']} timed batches after {s['warmup']} warm-up; fastest of {s.get('repeats', 1)} "
                      "repeats taken in turn"
                  + (f"; AMP {'on' if s.get('amp') else 'off'}, pinned memory {'on' if s.get('pin_memory') else 'off'}"
                     if str(s.get("device", "cpu")).startswith("cuda") else ""),
                  "", "| pipeline | images/s | x naive | x bound (same layout) | loader alone, images/s | "
                      "each repeat, images/s | " + ("GPU memory, MiB | " if gpu else "")
                  + "other processes, cores |",
                  "|---|---:|---:|---:|---:|---|" + ("---:|" if gpu else "") + "---:|"]
        for r in report.training:
            contended |= r.contended
            lines.append(f"| {r.name}{default_mark(r)} | {r.images_per_s:.1f}{_mark(r)} | {_fmt(r.vs_naive)} | "
                         f"{_fmt(r.vs_bound)} | {_fmt(r.data_images_per_s, '.0f')} | "
                         f"{', '.join(f'{v:.0f}' for v in r.runs)} | "
                         + (f"{_fmt(r.gpu_memory_mib, '.0f')} | " if gpu else "") + f"{_other(r)} |")
    if report.cache:
        c = report.cache
        splits = ", ".join(f"{n} {k}" for k, n in c.splits.items())
        lines += ["", f"Decode-once cache ({c.images} images at {c.image_size}px{f': {splits}' if splits else ''}; "
                      f"the trainer's prepare_data): first run decodes in "
                      f"{c.decode_seconds:.2f}s, later runs load it in {c.load_seconds:.3f}s "
                      f"({'reused' if c.reused else 'NOT reused'}); {_mib(c.memory_bytes)} in memory, "
                      f"{_mib(c.disk_bytes)} on disk; other processes {_other(c)} cores."]
        contended |= c.contended
    if report.decode:
        d = report.decode
        lines.append(f"Decode + resize per image (median of {d.images}): PIL full decode {d.full_ms:.2f} ms, "
                     f"JPEG draft mode {d.draft_ms:.2f} ms"
                     + (f"; a 12 MP camera JPEG: {d.camera_full_ms:.0f} ms full, {d.camera_draft_ms:.0f} ms draft"
                        if d.camera_full_ms is not None else "") + f"; other processes {_other(d)} cores.")
        contended |= d.contended
    if report.predict:
        batches = sorted({b for p in report.predict for b in p.batch_ms}, key=int)
        gpu = any(p.gpu_memory_mib is not None for p in report.predict)
        lines += ["", "| Predictor (warm) | size | from PIL image, ms (p90) | from JPEG path, ms (p90) | "
                      "folder, images/s | " + "".join(f"forward batch {b}, ms | " for b in batches)
                  + ("GPU memory, MiB | " if gpu else "") + "other processes, cores |",
                  "|---|---:|---:|---:|---:|" + "---:|" * (len(batches) + gpu) + "---:|"]
        for p in report.predict:
            contended |= p.contended
            layout = ", channels_last" if p.channels_last else ""
            lines.append(f"| {p.model} ({p.parameters:,} params, {p.engine}{layout}) | {p.image_size} | "
                         f"{p.pil_ms:.1f} ({p.pil_p90_ms:.1f}){_mark(p)} | {p.path_ms:.1f} ({p.path_p90_ms:.1f}){_mark(p)} | "
                         f"{p.folder_images_per_s:.1f} ({p.folder_images} images, batch {p.batch_size}) | "
                         + "".join(f"{_fmt(p.batch_ms.get(b), '.2f')} | " for b in batches)
                         + (f"{_fmt(p.gpu_memory_mib, '.0f')} | " if gpu else "") + f"{_other(p)} |")
    if report.folder:
        lines += ["", "| Folder predict (default path) | photos | decode, 1 thread, img/s | model alone, img/s | "
                      "2-core bound, img/s | pipeline, img/s (rounds) | of the bound | other processes, cores |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for f in report.folder:
            contended |= f.contended
            mark = CONTENDED_MARK if f.contended else ""
            lines.append(f"| {f.model} ({f.engine}, batch {f.batch_size}) | {f.photos} ({f.images}) | "
                         f"{f.decode_per_s:.1f} | {f.model_per_s:.1f} | {f.bound_per_s:.1f} | "
                         f"{f.pipeline_per_s:.1f}{mark} ({', '.join(f'{r:.1f}' for r in f.runs)}) | "
                         f"**{f.of_bound:.2f}**{mark} | {_other(f)} |")
        lines.append(f"Bound: per photo, the model's core time ({report.folder[0].cores} cores / its rate alone) "
                     "plus one thread's decode time, spread over every core (rustlab.bench.speed_bound).")
    if report.startup:
        st = report.startup
        contended |= st.contended
        lines += ["", f"Cold start: `python -c pass` {st.python_s:.2f}s; `import rustlab` "
                      f"{st.import_rustlab_ms:.1f} ms; `rustlab --help` {st.help_s:.2f}s "
                      f"(imports torch: {'yes' if st.help_imports_torch else 'no'})"
                  + (f"; `rustlab predict` one JPEG {st.predict_s:.2f}s (a bare `import torch`: "
                     f"{st.import_torch_s:.2f}s)" if st.predict_s is not None else "")
                  + f"; other processes {_other(st)} cores."]
    targets = check_targets(report)
    if targets:
        lines += ["", "| target | measured | goal | met |", "|---|---:|---:|---|"]
        for t in targets:
            goal = f"{'>=' if t['unit'] == 'x' else '<'} {t['goal']}{t['unit']}" if t["unit"] else str(t["goal"])
            value = f"{t['measured']}{t['unit']}" if t["unit"] else str(t["measured"])
            mark = CONTENDED_MARK if t.get("contended") else ""
            lines.append(f"| {t['target']} | {value}{mark} | {goal} | {'yes' if t['met'] else 'NO'}{mark} |")
    if contended:
        lines += ["", CONTENDED_NOTE]
    for line in report.skipped:
        lines.append(f"\nskipped: {line}")
    return "\n".join(lines)
