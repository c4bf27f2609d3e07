"""The report page of `rustlab predict --report` (rustlab.inference.report_page): a self-contained
HTML file, checked as text and in a real headless Chromium (skipped where none is installed).
The docs screenshot is of a real `rustlab predict --report` run (docs/predict.md says which)."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from chromium import dump_dom, find_chromium, screenshot
from PIL import Image, ImageFilter

from rustlab.inference.grade import grades
from rustlab.inference.overlay import overlay
from rustlab.inference.report_page import write_report

HOSTILE = "<img src=x onerror=alert(1)>.jpg"
TRICKY = 'bridge "north" pier – rouillé <&> ü.jpg'
needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="chromium is not installed (apt-get install chromium)")


def _uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _photo(seed: int, blotches: int, size: int) -> tuple[Image.Image, np.ndarray]:
    """A 160x120 steel plate: brushed grey, with ``blotches`` orange-brown rust patches; and its rust mask."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:120, 0:160].astype(float)
    streaks = np.repeat(rng.normal(0, 6, (120, 1)), 160, axis=1)  # brushed along x
    grey = 118 + 18 * np.sin(x / 23 + seed) + rng.normal(0, 6, (120, 160)) + streaks
    rgb = np.stack([grey, grey + 3, grey + 7], axis=-1)
    rust = np.zeros((120, 160), bool)
    for _ in range(blotches):
        cx, cy, r = rng.uniform(15, 145), rng.uniform(15, 105), rng.uniform(0.5, 1.0) * size
        wobble = 1 + 0.35 * np.sin(np.arctan2(y - cy, x - cx) * rng.integers(3, 7) + rng.uniform(0, 6))
        rust |= np.hypot(x - cx, (y - cy) * 1.3) < r * wobble
    shade = rng.normal(0, 14, (120, 160))
    rgb[rust] = np.stack([168 + shade, 82 + shade * 0.6, 34 + shade * 0.3], axis=-1)[rust]
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
    return image, rust


def _row(file: str, p: float, blotches: int = 0, size: int = 0, seed: int = 0, **extra) -> dict:
    """A segmenter's row as rustlab.inference.report.ReportBuilder makes it: mask overlay, grades."""
    image, rust = _photo(seed, blotches, size)
    area = float(rust.mean())
    row = {"file": file, "name": Path(file).name, "label": "rust" if p >= 0.5 else "no_rust", "is_rust": p >= 0.5,
           "confidence": max(p, 1 - p), "rust_probability": p, "rust_area": area, **grades(area), "error": None,
           "thumb": _uri(image), "overlay": _uri(overlay(image, rust.astype(np.float32))), "overlay_kind": "mask"}
    return {**row, **extra}


def _unreadable(file: str) -> dict:
    return {"file": file, "name": Path(file).name, "label": None, "is_rust": None, "confidence": None,
            "rust_probability": None, "rust_area": None, "astm_d610": None, "iso_4628_3": None,
            "error": "cannot identify image file (truncated JPEG?)", "thumb": None, "overlay": None,
            "overlay_kind": None}


def realistic_rows(hostile: bool = False) -> list[dict]:
    """Eight photos of a bridge inspection: rust from specks to most of the plate, clean steel, one broken file."""
    rows = [_row("site/bridge_07/girder_north_012.jpg", 0.98, 5, 22, seed=1),
            _row("site/bridge_07/girder_north_013.jpg", 0.81, 2, 9, seed=2),
            _row("site/bridge_07/deck_clean_004.jpg", 0.02, seed=3),
            _row("site/bridge_07/bearing_east_002.jpg", 0.996, 9, 30, seed=4),
            _row("site/bridge_07/rail_post_031.jpg", 0.58, 1, 4, seed=5),
            _unreadable("site/bridge_07/DSC_0091.jpg"),
            _row("site/bridge_07/deck_clean_009.jpg", 0.04, seed=6),
            _row("site/bridge_07/gusset_plate_017.jpg", 0.93, 3, 14, seed=7)]
    if hostile:
        rows += [_row(f"site/{HOSTILE}", 0.9, 4, 20, seed=8, confidence=float("nan"), rust_area=float("inf")),
                 _row(f"site/{TRICKY}", 0.7, 2, 12, seed=9)]
    return rows


def summary_of(rows: list[dict]) -> dict:
    done = [r for r in rows if r["error"] is None]
    counts, by_grade = {}, {}
    for r in done:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
        if r["astm_d610"] is not None:
            by_grade[str(r["astm_d610"])] = by_grade.get(str(r["astm_d610"]), 0) + 1
    return {"model": "unet-lite (segmenter, 256 px) · runs/bridges/best.safetensors", "created": "2025-06-03 14:20",
            "photos": len(rows), "counts": counts, "unreadable": len(rows) - len(done),
            "grades": {"astm_d610": by_grade} if by_grade else {},
            "note": "Overlays: the segmentation mask (magenta, outlined). Grades from the rusted share of each photo."}


def write_realistic(path, hostile: bool = False) -> tuple[Path, list[dict]]:
    rows = realistic_rows(hostile)
    return write_report(path, rows, title=f"rustlab report: {len(rows)} photos", summary=summary_of(rows)), rows


class _Cards(HTMLParser):
    """The cards of a dumped DOM: their attributes and text, their images, any element with an on* handler."""

    def __init__(self, dom: str):
        super().__init__(convert_charrefs=True)
        self.cards, self.images, self.handlers, self._in = [], [], [], False
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.handlers += [tag for k in attrs if k.startswith("on")]
        if tag == "img":
            self.images.append(attrs)
        if tag == "article":
            self.cards.append({**attrs, "text": ""})
            self._in = True

    def handle_endtag(self, tag):
        self._in = self._in and tag != "article"

    def handle_data(self, data):
        if self._in:
            self.cards[-1]["text"] += data


def _embedded(text: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)[1])


def test_page_is_self_contained_escaped_and_embeds_every_row(tmp_path):
    path, rows = write_realistic(tmp_path / "report.html", hostile=True)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    assert not re.search(r"https?://", text), "the page must not load anything from the network"
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?!data:)[a-z]+:""", text, re.I)
    assert HOSTILE not in text and "onerror=alert" not in text.split("<script")[0]
    assert "<title>rustlab report: 10 photos</title>" in text and 'id="n-photos">10<' in text
    embedded = _embedded(text)["rows"]
    assert [r["file"] for r in embedded] == [r["file"] for r in rows]
    assert embedded[8]["file"] == f"site/{HOSTILE}" and embedded[9]["name"] == TRICKY
    assert embedded[8]["confidence"] is None and embedded[8]["rust_area"] is None  # NaN, inf: shown as "-"
    assert all(r["thumb"] == e["thumb"] for r, e in zip(rows, embedded))


def test_hostile_labels_and_summary_are_escaped(tmp_path):
    row = {"file": "a.jpg", "label": "<b>rust</b>", "is_rust": True, "rust_probability": 0.9}
    summary = {"model": '<script>alert("m")</script>', "created": "now", "photos": 1, "counts": {"<b>rust</b>": 1},
               "unreadable": 0, "grades": {}, "note": "</p><img src=x onerror=alert(2)>"}
    text = write_report(tmp_path / "r.html", [row], title="<i>t</i>", summary=summary).read_text(encoding="utf-8")
    head = text.split('<script type="application/json"')[0]
    assert "<b>rust</b>" not in head and "&lt;b&gt;rust&lt;/b&gt;" in head
    assert "<script>alert" not in text and "<img src=x" not in text and "<i>t</i>" not in text
    assert 'id="grade-control" hidden' in text  # no grades: no grade filter


def test_bad_rows_raise(tmp_path):
    with pytest.raises(ValueError, match=r"row 1: missing 'file'"):
        write_report(tmp_path / "r.html", [{"file": "a.jpg"}, {"name": "b.jpg"}], title="t", summary={})
    with pytest.raises(ValueError, match="data:image/ URI"):
        write_report(tmp_path / "r.html", [{"file": "a.jpg", "thumb": "http://example.com/a.jpg"}],
                     title="t", summary={})
    with pytest.raises(ValueError, match="expected a dict"):
        write_report(tmp_path / "r.html", ["a.jpg"], title="t", summary={})
    assert not (tmp_path / "r.html").exists()


@needs_chromium
def test_screenshot_is_not_blank(tmp_path):
    path, _ = write_realistic(tmp_path / "report.html")
    png = screenshot(path, tmp_path / "shot.png", width=1280, height=900)
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=float)
    assert pixels.shape == (900, 1280, 3) and pixels.std() > 20, "the screenshot looks blank"
    colours = {tuple(c) for c in pixels[::5, ::5].reshape(-1, 3).astype(int)}
    assert len(colours) > 300, f"only {len(colours)} distinct colours: the photos did not render"
    rusty = (pixels[..., 0] > 140) & (pixels[..., 1] < 110) & (pixels[..., 2] < 70)
    assert rusty.sum() > 2000, "no rust-coloured photo pixels: the thumbnails are missing"


@needs_chromium
def test_filters_and_sort_preset_from_the_url(tmp_path):
    path, rows = write_realistic(tmp_path / "report.html", hostile=True)
    url = path.resolve().as_uri()
    cards = _Cards(dump_dom(url + "#label=rust&sort=name"))
    rust = sorted((r for r in rows if r["label"] == "rust"), key=lambda r: r["name"].lower())
    assert [c["data-file"] for c in cards.cards] == [r["file"] for r in rust]
    assert {c["data-label"] for c in cards.cards} == {"rust"} and not cards.handlers
    hostile = next(c for c in cards.cards if c["data-file"] == f"site/{HOSTILE}")
    assert HOSTILE in hostile["text"] and "confidence -" in hostile["text"] and "rust area -" in hostile["text"]

    cards = _Cards(dump_dom(url + "#label=unreadable"))
    assert [(c["data-file"], c["data-label"]) for c in cards.cards] == [("site/bridge_07/DSC_0091.jpg", "unreadable")]
    assert "truncated JPEG" in cards.cards[0]["text"]

    dom = dump_dom(url + "#grade=10&sort=rust-asc")
    clean = sorted((r for r in rows if r["astm_d610"] == 10), key=lambda r: r["rust_probability"])
    assert [c["data-file"] for c in _Cards(dom).cards] == [r["file"] for r in clean] and len(clean) == 2
    assert f'id="n-showing">{len(clean)}<' in dom and 'id="n-total">10<' in dom


@needs_chromium
def test_five_thousand_rows_render_lazily(tmp_path):
    thumb = _uri(Image.new("RGB", (32, 24), (150, 80, 40)))
    rng = np.random.default_rng(0)
    probs = rng.random(5000)
    rows = [{"file": f"rust/img_{i:05d}.jpg", "label": "rust" if p >= 0.5 else "no_rust", "is_rust": bool(p >= 0.5),
             "confidence": float(max(p, 1 - p)), "rust_probability": float(p), "thumb": thumb}
            for i, p in enumerate(probs)]
    summary = {"model": "cnn", "created": "now", "photos": 5000, "counts": {"rust": int((probs >= 0.5).sum()),
               "no_rust": int((probs < 0.5).sum())}, "unreadable": 0, "grades": {}, "note": ""}
    path = write_report(tmp_path / "big.html", rows, title="big", summary=summary)
    dom = dump_dom(path)
    page = _Cards(dom)
    assert 'id="n-photos">5000<' in dom and 'id="n-showing">5000<' in dom
    assert 0 < len(page.cards) <= 200, f"{len(page.cards)} cards in the DOM: not rendered lazily"
    top = [f"rust/img_{i:05d}.jpg" for i in np.argsort(-probs, kind="stable")[:len(page.cards)]]
    assert [c["data-file"] for c in page.cards] == top  # default: rust probability, high to low
    assert len(page.images) == len(page.cards)  # photos only in rendered cards, and decoded lazily
    assert all(i.get("loading") == "lazy" and i.get("decoding") == "async" for i in page.images)

    # a filter and a sort over all 5000 rows (the data, not the few rendered cards)
    dom = dump_dom(path.resolve().as_uri() + "#label=no_rust&sort=name")
    cards = _Cards(dom).cards
    clean = [f"rust/img_{i:05d}.jpg" for i in range(5000) if probs[i] < 0.5]
    assert f'id="n-showing">{len(clean)}<' in dom and 0 < len(cards) <= 200
    assert [c["data-file"] for c in cards] == clean[:len(cards)]

