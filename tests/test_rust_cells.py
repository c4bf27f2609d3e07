"""effnet-lite0-cells: rust cells learnt from the segmentation masks, stacked on the probe's call."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("timm")

from conftest import run_cli, tiny_config, write_collector  # noqa: E402


def test_cell_labels_come_from_masks_and_from_no_rust_photos_only():
    from rustlab_pretrained.cells import CLEAN_PHOTO_SHARE, cell_labels

    masks = torch.zeros(3, 1, 16, 16, dtype=torch.uint8)
    masks[0, 0, :8, :8] = 1  # photo 0: rust in its top-left cell, one pixel in the top-right one
    masks[0, 0, 0, 8] = 1
    masks[0, 0, 8:12, 0:8] = 1  # half of the bottom-left cell: rust
    masks[0, 0, 8:10, 8:16] = 1  # a quarter of the bottom-right one: neither, left out
    is_rust = torch.tensor([True, True, False])  # photo 1: rust without a mask (a classification photo)
    labels = cell_labels(masks, is_rust, (2, 2), torch.Generator().manual_seed(0))
    assert labels[0].tolist() == [1, 0, 1, -1]  # a 1/64-masked cell is under 5%: clean
    assert labels[1].tolist() == [-1, -1, -1, -1]  # nothing is known about an unmasked rust photo's cells
    assert set(labels[2].tolist()) <= {0, -1}  # a no-rust photo's cells are clean (a random share kept)
    many = cell_labels(torch.zeros(400, 1, 8, 8, dtype=torch.uint8), torch.zeros(400, dtype=torch.bool), (2, 2),
                       torch.Generator().manual_seed(0))
    assert float((many == 0).float().mean()) == pytest.approx(CLEAN_PHOTO_SHARE, abs=0.05)


def test_the_cells_learn_where_the_rust_is_and_the_checkpoint_keeps_them(tmp_path):
    """Trained on builtin photos (their masks decoded for the fit), the cells score the masked
    cells of held-out validation photos above the clean ones; the checkpoint gives the same logits."""
    import torch.nn.functional as F

    from rustlab.inference.loading import build_model_from_checkpoint
    from rustlab.config import TrainConfig
    from rustlab.data.cache import load_decoded
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits
    from rustlab.data.transforms import normalize
    from rustlab.training.trainer import train
    from rustlab_pretrained.cells import cell_grid

    lines = []
    cfg = TrainConfig(model="effnet-lite0-cells", data="builtin:160", out=str(tmp_path), name="c", device="cpu",
                      balance="sources+classes", model_config={**tiny_config("effnet-lite0-cells"), "image_size": 64})
    result = train(cfg, log=lines.append)
    fit_line = next(line for line in lines if line.startswith("fit on the training split"))
    assert "rust_cells" in fit_line and "rust_cells 0," not in fit_line
    model, _ = build_model_from_checkpoint(result.run_dir / "best.safetensors")
    model.eval()
    source = load_source("builtin:160")
    held = load_decoded(assign_splits(source, seed=cfg.data_split_seed)["validation"], 64, with_masks=True)
    x = normalize(held.images, model.config.mean, model.config.std)
    with torch.no_grad():
        _, maps = model._feature_maps(model._input(x))
        grid = cell_grid(maps)
        logits = model.cells.cell_logits(grid)
        share = F.adaptive_avg_pool2d(held.masks.float(), grid.shape[-2:]).flatten(1)
        assert float(logits[share >= 0.5].mean()) > float(logits[share == 0].mean()) + 1.0
        again, _ = build_model_from_checkpoint(result.run_dir / "best.safetensors")
        assert torch.allclose(again.eval()(x), model(x), atol=1e-5)
        assert not torch.allclose(model(x), model.head(model.features(x)), atol=1e-3)  # the stack is in use


def test_training_data_without_masks_is_one_clear_error(tmp_path, capsys):
    folder = write_collector(tmp_path / "photos", seed=3, count=12, size=48)
    code, _, err = run_cli(capsys, "train", "--model", "effnet-lite0-cells", "--data", folder, "--set", "weights=none",
                           "--image-size", "32", "--out", tmp_path / "runs")
    assert code != 0 and "segmentation masks" in err and "Traceback" not in err
    assert len(err.strip().splitlines()[-1]) < 300


def test_a_classification_source_mixed_with_a_masked_one_trains(tmp_path, capsys):
    """The classification folder's rust photos give no cell labels; builtin's masks do."""
    folder = write_collector(tmp_path / "photos", seed=4, count=16, size=48)
    code, _, err = run_cli(capsys, "train", "--model", "effnet-lite0-cells", "--data", folder, "--extra-data",
                           "builtin:64", "--set", "weights=none", "--image-size", "32", "--balance", "sources+classes",
                           "--out", tmp_path / "runs", "--name", "mix")
    assert code == 0, err
    assert "rust_cells" in err and (tmp_path / "runs" / "mix" / "best.safetensors").is_file()
