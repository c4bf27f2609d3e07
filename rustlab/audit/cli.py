"""`rustlab audit`: the photos whose label (or mask) is probably wrong, ranked for review."""

from __future__ import annotations

import click


@click.command("audit")
@click.option("--data", "-d", "sources", multiple=True,
              help="A source to audit (repeatable): every photo of every split. [default: the --config recipe's]")
@click.option("--model", "-m", default=None,
              help="A classifier fitted in closed form. [default: effnet-lite0-cells; effnet-lite0-probe where no "
                   "source has masks]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="A recipe (TOML): its model, model config, image size, balance, corrections and data.")
@click.option("--out", "-o", type=click.Path(file_okay=False), required=True,
              help="Folder for audit.csv, audit.html (and masks.csv, masks.html) and thumbs/.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="k: each photo is scored by the model fitted on the other k-1 folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the folds.")
@click.option("--image-size", type=click.IntRange(min=8), default=None, help="[default: the model's or recipe's]")
@click.option("--corrections", default=None, metavar="PATH",
              help="Audit the labels as already corrected: a folder of <source>.csv files or one file; 'none': "
                   "the publisher's. [default: the recipe's, else a corrections.csv beside each source]")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Model config override (repeatable).")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N")
def audit_cmd(sources, model, config_file, out, folds, seed, image_size, corrections, sets, device):
    """Rank every photo by how likely its label is wrong (out-of-fold scores, confident learning)
    and write a review page whose marks download as a corrections file."""
    from pathlib import Path

    from rustlab.audit.run import AuditPlan, run_audit

    plan = AuditPlan(sources=list(sources), out=Path(out), model=model, config=config_file, folds=folds, seed=seed,
                     image_size=image_size, corrections=corrections, sets=tuple(sets), device=device)
    summary = run_audit(plan, log=lambda message: click.echo(message, err=True))
    for name, counts in summary["per_source"].items():
        click.echo(f"{name}: {counts['flagged']} of {counts['photos']} labels flagged")
    if summary["masks_ranked"]:
        click.echo(f"masks: {summary['masks_flagged']} of {summary['masks_ranked']} flagged")
    click.echo(f"review: {Path(out) / 'audit.html'}")
