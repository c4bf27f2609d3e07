"""The audit's review page: a self-contained HTML file, checked in a real headless Chromium."""

from __future__ import annotations

import csv
import html
import io
import json
import re

import numpy as np
import pytest
from chromium import dump_dom, find_chromium, screenshot
from PIL import Image

from rustlab.audit.page import write_page

CLASSES = ["no_rust", "rust"]
TRICKY = 'rust/bridge, "north" pier – rouillé <&> ü.jpg'
needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="chromium is not installed (apt-get install chromium)")


def _thumb(folder, i: int) -> str:
    """A small synthetic thumbnail: a colour gradient, different per row."""
    y, x = np.mgrid[0:96, 0:128]
    base = np.array([(i * 70) % 256, (40 + i * 110) % 256, (200 - i * 25) % 256], dtype=float)
    img = np.clip(base[None, None, :] * 0.5 + np.stack([x * 2, y * 2, (x + y)], axis=-1) * 0.5, 0, 255).astype(np.uint8)
    name = f"thumbs/{i:06d}.jpg"
    Image.fromarray(img).save(folder / name, quality=85)
    return name


def _rows(folder) -> list[dict]:
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    files = [("corrosion-cls", "rust/img_001.jpg", "rust", 0.02, "label", ""),
             ("corrosion-cls", "no_rust/img_017.jpg", "no_rust", 0.97, "label", ""),
             ("bridges", TRICKY, "rust", 0.08, "label", "red paint?"),
             ("corrosion-seg", "masks/pipe_03.png", "rust", 0.91, "mask",
              "mask IoU 0.05 with the model's confident rust cells"),
             ("corrosion-seg", "masks/pipe_09.png", "rust", 0.12, "mask", "mask empty"),
             ("corrosion-cls", "no_rust/img_044.jpg", "no_rust", 0.55, "label", ""),
             ("bridges", "deck/ok_12.jpg", "no_rust", 0.30, "label", ""),
             ("corrosion-cls", "rust/img_090.jpg", "rust", 0.85, "label", "")]
    rows = []
    for i, (source, file, given, p, kind, note) in enumerate(files, start=1):
        score = p if given == "rust" else 1 - p
        rows.append({"source": source, "file": file, "given_label": given, "rust_probability": p, "score": score,
                     "rank": i, "flagged": score < 0.2 or kind == "mask", "thumb": _thumb(folder, i), "kind": kind,
                     "note": note})
    return rows


@pytest.fixture
def page(tmp_path):
    rows = _rows(tmp_path)
    return write_page(tmp_path / "audit.html", rows, title="rustlab audit: test <data>", class_names=CLASSES), rows


def test_page_is_self_contained_and_escaped(page):
    path, rows = page
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    assert "rustlab audit: test &lt;data&gt;" in text and "test <data>" not in text.split("<script")[0]
    assert not re.search(r"https?://", text), "the page must not load anything from the network"
    data = re.search(r'<script type="application/json" id="audit-data">(.*?)</script>', text, re.S).group(1)
    assert "</" not in data

    embedded = json.loads(data)
    assert [r["file"] for r in embedded["rows"]] == [r["file"] for r in rows]
    assert embedded["rows"][2]["file"] == TRICKY


@needs_chromium
def test_screenshot_is_not_blank(page, tmp_path):
    path, _ = page
    png = screenshot(path, tmp_path / "shot.png", width=1000, height=700)
    img = Image.open(png).convert("RGB")
    assert img.size == (1000, 700)
    pixels = np.asarray(img, dtype=float)
    assert pixels.std() > 20, "the screenshot looks blank"
    colours = {tuple(c) for c in pixels[::7, ::7].reshape(-1, 3).astype(int)}
    assert len(colours) > 50, f"only {len(colours)} distinct colours: thumbnails or cards did not render"


def _preview(dom: str) -> list[dict]:
    match = re.search(r'<pre id="corrections-preview">(.*?)</pre>', dom, re.S)
    assert match, "no #corrections-preview in the rendered DOM"
    return list(csv.DictReader(io.StringIO(html.unescape(match.group(1)), newline="")))


@needs_chromium
def test_marks_from_hash_make_the_corrections(page):
    path, rows = page
    dom = dump_dom(path.resolve().as_uri() + "#marks=1:exclude,2:relabel,3:keep")
    got = _preview(dom)
    assert got == [
        {"source": "corrosion-cls", "file": "rust/img_001.jpg", "label": "exclude", "reason": "audit: exclude"},
        {"source": "corrosion-cls", "file": "no_rust/img_017.jpg", "label": "rust", "reason": "audit: relabel"}]
    # the tricky name round-trips: exclude it (and relabel a mask row, which the page must refuse)
    dom = dump_dom(path.resolve().as_uri() + "#marks=3:exclude,4:relabel,5:exclude")
    got = _preview(dom)
    assert [(r["source"], r["file"], r["label"]) for r in got] == [
        ("bridges", TRICKY, "exclude"), ("corrosion-seg", "masks/pipe_09.png", "exclude")]
    assert 'id="card-8"' in dom and 'id="card-4"' in dom


@needs_chromium
def test_five_thousand_cards_render(tmp_path):
    (tmp_path / "thumbs").mkdir()
    Image.new("RGB", (32, 32), (150, 80, 40)).save(tmp_path / "thumbs" / "t.jpg")
    rng = np.random.default_rng(0)
    rows = [{"source": f"src{i % 3}", "file": f"rust/img_{i:05d}.jpg", "given_label": CLASSES[i % 2],
             "rust_probability": float(rng.random()), "score": i / 5000, "rank": i + 1, "flagged": i < 500,
             "thumb": "thumbs/t.jpg", "kind": "label", "note": ""} for i in range(5000)]
    path = write_page(tmp_path / "big.html", rows, title="big audit", class_names=CLASSES)
    dom = dump_dom(path.resolve().as_uri() + "#marks=5000:relabel")
    assert 'id="n-photos">5000<' in dom
    assert 'id="card-5000"' in dom and 'data-rendered="all"' in dom
    assert _preview(dom) == [{"source": "src1", "file": "rust/img_04999.jpg", "label": "no_rust",
                              "reason": "audit: relabel"}]
