"""A segmenter trained on masks plus photos that carry only a rust / no-rust label
(``--extra-data`` of a classification source): the multiple-instance term of the loss, weak
masks kept out of the pixel metrics, surviving augmentation, and a whole run on builtin data."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_DATA, run_cli, tiny_config, write_collector

from rustlab.tasks.segmentation_defaults import WEAK_RUST, WEAK_TOP_SHARE
from rustlab.tasks.segmentation_metrics import pixel_stats, segmentation_loss, top_share_logit


def _masks(n: int, size: int = 16) -> torch.Tensor:
    masks = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    masks[:, :, 4:8, 4:8] = 1
    return masks


def test_loss_without_weak_masks_is_bce_plus_dice_as_before():
    from rustlab.tasks.segmentation_metrics import soft_dice_loss

    logits, masks = torch.randn(3, 1, 16, 16), _masks(3)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, masks.float()) + soft_dice_loss(
        logits, masks.float())
    assert float(segmentation_loss(logits, masks)) == pytest.approx(float(expected))


def test_a_weak_mask_pushes_only_its_top_pixels_towards_rust():
    masks = _masks(2)
    masks[1] = WEAK_RUST  # a rust photo nobody drew a mask for
    logits = torch.full((2, 1, 16, 16), -3.0, requires_grad=True)
    segmentation_loss(logits, masks).backward()
    grad = logits.grad[1].flatten()
    k = round(WEAK_TOP_SHARE * 256)
    assert int((grad < 0).sum()) == k  # raising exactly its top share lowers the loss
    assert int((grad != 0).sum()) == k  # and no other pixel of it is told anything

    # the drawn mask of the other photo is scored as before: its rust pixels pulled up, the rest down
    drawn = logits.grad[0, 0]
    assert float(drawn[5, 5]) < 0 < float(drawn[12, 12])


def test_photos_without_masks_add_to_the_drawn_masks_term_and_never_dilute_it():
    masks = torch.cat([_masks(2), torch.full((2, 1, 16, 16), WEAK_RUST, dtype=torch.uint8)])
    logits = torch.randn(4, 1, 16, 16)
    weak_term = torch.nn.functional.binary_cross_entropy_with_logits(top_share_logit(logits[2:]), torch.ones(2))
    expected = segmentation_loss(logits[:2], masks[:2]) + 0.5 * weak_term  # half the batch has no mask
    assert float(segmentation_loss(logits, masks)) == pytest.approx(float(expected), rel=1e-6)


def test_the_weak_term_falls_as_the_photo_shows_more_rust():
    weak = torch.full((1, 1, 16, 16), WEAK_RUST, dtype=torch.uint8)
    quiet, loud = torch.full((1, 1, 16, 16), -4.0), torch.full((1, 1, 16, 16), -4.0)
    loud[..., :4, :4] = 4.0  # 16 of 256 pixels called rust: more than the top 2%
    assert float(segmentation_loss(loud, weak)) < 0.05 < float(segmentation_loss(quiet, weak))
    assert float(top_share_logit(loud)) == pytest.approx(4.0)


def test_weak_masks_are_left_out_of_the_pixel_counts():
    masks = torch.cat([_masks(1), torch.full((1, 1, 16, 16), WEAK_RUST, dtype=torch.uint8)])
    logits = torch.full((2, 1, 16, 16), 5.0)  # everything called rust
    area, _, (tp, fp, fn) = pixel_stats(logits, masks)
    assert (tp, fp, fn) == (16, 240, 0)  # the first photo's pixels only
    assert area.tolist() == [1.0, 1.0]  # the image-level call still sees both
    assert pixel_stats(logits[1:], masks[1:])[2] is None  # no drawn mask: nothing to count


def test_a_weak_item_keeps_its_weak_mask_through_the_augmentation():
    from rustlab.data.cache import DecodedSet
    from rustlab.data.transforms import DecodedDataset, build_augmentation

    decoded = DecodedSet(torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8), torch.tensor([1, 1]),
                         _masks(2, 32), ["a", "b"], weak=torch.tensor([False, True]))
    dataset = DecodedDataset(decoded, target="mask", transform=build_augmentation("standard", 24))
    for _ in range(3):
        _, drawn, _ = dataset[0]
        _, weak, _ = dataset[1]
        assert int(drawn.max()) <= 1 and weak.shape == (1, 24, 24)
        assert bool((weak == WEAK_RUST).all())


@pytest.fixture(scope="module")
def labelled_photos(tmp_path_factory):
    """A classification source (rust/ and steel/, no masks) of another collector."""
    return write_collector(tmp_path_factory.mktemp("labelled"), seed=11, count=16, size=48)


def test_a_segmenter_trains_on_masks_and_on_labelled_photos(labelled_photos, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--model", "unet", "--data", TINY_DATA, "--extra-data", labelled_photos,
                           "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--out", tmp_path,
                           "--name", "weak", *[f"--set={k}={v}" for k, v in tiny_config("unet").items()])
    assert code == 0, err
    assert "rust photos without masks (image label only)" in err
    config = json.loads((tmp_path / "weak" / "config.json").read_text())
    assert [s["masks"] for s in config["data"]["sources"]] == [True, False]
    test = json.loads((tmp_path / "weak" / "test_metrics.json").read_text())
    assert "iou" in test  # the main source's drawn masks are still scored pixel by pixel

    # the labelled source's held-out photos are scored by the image-level call
    code, out, err = run_cli(capsys, "evaluate", "-c", tmp_path / "weak", "--data", labelled_photos, "--json")
    assert code == 0, err
    row = json.loads(out)
    assert row["n"] > 0 and "accuracy" in row and "iou" not in row


def test_a_maskless_extra_source_without_labels_is_refused(monkeypatch):
    import rustlab.data.mixing as mixing
    from rustlab.data.records import Example, Source
    from rustlab.errors import DataError

    main = Source("seg", ["no_rust", "rust"], 1, [], has_masks=True)
    unlabelled = Source("flat", ["no_rust", "rust"], 1, [Example(key="x.png", image="x.png")], has_masks=False)
    monkeypatch.setattr(mixing, "load_source", lambda spec, needs_masks, corrections=None: unlabelled)
    with pytest.raises(DataError, match="--extra-data flat: without masks.*1 have none"):
        mixing.add_extra_sources(main, {"train": [], "validation": []}, ["flat"], seed=0, needs_masks=False)
