"""What an audit writes: ``audit.csv`` and ``audit.html`` (labels), ``masks.csv`` and ``masks.html``
(segmentation masks), the thumbnails both pages show, and ``audit.json`` (counts and settings)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from rustlab.data.corrections import source_name

THUMB = 200  # px, longest side of a card's thumbnail
LABEL_FIELDS = ("rank", "source", "file", "given_label", "rust_probability", "score", "flagged")
MASK_FIELDS = ("rank", "source", "file", "mask_share", "iou", "confidence", "score", "flagged", "note")


def write_outputs(out: Path, data, oof, known: np.ndarray, ranked: dict, mask_rows: np.ndarray, masks: dict | None,
                  *, model: str, size: int, folds: int, log) -> dict:
    from rustlab.audit.page import write_page

    out = Path(out)
    (out / "thumbs").mkdir(exist_ok=True)  # run_audit made --out itself before any work, with its error
    labelled = np.flatnonzero(known)
    rows = []
    for j, i in enumerate(labelled):
        rows.append({"rank": int(ranked["rank"][j]), "source": source_name(data.sources[i]),
                     "file": data.files[i], "given_label": _given(data.labels[i]),
                     "rust_probability": round(float(oof.probabilities[i, 1]), 4),
                     "score": round(float(ranked["score"][j]), 4), "flagged": bool(ranked["flagged"][j]),
                     "kind": "label", "note": "", "_index": int(i)})
    rows.sort(key=lambda r: r["rank"])
    _write_csv(out / "audit.csv", rows, LABEL_FIELDS)
    log(f"{len(rows)} labels ranked, {sum(r['flagged'] for r in rows)} flagged: {out / 'audit.csv'}")
    mask_list = []
    if masks is not None:
        for j, i in enumerate(mask_rows):
            mask_list.append({"rank": int(masks["rank"][j]), "source": source_name(data.sources[i]),
                              "file": data.files[i], "given_label": _given(data.labels[i]),
                              "rust_probability": round(float(oof.probabilities[i, 1]), 4),
                              "mask_share": round(float(masks["mask_share"][j]), 4),
                              "iou": round(float(masks["iou"][j]), 4),
                              "confidence": round(float(masks["confidence"][j]), 4),
                              "score": round(float(masks["score"][j]), 4), "flagged": bool(masks["flagged"][j]),
                              "kind": "mask", "note": masks["note"][j], "_index": int(i)})
        mask_list.sort(key=lambda r: r["rank"])
        _write_csv(out / "masks.csv", mask_list, MASK_FIELDS)
        log(f"{len(mask_list)} masks ranked, {sum(r['flagged'] for r in mask_list)} flagged: {out / 'masks.csv'}")
    _thumbnails(out, data, rows, mask_list, oof)
    names = [source_name(s) for s in dict.fromkeys(data.sources)]
    write_page(out / "audit.html", rows, title=f"rustlab audit: labels of {', '.join(names)}",
               class_names=["no_rust", "rust"])
    if mask_list:
        write_page(out / "masks.html", mask_list, title=f"rustlab audit: masks of {', '.join(names)}",
                   class_names=["no_rust", "rust"])
    summary = {"model": model, "image_size": size, "folds": folds, "photos": len(data.labels),
               "labels_ranked": len(rows), "labels_flagged": int(sum(r["flagged"] for r in rows)),
               "masks_ranked": len(mask_list), "masks_flagged": int(sum(r["flagged"] for r in mask_list)),
               "unreadable": [{"source": s, "file": f, "reason": r} for s, f, r in data.skipped],
               "per_source": {n: {"photos": sum(r["source"] == n for r in rows),
                                  "flagged": sum(r["source"] == n and r["flagged"] for r in rows)} for n in names}}
    (out / "audit.json").write_text(json.dumps(summary, indent=2))
    log(f"review page: {out / 'audit.html'}" + (f" and {out / 'masks.html'}" if mask_list else ""))
    return summary


def _given(label: int) -> str:
    """A photo's label as the page and the corrections file name it (labels are mapped to rust or not)."""
    return "rust" if label == 1 else "no_rust"


def _write_csv(path: Path, rows: list, fields: tuple) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _thumbnails(out: Path, data, rows: list, mask_rows_out: list, oof) -> None:
    """A JPEG per card: the photo (labels), or the photo with its mask beside the model's cells (masks)."""
    from rustlab.data.images import open_rgb
    from rustlab.errors import ImageError

    for row in rows:
        row["thumb"] = f"thumbs/{row['rank']:06d}.jpg"
        try:
            image = open_rgb(data.images_of[row["_index"]], draft_size=THUMB)
        except ImageError:  # decoded once for the audit; a file changed since shows no thumbnail
            continue
        image.thumbnail((THUMB, THUMB))
        image.save(out / row["thumb"], quality=82)
    for row in mask_rows_out:
        row["thumb"] = f"thumbs/mask-{row['rank']:06d}.jpg"
        _mask_thumbnail(data, row, oof).save(out / row["thumb"], quality=82)


def _mask_thumbnail(data, row: dict, oof):
    """The decoded photo twice, side by side: its mask tinted blue (red would hide among red paint and
    rust), the model's rust cells tinted yellow."""
    import torch
    import torch.nn.functional as F
    from PIL import Image

    i = row["_index"]
    photo = data.images[i].float()
    size = photo.shape[-1]
    mask = data.masks[i, 0].float()
    cells = F.interpolate(torch.as_tensor(oof.cells[i])[None, None], size=(size, size), mode="nearest")[0, 0]
    left = photo * (1 - 0.5 * mask) + torch.tensor([30.0, 120, 255])[:, None, None] * 0.5 * mask
    model = (cells >= 0.5).float()
    right = photo * (1 - 0.5 * model) + torch.tensor([250.0, 210, 0])[:, None, None] * 0.5 * model
    both = torch.cat([left, torch.full((3, size, 4), 255.0), right], dim=2).clamp(0, 255).byte()
    image = Image.fromarray(both.permute(1, 2, 0).numpy())
    image.thumbnail((2 * THUMB, THUMB))
    return image
