"""`rustlab bench speed` results as Markdown tables, and the issue-7 targets they are held to.

The tables of experiments/speed/ and the README come from ``format_report``.
"""

from __future__ import annotations

from rustlab.bench.speed import PipelineResult, SpeedReport

TARGETS = {  # issue 7, on the 2-core development machine
    "rustlab_vs_naive": 5.0,
    "rustlab_vs_bound": 0.70,
    "cnn_predict_ms": 15.0,
    "unet_predict_ms": 150.0,
    "help_s": 0.5,
}


def check_targets(report: SpeedReport) -> list[dict]:
    """Each issue-7 target: what was measured, and whether it is met."""
    out = []

    def add(name, value, target, ok, unit=""):
        out.append({"target": name, "measured": round(value, 3), "goal": target, "unit": unit, "met": bool(ok)})

    rustlab_rows = [r for r in report.training if r.kind == "rustlab"]
    if rustlab_rows:
        best = max(rustlab_rows, key=lambda r: r.images_per_s)
        if best.vs_naive is not None:
            add(f"{best.name} / naive", best.vs_naive, TARGETS["rustlab_vs_naive"],
                best.vs_naive >= TARGETS["rustlab_vs_naive"], "x")
        if best.vs_bound is not None:
            add(f"{best.name} / bound", best.vs_bound, TARGETS["rustlab_vs_bound"],
                best.vs_bound >= TARGETS["rustlab_vs_bound"], "x")
    for p in report.predict:
        if p.channels_last:  # targets are about what rustlab predict does today
            continue
        key = f"{p.model}_predict_ms"
        if key in TARGETS:
            worst = max(p.pil_ms, p.path_ms)
            add(f"{p.model} warm predict at {p.image_size}px", worst, TARGETS[key], worst < TARGETS[key], "ms")
    if report.startup is not None:
        add("rustlab --help", report.startup.help_s, TARGETS["help_s"], report.startup.help_s < TARGETS["help_s"], "s")
        out.append({"target": "rustlab --help imports torch", "measured": report.startup.help_imports_torch,
                    "goal": False, "unit": "", "met": not report.startup.help_imports_torch})
    return out


def default_mark(row: PipelineResult) -> str:
    """Marks the row that `rustlab train` runs today (TrainConfig's workers, contiguous layout)."""
    from rustlab.config import TrainConfig

    is_default = row.kind == "rustlab" and not row.channels_last and row.workers == TrainConfig().workers
    return " (what `rustlab train` runs)" if is_default else ""


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def format_report(report: SpeedReport) -> str:
    """The report as Markdown: the tables that go to the README and experiments/speed/."""
    m = report.machine
    lines = [f"machine: {m['cores']} cores ({m['cpu']}), torch {m['torch']}, torchvision {m['torchvision']}, "
             f"pillow {m['pillow']}, python {m['python']}, torch threads {m['torch_threads']} "
             f"(interop {m['torch_interop_threads']}), device {m['device']}"
             + (f" ({m['gpu']})" if m.get("gpu") else "")
             + f"; load average {m.get('load_average')} before, {m.get('load_average_after')} after"]
    if report.command:
        lines.append(f"command: `{report.command}`")
    s = report.settings
    if report.training:
        lines += ["", f"Training throughput: {s['model']} at {s['image_size']}px, batch {s['batch_size']}, "
                      f"{s['train_images']} training images of {s['data']}, augment {s['augment']}, "
                      f"{s['steps']} timed batches after {s['warmup']} warm-up; fastest of {s.get('repeats', 1)} "
                      "repeats taken in turn",
                  "", "| pipeline | images/s | x naive | x bound (same layout) | loader alone, images/s | "
                      "each repeat, images/s | other processes, cores |",
                  "|---|---:|---:|---:|---:|---|---:|"]
        for r in report.training:
            lines.append(f"| {r.name}{default_mark(r)} | {r.images_per_s:.1f} | {_fmt(r.vs_naive)} | "
                         f"{_fmt(r.vs_bound)} | {_fmt(r.data_images_per_s, '.0f')} | "
                         f"{', '.join(f'{v:.0f}' for v in r.runs)} | {_fmt(r.others_cores)} |")
    if report.cache:
        c = report.cache
        lines += ["", f"Decode-once cache ({c.images} images at {c.image_size}px): first run decodes in "
                      f"{c.decode_seconds:.2f}s, later runs load it in {c.load_seconds:.3f}s "
                      f"({'reused' if c.reused else 'NOT reused'}); {_mib(c.memory_bytes)} in memory, "
                      f"{_mib(c.disk_bytes)} on disk."]
    if report.decode:
        d = report.decode
        lines.append(f"Decode + resize per image (median of {d.images}): PIL full decode {d.full_ms:.2f} ms, "
                     f"JPEG draft mode {d.draft_ms:.2f} ms"
                     + (f"; a 12 MP camera JPEG: {d.camera_full_ms:.0f} ms full, {d.camera_draft_ms:.0f} ms draft"
                        if d.camera_full_ms is not None else "") + ".")
    if report.predict:
        lines += ["", "| Predictor (warm) | size | from PIL image, ms (p90) | from JPEG path, ms (p90) | "
                      "folder, images/s | other processes, cores |", "|---|---:|---:|---:|---:|---:|"]
        for p in report.predict:
            layout = ", channels_last" if p.channels_last else ""
            lines.append(f"| {p.model} ({p.parameters:,} params{layout}) | {p.image_size} | "
                         f"{p.pil_ms:.1f} ({p.pil_p90_ms:.1f}) | {p.path_ms:.1f} ({p.path_p90_ms:.1f}) | "
                         f"{p.folder_images_per_s:.1f} ({p.folder_images} images, batch {p.batch_size}) | "
                         f"{_fmt(p.others_cores)} |")
    if report.startup:
        st = report.startup
        lines += ["", f"Cold start: `python -c pass` {st.python_s:.2f}s; `import rustlab` "
                      f"{st.import_rustlab_ms:.1f} ms; `rustlab --help` {st.help_s:.2f}s "
                      f"(imports torch: {'yes' if st.help_imports_torch else 'no'})"
                  + (f"; `rustlab predict` one JPEG {st.predict_s:.2f}s (a bare `import torch`: "
                     f"{st.import_torch_s:.2f}s)" if st.predict_s is not None else "") + "."]
    targets = check_targets(report)
    if targets:
        lines += ["", "| target | measured | goal | met |", "|---|---:|---:|---|"]
        for t in targets:
            goal = f"{'>=' if t['unit'] == 'x' else '<'} {t['goal']}{t['unit']}" if t["unit"] else str(t["goal"])
            value = f"{t['measured']}{t['unit']}" if t["unit"] else str(t["measured"])
            lines.append(f"| {t['target']} | {value} | {goal} | {'yes' if t['met'] else 'NO'} |")
    for line in report.skipped:
        lines.append(f"\nskipped: {line}")
    return "\n".join(lines)
