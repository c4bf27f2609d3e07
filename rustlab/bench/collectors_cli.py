"""`rustlab bench collectors`: the leave-one-collector-out matrix of a recipe against colour-rule."""

from __future__ import annotations

import shlex
import sys

import click


@click.command("collectors")
@click.option("--model", "-m", required=True, help="The model to judge (its recipe: --config).")
@click.option("--data", "-d", "sources", multiple=True, required=True,
              help="A source (collector), repeatable: each is held out in turn.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="The model's TOML recipe; its data settings are replaced by the cells'.")
@click.option("--seed", "seeds", type=int, multiple=True, help="Training seeds (repeatable). [default: 0]")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs per cell instead of the recipe's (a smaller budget; the report says so).")
@click.option("--image-size", type=click.IntRange(min=8), default=None, help="Input size instead of the recipe's.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Model config override (repeatable).")
@click.option("--split-seed", type=int, default=0, show_default=True, help="One split of every source for all cells.")
@click.option("--corrections", default=None, metavar="PATH",
              help="Labels checked by eye for training and scoring every cell, the baseline's included: a "
                   "folder of <source>.csv files or one file; 'none': the publisher's. [default: the recipe's]")
@click.option("--device", default="auto", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/collectors", show_default=True,
              help="Folder of the cells' runs and scores (a rerun resumes there) and of the report.")
def collectors_cmd(model, sources, config_file, seeds, epochs, image_size, sets, split_seed, corrections, device,
                   out):
    """Leave-one-collector-out: train on every other source, score the one left out; then train on
    all and score each source's test split. Writes collectors.md, .json and .png to --out."""
    from pathlib import Path

    from rustlab.bench.collectors import Plan, run_collectors
    from rustlab.bench.collectors_report import format_markdown, plot_accuracy, write_json
    from rustlab.registry import get_model_spec

    get_model_spec(model)  # an unknown model fails before any training
    if corrections is None and config_file:  # the recipe's, for the baseline's cells too
        from rustlab.config import load_toml

        corrections = load_toml(config_file).get("corrections")
    folder = Path(out)
    plan = Plan(model=model, sources=list(sources), out=folder, config=config_file, seeds=tuple(seeds) or (0,),
                epochs=epochs, image_size=image_size, sets=tuple(sets), device=device, split_seed=split_seed,
                corrections=corrections)
    report = run_collectors(plan, log=lambda message: click.echo(message, err=True))
    report["command"] = "rustlab bench collectors " + " ".join(shlex.quote(a) for a in sys.argv[3:]) \
        if len(sys.argv) > 2 and sys.argv[1:3] == ["bench", "collectors"] else None
    markdown = format_markdown(report)
    (folder / "collectors.md").write_text(markdown)
    write_json(report, folder / "collectors.json")
    plot_accuracy(report, folder / "collectors.png")
    click.echo(markdown)
    click.echo(f"report: {folder / 'collectors.md'} (.json, .png)", err=True)
