"""`rustlab gui` on a real X server (Xvfb), Grad-CAM, and the GUI's plain-data parts.

Drops are delivered the way tkinterdnd2 receives them from the desktop: through tkdnd's own Tcl
handlers (enter, position, drop) with a ``text/uri-list`` payload, so the window gets the same
event data string (a Tcl list: paths with spaces in braces) as from a file manager.
``event_generate('<<Drop>>')`` would skip all of that and deliver no data.

Window tests need Xvfb (Debian: apt install xvfb) and tkinterdnd2, and skip cleanly without.
Regenerate the README screenshot with:
    python tests/test_gui.py --screenshot docs/gui.png --checkpoint runs/<run>/best.safetensors
"""

from __future__ import annotations

import csv
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

# --- helpers -----------------------------------------------------------------------------------


def _write_samples(folder: Path, names: dict, seed: int = 5, size: int = 160) -> dict:
    """{name: has_rust} -> {name: path}: synthetic photos from the builtin generator."""
    from rustlab.data.synthetic import render_sample

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (name, has_rust) in enumerate(names.items()):
        image, _ = render_sample(np.random.default_rng([seed, i, has_rust]), size, has_rust)
        out[name] = folder / name
        Image.fromarray(image).save(out[name])
    return out


def pump_until(app, condition, timeout: float = 10.0, what: str = "condition"):
    """Run the Tk event loop until ``condition()`` holds; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.root.update()
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; status: {app.status.cget('text')!r}")


def drop(app, paths, widget=None):
    """Drop ``paths`` on ``widget`` the way the desktop does, through tkdnd's XDND handlers."""
    widget = widget or app.detail.canvas
    tk = app.root.tk
    app.root.update()
    tk.call("tkdnd::generic::SetDroppedData", tuple(str(p) for p in paths))
    assert tk.call("tkdnd::generic::HandleEnter", str(widget), 0, ("text/uri-list",), ("0",), ("copy",), ())
    x, y = widget.winfo_rootx() + 20, widget.winfo_rooty() + 20
    assert str(tk.call("tkdnd::generic::HandlePosition", str(widget), 0, (), x, y)) == "copy"
    assert str(tk.call("tkdnd::generic::HandleDrop", str(widget), 0, (), x, y, 0)) == "copy"


def settled(app) -> bool:
    return not app.busy and not any(r.status == "queued" for r in app.session.rows.values())


def rows_shown(app) -> list[dict]:
    return [app.results.shown(i) for i in app.results.order]


# --- the X server and the window ---------------------------------------------------------------


@pytest.fixture(scope="session")
def xdisplay():
    """A private Xvfb; Xvfb picks a free display number itself (-displayfd)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian/Ubuntu: apt install xvfb)")
    pytest.importorskip("tkinter")
    pytest.importorskip("tkinterdnd2")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x860x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    # Xvfb writes the number, then a newline, once it accepts connections; read both: closing
    # the pipe before the newline is written kills Xvfb ("Cannot write display number")
    number, deadline = b"", time.monotonic() + 10
    while not number.endswith(b"\n") and select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        chunk = os.read(read_fd, 32)
        if not chunk:
            break
        number += chunk
    os.close(read_fd)
    number = number.strip()
    if not number:
        proc.kill()
        pytest.skip("Xvfb did not start within 10 s")
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number.decode()}"
    yield os.environ["DISPLAY"]
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    proc.terminate()
    proc.wait(5)


def open_app(checkpoint, wait_model: bool = True):
    from rustlab.gui import create_root
    from rustlab.gui.app import App

    root = create_root()
    root.geometry("1200x720+0+0")
    app = App(root, checkpoint, device="cpu")
    if wait_model and checkpoint is not None:
        pump_until(app, lambda: app.model is not None or not app.loading, 30, "the model to load")
        assert app.model is not None, app.status.cget("text")
    return app


@pytest.fixture
def app(xdisplay, cnn_checkpoint):
    app = open_app(cnn_checkpoint)
    yield app
    app.close()


# --- window tests ------------------------------------------------------------------------------


@pytest.mark.gui
def test_drop_rust_and_no_rust_shows_what_the_predictor_says(app, cnn_checkpoint, tmp_path):
    from rustlab.gui.results import format_confidence
    from rustlab.inference.predictor import Predictor

    files = _write_samples(tmp_path / "shop floor photos" / "Überprüfung", {"rust 01.png": True, "no rust.png": False})
    seen = []
    original = app._on_drop
    app._on_drop = lambda event: (seen.append(event.data), original(event))[1]
    app.root.dnd_bind("<<Drop>>", app._on_drop)

    assert "cnn" in app.root.title() and cnn_checkpoint.name in app.root.title()
    drop(app, files.values())
    # tkdnd delivered its Tcl list string: paths with spaces arrive in braces
    assert seen and seen[0].startswith("{") and str(files["rust 01.png"]) in seen[0]
    pump_until(app, lambda: app.session.count("done") == 2, 15, "2 results")

    expected = {str(p): Predictor(cnn_checkpoint, device="cpu").predict(p) for p in files.values()}
    assert len(app.results.order) == 2
    for row_id in app.results.order:
        row, shown = app.session.rows[row_id], app.results.shown(row_id)
        want = expected[row.source]
        assert shown["name"] == Path(row.source).name
        assert shown["label"] == want.label.replace("_", " ")
        assert shown["conf"] == format_confidence(want.confidence)
        assert abs(shown["bar"] - want.confidence) < 0.02
        assert re.fullmatch(r"\d+ ms|\d+\.\d\d s", shown["time"])
    # the detail panel follows the newest result: big verdict, confidence, Grad-CAM on by default
    last = app.session.rows[app.results.order[-1]]
    assert app.detail.verdict.cget("text") == last.label.replace("_", " ").upper()
    assert app.detail.confidence.cget("text") == f"Confidence {format_confidence(last.confidence)}"
    assert app.detail.overlay_shown and "Grad-CAM" in app.detail.caption.cget("text")
    assert "2 result(s), 0 unreadable" in app.status.cget("text")
    assert str(app.stop_button.cget("state")) == "disabled"

    shot = screenshot(app, tmp_path / "gui.png")
    assert len(shot.getcolors(1 << 20) or []) > 500  # a drawn window, not a blank frame


@pytest.mark.gui
def test_folder_drop_with_unreadable_files_shows_error_rows_and_exports_csv(app, tmp_path):
    folder = tmp_path / "scans 2024"
    good = _write_samples(folder / "ñandú", {"a.png": True, "b.png": False})
    (folder / "notes.jpg").write_text("not an image, just text\n")
    jpeg = folder / "cut off.jpg"
    Image.open(good["a.png"]).save(jpeg, quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 3])
    (folder / "empty.png").write_bytes(b"")
    stray = tmp_path / "readme.txt"  # dropped on its own: not skipped by extension, reported
    stray.write_text("hello")

    drop(app, [folder, stray])
    pump_until(app, lambda: settled(app) and len(app.session) == 6, 15, "6 rows")

    by_name = {Path(r.source).name: (r, app.results.shown(r.id)) for r in app.session.rows.values()}
    assert sorted(by_name) == ["a.png", "b.png", "cut off.jpg", "empty.png", "notes.jpg", "readme.txt"]
    reasons = {"cut off.jpg": "truncated", "empty.png": "empty file (0 bytes)", "notes.jpg": "not a readable image",
               "readme.txt": "not a readable image"}
    for name, reason in reasons.items():
        row, shown = by_name[name]
        assert row.status == "error" and shown["label"] == "cannot read"
        assert reason in shown["detail"], shown
        assert "conf" not in shown and "bar" not in shown
    for name in ("a.png", "b.png"):
        assert by_name[name][0].status == "done" and by_name[name][1]["conf"].endswith(" %")
    assert "2 result(s), 4 unreadable" in app.status.cget("text")

    out = tmp_path / "export.csv"
    assert app.export_csv(out) == 6
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = {Path(r["file"]).name: r for r in csv.DictReader(fh)}
    assert rows["a.png"]["label"] in ("rust", "no_rust") and 0.5 <= float(rows["a.png"]["confidence"]) <= 1
    assert rows["a.png"]["error"] == "" and "ñandú" in rows["a.png"]["file"]
    assert rows["empty.png"]["status"] == "error" and rows["empty.png"]["error"] == "empty file (0 bytes)"


@pytest.mark.gui
def test_open_shortcut_overlay_toggle_and_model_switch(app, cnn_checkpoint, tmp_path, monkeypatch):
    from rustlab.gui import app as app_module

    files = _write_samples(tmp_path / "pics", {"r.png": True})
    asked = []
    monkeypatch.setattr(app_module.filedialog, "askopenfilenames",
                        lambda **kw: (asked.append(kw), (str(files["r.png"]),))[1])
    app.root.focus_force()
    app.root.update()
    app.root.event_generate("<Control-o>", when="tail")
    pump_until(app, lambda: app.session.count("done") == 1, 10, "the opened file")
    assert asked and asked[0]["title"] == "Open images"

    # Ctrl+G: overlay off shows the plain photo, on again shows the Grad-CAM colours
    row = app.session.rows[app.results.order[0]]
    assert row.heat is not None and row.heat.shape == (32, 32)
    assert app.detail.overlay_shown
    app.root.event_generate("<Control-g>", when="tail")
    pump_until(app, lambda: not app.show_overlay.get(), 3, "overlay off")
    assert not app.detail.overlay_shown and "Overlay off" in app.detail.caption.cget("text")
    app.overlay_check.invoke()
    assert app.show_overlay.get() and app.detail.overlay_shown

    # a broken checkpoint keeps the loaded model; a good one in another run replaces it
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 64)
    before = app.root.title()
    app.load_checkpoint(bad)
    pump_until(app, lambda: app.loading is None, 10, "the failed load")
    assert app.root.title() == before
    assert "Could not load the model" in app.status.cget("text") and "Still using" in app.status.cget("text")
    other = tmp_path / "other run" / "best.safetensors"
    other.parent.mkdir()
    shutil.copy(cnn_checkpoint, other)
    app.load_checkpoint(other)
    pump_until(app, lambda: app.loading is None, 10, "the second model")
    assert "other run" in app.root.title()
    assert app.model_label.cget("text").startswith("Model: cnn · classification · 32 px")


@pytest.mark.gui
def test_drops_before_any_model_wait_for_one(xdisplay, cnn_checkpoint, tmp_path):
    files = _write_samples(tmp_path, {"r.png": True})
    app = open_app(None)
    try:
        assert app.root.title() == "rustlab — no model loaded"
        drop(app, files.values())
        app.root.update()
        assert len(app.session) == 0 and "1 item(s) wait for a model" in app.status.cget("text")
        app.load_checkpoint(cnn_checkpoint)
        pump_until(app, lambda: app.session.count("done") == 1, 15, "the held file")
    finally:
        app.close()


@pytest.mark.gui
def test_200_files_and_a_20_megapixel_photo_keep_the_window_responsive(app, tmp_path):
    folder = tmp_path / "batch"
    src = _write_samples(tmp_path / "src", {"r.png": True, "c.png": False}, size=96)
    folder.mkdir()
    for i in range(200):
        os.link(src["r.png" if i % 2 else "c.png"], folder / f"img_{i:03d}.png")
    big = tmp_path / "big camera photo.jpg"
    Image.open(src["r.png"]).resize((5472, 3648), Image.BILINEAR).save(big, quality=80)

    drop(app, [big, folder])
    statuses, longest, progress = set(), 0.0, []
    end = time.monotonic() + 40
    while not (settled(app) and len(app.session) == 201):
        assert time.monotonic() < end, f"not finished: {app.session.count('done')} done"
        t0 = time.perf_counter()
        app.root.update()
        longest = max(longest, time.perf_counter() - t0)
        statuses.add(app.status.cget("text"))
        progress.append(float(app.progress.cget("value")))
        time.sleep(0.005)
    # the UI thread never blocked long: the work ran on the worker thread
    assert longest < 0.3, f"an event-loop turn took {longest:.3f} s"
    assert any(re.fullmatch(r"Predicting: \d+ of 201 done…", s) for s in statuses), statuses
    assert any(0 < p < 100 for p in progress)
    assert app.session.count("done") == 201 and len(app.results.order) == 201
    big_row = next(r for r in app.session.rows.values() if r.source == str(big))
    from rustlab.gui import render

    assert big_row.image_size == (5472, 3648)  # the file's size, not the reduced JPEG decode
    assert isinstance(big_row.preview, bytes) and max(render.unpack(big_row.preview).size) == render.PREVIEW


@pytest.mark.gui
def test_stop_skips_queued_files(app, tmp_path):
    src = _write_samples(tmp_path / "src", {"r.png": True}, size=96)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(150):
        os.link(src["r.png"], folder / f"{i:03d}.png")
    drop(app, [folder])
    pump_until(app, lambda: app.session.count("done") >= 1, 10, "the first result")
    # a second drop is listed at once, ahead of the queued files (they are predicted in order)
    drop(app, [src["r.png"]])
    pump_until(app, lambda: len(app.session) == 151, 5, "the second drop's row")
    assert app.session.count("queued") > 0  # listed before the first drop finished
    app.stop_button.invoke()
    pump_until(app, lambda: settled(app), 5, "the stop")
    time.sleep(0.2)  # a file in flight when Stop was pressed may still land
    app.root.update()
    done, cancelled = app.session.count("done"), app.session.count("cancelled")
    assert done + cancelled == 151 and cancelled > 0
    assert sum(s.get("label") == "cancelled" for s in rows_shown(app)) == cancelled
    assert str(app.stop_button.cget("state")) == "disabled"


@pytest.fixture(scope="module")
def unet_checkpoint(tmp_path_factory):
    """A tiny UNet, one epoch: enough for a segmentation checkpoint's masks and areas."""
    from conftest import train_tiny

    return train_tiny("unet", tmp_path_factory.mktemp("unet-run"), epochs=1).run_dir / "best.safetensors"


@pytest.mark.gui
def test_segmentation_checkpoint_shows_mask_and_rust_area(xdisplay, unet_checkpoint, tmp_path):
    from rustlab.gui.results import format_confidence, format_percent
    from rustlab.inference.predictor import Predictor

    files = _write_samples(tmp_path, {"rust.png": True, "clean.png": False})
    app = open_app(unet_checkpoint)
    try:
        assert "segmentation" in app.model_label.cget("text") and "iou" in app.model_label.cget("text")
        drop(app, files.values())
        pump_until(app, lambda: settled(app) and app.session.count("done") == 2, 15, "2 results")
        predictor = Predictor(unet_checkpoint, device="cpu")
        for row_id in app.results.order:
            row, shown = app.session.rows[row_id], app.results.shown(row_id)
            want = predictor.predict(row.source)
            assert shown["area"] == f"area {format_percent(want.rust_area)}"
            assert shown["conf"] == format_confidence(want.confidence)
            assert row.mask.shape == (32, 32) and row.heat is None
        assert app.detail.overlay_shown and "Rust area" in app.detail.caption.cget("text")
        assert str(app.overlay_check.cget("state")) == "normal"
    finally:
        app.close()


def test_overlays_colour_only_where_the_model_points():
    from rustlab.gui import render

    photo = Image.new("RGB", (300, 200), (120, 120, 125))
    mask = np.zeros((32, 32), np.float32)
    mask[:, :16] = 0.9  # left half
    out = np.asarray(render.mask_overlay(photo, mask))
    assert abs(int(out[100, 50, 0]) - int(out[100, 50, 1])) > 60  # tinted
    assert tuple(out[100, 250]) == (120, 120, 125)  # untouched
    heat = np.zeros((32, 32), np.float32)
    heat[:16, :] = 1.0  # top half
    hot = np.asarray(render.heat_overlay(photo, heat, strength=1.0))
    assert tuple(hot[180, 150]) == (120, 120, 125) and tuple(hot[20, 150]) != (120, 120, 125)
    # a model sure there is no rust leaves the photo as it is, though the map peaks at 1
    assert np.array_equal(np.asarray(render.heat_overlay(photo, heat, strength=0.0)), np.asarray(photo))


def test_numbers_are_formatted_without_overstating():
    from rustlab.gui.results import format_confidence, format_label, format_seconds

    assert format_confidence(0.93149) == "93.1 %" and format_confidence(0.5) == "50.0 %"
    assert format_confidence(0.99971) == "> 99.9 %"  # not "100.0 %": the model was not certain
    assert format_confidence(1.0) == "100.0 %" and format_confidence(None) == ""
    assert format_seconds(0.0123) == "12 ms" and format_seconds(1.5) == "1.50 s"
    assert format_label("no_rust") == "no rust"


# --- without a display, Tk or tkinterdnd2 ------------------------------------------------------


def test_gui_without_tkinterdnd2_says_what_to_install(capsys, monkeypatch, cnn_checkpoint):
    monkeypatch.setitem(sys.modules, "tkinterdnd2", None)  # import fails as if not installed
    code, out, err = run_cli(capsys, "gui", "--checkpoint", cnn_checkpoint)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error:") and "pip install 'rustlab[gui]'" in err


def test_gui_without_tk_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tkinter", None)
    code, out, err = run_cli(capsys, "gui")
    assert code == 1 and err.count("\n") == 1 and "python3-tk" in err


def test_gui_without_display_is_one_line(capsys, monkeypatch, cnn_checkpoint):
    pytest.importorskip("tkinter")
    pytest.importorskip("tkinterdnd2")
    if not sys.platform.startswith("linux"):
        pytest.skip("DISPLAY only matters on X11")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, out, err = run_cli(capsys, "gui", "--checkpoint", cnn_checkpoint)
    assert code == 1 and err.count("\n") == 1 and "no display" in err and "Xvfb" in err


def test_gui_bad_checkpoint_fails_before_any_window(capsys, tmp_path):
    code, out, err = run_cli(capsys, "gui", "--checkpoint", tmp_path / "nope.safetensors")
    if "tkinter" in err or "tkinterdnd2" in err:
        pytest.skip("GUI dependencies missing")
    assert code == 1 and err.count("\n") == 1 and "no such checkpoint" in err


def test_newest_checkpoint_is_picked(tmp_path):
    from rustlab.gui import newest_checkpoint

    assert newest_checkpoint(tmp_path / "runs") is None
    for i, name in enumerate(["old", "new", "middle"]):
        p = tmp_path / "runs" / name / "best.safetensors"
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
        os.utime(p, (1_000_000 + [0, 200, 100][i],) * 2)
    (tmp_path / "runs" / "new" / "last.safetensors").write_bytes(b"x")
    assert newest_checkpoint(tmp_path / "runs").parent.name == "new"


def test_the_rest_of_rustlab_never_imports_tk():
    code = ("import sys; from rustlab.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "import rustlab.gui, rustlab.gui.results, rustlab.gui.render\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tkinter', '_tkinter', 'tkinterdnd2', "
            "'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- Grad-CAM ----------------------------------------------------------------------------------


def test_gradcam_points_at_the_evidence_and_only_for_its_class():
    """A model whose answer is known: one 1x1 conv summing the channels, global average pool,
    class 1 = "bright", class 0 = "dark". The bright patch is the only evidence for class 1."""
    import torch
    from torch import nn

    from rustlab.inference.explain import GradCAM

    conv = nn.Conv2d(3, 1, 1)
    model = nn.Sequential(conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
    with torch.no_grad():
        conv.weight.fill_(1 / 3)
        conv.bias.zero_()
        model[-1].weight.copy_(torch.tensor([[-1.0], [1.0]]))
        model[-1].bias.zero_()
    x = torch.zeros(2, 3, 16, 16)
    x[0, :, 2:6, 9:13] = 1.0  # image 0: a bright patch top right
    x[1, :, 10:14, 1:5] = 1.0  # image 1: bottom left
    cam = GradCAM(model)
    heat = cam(x, 1)
    assert heat.shape == (2, 16, 16) and float(heat.max()) == pytest.approx(1.0)
    assert heat[0, 2:6, 9:13].mean() > 0.9 and heat[0, 10:14, 1:5].max() < 0.1
    assert heat[1, 10:14, 1:5].mean() > 0.9 and heat[1, 2:6, 9:13].max() < 0.1
    assert float(cam(x, 0).max()) == 0.0  # nothing speaks for "dark": an empty map, not noise
    assert model[1].inplace  # the caller's model is untouched (the copy turned in-place off)


def test_gradcam_hooks_the_last_conv_and_refuses_models_without_one():
    from torch import nn

    from rustlab.inference.explain import ExplainError, GradCAM, last_conv

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten())
    assert last_conv(model) == "2"
    with pytest.raises(ExplainError, match="no Conv2d"):
        GradCAM(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)))


def test_gradcam_on_the_tiny_cnn_matches_predictions(cnn_checkpoint, sample_images):
    import torch

    from rustlab.inference.explain import Explainer
    from rustlab.inference.predictor import Predictor

    predictor = Predictor(cnn_checkpoint, device="cpu")
    before = {k: v.clone() for k, v in predictor.model.state_dict().items()}
    files = sorted(sample_images.glob("*.png"))
    first = [predictor.predict(f).confidence for f in files]
    explainer = Explainer(predictor)
    for f in files:
        heat = explainer.rust_heatmap(f)
        assert heat.shape == (32, 32) and heat.dtype == np.float32
        assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
        np.testing.assert_array_equal(heat, explainer.rust_heatmap(f))  # deterministic
    # explaining changed nothing about predicting
    assert [predictor.predict(f).confidence for f in files] == first
    assert all(torch.equal(before[k], v) for k, v in predictor.model.state_dict().items())


# --- screenshots ---------------------------------------------------------------------------------


def screenshot(app, path: Path) -> Image.Image:
    from PIL import ImageGrab

    app.root.update()
    root = app.root
    # the window sits at +0+0 without a window manager; its menu bar is above winfo_rooty
    box = (0, 0, root.winfo_rootx() + root.winfo_width(), root.winfo_rooty() + root.winfo_height())
    image = ImageGrab.grab(bbox=box, xdisplay=os.environ["DISPLAY"])
    image.save(path)
    return image


def _make_readme_screenshot(out: str, checkpoint: str):
    """Drop a rust and a no-rust image written by `rustlab samples` (synthetic: the real photos
    may not be redistributed) on the window and save what it shows."""
    import tempfile

    from rustlab.cli import samples_cmd

    folder = Path(tempfile.gettempdir()) / "rustlab demo" / "inspection photos"  # a readable path in the shot
    shutil.rmtree(folder.parent, ignore_errors=True)
    try:
        samples_cmd.main([str(folder), "--count", "2"], standalone_mode=False)
        app = open_app(checkpoint)
        drop(app, [folder / "no_rust_01.png", folder / "rust_00.png"])
        pump_until(app, lambda: settled(app) and len(app.session) == 2, 30, "2 results")
        screenshot(app, Path(out))
        for r in app.session.rows.values():
            print(f"{Path(r.source).name}: {r.label} {r.confidence:.3f}")
        app.close()
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Save the README screenshot of `rustlab gui` (needs a DISPLAY).")
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--checkpoint", required=True)
    args = parser.parse_args()
    _make_readme_screenshot(args.screenshot, args.checkpoint)
