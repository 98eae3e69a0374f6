"""Teachers that can teach: peer and out-of-fold teachers, and cache keys that cannot mix what differs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dcs_lib import DCSError, get_task
from dcs_lib import experiments
from dcs_lib import teacher as teacher_module
from dcs_lib import train as train_module
from dcs_lib.experiments import load_results, read_grid
from dcs_lib.methods import RunConfig, prepare_data, run, run_id
from dcs_lib.models import load_tokenizer
from dcs_lib.teacher import folds_of, teacher_key, teacher_logits

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture
def prepared(tiny):
    task = get_task("rte")
    tokenizer = load_tokenizer(tiny.model)
    return task, prepare_data(tiny, task, tokenizer), tokenizer


def no_training(*args, **kwargs):
    raise AssertionError("a teacher was trained")


def test_a_vanilla_run_is_the_peer_teacher_of_its_seed(tiny, prepared, tmp_path, monkeypatch):
    task, data, tokenizer = prepared
    peer = dataclasses.replace(tiny, method="dcs", teacher_seed=6, teacher_epochs=tiny.epochs)
    teacher_module._CACHE.clear()
    trained, trained_record = teacher_logits(peer, task, data, tokenizer, cache_dir=None)  # trained as a teacher
    teacher_module._CACHE.clear()
    vanilla = run(dataclasses.replace(tiny, method="vanilla", seed=6), progress=False, cache_dir=tmp_path, data=data)
    teacher_module._CACHE.clear()
    monkeypatch.setattr(teacher_module, "fit", no_training)
    cached, record = teacher_logits(peer, task, data, tokenizer, tmp_path)  # left in the cache by the vanilla run
    assert torch.equal(cached, trained), "a vanilla run and the teacher it stands for must be the same model"
    assert record["cached"] and record["from_vanilla_run"] and record["seed"] == 6 and record["epochs"] == 3
    assert record["final"] == {k: v for k, v in vanilla["final"].items() if k != "epoch"}
    assert trained_record["seed"] == 6 and trained_record["train"] == record["train"]


def test_a_different_teacher_seed_is_a_different_teacher(tiny, prepared):
    task, data, tokenizer = prepared
    teacher_module._CACHE.clear()
    own, own_record = teacher_logits(tiny, task, data, tokenizer, cache_dir=None)
    other, other_record = teacher_logits(dataclasses.replace(tiny, teacher_seed=7), task, data, tokenizer, None)
    assert not torch.equal(own, other)
    assert own_record["seed"] == tiny.seed and other_record["seed"] == 7 and own_record["model"] == tiny.model


def test_out_of_fold_logits_come_from_the_teacher_that_did_not_see_the_row(tiny, prepared):
    task, data, tokenizer = prepared
    cfg = dataclasses.replace(tiny, teacher_folds=2)
    teacher_module._CACHE.clear()
    logits, record = teacher_logits(cfg, task, data, tokenizer, cache_dir=None)
    assert logits.shape == (48, 2) and len(record["fold_runs"]) == 2 and record["folds"] == 2
    assert "out-of-fold" in record["source"] and set(record["train"]) == {"accuracy"}
    fold = folds_of(48, 2, cfg.seed)
    assert sorted(torch.bincount(torch.from_numpy(fold)).tolist()) == [24, 24]
    # Retrain fold 0's teacher by hand on the other fold: it gives fold 0's rows exactly.
    train = data["train"]
    held = fold == 0
    tcfg = teacher_module.teacher_config(cfg)
    model, _ = teacher_module._train_one(
        tcfg, task, train.select(torch.arange(48)[torch.from_numpy(~held)].tolist()), {}, tokenizer.pad_token_id, False, "t"
    )
    by_hand = teacher_module._train_logits(model, train.select(held.nonzero()[0]), tcfg, tokenizer.pad_token_id, 48)
    assert torch.equal(logits[torch.from_numpy(held)], by_hand[torch.from_numpy(held)])


@pytest.mark.parametrize("epochs", [0, 1, 3])
def test_the_teacher_config_trains_for_the_teacher_epochs(tiny, epochs):
    tcfg = teacher_module.teacher_config(dataclasses.replace(tiny, teacher_epochs=epochs, teacher_seed=9))
    assert (tcfg.method, tcfg.seed, tcfg.epochs) == ("vanilla", 9, epochs)


def test_an_out_of_fold_teacher_needs_training_epochs():
    with pytest.raises(DCSError, match="teacher-folds"):
        RunConfig(teacher_folds=2, teacher_epochs=0).validate()
    with pytest.raises(DCSError, match="teacher folds must be >= 1"):
        RunConfig(teacher_folds=0).validate()


@pytest.mark.parametrize(
    "change",
    [
        dict(teacher_seed=99),
        dict(teacher_model="another-model"),
        dict(teacher_folds=2),
        dict(teacher_epochs=3),
        dict(amp="fp16"),
        dict(holdout=10),
        dict(fused_adamw=True),
    ],
)
def test_the_teacher_key_changes_with_every_setting_that_changes_the_logits(tiny, prepared, change):
    _, data, _ = prepared
    assert teacher_key(dataclasses.replace(tiny, **change), data["train"]) != teacher_key(tiny, data["train"])


def test_the_teacher_key_changes_with_the_data_and_the_device(tiny, prepared, monkeypatch):
    _, data, _ = prepared
    key = teacher_key(tiny, data["train"])
    labels = list(data["train"]["label"])
    labels[0] = 1 - labels[0]
    edited = data["train"].remove_columns("label").add_column("label", labels)
    assert teacher_key(tiny, edited) != key  # same settings, other file contents
    monkeypatch.setattr(teacher_module, "pick_device", lambda override=None: torch.device("mps"))
    assert teacher_key(tiny, data["train"]) != key


def test_the_grid_data_cache_tells_holdouts_apart(tiny, monkeypatch, tmp_path):
    sizes = []

    def fake_run(cfg, data=None, **kwargs):
        sizes.append(len(data["train"]))
        return {"metric": "accuracy", "best": {"accuracy": 0.5}, "final": {"accuracy": 0.5}, "wall_s": 0.0,
                "task": "rte", "method": cfg.method, "seed": cfg.seed, "epochs": []}  # fmt: skip

    monkeypatch.setattr(experiments, "run", fake_run)
    configs = [dataclasses.replace(tiny, method="vanilla", holdout=h, n_train=None) for h in (100, 200)]
    experiments.run_grid(configs, tmp_path / "r.jsonl", log=lambda *a: None)
    assert sizes == [2390, 2290]


def test_grid_axes_of_tables_vary_together(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(
        '[base]\ntask = "sst2"\n[[grid]]\nmethod = ["kd", "dcs"]\n'
        "pairs = [{seed = 1, teacher_seed = 2}, {seed = 2, teacher_seed = 1}]\n"
    )
    configs = read_grid(path)
    assert [(c.method, c.seed, c.teacher_seed) for c in configs] == [
        ("kd", 1, 2), ("kd", 2, 1), ("dcs", 1, 2), ("dcs", 2, 1)
    ]  # fmt: skip
    path.write_text("[[grid]]\npairs = [{seed = 1, teacher_sed = 2}]\n")
    with pytest.raises(DCSError, match="unknown setting 'teacher_sed'"):
        read_grid(path)


def test_new_teacher_settings_at_their_defaults_keep_old_run_ids():
    records = load_results(ROOT / "data" / "results" / "glue" / "runs.jsonl")[:20]
    for record in records:
        assert run_id(RunConfig(**record["config"])) == record["run_id"]
    assert run_id(RunConfig(teacher_seed=3)) != run_id(RunConfig())
    assert run_id(RunConfig(fused_adamw=True)) != run_id(RunConfig())


def test_fused_adamw_reaches_the_loop_and_the_record(tiny):
    cfg = dataclasses.replace(tiny, method="vanilla", device="cpu", epochs=1, fused_adamw=True)
    assert cfg.train_config().fused_adamw and not tiny.train_config().fused_adamw
    record = run(cfg, progress=False, cache_dir=None)
    assert record["config"]["fused_adamw"] is True and torch.isfinite(torch.tensor(record["epochs"][0]["train_loss"]))


def test_bf16_on_the_cpu_is_recorded_or_refused(tiny, tmp_path, monkeypatch):
    cfg = dataclasses.replace(tiny, method="vanilla", amp="bf16", device="cpu", epochs=1)
    if train_module.cpu_supports_bf16():
        record = run(cfg, progress=False, cache_dir=None)
        assert record["precision"] == "bfloat16" and record["config"]["amp"] == "bf16"
    monkeypatch.setattr(train_module, "cpu_supports_bf16", lambda: False)
    with pytest.raises(DCSError, match="bf16 on the CPU needs AVX512-BF16 or AMX"):
        run(cfg, progress=False, cache_dir=None)
    assert run(dataclasses.replace(cfg, amp="off"), progress=False, cache_dir=None)["precision"] == "float32"
