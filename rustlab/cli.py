"""The `rustlab` command line: thin click commands over the library.

Heavy modules (torch, datasets) are imported inside the commands, so `rustlab --help` and a
mistyped flag answer instantly. A RustlabError reaches the user as one line and exit code 1;
exit code 3 means some inputs failed while the rest succeeded.
"""

from __future__ import annotations

import json
import sys

import click

EXIT_ERROR = 1
EXIT_PARTIAL = 3


def _fail(message: str, code: int = EXIT_ERROR):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="rustlab")
def cli():
    """rustlab: find rust in photos of steel.

    \b
    Quick start:
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
                     "description": spec.description})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':<16} {'task':<15} {'parameters':>12}  {'source':<18} description")
    for r in rows:
        p = f"{r['parameters']:,}" if isinstance(r["parameters"], int) else r["parameters"]
        click.echo(f"{r['name']:<16} {r['task']:<15} {p:>12}  {r['source']:<18} {r['description']}")
    for name, error in get_registry().failed_plugins.items():
        click.echo(f"warning: plugin {name!r} failed to load: {error}", err=True)


@cli.command("train")
@click.option("--model", "-m", default=None, help="Registered model name (see `rustlab models`). [default: cnn]")
@click.option("--data", "-d", default=None,
              help="builtin | builtin:N | folder | file.parquet | hub id (e.g. BinKhoaLe1812/Corrosion_Rust). "
                   "[default: builtin]")
@click.option("--negatives", default=None, help="Folder of images with no rust, added with empty masks.")
@click.option("--epochs", type=int, default=None, help="[default: 30]")
@click.option("--batch-size", type=int, default=None, help="[default: 32]")
@click.option("--lr", type=float, default=None, help="Peak learning rate. [default: 0.002]")
@click.option("--seed", type=int, default=None, help="[default: 0]")
@click.option("--image-size", type=int, default=None, help="Input size in pixels. [default: the model's]")
@click.option("--augment", type=click.Choice(["none", "light", "standard", "strong"]), default=None)
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N [default: auto]")
@click.option("--workers", type=int, default=None, help="DataLoader worker processes. [default: 0]")
@click.option("--out", default=None, help="Parent folder of run folders. [default: runs]")
@click.option("--name", default=None, help="Run folder name. [default: <model>-<timestamp>]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML run config (e.g. experiments/cnn_corrosion.toml); flags override it.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a model config field, e.g. --set kernel_size=5 --set batch_norm=true.")
@click.option("--no-cache", is_flag=True, help="Decode images again instead of reusing the cache.")
def train_cmd(config_file, sets, no_cache, **flags):
    """Train a model plugin; writes a run folder with checkpoints, metrics and curves."""
    from rustlab.config import resolve_config
    from rustlab.train import train

    if no_cache:
        flags["cache"] = False
    cfg = resolve_config(config_file, flags, sets)
    train(cfg)


def _print_metrics_table(results: list[dict]):
    cols = ("accuracy", "precision", "recall", "f1", "roc_auc")
    click.echo(f"{'data':<40} {'split':<10} " + " ".join(f"{c:>9}" for c in cols) + f" {'n':>6}")
    for r in results:
        vals = " ".join(f"{r[c]:>9.4f}" if isinstance(r.get(c), float) else f"{'-':>9}" for c in cols)
        click.echo(f"{r['data'][-40:]:<40} {r['split']:<10} {vals} {r['n']:>6}")


@cli.command("evaluate")
@click.option("--checkpoint", "-c", required=True, help="A .safetensors checkpoint or a run folder.")
@click.option("--data", "-d", multiple=True, help="Data to score (repeatable). [default: the training data]")
@click.option("--split", type=click.Choice(["test", "validation", "train", "all"]), default="test", show_default=True,
              help="'all' scores every image, for a set the model never saw.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate_cmd(checkpoint, data, split, device, as_json):
    """Accuracy, precision, recall, F1 (rust positive), ROC-AUC and confusion matrix."""
    from rustlab.evaluate import evaluate_checkpoint

    results = [evaluate_checkpoint(checkpoint, d, split, device) for d in (data or [None])]
    if as_json:
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return
    _print_metrics_table(results)
    for r in results:
        (tn, fp), (fn, tp) = r["confusion"]
        click.echo(f"\n{r['data']} [{r['split']}]: confusion (rows true, columns predicted)")
        click.echo(f"{'':>12} {'no_rust':>8} {'rust':>8}")
        click.echo(f"{'no_rust':>12} {tn:>8} {fp:>8}\n{'rust':>12} {fn:>8} {tp:>8}")
        if r["skipped"]:
            click.echo(f"{len(r['skipped'])} unreadable image(s) skipped, e.g. {r['skipped'][0]['file']}", err=True)


@cli.command("predict")
@click.option("--checkpoint", "-c", required=True, help="A .safetensors checkpoint or a run folder.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE|FOLDER...")
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def predict_cmd(checkpoint, images, device, batch_size, as_json):
    """Label and confidence for each image, one line each."""
    from rustlab.errors import ImageError
    from rustlab.predict import Predictor, list_images

    predictor = Predictor(checkpoint, device=device)
    failed = total = 0
    for result in predictor.predict_many(list_images(images), batch_size=batch_size):
        total += 1
        if isinstance(result, ImageError):
            failed += 1
            if as_json:
                click.echo(json.dumps({"source": result.path, "error": result.reason}))
            click.echo(f"error: {result}", err=True)
            continue
        if as_json:
            click.echo(json.dumps(result.to_dict()))
        else:
            area = f"  area {100 * result.rust_area:5.1f}%" if result.rust_area is not None else ""
            click.echo(f"{result.label:<10} {result.confidence:6.3f}{area}  {result.source}")
    if total == 0:
        _fail("no images found in the given paths")
    if failed:
        click.echo(f"{failed} of {total} image(s) could not be read", err=True)
        sys.exit(EXIT_PARTIAL if failed < total else EXIT_ERROR)


@cli.command("samples")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--count", type=click.IntRange(min=1, max=1000), default=4, show_default=True,
              help="Images per class.")
@click.option("--seed", type=int, default=7, show_default=True)
def samples_cmd(out_dir, count, seed):
    """Write synthetic rust / no-rust photos (from the builtin generator) to try predict and the GUI."""
    from pathlib import Path

    from PIL import Image

    from rustlab.data.synthetic import render_sample

    import numpy as np

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"{out}: cannot create folder ({exc.strerror})")
    for i in range(count):
        for has_rust, name in ((True, "rust"), (False, "no_rust")):
            image, _ = render_sample(np.random.default_rng([seed, i, has_rust]), 192, has_rust)
            path = out / f"{name}_{i:02d}.png"
            Image.fromarray(image).save(path)
            click.echo(str(path))


def main(argv=None):
    """Entry point: one-line errors, never a traceback, for problems the user can fix."""
    from rustlab.errors import RustlabError

    try:
        cli.main(args=argv, prog_name="rustlab", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RustlabError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
