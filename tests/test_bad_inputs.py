"""Whatever a camera or a disk holds: odd-but-valid images decode to the right pixels, broken
ones are one-line errors naming the file, in the decoder, the Predictor, `predict`, `evaluate`
and `train` (which skips them, lists them and exits 3). The corpus is generated here."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from rustlab.data.images import load_square, open_rgb
from rustlab.errors import ImageError

# --- the corpus ------------------------------------------------------------------------------


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height with almost no pixel data: a decompression
    bomb's signature (a decoder that trusts the header allocates width * height * 3 bytes)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _upright() -> Image.Image:
    """Asymmetric 64 wide x 48 high: a red block in the top-left corner, blue elsewhere."""
    arr = np.zeros((48, 64, 3), np.uint8)
    arr[...] = (20, 40, 200)
    arr[:16, :16] = (230, 30, 30)
    return Image.fromarray(arr)


def _exif_rotated_jpeg() -> bytes:
    """The upright image stored as a phone does: pixels rotated, EXIF orientation 6 ("rotate 90
    clockwise to display")."""
    stored = _upright().transpose(Image.Transpose.ROTATE_90)  # 90 counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(stored, "JPEG", quality=95, exif=exif)


def _half(value_left, value_right, mode, shape=(16, 16), dtype=np.uint8):
    arr = np.zeros(shape, dtype)
    arr[:, : shape[1] // 2] = value_left
    arr[:, shape[1] // 2:] = value_right
    return Image.fromarray(arr) if mode is None else Image.fromarray(arr, mode=mode)


def _palette_transparent() -> Image.Image:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([230, 30, 30, 0, 200, 0] + [0] * 762)  # index 0 red, 1 green
    img.paste(1, (0, 8, 16, 16))  # bottom half green, which is the transparent index
    img.info["transparency"] = 1
    return img


def _rgba() -> Image.Image:
    arr = np.zeros((16, 16, 4), np.uint8)
    arr[..., 2] = 255
    arr[:, :8, 3] = 255  # left opaque blue, right fully transparent
    return Image.fromarray(arr, mode="RGBA")


def _animated_gif() -> bytes:
    red, blue = Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))
    return _save(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)


def _noise_image(seed=0, size=64) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _gray16() -> Image.Image:
    img = _half(0, 65535, None, dtype=np.uint16)
    assert img.mode.startswith("I;16")
    return img


# name -> (bytes, check of the decoded RGB array)
GOOD = {
    "gray.png": (lambda: _save(Image.new("L", (16, 16), 100), "PNG"),
                 lambda a: (a == 100).all()),
    "gray16.png": (lambda: _save(_gray16(), "PNG"),
                   lambda a: (a[:, :8] == 0).all() and (a[:, 8:] == 255).all()),
    "bilevel.png": (lambda: _save(_half(255, 0, None).convert("1"), "PNG"),
                    lambda a: (a[:, :8] == 255).all() and (a[:, 8:] == 0).all()),
    "palette_transparent.png": (lambda: _save(_palette_transparent(), "PNG"),
                                lambda a: (a[:8] == (230, 30, 30)).all() and (a[8:] == 255).all()),
    "rgba.png": (lambda: _save(_rgba(), "PNG"),
                 lambda a: (a[:, :8] == (0, 0, 255)).all() and (a[:, 8:] == 255).all()),
    "cmyk.jpg": (lambda: _save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95),
                 lambda a: np.abs(a.astype(int) - (255, 0, 0)).max() <= 16),
    "exif_rotated.jpg": (_exif_rotated_jpeg,
                         lambda a: a.shape == (48, 64, 3) and a[:12, :12, 0].mean() > 180
                         and a[-12:, -12:, 2].mean() > 150),
    "animated.gif": (_animated_gif, lambda a: (a == (255, 0, 0)).all()),  # the first frame
    "one_pixel.png": (lambda: _save(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"),
                      lambda a: a.shape == (1, 1, 3) and (a == (10, 200, 30)).all()),
    "wide.png": (lambda: _save(Image.new("RGB", (10000, 10), (50, 60, 70)), "PNG"),
                 lambda a: a.shape == (10, 10000, 3)),
}

# name -> (bytes or None for "do not create", reason the error must give)
BAD = {
    "empty.jpg": (lambda: b"", "empty file"),
    "truncated.jpg": (lambda: _save(_noise_image(), "JPEG")[:1500], "truncated"),
    "truncated.png": (lambda: _save(_noise_image(), "PNG")[:3000], "truncated"),
    "text.jpg": (lambda: b"this is a shopping list, not a photo\n", "not a readable image"),
    "random.jpg": (lambda: random.Random(0).randbytes(4096), "not a readable image"),
    "bomb.png": (lambda: _png_declaring(100_000, 100_000), "too large"),
    "bomb_121mp.png": (lambda: _png_declaring(11_000, 11_000), "too large"),  # under PIL's own guard
    "folder.jpg": (None, "is a folder"),
    "missing.jpg": (None, "no such file"),
}


def write_corpus(folder: Path, names=None) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (make, _) in {**GOOD, **BAD}.items():
        if names is not None and name not in names:
            continue
        path = folder / name
        if name == "folder.jpg":
            path.mkdir(exist_ok=True)
        elif make is not None:
            path.write_bytes(make())
        paths[name] = path
    return paths


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def predictor(cnn_checkpoint):
    from rustlab.inference.predictor import Predictor

    return Predictor(cnn_checkpoint, device="cpu")


# --- the decoder -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(GOOD))
def test_odd_but_valid_images_decode_to_the_right_pixels(name, corpus):
    img = open_rgb(corpus[name])
    assert img.mode == "RGB"
    assert GOOD[name][1](np.asarray(img)), f"{name}: wrong pixels"
    square = load_square(corpus[name], 24)
    assert square.shape == (24, 24, 3) and square.dtype == np.uint8


@pytest.mark.parametrize("name", sorted(BAD))
def test_broken_files_are_one_line_errors_naming_the_file(name, corpus):
    start = time.perf_counter()
    with pytest.raises(ImageError) as exc:
        open_rgb(corpus[name])
    assert time.perf_counter() - start < 2.0  # bombs are refused from the header, not decoded
    message = str(exc.value)
    assert "\n" not in message and message.startswith(str(corpus[name]))
    assert BAD[name][1] in exc.value.reason


def _raw(path) -> np.ndarray:
    """Pixels as stored, ignoring EXIF orientation."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((32, 32), Image.BILINEAR)).astype(int)


def test_exif_rotated_photo_is_predicted_upright(predictor, corpus, tmp_path):
    upright = tmp_path / "upright.png"
    _upright().save(upright)
    seen = predictor.preprocess(corpus["exif_rotated.jpg"])[0].permute(1, 2, 0).numpy().astype(int)
    reference = predictor.preprocess(upright)[0].permute(1, 2, 0).numpy().astype(int)
    stored = np.asarray(Image.fromarray(_raw(corpus["exif_rotated.jpg"]).astype(np.uint8))).astype(int)
    assert np.abs(seen - reference).mean() < 4  # the model sees the upright photo (JPEG noise only)
    # the red corner is where it belongs; ignoring EXIF would have put it at the bottom left
    assert seen[:8, :6, 0].mean() > 180 and seen[-8:, :6, 0].mean() < 60
    assert stored[:8, :6, 0].mean() < 60 and stored[-8:, :6, 0].mean() > 180
    a, b = predictor.predict(corpus["exif_rotated.jpg"]), predictor.predict(upright)
    assert a.image_size == b.image_size == (64, 48)
    assert a.rust_probability == pytest.approx(b.rust_probability, abs=0.02)


# --- the Predictor API and `rustlab predict` ------------------------------------------------------

def test_predictor_api_on_the_corpus(predictor, corpus):
    for name in GOOD:
        p = predictor.predict(corpus[name])
        assert p.label in predictor.class_names and 0.5 <= p.confidence <= 1 and np.isfinite(p.rust_probability)
        assert sum(p.probabilities.values()) == pytest.approx(1.0)
    for name in BAD:
        with pytest.raises(ImageError, match=name):
            predictor.predict(corpus[name])
    order = sorted(corpus)
    results = list(predictor.predict_many([corpus[n] for n in order], batch_size=3))
    assert [type(r).__name__ for r in results] == ["ImageError" if n in BAD else "Prediction" for n in order]
    assert [Path(r.path if isinstance(r, ImageError) else r.source).name for r in results] == order


def test_predict_cli_on_the_corpus(cnn_checkpoint, corpus, capsys):
    names = sorted(corpus)
    code, out, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, *[corpus[n] for n in names])
    assert code == 3  # partial: some inputs failed, the rest were predicted
    assert "Traceback" not in err
    lines = out.strip().splitlines()
    assert [Path(line.split()[-1]).name for line in lines] == [n for n in names if n in GOOD]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(BAD)
    for name in BAD:
        assert sum(str(corpus[name]) in line for line in errors) == 1, name
    assert f"{len(BAD)} of {len(names)} image(s) could not be read" in err

    code, out, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, corpus["text.jpg"], corpus["empty.jpg"])
    assert code == 1 and out == ""  # nothing could be read: an error, not a partial result


def test_unreadable_file_permission_denied(cnn_checkpoint, good_png, tmp_path, capsys):
    """A chmod 000 file. Root reads any file, so as root `rustlab predict` runs in a subprocess
    without the capabilities that let root ignore file modes (setpriv drops CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH): the kernel's real EACCES, not a simulation. Skipped only where setpriv
    is missing or the container may not drop capabilities."""
    locked = tmp_path / "locked.png"
    locked.write_bytes(good_png.read_bytes())
    locked.chmod(0)
    if os.geteuid() != 0:
        code, out, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, good_png, locked)
    else:
        if not shutil.which("setpriv"):
            pytest.skip("running as root and setpriv (util-linux) is missing: cannot make a file unreadable")
        proc = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m",
                               "rustlab", "predict", "-c", str(cnn_checkpoint), str(good_png), str(locked)],
                              capture_output=True, text=True, timeout=120)
        if "setpriv:" in proc.stderr:
            pytest.skip(f"cannot drop capabilities here: {proc.stderr.strip()}")
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    assert code == 3, err
    assert f"error: {locked}: permission denied" in err and "Traceback" not in err
    assert good_png.name in out


@pytest.fixture()
def good_png(tmp_path) -> Path:
    path = tmp_path / "good.png"
    path.write_bytes(GOOD["gray.png"][0]())
    return path


# --- `rustlab evaluate` and `rustlab train` on a data folder holding bad files -------------------

BAD_IN_DATA = ["empty.jpg", "truncated.jpg", "truncated.png", "text.jpg", "random.jpg", "bomb.png"]
ODD_IN_DATA = ["gray16.png", "palette_transparent.png", "rgba.png", "cmyk.jpg", "exif_rotated.jpg", "animated.gif",
               "one_pixel.png", "wide.png"]


@pytest.fixture(scope="module")
def dirty_folder(tmp_path_factory) -> Path:
    """rust/ and no_rust/ with 10 synthetic photos each, odd-but-valid images, broken files and a
    folder named like an image."""
    from rustlab.data.synthetic import render_sample

    root = tmp_path_factory.mktemp("dirty")
    for cls, has_rust in (("rust", True), ("no_rust", False)):
        for i in range(10):
            img, _ = render_sample(np.random.default_rng([5, i, has_rust]), 48, has_rust)
            (root / cls).mkdir(exist_ok=True)
            Image.fromarray(img).save(root / cls / f"{cls}_{i}.png")
    write_corpus(root / "rust", BAD_IN_DATA + ["folder.jpg"])
    write_corpus(root / "no_rust", ODD_IN_DATA)
    return root


def test_evaluate_skips_and_names_every_bad_file(cnn_checkpoint, dirty_folder, capsys):
    code, out, err = run_cli(capsys, "evaluate", "-c", cnn_checkpoint, "--data", dirty_folder, "--split", "all",
                             "--json")
    assert code == 3, err
    result = json.loads(out)
    assert result["n"] == 20 + len(ODD_IN_DATA)  # every readable image scored, odd ones included
    assert sorted(Path(s["file"]).name for s in result["skipped"]) == sorted(BAD_IN_DATA)
    for name in BAD_IN_DATA:
        assert sum(line.startswith("error: ") and line.split()[1].endswith(f"{name}:")
                   for line in err.splitlines()) == 1, name
    assert "Traceback" not in err


def test_train_skips_counts_and_reports_bad_files(dirty_folder, tmp_path, capsys):
    sets = [a for k, v in TINY["cnn"].items() for a in ("--set", f"{k}={json.dumps(v)}")]
    code, _, err = run_cli(capsys, "train", "--data", dirty_folder, "--epochs", "1", "--batch-size", "8",
                           "--device", "cpu", "--out", tmp_path, "--name", "dirty", *sets)
    assert code == 3, err  # partial: the run finished, some images were skipped
    assert "Traceback" not in err
    run_dir = tmp_path / "dirty"
    assert (run_dir / "best.safetensors").is_file() and (run_dir / "test_metrics.json").is_file()
    assert f"warning: skipped {len(BAD_IN_DATA)} unreadable image(s)" in err
    tail = err[err.index("warning: skipped"):]
    for name in BAD_IN_DATA:
        assert f"{name}: " in tail, name
    listed = (run_dir / "skipped.txt").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in listed) == sorted(BAD_IN_DATA)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["skipped"] == len(BAD_IN_DATA)
    assert sum(config["data"]["counts"].values()) == 20 + len(ODD_IN_DATA)


# --- property: the decoding boundary ----------------------------------------------------------

def _seeds() -> list[bytes]:
    small = _noise_image(1, 12)
    seeds = [_save(small, fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "ICO")]
    seeds += [_save(small.convert("L"), "PNG"), _save(small.convert("CMYK"), "JPEG"), _animated_gif(),
              _save(_gray16(), "PNG"), _save(_palette_transparent(), "PNG"), _exif_rotated_jpeg()]
    return seeds


def _mutate(data: bytes, edits, cut: int | None) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[:cut] if cut is not None else buf)


SEEDS = _seeds()
ANY_BYTES = st.one_of(
    st.binary(max_size=512),
    # valid files of every format PIL reads here, with bytes overwritten and tails cut off: these
    # reach deep into the decoders, where random bytes would stop at "not an image"
    st.builds(_mutate, st.sampled_from(SEEDS),
              st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=6),
              st.one_of(st.none(), st.integers(0, 4096))),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_BYTES)
def test_any_bytes_decode_to_rgb_or_raise_image_error(data):
    import rustlab.data.images as images

    original = images.MAX_PIXELS
    images.MAX_PIXELS = 4_000_000  # a mutated header may declare any size: keep each example small
    try:
        img = open_rgb(data, name="fuzz.bin")
    except ImageError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.bin: ")
        return
    finally:
        images.MAX_PIXELS = original
    assert img.mode == "RGB" and img.width >= 1 and img.height >= 1
    assert np.asarray(img).shape == (img.height, img.width, 3)
