"""The outputs of `rustlab bench kernels`: results.json, results.csv, the Markdown table and the plots.

Everything here reads a finished ``KernelReport`` (the plain records of rustlab.bench.kernels_data)
and measures nothing.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rustlab.bench.kernels_data import (
    FORWARD_BATCH,
    TRAIN_BATCH,
    Analysis,
    ConfigResult,
    ERFSummary,
    KernelConfig,
    KernelReport,
    Latency,
    Quality,
    layout_name,
)
from rustlab.bench.timing import CONTENDED_CORES
from rustlab.errors import RustlabError


def config_line(r: ConfigResult) -> str:
    a, q = r.analysis, r.quality
    fwd, step = r.latency_of("forward", False), r.latency_of("train", False)
    return (f"{r.config.label}: {a.params:,} params, {a.macs / 1e6:.1f} M MACs (counted {a.counted_macs / 1e6:.1f} M), "
            f"RF {_num(a.rf)} px, ERF sigma {_sigma(a.erf_init)} -> {_sigma(r.erf_trained)} px, "
            f"fwd b1 {fwd.median_ms:.2f} ms, train b32 {step.median_ms:.0f} ms, "
            f"val {q.metric} {_pm(q.val_mean, q.val_std)}, test {_pm(q.test_mean, q.test_std)} "
            f"({plural(q.epochs, 'epoch')} x {plural(len(q.seeds), 'seed')})")


# --- outputs --------------------------------------------------------------------------------------------


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _sigma(erf) -> str:
    """ERF sigma for text; 'none' where no gradient reached the input (see ERFSummary)."""
    return "-" if erf is None else ("none" if erf.sigma is None else f"{erf.sigma:.1f}")


def _round(x, digits: int = 3):
    return None if x is None else round(x, digits)


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _pm(mean, std, digits: int = 3) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def csv_rows(report: KernelReport) -> list[dict]:
    """One flat row per configuration (skipped ones included, with the reason)."""
    rows = []
    for r in report.results:
        c, a, q = r.config, r.analysis, r.quality
        row = {"label": c.label, "kernel": c.kernel, "stride": c.stride, "pool": c.pool, "scheme": c.scheme,
               "skipped": r.skipped or ""}
        if a is not None:
            row.update(params=a.params, macs=a.macs, counted_macs=a.counted_macs,
                       final_map="x".join(map(str, a.final_map)), rf=a.rf, rf_jump=a.rf_jump,
                       erf_sigma_init=_round(a.erf_init.sigma), erf_mass_inside=a.erf_init.mass_inside,
                       train_memory_mib=round(a.train_memory_bytes / 2**20, 1))
        if r.erf_trained is not None:
            row["erf_sigma_trained"] = _round(r.erf_trained.sigma)
        for lat in r.latency:
            row.update({f"{lat.key}_median_ms": lat.median_ms, f"{lat.key}_q1_ms": lat.q1_ms,
                        f"{lat.key}_q3_ms": lat.q3_ms, f"{lat.key}_steps": lat.steps,
                        f"{lat.key}_others_cores": lat.others_cores})
        if q is not None:
            row.update(metric=q.metric, epochs=q.epochs, val_mean=q.val_mean, val_std=q.val_std,
                       test_mean=q.test_mean, test_std=q.test_std, val_seeds=" ".join(f"{v:.4f}" for v in q.val),
                       test_seeds=" ".join(f"{v:.4f}" for v in q.test), train_seconds=round(sum(q.train_seconds), 1))
        rows.append(row)
    return rows


def to_csv(report: KernelReport) -> str:
    rows = csv_rows(report)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _lat(lat: Latency | None, digits: int) -> str:
    if lat is None:
        return "-"
    flag = " *" if lat.contended else ""
    return f"{lat.median_ms:.{digits}f} ({lat.q1_ms:.{digits}f}–{lat.q3_ms:.{digits}f}){flag}"


def format_markdown(report: KernelReport) -> str:
    """The results table (ready for the README) with the settings and command above it."""
    s, m = report.settings, report.machine
    budget = plural(s["epochs"], "epoch") if s["epochs"] else f"{s['seconds_budget']:g} s of training steps"
    metric = next((r.quality.metric for r in report.results if r.quality), "metric")
    lines = [
        f"`{s['model']}` at {s['image_size']}x{s['image_size']} px; quality after {budget} "
        f"(batch {s['train_batch']}, augment {s['augment']}) x {plural(len(s['seeds']), 'seed')} "
        f"(mean ± std) on `{s['data']}` ({s['train_images']} training images); best epoch chosen on validation"
        + (", **--quick: smoke run, numbers not meaningful**" if s["quick"] else "") + ".",
        f"Latency in ms: median (quartiles) of at least {s['latency']['forward_steps']} forwards at batch "
        f"{s['forward_batch']} / {s['latency']['train_steps']} training steps at batch {s['train_batch']} after "
        f"{s['latency']['warmup']} warm-up"
        + (f" (more where a round would last under {s['latency']['min_round_seconds']:g} s; counts in results.csv)"
           if s["latency"].get("min_round_seconds") else "")
        + f", {m['cores']} cores ({m['cpu']}), torch {m['torch']}, "
        f"{s['torch_threads']} threads, {s['device']}; load average {m.get('load_average')} before, "
        f"{m.get('load_average_after')} after (other work on the machine inflates latency and its spread).",
        "MACs per image (conv + linear), from the layer formulas; equal to torch's FlopCounterMode count "
        "for every row. RF: theoretical receptive field of the last feature map (pixels); ERF σ: spread "
        "of the centre unit's input gradient (pixels), at initialisation → after training (seed 0); "
        "none: no gradient reaches the input (the centre unit is inactive on every sample).",
    ]
    if report.command:
        lines.append(f"Command: `{report.command}`")
    lines += ["", f"| config | params | MACs | final map | RF | ERF σ | fwd b1 ms | fwd b1 ms, channels_last | "
                  f"train b32 ms | train b32 ms, channels_last | epochs | val {metric} | test {metric} |",
              "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    skipped = []
    for r in report.results:
        if r.analysis is None or r.quality is None:
            skipped.append(f"- {r.config.label}: {r.skipped}")
            continue
        a, q = r.analysis, r.quality
        lines.append(
            f"| {r.config.label} | {a.params:,} | {a.macs / 1e6:.1f} M | {'x'.join(map(str, a.final_map))} | "
            f"{_num(a.rf)} | {_sigma(a.erf_init)} → {_sigma(r.erf_trained)} | "
            f"{_lat(r.latency_of('forward', False), 2)} | {_lat(r.latency_of('forward', True), 2)} | "
            f"{_lat(r.latency_of('train', False), 0)} | {_lat(r.latency_of('train', True), 0)} | {q.epochs} | "
            f"{_pm(q.val_mean, q.val_std)} | {_pm(q.test_mean, q.test_std)} |")
    contended = [lat for r in report.results for lat in r.latency if lat.contended]
    if contended:
        lines += ["", f"\\* measured under contention: other processes kept more than {CONTENDED_CORES} cores busy "
                      f"in every round ({len(contended)} of the latencies): slower than on a quiet machine; "
                      "read with care."]
    if skipped:
        lines += ["", "Skipped:", *skipped]
    others = m.get("others_cores_during_run")
    lines += ["", f"Total time {report.seconds / 60:.1f} min"
              + (f"; other processes kept {others:.2f} cores busy meanwhile." if others is not None else ".")]
    return "\n".join(lines)


SCHEME_STYLE = {"s1+pool": ("o", "C0"), "s2": ("s", "C1"), "s1": ("^", "C2"), "s2+pool": ("D", "C3"), "": ("o", "C0")}


def _measured(report: KernelReport) -> list[ConfigResult]:
    return [r for r in report.results if r.analysis is not None and r.quality is not None]


def _by_scheme(rows):
    schemes = {}
    for r in rows:
        schemes.setdefault(r.config.scheme, []).append(r)
    for items in schemes.values():
        items.sort(key=lambda r: r.config.kernel)
    return schemes


def _scheme_name(scheme: str) -> str:
    return {"s1+pool": "stride 1 + 2x2 max pool (seed)", "s2": "stride-2 conv, no pool",
            "s1": "stride 1, no pool", "s2+pool": "stride-2 conv + max pool", "": "fixed downsampling"}[scheme]


def plot_accuracy_vs_macs(report: KernelReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _measured(report)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for scheme, items in _by_scheme(rows).items():
        marker, colour = SCHEME_STYLE.get(scheme, ("o", "C4"))
        for r in items:
            q = r.quality
            y, err = (q.test_mean, q.test_std) if q.test else (q.val_mean, q.val_std)
            ax.errorbar(r.analysis.macs / 1e6, y, yerr=err or 0, fmt=marker, color=colour, capsize=3,
                        label=_scheme_name(scheme) if r is items[0] else None)
            ax.annotate(f"{r.config.kernel}/{r.config.stride or 1}" + ("+pool" if r.config.pool else ""), (r.analysis.macs / 1e6, y),
                        textcoords="offset points", xytext=(5, 4), fontsize=8)
    metric = rows[0].quality.metric if rows else "metric"
    split = "test" if rows and rows[0].quality.test else "validation"
    ax.set_xscale("log")
    ax.set_xlabel("MACs per image (millions, log scale)")
    ax.set_ylabel(f"{split} {metric} (mean ± std over seeds)")
    ax.set_title(f"{report.settings['model']} at {report.settings['image_size']}px: {metric} vs cost (labels k/s)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plain_log_axis(axis) -> None:
    """Log scale with plain numbers (0.5, 2, 100) instead of 5x10^-1."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def plot_latency_vs_kernel(report: KernelReport, path: Path) -> Path:
    """Forward and training-step latency against kernel size, and the training step against
    MACs: where the points leave the dashed line (time proportional to MACs through the
    cheapest configuration), latency does not follow MACs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report.results if r.latency and r.analysis is not None]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for ax, what, title in ((axes[0], "forward", f"forward, batch {FORWARD_BATCH}"),
                            (axes[1], "train", f"training step, batch {TRAIN_BATCH}")):
        for scheme, items in _by_scheme(rows).items():
            marker, colour = SCHEME_STYLE.get(scheme, ("o", "C4"))
            for channels_last, style in ((False, "-"), (True, "--")):
                lats = [r.latency_of(what, channels_last) for r in items]
                ks = [r.config.kernel for r in items]
                med = [lat.median_ms for lat in lats]
                err = [[lat.median_ms - lat.q1_ms for lat in lats], [lat.q3_ms - lat.median_ms for lat in lats]]
                ax.errorbar(ks, med, yerr=err, fmt=marker + style, color=colour, capsize=3,
                            label=f"{_scheme_name(scheme)}, {layout_name(channels_last)}" if what == "train" else None)
        ax.set_yscale("log")
        _plain_log_axis(ax.yaxis)
        ax.set_xlabel("kernel size")
        ax.set_ylabel("ms (median, quartile bars; log scale)")
        ax.set_title(title)
        ax.set_xticks(sorted({r.config.kernel for r in rows}) or [3])
        ax.grid(alpha=0.3)
    ax = axes[2]
    points = [(r.analysis.macs / 1e6, r.latency_of("train", False).median_ms, r) for r in rows]
    for macs, ms, r in points:
        marker, colour = SCHEME_STYLE.get(r.config.scheme, ("o", "C4"))
        ax.plot(macs, ms, marker, color=colour)
        ax.annotate(r.config.label, (macs, ms), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if points:
        macs0, ms0, _ = min(points, key=lambda p: p[0])
        xs = sorted(p[0] for p in points)
        ax.plot(xs, [ms0 * x / macs0 for x in xs], ":", color="grey", label="proportional to MACs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_axis(ax.xaxis)
    _plain_log_axis(ax.yaxis)
    ax.set_xlabel("MACs per image (millions, log scale)")
    ax.set_ylabel("training step ms, contiguous (log scale)")
    ax.set_title("does latency follow MACs?")
    ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle(f"{report.settings['model']} at {report.settings['image_size']}px, {report.settings['device']}")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_rf_vs_kernel(report: KernelReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report.results if r.analysis is not None]
    size = report.settings["image_size"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for scheme, items in _by_scheme(rows).items():
        marker, colour = SCHEME_STYLE.get(scheme, ("o", "C4"))
        ks = [r.config.kernel for r in items]
        axes[0].plot(ks, [r.analysis.rf for r in items], marker + "-", color=colour, label=_scheme_name(scheme))
        axes[1].plot(ks, [r.analysis.erf_init.sigma or float("nan") for r in items], marker + "--", color=colour,
                     label=f"{_scheme_name(scheme)}, at init")
        trained = [(r.config.kernel, r.erf_trained.sigma) for r in items
                   if r.erf_trained is not None and r.erf_trained.sigma is not None]
        if trained:
            axes[1].plot(*zip(*trained), marker + "-", color=colour, label=f"{_scheme_name(scheme)}, trained")
    axes[0].axhline(size, color="grey", linestyle=":", label=f"image ({size} px)")
    axes[0].set_ylabel("theoretical RF (pixels)")
    axes[0].set_title("theoretical receptive field of the last feature map")
    axes[1].set_ylabel("ERF σ (pixels)")
    axes[1].set_title("effective RF: spread of the centre unit's input gradient")
    for ax in axes:
        ax.set_xlabel("kernel size")
        ax.set_xticks(sorted({r.config.kernel for r in rows}) or [3])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


OUTPUTS = ("results.json", "results.csv", "results.md", "accuracy_vs_macs.png", "latency_vs_kernel.png",
           "rf_vs_kernel.png")


def write_outputs(report: KernelReport, folder) -> list[Path]:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        (folder / "results.csv").write_text(to_csv(report))
        (folder / "results.md").write_text(format_markdown(report) + "\n")
        plot_accuracy_vs_macs(report, folder / "accuracy_vs_macs.png")
        plot_latency_vs_kernel(report, folder / "latency_vs_kernel.png")
        plot_rf_vs_kernel(report, folder / "rf_vs_kernel.png")
    except OSError as exc:
        raise RustlabError(f"--out {folder}: cannot write results ({exc.strerror or exc})") from None
    return [folder / name for name in OUTPUTS]


def report_from_dict(data: dict) -> KernelReport:
    """A KernelReport back from its results.json: the table and plots can be redrawn from the
    numbers without measuring again (and the JSON is checked to hold all of them)."""

    def erf(d):
        return None if d is None else ERFSummary(tuple(d["std"]), tuple(d["extent"]), d["mass_inside"], d["n_samples"])

    report = KernelReport(data["machine"], data["settings"], command=data.get("command", ""),
                          seconds=data.get("seconds", 0.0))
    quality_fields = ("metric", "epochs", "seeds", "val", "test", "train_seconds", "history")
    cores = data["machine"].get("cores") or 1
    if "others_cpu_during_run" in report.machine:  # a file from before the shared meter: a machine share
        share = report.machine.pop("others_cpu_during_run")
        report.machine["others_cores_during_run"] = None if share is None else round(share * cores, 2)
    for r in data["results"]:
        a = r["analysis"]
        analysis = None if a is None else Analysis(**{**a, "final_map": tuple(a["final_map"]),
                                                      "erf_init": erf(a["erf_init"])})
        q = r["quality"]
        report.results.append(ConfigResult(
            KernelConfig(**r["config"]), r["model_config"], analysis, [_latency(lat, cores) for lat in r["latency"]],
            None if q is None else Quality(**{k: q[k] for k in quality_fields}), erf(r["erf_trained"]),
            r["skipped"]))
    return report


def _latency(d: dict, cores: int) -> Latency:
    """A Latency from results.json; files from before the shared meter hold ``others_cpu``, a share
    of the whole machine, instead of ``others_cores``."""
    d = {k: v for k, v in d.items() if k != "contended"}
    if "others_cpu" in d:
        share = d.pop("others_cpu")
        d["others_cores"] = None if share is None else round(share * cores, 3)
    return Latency(**d)


def load_report(path) -> KernelReport:
    try:
        return report_from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RustlabError(f"{path}: not a results.json of rustlab bench kernels ({exc})") from None
