"""Training on several sources (--data A --data B, --extra-data), class- and source-balanced
sampling, every source recorded in the checkpoint, and the split seed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import TINY_DATA, run_cli, tiny_config, train_tiny, write_collector

from rustlab.config import TrainConfig, resolve_config
from rustlab.data.sources import load_source
from rustlab.data.splits import assign_splits


@pytest.fixture(scope="module")
def other_collector(tmp_path_factory) -> Path:
    """A second source whose classes are named differently: rust/ and steel/ (rust is class 0 here)."""
    return write_collector(tmp_path_factory.mktemp("other"), seed=5, count=20, size=48)


def test_extra_source_joins_train_and_validation_and_keeps_its_test_split_out(other_collector):
    from rustlab.data.mixing import add_extra_sources

    main = load_source(TINY_DATA)
    splits = assign_splits(main, seed=0)
    before = {s: len(v) for s, v in splits.items()}
    extra = load_source(other_collector)
    assert extra.class_names == ["rust", "steel"] and extra.rust_index == 0
    extra_splits = assign_splits(extra, seed=0)

    fingerprint = add_extra_sources(main, splits, [str(other_collector)], seed=0, needs_masks=False)

    for s in ("train", "validation"):
        assert len(splits[s]) == before[s] + len(extra_splits[s])
    assert len(splits["test"]) == before["test"]  # the main test split is untouched
    held_out = {e.key for e in extra_splits["test"]}
    assert held_out and not held_out & {e.key for s in ("train", "validation") for e in splits[s]}
    # labels follow the meaning, not the position: rust/ images get the main source's rust index
    for e in splits["train"]:
        if e.key.startswith(str(other_collector)):
            assert e.label == (main.rust_index if "/rust/" in e.key else 1 - main.rust_index)
    assert fingerprint != main.fingerprint()  # a resume notices when the extra data changes
    assert any("extra data" in note for note in main.notes)


def test_training_with_extra_data_then_scoring_its_held_out_split(other_collector, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--model", "cnn", "--data", TINY_DATA, "--extra-data", other_collector,
                           "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--out", tmp_path, "--name", "mix",
                           "--seed", "1", "--split-seed", "0",
                           *[f"--set={k}={v}" for k, v in tiny_config("cnn").items()])
    assert code == 0, err
    assert "its 6 test images held out" in err
    config = json.loads((tmp_path / "mix" / "config.json").read_text())
    assert config["train_args"]["extra_data"] == [str(other_collector)]
    extra_splits = assign_splits(load_source(other_collector), seed=0)
    main_splits = assign_splits(load_source(TINY_DATA), seed=0)
    assert config["data"]["counts"]["train"] == len(main_splits["train"]) + len(extra_splits["train"])

    code, out, err = run_cli(capsys, "evaluate", "-c", tmp_path / "mix", "--data", other_collector, "--json")
    assert code == 0, err
    row = json.loads(out)  # one --data: one object
    assert row["n"] == len(extra_splits["test"]) == 6

    # with no --data: every training source's own held-out split, main first; the main test split
    # is recomputed with the split seed (0), not the training seed (1)
    assert [s["spec"] for s in config["data"]["sources"]] == [TINY_DATA, str(other_collector)]
    code, out, err = run_cli(capsys, "evaluate", "-c", tmp_path / "mix", "--json")
    assert code == 0, err
    main_row, extra_row = json.loads(out)
    trainer_test = json.loads((tmp_path / "mix" / "test_metrics.json").read_text())
    assert main_row["loss"] == pytest.approx(trainer_test["loss"], rel=1e-5)
    assert extra_row["data"] == str(other_collector) and extra_row["n"] == 6
    assert main_row["same_data_as_training"] and extra_row["same_data_as_training"]


def test_extra_data_from_a_config_file_and_bad_paths(tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text('data = "builtin:96"\nextra_data = "builtin:40"\nbalance = true\nsplit_seed = 3\n')
    cfg = resolve_config(str(toml))
    assert cfg.extra_data == ["builtin:40"] and cfg.balance == "classes" and cfg.data_split_seed == 3
    assert resolve_config(str(toml), {"extra_data": ["a", "b"]}).extra_data == ["a", "b"]  # flags win
    assert TrainConfig(seed=4).data_split_seed == 4

    code, _, err = run_cli(capsys, "train", "--data", TINY_DATA, "--extra-data", tmp_path / "missing",
                           "--epochs", "1", "--out", tmp_path)
    assert code != 0 and "Traceback" not in err
    assert "--extra-data" in err and "missing" in err and len(err.strip().splitlines()) == 1


def test_balanced_sampler_draws_classes_evenly_and_shards_like_one_process():
    from rustlab.data.sampling import BalancedSampler

    labels = [0] * 900 + [1] * 100
    one = BalancedSampler(labels, seed=7)
    one.set_epoch(1)
    drawn = list(one)
    assert len(drawn) == len(one) == 1000
    share = Counter(labels[i] for i in drawn)[1] / len(drawn)
    assert 0.44 < share < 0.56  # shuffling would give 0.10
    assert drawn == list(one)  # the same (seed, epoch): the same draw (what a resume relies on)
    one.set_epoch(2)
    assert list(one) != drawn
    one.set_epoch(1)
    shards = []
    for rank in range(2):
        part = BalancedSampler(labels, seed=7, num_replicas=2, rank=rank)
        part.set_epoch(1)
        shards.append(list(part))
    assert [i for pair in zip(*shards) for i in pair] == drawn


def test_balanced_training_runs_and_is_recorded(tmp_path):
    result = train_tiny("cnn", tmp_path, epochs=1, balance=True)  # a run's old spelling: true = classes
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["train_args"]["balance"] == "classes"


def test_balance_groups_by_source_and_by_source_and_class():
    from rustlab.data.records import Example
    from rustlab.data.sampling import BalancedSampler
    from rustlab.training.data import balance_groups

    examples = ([Example(f"big/{i}", None, label=i % 2, source="big") for i in range(90)]
                + [Example(f"small/{i}", None, label=1, source="small") for i in range(10)])
    decoded = SimpleNamespace(keys=[e.key for e in examples],
                              labels=__import__("torch").tensor([e.label for e in examples]))
    assert balance_groups(decoded, "none", examples) is None
    assert balance_groups(decoded, "classes", examples) == [e.label for e in examples]
    by_source = balance_groups(decoded, "sources", examples)
    assert Counter(by_source) == {"big": 90, "small": 10}
    sampler = BalancedSampler(by_source, seed=3)
    sampler.set_epoch(1)
    share = Counter(by_source[i] for i in sampler)["small"] / len(sampler)
    assert 0.42 < share < 0.58  # a 10-photo collector drawn as often as a 90-photo one
    assert set(balance_groups(decoded, "sources+classes", examples)) == {("big", 0), ("big", 1), ("small", 1)}


def test_several_data_sources_train_as_one_and_balance_by_source(other_collector, tmp_path, capsys):
    cfg = TrainConfig(data=[TINY_DATA, str(other_collector)], balance="sources")
    assert cfg.data == TINY_DATA and cfg.extra_data == [str(other_collector)]
    code, _, err = run_cli(capsys, "train", "--model", "cnn", "--data", TINY_DATA, "--data", other_collector,
                           "--balance", "sources", "--epochs", "1", "--batch-size", "16", "--device", "cpu",
                           "--out", tmp_path, "--name", "two",
                           *[f"--set={k}={v}" for k, v in tiny_config("cnn").items()])
    assert code == 0, err
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["train_args"]["balance"] == "sources"
    sources = config["data"]["sources"]
    assert [s["spec"] for s in sources] == [TINY_DATA, str(other_collector)]
    assert sources[1]["fingerprint"] == load_source(other_collector).fingerprint()
    assert sources[1]["counts"]["test"] == 6
    code, _, err = run_cli(capsys, "train", "--data", TINY_DATA, "--balance", "sideways", "--out", tmp_path)
    assert code == 2 and "sideways" in err


def test_runs_from_before_these_settings_still_resume():
    from rustlab.training.state import check_resumable

    cfg = TrainConfig(model_config=tiny_config("cnn"))
    old_args = {k: v for k, v in cfg.to_dict().items() if k not in ("extra_data", "balance", "split_seed")}
    state = SimpleNamespace(progress=SimpleNamespace(complete=False), train_args=old_args, path=Path("x/state"))
    check_resumable(state, cfg)  # no "settings differ" for settings the old run did not have
    with pytest.raises(Exception, match="balance"):
        check_resumable(state, TrainConfig(model_config=tiny_config("cnn"), balance=True))
    # a run that stored balance = true resumes as "classes"
    state.train_args = {**cfg.to_dict(), "balance": True}
    check_resumable(state, TrainConfig(model_config=tiny_config("cnn"), balance="classes"))
