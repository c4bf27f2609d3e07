"""`rustlab predict FOLDER --report report.html`: the rows of the page an inspector looks at.

Each prediction becomes a row with its thumbnail and, where the model says where the rust is,
an overlay: a segmenter's mask, or for a classifier's rust calls the Grad-CAM heat (the GUI's
picture; one backward pass a photo, so only photos called rust get one). The page itself
(sorting, filters, lazy cards, summary) is rustlab.inference.report_page.
"""

from __future__ import annotations

import base64
import io
import time
from collections import Counter
from pathlib import Path

from rustlab.errors import ImageError, RustlabError

THUMB = 160  # px, longest side of a card's pictures


def _data_uri(image) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=78)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class ReportBuilder:
    """Collects rows as predictions arrive (``add``), then writes the page (``write``)."""

    def __init__(self, predictor, path, model_line: str = ""):
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise RustlabError(f"--report {path}: expected an .html file name")
        if path.is_dir():
            raise RustlabError(f"--report {path}: is a folder, not a file")
        self.predictor, self.path, self.rows = predictor, path, []
        self.model_line = model_line or getattr(predictor, "name", "")
        self.explainer = None
        if getattr(predictor, "model", None) is not None and predictor.task.explainable:
            from rustlab.inference.explain import ExplainError, Explainer

            try:
                self.explainer = Explainer(predictor)
            except ExplainError:
                self.explainer = None  # no layer to explain: the cards show the photo only

    def add(self, result) -> None:
        if isinstance(result, ImageError):
            self.rows.append({"file": result.path, "name": Path(result.path).name, "label": None, "is_rust": None,
                              "confidence": None, "rust_probability": None, "rust_area": None, "astm_d610": None,
                              "iso_4628_3": None, "error": result.reason, "thumb": None, "overlay": None,
                              "overlay_kind": None})
            return
        from rustlab.data.images import open_rgb
        from rustlab.inference.overlay import heat_overlay, overlay

        row = {**{k: v for k, v in result.to_dict().items() if k in ("label", "is_rust", "confidence",
                                                                      "rust_probability", "rust_area",
                                                                      "astm_d610", "iso_4628_3")},
               "file": result.source, "name": Path(result.source).name, "error": None, "thumb": None,
               "overlay": None, "overlay_kind": None}
        row.setdefault("astm_d610", None)
        row.setdefault("iso_4628_3", None)
        try:
            # decoded once, as the prediction decoded it (JPEG draft at the model's size): Grad-CAM
            # reads this image, the thumbnail is shrunk from it
            decoded = open_rgb(result.source, draft_size=max(THUMB, self.predictor.image_size))
        except ImageError:
            self.rows.append(row)  # read once for the prediction, gone since: the row without pictures
            return
        picture = decoded.copy()
        picture.thumbnail((THUMB, THUMB))
        row["thumb"] = _data_uri(picture)
        if result.mask is not None:
            row["overlay"], row["overlay_kind"] = _data_uri(overlay(picture, result.mask)), "mask"
        elif self.explainer is not None and result.is_rust:
            heat = self.explainer.rust_heatmap(decoded, result.source)
            row["overlay"] = _data_uri(heat_overlay(picture, heat, result.rust_probability))
            row["overlay_kind"] = "grad-cam"
        self.rows.append(row)

    def summary(self) -> dict:
        done = [r for r in self.rows if r["error"] is None]
        grades = Counter(str(r["astm_d610"]) for r in done if r.get("astm_d610") is not None)
        note = ("Overlays: Grad-CAM heat for the photos called rust (where the classifier sees rust)."
                if self.explainer is not None else "")
        if any(r["overlay_kind"] == "mask" for r in done):
            note = "Overlays: the segmentation mask (magenta, outlined). Grades from the rusted share of each photo."
        return {"model": self.model_line, "created": time.strftime("%Y-%m-%d %H:%M"), "photos": len(self.rows),
                "counts": dict(Counter(r["label"] for r in done)), "unreadable": len(self.rows) - len(done),
                "grades": {"astm_d610": dict(grades)} if grades else {}, "note": note}

    def write(self) -> Path:
        from rustlab.inference.report_page import write_report

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return write_report(self.path, self.rows, title=f"rustlab report: {len(self.rows)} photos",
                                summary=self.summary())
        except OSError as exc:
            raise RustlabError(f"--report {self.path}: cannot write ({exc.strerror or exc})") from None
