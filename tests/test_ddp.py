"""`torchrun --nproc-per-node 2 -m rustlab train` (gloo on CPU) computes what one process does.

Why the match can be tight: the global batch is split across ranks (8 + 8 for --batch-size 16),
rank r takes positions r, r+2, ... of the same seed+epoch permutation a single process uses, so
the two ranks' k-th batches together are the single process's k-th batch; DDP averages the two
half-batch mean gradients, which equals the full-batch mean gradient. Augmentation is seeded
per sample, not per process, and dropout is switched off (its masks are drawn per rank and
cannot match). What remains is float32 summation order; measured after 2 epochs: 1e-7 relative
on the metrics, 2e-6 of each weight tensor's largest value. Hence 1e-4 below: 50x headroom, and
far below any real difference (one image classified differently moves accuracy by 1/14).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import TINY
from test_resume import assert_close_tree

FLAGS = {"data": "builtin:96", "epochs": 2, "batch_size": 16, "seed": 4, "device": "cpu", "augment": "light"}
MODEL_CONFIG = {**TINY["cnn"], "dropout": 0.0}


def test_torchrun_two_cpu_processes_match_one_process(tmp_path):
    from safetensors.torch import load_file

    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    single = train(TrainConfig(model="cnn", out=str(tmp_path / "single"), name="one", model_config=MODEL_CONFIG,
                               **FLAGS), log=lambda *_: None)

    out = tmp_path / "ddp"
    args = [f"--{k.replace('_', '-')}={v}" for k, v in FLAGS.items()]
    sets = [f"--set={k}={json.dumps(v)}" for k, v in MODEL_CONFIG.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "rustlab", "train", "--model", "cnn", *args, *sets, "--out", str(out)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list(out.iterdir())
    assert len(runs) == 1, f"expected one run folder, got {runs}"  # rank 0 names it, all ranks use it
    run_dir = runs[0]
    assert "x 2 processes (gloo)" in proc.stderr
    assert proc.stderr.count("epoch 1/2") == 1  # logs from rank 0 only

    def rows(path):
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in (path / "metrics.jsonl").read_text().splitlines()]

    assert_close_tree(rows(run_dir), rows(single.run_dir), rel=1e-4, abs_=1e-6)
    ddp_test = json.loads((run_dir / "test_metrics.json").read_text())
    one_test = json.loads((single.run_dir / "test_metrics.json").read_text())
    assert_close_tree(ddp_test, one_test, rel=1e-4, abs_=1e-6)
    for name in ("best.safetensors", "last.safetensors"):
        a, b = load_file(str(run_dir / name)), load_file(str(single.run_dir / name))
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_torchrun_fits_a_closed_form_model_as_one_process_does(tmp_path):
    """A model fitted in closed form (the probe head) skips DDP: every rank fits the same training
    split, rank 0 alone writes the run, and its head equals one process's."""
    from safetensors.torch import load_file

    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    model, flags = "effnet-lite0-probe", {**FLAGS, "epochs": 1, "augment": "none", "balance": "classes"}
    config = TINY[model]
    single = train(TrainConfig(model=model, out=str(tmp_path / "single"), name="one", model_config=config, **flags),
                   log=lambda *_: None)
    out = tmp_path / "ddp"
    args = [f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]
    sets = [f"--set={k}={json.dumps(v)}" for k, v in config.items()]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "rustlab", "train", "--model", model, *args, *sets, "--out", str(out)],
                          capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = list(out.iterdir())
    assert "x 2 processes (gloo)" in proc.stderr and proc.stderr.count("fit on the training split") == 1
    a, b = load_file(str(run_dir / "best.safetensors")), load_file(str(single.run_dir / "best.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    ddp_test = json.loads((run_dir / "test_metrics.json").read_text())
    assert_close_tree(ddp_test, json.loads((single.run_dir / "test_metrics.json").read_text()), rel=1e-4, abs_=1e-6)


def test_global_batch_must_split_evenly():
    from rustlab.training.distributed import Dist
    from rustlab.errors import RustlabError

    assert Dist(world_size=4).per_rank_batch(32) == 8
    with pytest.raises(RustlabError, match="multiple of the 3 processes"):
        Dist(world_size=3).per_rank_batch(32)


def test_ranks_together_see_the_single_process_batches():
    """The sharding argument above, checked on the sampler itself (N=67, batch 16, 2 ranks)."""
    from rustlab.training.distributed import Dist

    data = list(range(67))
    one = list(Dist(world_size=1).sampler(data, seed=7).__iter__())
    shards = []
    for rank in range(2):
        sampler = Dist(rank=rank, world_size=2).sampler(data, seed=7)
        shards.append(list(sampler))
    for k in range(len(data) // 16):  # full global batches (the loader drops the last partial one)
        together = shards[0][8 * k:8 * (k + 1)] + shards[1][8 * k:8 * (k + 1)]
        assert sorted(together) == sorted(one[16 * k:16 * (k + 1)])


def test_augmentation_depends_on_the_sample_not_the_process():
    from rustlab.data.sampling import KeyedAugmentation

    class Noise:
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.rand(3)

    a, b = KeyedAugmentation(Noise(), seed=1), KeyedAugmentation(Noise(), seed=1)
    torch.manual_seed(123)
    first = [a[i] for i in range(10)]
    torch.manual_seed(456)  # another process, another global stream, another order
    second = {i: b[i] for i in reversed(range(10))}
    assert all(torch.equal(first[i], second[i]) for i in range(10))
    a.set_epoch(1)
    assert not torch.equal(a[0], first[0])  # a new epoch draws new augmentations
