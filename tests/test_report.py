"""`rustlab predict FOLDER --report report.html` (rustlab.inference.report): the rows the page gets
from real predictions, overlays where the model says where the rust is, grades from a segmenter."""

from __future__ import annotations

import shutil

import pytest

from conftest import run_cli, train_tiny


@pytest.fixture
def photos(sample_images, tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(sample_images, folder)
    (folder / "zz_broken.jpg").write_bytes(b"not a photo")
    return folder


def test_predict_writes_a_report_of_every_photo(cnn_checkpoint, photos, tmp_path, capsys):
    report = tmp_path / "out" / "report.html"
    code, out, err = run_cli(capsys, "predict", "-c", str(cnn_checkpoint), str(photos), "--report", str(report))
    assert code == 3  # the broken photo
    assert f"report: {report}" in err and report.is_file()
    page = report.read_text()
    assert "zz_broken.jpg" in page and "data:image/jpeg;base64," in page
    assert all(f"{name}_{i}.png" in page for name in ("rust", "clean") for i in (0, 1))
    assert "http://" not in page and "https://" not in page


def test_report_rows_carry_pictures_grad_cam_for_rust_calls_and_errors(cnn_checkpoint, photos):
    from rustlab.inference.pipeline import list_images
    from rustlab.inference.predictor import Predictor
    from rustlab.inference.report import ReportBuilder

    predictor = Predictor(cnn_checkpoint, device="cpu")
    builder = ReportBuilder(predictor, "unused.html")
    for result in predictor.predict_many(list_images([photos]), batch_size=4):
        builder.add(result)
    rows = {r["name"]: r for r in builder.rows}
    assert rows["zz_broken.jpg"]["error"] and rows["zz_broken.jpg"]["thumb"] is None
    done = [r for r in builder.rows if not r["error"]]
    assert all(r["thumb"].startswith("data:image/jpeg;base64,") for r in done)
    assert all((r["overlay_kind"] == "grad-cam") == bool(r["is_rust"]) for r in done)
    assert all(r["astm_d610"] is None for r in done)  # a classifier has no rusted share to grade
    summary = builder.summary()
    assert summary["unreadable"] == 1 and summary["photos"] == len(builder.rows) and summary["grades"] == {}


def test_a_segmenters_report_has_masks_and_grades(photos, tmp_path):
    from rustlab.inference.pipeline import list_images
    from rustlab.inference.predictor import Predictor
    from rustlab.inference.report import ReportBuilder

    run = train_tiny("unet", tmp_path, epochs=1)
    predictor = Predictor(run.run_dir / "best.safetensors", device="cpu")
    builder = ReportBuilder(predictor, "unused.html")
    for result in predictor.predict_many(list_images([photos]), batch_size=4):
        builder.add(result)
    done = [r for r in builder.rows if not r["error"]]
    assert all(r["overlay_kind"] == "mask" and r["overlay"] for r in done)
    assert all(isinstance(r["astm_d610"], int) and r["iso_4628_3"].startswith("Ri ") for r in done)
    assert sum(builder.summary()["grades"]["astm_d610"].values()) == len(done)


def test_report_refuses_what_it_cannot_show_whole(cnn_checkpoint, photos, tmp_path, capsys):
    code, _, err = run_cli(capsys, "predict", "-c", str(cnn_checkpoint), str(photos), "--report",
                           str(tmp_path / "r.txt"))
    assert code == 1 and "expected an .html file name" in err
    results = tmp_path / "r.csv"
    run_cli(capsys, "predict", "-c", str(cnn_checkpoint), str(photos), "--results", str(results))
    code, _, err = run_cli(capsys, "predict", "-c", str(cnn_checkpoint), str(photos), "--results", str(results),
                           "--resume", "--report", str(tmp_path / "r.html"))
    assert code == 1 and "--report and --resume" in err
