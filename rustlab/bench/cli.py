"""`rustlab bench ...`: measurements a user can rerun on their own machine.

Registered on the main CLI by rustlab/cli.py; each command imports its measurement module
(and so torch) only when it runs, so `rustlab --help` and `rustlab bench --help` stay fast.
"""

from __future__ import annotations

import json

import click


@click.group("bench")
def bench():
    """Benchmarks: speed (training pipelines, prediction, cold start); kernels (kernel size and stride)."""


def _worker_counts(ctx, param, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 0:
        raise click.BadParameter(f"{text!r}: expected comma-separated integers >= 0, e.g. 0,1,2")
    return values


def _command_line(ctx) -> str:
    """The command as typed, non-default options only: what reproduces the report."""
    words = [ctx.command_path]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(value, tuple) and not param.multiple:  # a parsed list such as --workers 0,1
            value = ",".join(map(str, value))
        if value is False and getattr(param, "secondary_opts", None) and param.default is not False:
            words.append(param.secondary_opts[0])  # e.g. --no-amp against a default of None
            continue
        if value in (None, False, ()) or value == param.default:
            continue
        flag = max(param.opts, key=len)
        if value is True:
            words.append(flag)
        else:
            for v in (value if isinstance(value, tuple) else (value,)):
                words += [flag, str(v)]
    return " ".join(words)


@bench.command("speed")
@click.option("--data", "-d", default=None,
              help="Training images. [default: ../shared/data/corrosion-cls if present, else builtin]")
@click.option("--model", "-m", default="cnn", show_default=True, help="Classification model for the training part.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="[default: the trainer's, 32]")
@click.option("--image-size", type=click.IntRange(min=8), default=None, help="[default: the model's]")
@click.option("--steps", type=click.IntRange(min=1), default=30, show_default=True,
              help="Timed batches per training pipeline, about one epoch of corrosion-cls (and timed "
                   "predictions per latency).")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Repeats of every training pipeline, taken in turn; rows report the fastest.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed batches first.")
@click.option("--workers", default="0,1", show_default=True, callback=_worker_counts,
              help="DataLoader worker counts to measure the rustlab pipeline with.")
@click.option("--layout", type=click.Choice(["both", "contiguous", "channels_last"]), default="both",
              show_default=True, help="Memory layouts to train in (rustlab and bound pipelines).")
@click.option("--only", type=click.Choice(["train", "predict", "startup"]), multiple=True,
              help="Measure only this part (repeatable). [default: all three]")
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | cuda:N | auto")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch intra-op threads. [default: torch's]")
@click.option("--amp/--no-amp", default=None,
              help="Mixed precision on CUDA (bf16, or fp16 with a GradScaler). [default: the trainer's, on]")
@click.option("--pin-memory/--no-pin-memory", default=None,
              help="Pinned host memory for the loaders, copied with non_blocking. [default: on with CUDA]")
@click.option("--compile", "compile_mode", type=click.Choice(["off", "on", "both"]), default="off", show_default=True,
              help="torch.compile the model for the rustlab and bound rows (both: each row with and without).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Also write results.json and results.md into this folder (into its contended/ subfolder "
                   "where they would replace a quiet figure with one measured under contention).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of Markdown tables.")
@click.option("--predict-model", "predict_models", multiple=True,
              help="Model whose predict path is timed (repeatable). [default: cnn and unet]")
@click.option("--folder-photos", type=click.IntRange(min=0), default=200, show_default=True,
              help="Photos of --data for folder predict against the 2-core bound, beside 24 12 MP JPEGs "
                   "(CPU; 0: not measured).")
def speed_cmd(data, model, batch_size, image_size, steps, repeats, warmup, workers, layout, only, device, threads,
              amp, pin_memory, compile_mode, out, as_json, predict_models, folder_photos):
    """Training images/s of the naive, rustlab and compute-only pipelines side by side, Predictor latency,
    and cold start. Every figure records how many cores other processes used meanwhile; above 0.25 it
    is marked as measured under contention."""
    from pathlib import Path

    from rustlab.bench.speed import PARTS, PREDICT_MODELS, run_speed
    from rustlab.bench.speed_report import format_report, report_dict
    from rustlab.bench.speed_results import write_results
    from rustlab.errors import RustlabError

    folder = Path(out) if out else None
    if folder is not None:  # fail now, not after minutes of measuring
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RustlabError(f"--out {folder}: cannot create folder ({exc.strerror})") from None
    layouts = {"both": (False, True), "contiguous": (False,), "channels_last": (True,)}[layout]
    compile_modes = {"off": (False,), "on": (True,), "both": (False, True)}[compile_mode]
    report = run_speed(data=data, model=model, batch_size=batch_size, image_size=image_size, steps=steps,
                       warmup=warmup, workers=workers, channels_last=layouts, parts=only or PARTS,
                       device=device, threads=threads, predict_n=steps, repeats=repeats, amp=amp,
                       compile_modes=compile_modes, pin_memory=pin_memory,
                       predict_models=predict_models or PREDICT_MODELS, folder_n=folder_photos,
                       log=lambda message: click.echo(message, err=True))
    report.command = _command_line(click.get_current_context())
    text = format_report(report)
    results = report_dict(report)
    if folder is not None:
        written, kept = write_results(folder, results, text)
        if kept:
            click.echo(f"wrote {written}/, not {folder}/: these figures were measured under contention there and "
                       f"quiet in {folder}/results.json, which keeps them: {', '.join(kept)}", err=True)
    click.echo(json.dumps(results, indent=2) if as_json else text)


def _list_of(parse, example: str):
    """A click callback turning '3,5,7' into a tuple; a bad item is a usage error naming the flag."""

    def callback(ctx, param, text):
        if text is None:
            return None
        items = [v.strip() for v in text.split(",")]
        if not items or "" in items:
            raise click.BadParameter(f"{text!r}: expected a comma-separated list, e.g. {example}")
        try:
            return tuple(parse(v) for v in items)
        except ValueError as exc:
            raise click.BadParameter(f"{text!r}: {exc} (e.g. {example})") from None

    return callback


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None
    if value < 1:
        raise ValueError(f"{value} must be >= 1")
    return value


def _on_off(text: str) -> bool:
    value = text.lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise ValueError(f"{text!r} is not on or off")


@bench.command("kernels")
@click.option("--model", "-m", default="cnn", show_default=True,
              help="A model whose config has kernel_size: cnn (kernels x strides x pool) or unet (kernels).")
@click.option("--kernels", default="3,5,7", show_default=True, callback=_list_of(_positive_int, "3,5,7"),
              help="Kernel sizes.")
@click.option("--strides", default=None, callback=_list_of(_positive_int, "1,2"),
              help="Conv strides. [default: 1,2 where the model has a stride]")
@click.option("--pool", "pools", default=None, callback=_list_of(_on_off, "on,off"),
              help="2x2 max pool after each conv: on, off or on,off. [default: on,off where the model has it]")
@click.option("--data", "-d", default=None, help="Training data for the quality part. [default: builtin]")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Training budget per run, in epochs. [default: 4]")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Training budget per run in seconds of training steps (turned into epochs per configuration "
                   "from its measured step time), instead of --epochs.")
@click.option("--seeds", type=click.IntRange(min=1), default=None, help="Training runs per configuration. [default: 3]")
@click.option("--image-size", type=click.IntRange(min=8), default=None, help="Input size. [default: 32]")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Fixed model config override for every configuration, e.g. batch_norm=true (repeatable).")
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | cuda:N | auto")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder for results.json/.csv/.md and the plots. [default: runs/kernels-<timestamp>]")
@click.option("--quick", is_flag=True,
              help="Smoke run: the plugin's smoke_config, builtin:48, 1 seed, 1 epoch, 2 timed iterations.")
def kernels_cmd(model, kernels, strides, pools, data, epochs, seconds, seeds, image_size, sets, device, out, quick):
    """What kernel size and stride cost and buy: params, MACs (formula and counted), stage shapes,
    receptive fields, latency and accuracy after a fixed training budget, per configuration."""
    from datetime import datetime
    from pathlib import Path

    from rustlab.bench.kernels import SweepError, run_kernels
    from rustlab.bench.kernels_report import write_outputs
    from rustlab.config import parse_overrides

    if epochs is not None and seconds is not None:
        raise click.UsageError("give either --epochs or --seconds, not both")
    overrides = parse_overrides(sets)
    fixed = sorted(set(overrides) & {"kernel_size", "stride", "pool", "image_size"})
    if fixed:
        raise click.BadParameter(f"{fixed[0]} is swept or set by its own flag", param_hint="--set")
    try:
        report = run_kernels(model, kernels, strides, pools, data, epochs, seconds, seeds, image_size, quick,
                             device, model_overrides=overrides, log=lambda message: click.echo(message, err=True))
    except SweepError as exc:
        raise click.BadParameter(exc.message, param_hint=exc.param) from None
    report.command = _kernels_command_line(click.get_current_context())
    folder = Path(out or f"runs/kernels-{datetime.now():%Y%m%d-%H%M%S}")
    write_outputs(report, folder)
    click.echo((folder / "results.md").read_text(), nl=False)
    click.echo(f"wrote {folder}/ (results.json, results.csv, results.md, 3 plots) in {report.seconds / 60:.1f} min",
               err=True)


def _kernels_command_line(ctx) -> str:
    """The command with every option as parsed, lists written back as typed: what reproduces it."""
    words = [ctx.command_path]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        flag = max(param.opts, key=len)
        if value in (None, False, ()):
            continue
        if value is True:
            words.append(flag)
        elif param.name == "sets":
            words += [w for pair in value for w in (flag, pair)]
        elif isinstance(value, tuple):
            words += [flag, ",".join(("on" if v else "off") if isinstance(v, bool) else str(v) for v in value)]
        else:
            words += [flag, str(value)]
    return " ".join(words)


from rustlab.bench.collectors_cli import collectors_cmd  # noqa: E402 - `rustlab bench collectors`

bench.add_command(collectors_cmd)
