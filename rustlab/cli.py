"""The `rustlab` command line: thin click commands over the library.

Heavy modules (torch, datasets) are imported inside the commands, so `rustlab --help` and a
mistyped flag answer instantly. A RustlabError reaches the user as one line and exit code 1;
exit code 3 means some inputs failed while the rest succeeded.
"""

from __future__ import annotations

import json
import sys

import click

from rustlab.cli_output import EXIT_PARTIAL, fail, print_metrics_table, report_skipped, write_reliability_plots
from rustlab.config import TTA_MODE_NAMES
from rustlab.inference.default_model import NAME as DEFAULT_NAME  # torch-free
from rustlab.inference.engine import ENGINES  # torch-free

ENGINE_OPTION = click.option(
    "--engine", type=click.Choice(ENGINES), default="auto", show_default=True,
    help="What runs the model: auto = onnxruntime on a cached export on CPU (made on first use, "
         "checked against PyTorch), else PyTorch; onnx; torch.")



def _model_or_default(checkpoint):
    """``checkpoint``, or the packaged default model, said so on stderr (rustlab.inference.default_model)."""
    if checkpoint is not None:
        return checkpoint
    from rustlab.checkpoint import read_metadata
    from rustlab.inference.default_model import default_checkpoint, describe

    path = default_checkpoint()
    click.echo(f"rustlab: no --checkpoint given, so {describe(read_metadata(path))}", err=True)
    return str(path)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="rustlab")
def cli():
    """rustlab: find rust in photos of steel.

    \b
    Quick start:
      rustlab predict photo.jpg folder/      (the packaged default model)
      rustlab train --model cnn --data builtin --epochs 5
      rustlab predict --checkpoint runs/<run>/best.safetensors photo.jpg
    """


@cli.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_cmd(as_json):
    """List registered model plugins: name, task, parameters, source package."""
    from rustlab.registry import count_parameters, get_registry, list_models

    rows = []
    for spec in list_models():
        try:
            params = count_parameters(spec.build(spec.default_config()))
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not hide the others
            params = f"error: {exc}"
        rows.append({"name": spec.name, "task": spec.task, "parameters": params, "source": spec.source,
                     "description": spec.description, "default": spec.name == DEFAULT_NAME})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max([len("name")] + [len(r["name"]) for r in rows])  # plugin names may be long
    click.echo(f"{'name':<{width}} {'task':<15} {'parameters':>12}  {'source':<18} description")
    for r in rows:
        p = f"{r['parameters']:,}" if isinstance(r["parameters"], int) else r["parameters"]
        click.echo(f"{r['name']:<{width}} {r['task']:<15} {p:>12}  {r['source']:<18} {r['description']}")
    if any(r["default"] for r in rows):
        click.echo(f"\ndefault: {DEFAULT_NAME}, fitted and packaged with rustlab (docs/model-card.md); "
                   "predict, evaluate, export and gui use it when no --checkpoint is given")
    for name, error in get_registry().failed_plugins.items():
        click.echo(f"warning: plugin {name!r} failed to load: {error}", err=True)


@cli.command("train")
@click.option("--model", "-m", default=None, help="Registered model name (see `rustlab models`). [default: cnn]")
@click.option("--data", "-d", multiple=True,
              help="builtin | builtin:N | folder | file.parquet | hub id (e.g. BinKhoaLe1812/Corrosion_Rust); "
                   "repeat it to train on several sources, each split on its own. [default: builtin]")
@click.option("--negatives", default=None, help="Folder of images with no rust, added with empty masks.")
@click.option("--extra-data", multiple=True, metavar="DATA",
              help="Another source mixed into training (repeatable): its train and validation splits join "
                   "ours, its test split stays held out for `rustlab evaluate --data DATA`.")
@click.option("--call-data", multiple=True, metavar="DATA",
              help="Segmenters with an image-call head (--set image_call=head): photos labelled rust / no "
                   "rust whose train split fits the head after training (repeatable); they train nothing else.")
@click.option("--balance", type=click.Choice(["none", "classes", "sources", "sources+classes"]), default=None,
              is_flag=False, flag_value="classes",
              help="Draw training images balanced by class, by source, or both, instead of shuffling "
                   "(--balance alone: classes). [default: none]")
@click.option("--corrections", default=None, metavar="PATH",
              help="Labels checked by eye: a folder of <source>.csv files or one file (file,label,reason). "
                   "'none': the publisher's labels. [default: a corrections.csv beside each source]")
@click.option("--epochs", type=int, default=None, help="[default: 30]")
@click.option("--batch-size", type=int, default=None, help="[default: 32]")
@click.option("--lr", type=float, default=None, help="Peak learning rate. [default: 0.002]")
@click.option("--seed", type=int, default=None, help="[default: 0]")
@click.option("--split-seed", type=int, default=None,
              help="Seed of the seeded train/validation/test splits. [default: --seed]")
@click.option("--image-size", type=int, default=None, help="Input size in pixels. [default: the model's]")
@click.option("--augment", type=click.Choice(["none", "light", "standard", "strong"]), default=None)
@click.option("--tta", type=click.Choice(TTA_MODE_NAMES), default=None,
              help="Segmenters: average the mask over flipped copies when scoring and predicting "
                   "(recorded in the checkpoint). [default: none]")
@click.option("--ema", type=float, default=None, metavar="DECAY",
              help="Score and save a moving average of the weights, moved by 1-DECAY after every step "
                   "(e.g. 0.98). [default: 0, off]")
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N [default: auto]")
@click.option("--workers", type=int, default=None, help="DataLoader worker processes. [default: 0]")
@click.option("--out", default=None, help="Parent folder of run folders. [default: runs]")
@click.option("--name", default=None, help="Run folder name. [default: <model>-<timestamp>]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML run config (e.g. experiments/cnn_corrosion.toml); flags override it.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a model config field, e.g. --set kernel_size=5 --set batch_norm=true.")
@click.option("--no-cache", is_flag=True, help="Decode images again instead of reusing the cache.")
@click.option("--init", default=None, metavar="default|CHECKPOINT",
              help="Start from a trained model (default: the packaged one): its model and weights. A "
                   "closed-form model refits only its final call to --data (site adaptation, seconds).")
@click.option("--resume", type=click.Path(file_okay=False), default=None, metavar="RUN_DIR",
              help="Continue an interrupted run from its last completed epoch, with its own settings "
                   "(only --device, --workers, --no-cache may change).")
def train_cmd(config_file, sets, no_cache, resume, **flags):
    """Train a model plugin; writes a run folder with checkpoints, metrics and curves.

    Exit code 3: the run finished but some images could not be read (listed at the end)."""
    from rustlab.config import resolve_config
    from rustlab.training.trainer import train

    if no_cache:
        flags["cache"] = False
    flags["extra_data"] = list(flags["extra_data"]) or None  # not given: the config file's (if any)
    flags["call_data"] = list(flags["call_data"]) or None
    flags["data"] = list(flags["data"]) or None
    if flags["init"] and (flags["model"] or flags["image_size"]):
        raise click.UsageError(f"--init takes the model and its input size from the checkpoint; drop "
                               f"--{'model' if flags['model'] else 'image-size'}")
    if resume:
        from rustlab.training.state import resume_config

        fixed = sorted(k for k, v in flags.items() if v is not None and k not in ("device", "workers", "cache"))
        if fixed or config_file or sets:
            name = fixed[0].replace("_", "-") if fixed else "config" if config_file else "set"
            raise click.UsageError(f"--resume continues the run with its own settings; drop --{name}")
        cfg = resume_config(resume, **{k: flags.get(k) for k in ("device", "workers", "cache")})
    else:
        cfg = resolve_config(config_file, flags, sets)
    if train(cfg, resume=resume).partial:
        sys.exit(EXIT_PARTIAL)


@cli.command("evaluate")
@click.option("--checkpoint", "-c", default=None,
              help="A .safetensors checkpoint or a run folder. [default: the packaged default model]")
@click.option("--data", "-d", multiple=True,
              help="Data to score (repeatable). [default: every source it was trained on]")
@click.option("--split", type=click.Choice(["test", "validation", "train", "all"]), default="test", show_default=True,
              help="'all' scores every image, for a set the model never saw.")
@click.option("--corrections", default=None, metavar="PATH",
              help="Score against labels checked by eye: a folder of <source>.csv files or one file; 'none': "
                   "the publisher's labels. [default: the corrections the checkpoint was trained with]")
@click.option("--device", default="auto", show_default=True)
@click.option("--tta", type=click.Choice(TTA_MODE_NAMES), default=None,
              help="Segmenters: test-time flips. [default: the checkpoint's]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@ENGINE_OPTION
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the reliability diagrams (reliability-<split>[-<data>].png). "
                   "[default: the checkpoint's folder; runs/default-model-evaluate for the default model]")
def evaluate_cmd(checkpoint, data, split, corrections, device, tta, as_json, engine, plots_dir):
    """Accuracy, precision, recall, F1 (rust positive), ROC-AUC, confusion matrix and calibration (ECE)."""
    from pathlib import Path

    from rustlab.inference.evaluate import evaluate_checkpoint
    from rustlab.registry import get_task

    if plots_dir:  # fail before the evaluation, not after it
        try:
            Path(plots_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--plots {plots_dir}: cannot create folder ({exc.strerror or exc})")
    if checkpoint is None and not plots_dir:  # never beside the packaged file, inside the install
        plots_dir = "runs/default-model-evaluate"
    checkpoint = _model_or_default(checkpoint)
    given = list(data)
    if not data:  # every source it was trained on: each one's own held-out split
        from rustlab.checkpoint import read_metadata
        from rustlab.inference.evaluate import training_sources

        data = tuple(training_sources(read_metadata(checkpoint))) or (None,)
    results = [evaluate_checkpoint(checkpoint, d, split, device, tta=tta, corrections=corrections, engine=engine)
               for d in data]
    if results[0].get("engine_note"):
        click.echo(f"note: {results[0]['engine_note']}", err=True)
    write_reliability_plots(results, given or ([r["data"] for r in results] if len(results) > 1 else []), plots_dir)
    if as_json:
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
        report_skipped(results)
        return
    print_metrics_table(results)
    for r in results:
        lines = get_task(r["task"]).metric_details(r)
        if lines:
            click.echo(f"\n{r['data']} [{r['split']}]: " + "\n".join(lines))
        if r.get("reliability_plot"):
            click.echo(f"reliability diagram: {r['reliability_plot']}")
        if r.get("corrections"):
            c = r["corrections"]
            click.echo(f"{r['data']}: labels corrected by {c['file']} ({c['relabelled']} relabelled, "
                       f"{c['excluded']} excluded)")
    report_skipped(results)


@cli.command("predict")
@click.option("--checkpoint", "-c", default=None,
              help="A .safetensors checkpoint or a run folder. [default: the packaged default model]")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), default=None,
              help="An ONNX model from `rustlab export` (onnxruntime; torch is not imported). "
                   "At most one of --checkpoint and --onnx.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE|FOLDER...")
@click.option("--device", default="auto", show_default=True)
@click.option("--tta", type=click.Choice(TTA_MODE_NAMES), default=None,
              help="Segmenters (with --checkpoint): test-time flips. [default: the checkpoint's]")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Segmentation models: write <name>_mask.png and <name>_overlay.png per image here.")
@click.option("--results", "results_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also write one row per image to FILE.csv or FILE.jsonl, flushed as each arrives "
                   "(a killed run keeps its rows).")
@click.option("--resume", is_flag=True,
              help="With --results: skip the files already in it and append the rest.")
@click.option("--report", type=click.Path(dir_okay=False), default=None, metavar="FILE.html",
              help="Also write one self-contained page to look at: photos sorted by rust, thumbnails, "
                   "where the rust is, grades, filters.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Threads decoding ahead of the model (0: decode between batches). [default: cores, at most 4]")
@ENGINE_OPTION
def predict_cmd(checkpoint, onnx_path, images, device, tta, batch_size, as_json, out_dir, results_path, resume,
                report, workers, engine):
    """Label and confidence for each image, one line each (plus rust area % for segmentation models).

    Photos decode in parallel with the model; a progress bar with img/s shows on a terminal.
    Exit code 3: some images could not be read (1: none could)."""
    from rustlab.cli_output import run_predict

    if checkpoint is not None and onnx_path is not None:
        raise click.UsageError("give at most one of --checkpoint and --onnx")
    if resume and results_path is None:
        raise click.UsageError("--resume continues a --results file; give --results FILE")
    if tta is not None and onnx_path is not None:
        raise click.UsageError("--tta applies to --checkpoint; an ONNX model's flips are fixed at export")
    if onnx_path is not None:
        from rustlab.inference.onnx_runtime import OnnxPredictor

        predictor = OnnxPredictor(onnx_path, device=device)
    else:
        from rustlab.inference.predictor import Predictor

        from rustlab.inference.pipeline import list_images

        from rustlab.inference.sharded import Shard

        shard = Shard.from_env()  # under torchrun: this process's GPU, its share of the photos
        images = list_images(images)  # listed once: the job's size picks the engine, run_predict reads the list
        predictor = Predictor(_model_or_default(checkpoint), device=shard.device(device), tta=tta, engine=engine,
                              photos=len(shard.take(images)))
        if predictor.note:
            click.echo(f"note: {predictor.note}", err=True)
    run_predict(predictor, images, batch_size=batch_size, as_json=as_json, out_dir=out_dir,
                results_path=results_path, resume=resume, workers=workers, report=report,
                listed=onnx_path is None)


@cli.command("export")
@click.option("--checkpoint", "-c", default=None,
              help="A .safetensors checkpoint or a run folder. [default: the packaged default model]")
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True)
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Output file. [default: the checkpoint's path with .onnx; required for the default model]")
def export_cmd(checkpoint, fmt, out):
    """Export a checkpoint to ONNX (dynamic batch; dynamic H/W for segmentation), checked in onnxruntime."""
    from rustlab.inference.export import export_onnx

    if checkpoint is None and out is None:  # never write beside the packaged file, inside the install
        raise click.UsageError("--out FILE.onnx is needed to export the default model")
    checkpoint = _model_or_default(checkpoint)
    result = export_onnx(checkpoint, out)
    axes = ", ".join(f"{k}: {'/'.join(v.values())}" for k, v in result.dynamic_axes.items())
    click.echo(f"wrote {result.path} ({result.path.stat().st_size / 2**20:.1f} MiB; dynamic {axes})")
    if result.max_abs_diff:
        worst = max(result.max_abs_diff.values())
        click.echo(f"onnxruntime matches PyTorch: max abs diff {worst:.2g} over inputs "
                   f"{', '.join(result.max_abs_diff)}")
    else:
        click.echo("onnxruntime is not installed: the export was not checked (pip install onnxruntime)", err=True)


@cli.command("samples")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--count", type=click.IntRange(min=1, max=1000), default=4, show_default=True,
              help="Images per class.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--by-class", is_flag=True, help="Write rust/ and no_rust/ subfolders: a folder --data source.")
def samples_cmd(out_dir, count, seed, by_class):
    """Write synthetic rust / no-rust photos (from the builtin generator) to try predict and the GUI."""
    from pathlib import Path

    from PIL import Image

    from rustlab.data.synthetic import render_sample

    import numpy as np

    out = Path(out_dir)
    try:
        for name in ("rust", "no_rust") if by_class else ():
            (out / name).mkdir(parents=True, exist_ok=True)
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{out}: cannot create folder ({exc.strerror})")
    for i in range(count):
        for has_rust, name in ((True, "rust"), (False, "no_rust")):
            image, _ = render_sample(np.random.default_rng([seed, i, has_rust]), 192, has_rust)
            path = (out / name if by_class else out) / f"{name}_{i:02d}.png"
            Image.fromarray(image).save(path)
            click.echo(str(path))


@cli.command("gui")
@click.option("--checkpoint", "-c", default=None,
              help="A .safetensors checkpoint or a run folder. [default: the packaged default model, "
                   "else the newest runs/**/best.safetensors, else a file dialog]")
@click.option("--device", default="auto", show_default=True)
@click.argument("images", nargs=-1, metavar="[IMAGE|FOLDER]...")
def gui_cmd(checkpoint, device, images):
    """Drag-and-drop window: drop photos, see label, confidence and where the rust is."""
    from rustlab.gui import launch

    launch(checkpoint, images, device)


from rustlab.bench.cli import bench as _bench  # noqa: E402 - click only; `rustlab bench speed|kernels`

cli.add_command(_bench)

from rustlab.audit.cli import audit_cmd as _audit  # noqa: E402 - click only; `rustlab audit`

cli.add_command(_audit)


def main(argv=None):
    """Entry point: one-line errors, never a traceback, for problems the user can fix."""
    from rustlab.errors import Interrupted, RustlabError

    try:
        cli.main(args=argv, prog_name="rustlab", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Interrupted as exc:  # not an error: the run is saved and says how to resume
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    except RustlabError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
