"""What the CLI writes besides its one-line errors: the metric table, skipped-image reports,
reliability diagrams, mask files and the `predict` loop. Plain functions, so the commands in rustlab.cli
stay thin."""

from __future__ import annotations

import sys

import click

EXIT_ERROR = 1
EXIT_PARTIAL = 3


def fail(message: str, code: int = EXIT_ERROR):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def print_metrics_table(results: list[dict]):
    from rustlab.registry import get_task

    tasks = [get_task(r["task"]) for r in results]
    cols = {}
    for task in tasks:  # each task names its own columns (a segmenter: rust-class pixel metrics first)
        cols.update({k: h for k, h in task.metric_columns().items() if k not in cols})
    click.echo(f"{'data':<40} {'split':<10} " + " ".join(f"{h:>9}" for h in cols.values()) + f" {'n':>6}")
    for r in results:
        vals = " ".join(f"{r[c]:>9.4f}" if isinstance(r.get(c), float) else f"{'-':>9}" for c in cols)
        click.echo(f"{r['data'][-40:]:<40} {r['split']:<10} {vals} {r['n']:>6}")
    for r, task in zip(results, tasks):
        for note in task.metric_notes(r):
            click.echo(f"{r['data'][-40:]}: {note}")


def report_skipped(results: list[dict]) -> None:
    """One `error: FILE: reason` line per unreadable image, then exit 3 (partial) if there was any."""
    skipped = [s for r in results for s in r["skipped"]]
    for s in skipped:
        click.echo(f"error: {s['file']}: {s['reason']}", err=True)
    if skipped:
        scored = sum(r["n"] for r in results)
        click.echo(f"{len(skipped)} unreadable image(s) skipped; metrics are over the {scored} readable ones",
                   err=True)
        sys.exit(EXIT_PARTIAL)


def write_reliability_plots(results: list[dict], data: list[str], plots_dir: str | None) -> None:
    """reliability-<split>[-<data>].png per classification result; adds ``reliability_plot``.

    The default folder is the checkpoint's (beside curves.png); when that is not writable, a
    warning. An explicit --plots folder that cannot be written is an error."""
    import re
    from pathlib import Path

    from rustlab.tasks.calibration import plot_reliability_metrics

    used: set[str] = set()
    for i, r in enumerate(results):
        if "reliability" not in r:
            continue
        folder = Path(plots_dir) if plots_dir else Path(r["checkpoint"]).parent
        stem = f"reliability-{r['split']}"
        if data:  # name the data: several --data give several plots
            stem += "-" + (re.sub(r"[^A-Za-z0-9._-]+", "_", Path(data[i].rstrip("/")).name or data[i]) or "data")
        name, n = stem, 1
        while name in used:
            n += 1
            name = f"{stem}-{n}"
        used.add(name)
        path = folder / f"{name}.png"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            plot_reliability_metrics(r, path, title=f"{r['model']} on {r['data']} [{r['split']}], n={r['n']}")
        except OSError as exc:
            if plots_dir:
                fail(f"--plots {plots_dir}: cannot write {path.name} ({exc.strerror or exc})")
            click.echo(f"warning: cannot write {path} ({exc.strerror or exc}); use --plots DIR", err=True)
            continue
        r["reliability_plot"] = str(path)


# Overlays of huge photos are previews; the mask PNG keeps the photo's full size.
OVERLAY_MAX_SIDE = 1600


def mask_output_dir(predictor, out_dir: str):
    from pathlib import Path

    if not predictor.task.dense_output:
        fail(f"--out writes rust masks, but {predictor.checkpoint} is a {predictor.meta['task']} model "
              "(train a segmentation model such as unet)")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--out {out}: cannot create folder ({exc.strerror})")
    return out


def write_mask_files(predictor, result, out_dir, used_names: set) -> dict:
    """<stem>_mask.png (photo size, 255 = rust) and <stem>_overlay.png; returns their paths."""
    from pathlib import Path

    from rustlab.data.images import open_rgb
    from rustlab.errors import ImageError
    from rustlab.inference.overlay import mask_image, overlay

    stem = Path(result.source).stem or "image"
    name, n = stem, 1
    while name in used_names:  # same file name from two folders
        n += 1
        name = f"{stem}-{n}"
    used_names.add(name)
    threshold = float((predictor.meta.get("calibration") or {}).get("pixel_threshold", 0.5))
    try:
        photo = open_rgb(result.source)
    except ImageError:  # read a moment ago; gone now: the mask alone at the decoded size
        photo = None
    size = photo.size if photo is not None else result.image_size
    mask_path, overlay_path = out_dir / f"{name}_mask.png", out_dir / f"{name}_overlay.png"
    try:
        mask_image(result.mask, size, threshold).save(mask_path)
        files = {"mask_png": str(mask_path)}
        if photo is not None:
            photo.thumbnail((OVERLAY_MAX_SIDE, OVERLAY_MAX_SIDE))
            overlay(photo, result.mask, threshold).save(overlay_path)
            files["overlay_png"] = str(overlay_path)
    except OSError as exc:
        fail(f"--out {out_dir}: cannot write {mask_path.name} ({exc.strerror or exc})")
    return files


def run_predict(predictor, images, *, batch_size: int = 16, as_json: bool = False, out_dir=None,
                results_path=None, resume: bool = False, workers: int | None = None, report=None,
                listed: bool = False) -> None:
    """`rustlab predict`: stream predictions in input order to stdout, the --results file and the
    --out mask folder; a progress bar with img/s on stderr when it is a terminal. Exits 3 when
    some images could not be read, 1 when none could. ``listed``: ``images`` is already
    ``list_images``' list (a million-file folder is not walked twice)."""
    import json

    from tqdm import tqdm

    from rustlab.errors import ImageError
    from rustlab.inference.pipeline import list_images
    from rustlab.inference.results_file import ResultsFile, error_row, prediction_row, source_key
    from rustlab.inference.sharded import Shard

    if out_dir is not None:
        out_dir = mask_output_dir(predictor, out_dir)
    files = list(images) if listed else list_images(images)
    if not files:
        fail("no images found in the given paths")
    shard = Shard.from_env()  # under torchrun: this process's share, its own part of --results
    if shard.sharded and results_path is None:
        fail("under torchrun, give --results FILE.csv|.jsonl: each process writes its part, merged at the end")
    if report and (shard.sharded or resume):  # the page shows what this process predicted, so: all of it
        fail(f"--report and {'torchrun' if shard.sharded else '--resume'}: the report would hold only part of "
             "the photos; write it from a run of one process over the whole folder")
    builder = None
    if report:
        from rustlab.inference.report import ReportBuilder

        builder = ReportBuilder(predictor, report)  # a bad file name fails before any prediction
    mine = shard.take(files)
    part = shard.part(results_path) if shard.sharded else results_path
    results = ResultsFile(part, predictor.class_names, resume) if results_path else None
    todo = mine
    if results is not None and results.rows_before:
        todo = [f for f in mine if source_key(f) not in results.done]
        click.echo(f"--resume: {len(mine) - len(todo)} of {len(mine)} image(s) already in {part}, "
                   f"{len(todo)} to predict", err=True)
    bar = tqdm(total=len(todo), unit="img", file=sys.stderr, disable=not sys.stderr.isatty() or not todo,
               dynamic_ncols=True, smoothing=0.05)

    def say(text: str, err: bool = False):
        if bar.disable:
            click.echo(text, err=err)
        else:  # above the bar, which is redrawn below it
            tqdm.write(text, file=sys.stderr if err else sys.stdout)

    used_names: set[str] = set()
    failed = total = 0
    try:
        for result in predictor.predict_many(todo, batch_size=batch_size, workers=workers):
            total += 1
            bar.update(1)
            if builder is not None:
                builder.add(result)
            if isinstance(result, ImageError):
                failed += 1
                row = error_row(result)
                if results is not None:
                    results.write(row)
                if as_json:
                    say(json.dumps(row))
                say(f"error: {result}", err=True)
                continue
            files_out = write_mask_files(predictor, result, out_dir, used_names) if out_dir is not None else {}
            if results is not None:
                results.write(prediction_row(result, files_out))
            if as_json:
                say(json.dumps({**result.to_dict(), **files_out}))
            else:
                area = ""
                if result.rust_area is not None:  # a segmenter: the rusted share and its grades
                    g = result.to_dict()
                    area = f"  area {100 * result.rust_area:5.1f}%  ASTM D610 {g['astm_d610']:>2}  {g['iso_4628_3']}"
                say(f"{result.label:<10} {result.confidence:6.3f}{area}  {result.source}")
    finally:  # also on Ctrl-C: every row so far is in the file
        bar.close()
        if results is not None:
            results.close()
    if out_dir is not None and used_names:
        click.echo(f"wrote {len(used_names)} mask(s) and overlay(s) to {out_dir}", err=True)
    if results is not None:
        click.echo(f"{total} row(s) written to {part}", err=True)
    if builder is not None:
        click.echo(f"report: {builder.write()} ({len(builder.rows)} photos)", err=True)
    if shard.sharded:
        shard.wait_for_all()
        if shard.rank != 0:
            return
        merged = shard.merge(results_path, files, predictor.class_names)  # every part, in input order
        click.echo(f"merged {merged['rows']} row(s) of {shard.world} parts into {results_path}"
                   + (f"; {merged['missing']} photo(s) in no part" if merged["missing"] else ""), err=True)
        failed, total = merged["errors"], merged["rows"]
    if failed:
        click.echo(f"{failed} of {total} image(s) could not be read", err=True)
        sys.exit(EXIT_PARTIAL if failed < total else EXIT_ERROR)
