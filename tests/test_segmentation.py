"""Segmentation: the task (loss, metrics, calibration, interpret), joint transforms, the unet
plugin through the one trainer, `rustlab evaluate` / `predict --out`, and the overlay helper."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli, train_tiny
from PIL import Image

from rustlab.tasks.segmentation import DEFAULT_AREA_THRESHOLD, SegmentationTask
from rustlab.tasks.segmentation_metrics import (
    SegmentationMeter,
    fit_area_calibration,
    rust_probability,
    segmentation_loss,
    soft_dice_loss,
)

BIG = 30.0  # a logit whose sigmoid is 1 or 0 to float32 precision


def logits_from(mask) -> torch.Tensor:
    m = torch.as_tensor(mask, dtype=torch.float32)
    return (m * 2 - 1) * BIG


# ---------------------------------------------------------------- registry


def test_unet_registered_as_segmentation():
    from rustlab.registry import create_model, get_model_spec, get_task

    spec = get_model_spec("unet")
    assert spec.task == "segmentation" and spec.source == "rustlab_unet"
    task = get_task("segmentation")
    assert (task.target, task.monitor) == ("mask", "iou")
    model = create_model("unet", base_width=4, depth=2)
    assert model(torch.zeros(1, 3, 33, 21)).shape == (1, 1, 33, 21)


# ---------------------------------------------------------------- loss


def test_loss_near_zero_when_perfect_and_large_when_inverted():
    target = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    target[0, 0, 2:6, 2:6] = 1
    perfect = segmentation_loss(logits_from(target), target)
    inverted = segmentation_loss(logits_from(1 - target), target)
    assert perfect < 0.02
    assert inverted > 10  # BCE of a confident miss (~30) plus Dice ~1


def test_soft_dice_hand_computed():
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :] = 1  # 8 rust pixels of 16
    logits = torch.zeros(1, 1, 4, 4)  # p = 0.5 everywhere
    # dice = (2 * 0.5 * 8 + 1) / (0.5 * 16 + 8 + 1) = 9 / 17
    assert float(soft_dice_loss(logits, target)) == pytest.approx(1 - 9 / 17)
    # with smooth=1 an empty target and an all-background prediction give no loss
    assert float(soft_dice_loss(torch.full((1, 1, 4, 4), -BIG), torch.zeros(1, 1, 4, 4))) == pytest.approx(0, abs=1e-6)


def test_loss_float32_under_half_precision_and_ignores_label_smoothing():
    task = SegmentationTask()
    target = torch.ones(8, 1, 256, 256, dtype=torch.uint8)  # 524288 pixels: an fp16 sum overflows at 65504
    logits = torch.full((8, 1, 256, 256), 4.0, dtype=torch.float16, requires_grad=True)
    loss = task.loss(logits, target, label_smoothing=0.1)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert float(loss.detach()) == pytest.approx(float(task.loss(logits.detach().float(), target)), rel=1e-4)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert task.loss(logits, torch.ones(8, dtype=torch.long)) is None  # image labels only: no pixel loss


# ---------------------------------------------------------------- metrics


def _two_image_case():
    """Image 0: 4 rust pixels, predicted 2 of them plus 2 false ones. Image 1: no rust, 1 false pixel."""
    target = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    pred = torch.zeros(2, 1, 4, 4)
    target[0, 0, 0, :] = 1
    pred[0, 0, 0, :2] = 1
    pred[0, 0, 3, :2] = 1
    pred[1, 0, 2, 2] = 1
    return logits_from(pred), target, torch.tensor([True, False])


def test_meter_rust_class_micro_metrics():
    logits, target, rust = _two_image_case()
    meter = SegmentationMeter(rust_index=1)
    meter.update(logits[:1], target[:1], rust[:1])
    meter.update(logits[1:], target[1:], rust[1:])  # split over two batches: counts accumulate
    m = meter.compute()
    # TP 2, FP 3, FN 2 over the split; background pixels (27 TN) do not enter
    assert m["pixel_counts"] == {"tp": 2, "fp": 3, "fn": 2}
    assert m["iou"] == pytest.approx(2 / 7)
    assert m["dice"] == pytest.approx(4 / 9)
    assert m["pixel_precision"] == pytest.approx(2 / 5)
    assert m["pixel_recall"] == pytest.approx(2 / 4)
    assert "micro" in m["pixel_averaging"]
    # image level at the default threshold (0.5% of pixels): both images hold predicted rust
    assert m["image_call"]["area_threshold"] == DEFAULT_AREA_THRESHOLD
    assert m["image_call"]["threshold_from"] == "default"
    assert m["confusion"] == [[0, 1], [0, 1]] and m["accuracy"] == 0.5
    assert m["roc_auc"] == 1.0  # area 4/16 for the rust image > 1/16 for the clean one


def test_meter_with_calibration_and_without_masks():
    logits, target, rust = _two_image_case()
    cal = {"area_threshold": 0.1, "area_slope": 3.0, "fitted": True}
    meter = SegmentationMeter(1, cal)
    meter.update(logits, torch.tensor([1, 0]), rust)  # image labels, no masks
    m = meter.compute()
    assert "iou" not in m and m["accuracy"] == 1.0 and m["image_call"]["threshold_from"] == "validation"


def test_fit_area_calibration_separable_and_degenerate():
    area = torch.tensor([0.0, 0.0, 0.001, 0.002, 0.05, 0.2, 0.3])
    rust = torch.tensor([False, False, False, False, True, True, True])
    cal = fit_area_calibration(area, rust)
    assert cal["fitted"] and cal["val_balanced_accuracy"] == 1.0
    assert 0.002 < cal["area_threshold"] < 0.05
    p = rust_probability(area, cal)
    assert ((p > 0.5) == (area > cal["area_threshold"])).all()  # the confidence agrees with the call
    assert float(rust_probability(torch.tensor(cal["area_threshold"]), cal)) == pytest.approx(0.5)

    one_class = fit_area_calibration(area, torch.ones(7, dtype=torch.bool))
    assert not one_class["fitted"] and one_class["area_threshold"] == DEFAULT_AREA_THRESHOLD
    same_area = fit_area_calibration(torch.full((4,), 0.3), torch.tensor([True, False, True, False]))
    assert not same_area["fitted"] and 0 <= same_area["area_threshold"] <= 1


def test_fit_area_calibration_overlap_maximises_balanced_accuracy():
    # 1 rust image of 4 has a tiny area; 1 clean image of 2 has a large one
    area = torch.tensor([0.0, 0.3, 0.001, 0.2, 0.25, 0.4])
    rust = torch.tensor([False, False, True, True, True, True])
    cal = fit_area_calibration(area, rust)
    # best: call everything above 0 rust (TPR 1, TNR 1/2); any higher cut loses more than it gains
    assert cal["val_balanced_accuracy"] == pytest.approx(0.75)
    assert 0 < cal["area_threshold"] < 0.001
    called = area > cal["area_threshold"]
    tpr = float((called & rust).sum()) / 4
    tnr = float((~called & ~rust).sum()) / 2
    assert (tpr + tnr) / 2 == pytest.approx(cal["val_balanced_accuracy"])


def test_interpret_gives_mask_area_and_consistent_call():
    task = SegmentationTask()
    mask = torch.zeros(2, 1, 10, 10)
    mask[0, 0, :5] = 1  # half the pixels
    meta = {"class_names": ["no_rust", "rust"], "rust_index": 1,
            "calibration": {"area_threshold": 0.1, "area_slope": 2.0, "fitted": True}}
    r = task.interpret(logits_from(mask), meta)
    assert r[0]["mask"].shape == (10, 10) and r[0]["mask"].dtype == np.float32
    assert r[0]["rust_area"] == pytest.approx(0.5) and r[1]["rust_area"] == 0.0
    assert (r[0]["label"], r[0]["is_rust"]) == ("rust", True)
    assert (r[1]["label"], r[1]["is_rust"]) == ("no_rust", False)
    for x in r:
        assert 0.5 <= x["confidence"] <= 1
        assert sum(x["probabilities"].values()) == pytest.approx(1)
        assert x["rust_probability"] == pytest.approx(x["probabilities"]["rust"])


# ---------------------------------------------------------------- joint transforms


def _coded_pair(size=64):
    """A mask with a few blocks, and an image whose every channel is the mask x 255."""
    mask = torch.zeros(1, size, size, dtype=torch.uint8)
    mask[:, 8:30, 12:50] = 1
    mask[:, 40:60, 5:20] = 1
    mask[:, 3:6, 55:61] = 1
    return mask.repeat(3, 1, 1) * 255, mask


class _Decoded:
    def __init__(self, images, masks, labels):
        self.images, self.masks, self.labels = images, masks, labels

    def __len__(self):
        return len(self.images)


@pytest.mark.parametrize("level", ["light", "standard", "strong"])
def test_augmentation_keeps_mask_binary_and_aligned(level):
    """Geometric ops move the mask with the image: where the (white-on-black) image is bright, the mask is 1."""
    from rustlab.data.transforms import DecodedDataset, build_augmentation

    image, mask = _coded_pair()
    data = DecodedDataset(_Decoded(image[None], mask[None], torch.tensor([1])), target="mask",
                          transform=build_augmentation(level, 64))
    torch.manual_seed(0)
    mismatched = total = 0
    for _ in range(60):
        img, m, label = data[0]
        assert type(img) is torch.Tensor and type(m) is torch.Tensor
        assert m.shape == (1, 64, 64) and m.dtype == torch.uint8 and int(label) == 1
        assert set(m.unique().tolist()) <= {0, 1}
        mismatched += int(((img.float().mean(0) > 127) != m[0].bool()).sum())
        total += m.numel()
    # light: crop + flips only, so agreement is exact but for pixels exactly on an edge;
    # the photometric/blur ops of standard/strong move the image's grey levels, not the mask
    assert mismatched / total < {"light": 1e-3, "standard": 0.02, "strong": 0.03}[level]


def test_resized_crop_mask_follows_bilinear_image():
    """A 2x zoom: torchvision's floor-nearest mask resize is off by up to half a source pixel."""
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    from rustlab.data.transforms import resized_crop_mask

    image, mask = _coded_pair()
    zoomed_img = F.resized_crop(image, 7, 5, 37, 41, [80, 80], antialias=True)
    ours = resized_crop_mask(mask, 7, 5, 37, 41, (80, 80))
    reference = (zoomed_img.float().mean(0) >= 127.5).to(torch.uint8)
    assert int((ours[0] != reference).sum()) <= 2
    torchvision_nearest = F.resized_crop(tv_tensors.Mask(mask), 7, 5, 37, 41, [80, 80])
    assert int((torchvision_nearest[0] != reference).sum()) > 20  # the bug this guards against


def test_flips_move_mask_exactly():
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    image, mask = _coded_pair()
    img, m = v2.RandomHorizontalFlip(p=1.0)(tv_tensors.Image(image), tv_tensors.Mask(mask))
    assert torch.equal(m, mask.flip(-1)) and torch.equal(img, image.flip(-1))


# ---------------------------------------------------------------- through the trainer


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory):
    return train_tiny("unet", tmp_path_factory.mktemp("unet-runs"), epochs=2)


@pytest.fixture(scope="module")
def unet_checkpoint(unet_run):
    return unet_run.run_dir / "best.safetensors"


def test_train_unet_records_segmentation_metrics(unet_run, unet_checkpoint):
    from rustlab.checkpoint import read_metadata

    rows = [json.loads(line) for line in (unet_run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for key in ("train_loss", "val_loss", "val_iou", "val_dice", "val_pixel_recall", "val_accuracy"):
        assert all(0 <= r[key] < 10 for r in rows), key
    meta = read_metadata(unet_checkpoint)
    assert meta["task"] == "segmentation" and meta["model"] == "unet"
    assert "area_threshold" in meta["calibration"] and "area_slope" in meta["calibration"]
    best = max(rows, key=lambda r: r["val_iou"])["val_iou"]
    assert meta["metrics"]["validation"]["iou"] == pytest.approx(best)  # best checkpoint by validation IoU
    assert {"iou", "dice", "accuracy", "confusion"} <= set(unet_run.test_metrics)
    assert (unet_run.run_dir / "curves.png").is_file()


def test_predictor_returns_mask_and_area(unet_checkpoint, sample_images):
    from rustlab.inference.predictor import Predictor

    predictor = Predictor(unet_checkpoint, device="cpu")
    path = sorted(sample_images.iterdir())[0]
    p = predictor.predict(path)
    assert p.mask.shape == (32, 32) and 0 <= p.mask.min() <= p.mask.max() <= 1
    assert p.rust_area == pytest.approx(float((p.mask >= 0.5).mean()))
    assert p.label in ("rust", "no_rust") and 0.5 <= p.confidence <= 1
    assert "mask" not in p.to_dict() and json.dumps(p.to_dict())


def test_evaluate_cli_prints_pixel_metrics(unet_checkpoint, capsys):
    code, out, err = run_cli(capsys, "evaluate", "-c", unet_checkpoint)
    assert code == 0, err
    header, row = out.splitlines()[:2]
    assert header.split()[2:6] == ["iou", "dice", "px_prec", "px_rec"]
    assert all(0 <= float(v) <= 1 for v in row.split()[2:11])
    assert "confusion" in out


def test_evaluate_segmenter_on_label_only_folder(unet_checkpoint, tmp_path, capsys):
    from rustlab.data.synthetic import render_sample

    for has_rust, name in ((True, "rust"), (False, "no_rust")):
        (tmp_path / name).mkdir()
        for i in range(3):
            img, _ = render_sample(np.random.default_rng([5, i, has_rust]), 48, has_rust)
            Image.fromarray(img).save(tmp_path / name / f"{i}.png")
    code, out, err = run_cli(capsys, "evaluate", "-c", unet_checkpoint, "--data", tmp_path, "--split", "all",
                             "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["n"] == 6 and "iou" not in result and 0 <= result["accuracy"] <= 1
    code, out, _ = run_cli(capsys, "evaluate", "-c", unet_checkpoint, "--data", tmp_path, "--split", "all")
    assert out.splitlines()[1].split()[2:6] == ["-"] * 4 and "image-level call only" in out


def test_predict_out_writes_mask_and_overlay(unet_checkpoint, sample_images, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "predict", "-c", unet_checkpoint, sample_images, "--out", out_dir)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 4
    for line in lines:
        label, conf, _, area = line.split()[:4]
        assert label in ("rust", "no_rust") and 0.5 <= float(conf) <= 1 and area.endswith("%")
    for src in sample_images.iterdir():
        mask = Image.open(out_dir / f"{src.stem}_mask.png")
        over = Image.open(out_dir / f"{src.stem}_overlay.png")
        assert mask.size == over.size == Image.open(src).size == (80, 80)
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255} and over.mode == "RGB"

    code, out, _ = run_cli(capsys, "predict", "-c", unet_checkpoint, "--json", "--out", out_dir,
                           sorted(sample_images.iterdir())[0])
    row = json.loads(out)
    assert row["mask_png"].endswith("_mask.png") and 0 <= row["rust_area"] <= 1


def test_predict_out_same_stem_twice_and_classifier_refused(unet_checkpoint, cnn_checkpoint, sample_images,
                                                           tmp_path, capsys):
    image = sorted(sample_images.iterdir())[0]
    other = tmp_path / "b"
    other.mkdir()
    (other / image.name).write_bytes(image.read_bytes())
    code, _, err = run_cli(capsys, "predict", "-c", unet_checkpoint, image, other, "--out", tmp_path / "o")
    assert code == 0, err
    assert {p.name for p in (tmp_path / "o").iterdir()} == {
        f"{image.stem}_mask.png", f"{image.stem}_overlay.png", f"{image.stem}-2_mask.png",
        f"{image.stem}-2_overlay.png"}

    code, out, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, image, "--out", tmp_path / "c")
    assert code == 1 and err.startswith("error: --out") and "Traceback" not in err and not out


# ---------------------------------------------------------------- overlay helper


def test_overlay_tints_only_rust_pixels():
    from rustlab.inference.overlay import mask_image, overlay

    photo = Image.new("RGB", (40, 20), (100, 100, 100))
    prob = np.zeros((10, 10), np.float32)
    prob[:, :5] = 0.9  # left half rust, at the model's square size
    out = np.asarray(overlay(photo, prob, threshold=0.5, outline=None))
    assert out.shape == (20, 40, 3)
    assert (out[:, 25:] == 100).all()  # background untouched
    assert (out[:, :15, 1] < 100).all() and (out[:, :15, 0] > 100).all()  # magenta tint
    with_outline = np.asarray(overlay(photo, prob, threshold=0.5))
    changed_columns = np.nonzero((with_outline != out).any(axis=(0, 2)))[0]
    assert len(changed_columns) and 15 <= changed_columns.min() and changed_columns.max() < 21  # at the edge only
    m = np.asarray(mask_image(prob, (40, 20), 0.5))
    assert m.shape == (20, 40) and (m[:, :15] == 255).all() and (m[:, 25:] == 0).all()
    assert not np.asarray(mask_image(prob, (40, 20), 0.95)).any()
    with pytest.raises(ValueError, match="H x W"):
        overlay(photo, np.zeros((1, 10, 10)))
