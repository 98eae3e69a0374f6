"""Teachers that can teach: peer and out-of-fold teachers, and cache keys that cannot mix what differs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dcs_lib import DCSError, experiments, get_task
from dcs_lib import teacher as teacher_module
from dcs_lib import train as train_module
from dcs_lib.experiments import load_results, read_grid
from dcs_lib.methods import RunConfig, prepare_data, run, run_id
from dcs_lib.models import load_tokenizer
from dcs_lib.teacher import folds_of, teacher_key, teacher_logits

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def prepared(tiny):
    task = get_task("rte")
    tokenizer = load_tokenizer(tiny.model)
    return task, prepare_data(tiny, task, tokenizer), tokenizer


def no_training(*args, **kwargs):
    raise AssertionError("a teacher was trained")


def test_a_vanilla_run_is_the_peer_teacher_of_its_seed(tiny, prepared, tmp_path, monkeypatch):
    task, data, tokenizer = prepared
    tiny = dataclasses.replace(tiny, data_seed=0)  # one dev subset for every seed, so the teacher's score carries over
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


# A value other than the `tiny` fixture's for every setting the teacher's training depends on.
OTHER_TEACHER_SETTING = {
    "task": "mrpc",
    "n_train": 47,
    "holdout": 10,
    "max_length": 64,
    "batch_size": 4,
    "lr": 2e-3,
    "weight_decay": 0.0,
    "warmup_ratio": 0.2,
    "grad_accum": 2,
    "max_grad_norm": 0.5,
    "group_by_length": False,
}


@pytest.fixture
def small_train_set():
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": [[101, 7, 102], [101, 8, 9, 102]], "label": [0, 1]})


@pytest.mark.parametrize("field", teacher_module.TEACHER_FIELDS)
def test_every_teacher_setting_changes_the_teacher_key(tiny, small_train_set, field):
    other = dataclasses.replace(tiny, **{field: OTHER_TEACHER_SETTING[field]})
    assert getattr(other, field) != getattr(tiny, field)
    assert teacher_key(other, small_train_set) != teacher_key(tiny, small_train_set)


@pytest.mark.parametrize(
    "change",
    [
        dict(method="kd"),
        dict(lam=2.5),
        dict(alpha=0.1),
        dict(temperature=4.0),
        dict(epochs=5),
        dict(step="adaboost"),
        dict(accumulate=False),
        dict(clip_min=0.5, clip_max=2.0),
        dict(disagreement_source="train"),
        dict(plain_epochs=2),
        dict(delta=0.1),
        dict(weight_norm="mean"),
    ],
)
def test_student_only_settings_keep_the_teacher_key(tiny, small_train_set, change):
    """KD and DCS runs that differ only in how the student learns share one teacher's logits."""
    dcs = dataclasses.replace(tiny, method="dcs")
    assert teacher_key(dataclasses.replace(dcs, **change), small_train_set) == teacher_key(dcs, small_train_set)


def test_a_teacher_scored_on_another_dev_subset_is_not_reused(tiny, small_train_set):
    """The logits do not depend on the dev set, but the teacher's recorded dev score does."""
    keys = {n: teacher_key(dataclasses.replace(tiny, n_dev=n), small_train_set) for n in (None, 16, 32)}
    assert len(set(keys.values())) == 3
    # one peer teacher (seed 3) for students of seeds 1 and 2: their dev subsets differ unless data_seed fixes it
    peer = dataclasses.replace(tiny, teacher_seed=3, n_dev=16, data_seed=None)
    one, two = (teacher_key(dataclasses.replace(peer, seed=s), small_train_set) for s in (1, 2))
    assert one != two
    fixed = dataclasses.replace(peer, data_seed=0)
    assert teacher_key(dataclasses.replace(fixed, seed=1), small_train_set) == teacher_key(
        dataclasses.replace(fixed, seed=2), small_train_set
    )


def test_an_in_memory_teacher_says_it_was_cached(tiny, prepared, monkeypatch):
    task, data, tokenizer = prepared
    logits, record = teacher_logits(tiny, task, data, tokenizer, cache_dir=None)
    monkeypatch.setattr(teacher_module, "fit", no_training)
    again, again_record = teacher_logits(dataclasses.replace(tiny, lam=2.0), task, data, tokenizer, cache_dir=None)
    assert again is logits and again_record["cached"] is True
    assert record["cached"] is False and teacher_logits(tiny, task, data, tokenizer, None)[1]["cached"] is True
    assert again_record == {**record, "cached": True}


def test_what_the_caller_does_to_a_teacher_record_stays_out_of_the_cache(tiny, prepared, tmp_path, monkeypatch):
    task, data, tokenizer = prepared
    teacher_module._CACHE.clear()
    _, fresh = teacher_logits(tiny, task, data, tokenizer, tmp_path)  # trained, then written to disk
    fresh["final"] = "changed by the caller"
    monkeypatch.setattr(teacher_module, "fit", no_training)
    assert teacher_logits(tiny, task, data, tokenizer, tmp_path)[1]["final"] != "changed by the caller"  # memory
    teacher_module._CACHE.clear()
    _, from_disk = teacher_logits(tiny, task, data, tokenizer, tmp_path)
    assert from_disk["cached"] is True and from_disk["final"] != "changed by the caller"
    from_disk["final"] = "changed again"
    _, from_memory = teacher_logits(tiny, task, data, tokenizer, tmp_path)
    assert from_memory["final"] not in ("changed by the caller", "changed again")


def test_each_cache_write_goes_through_a_temporary_file_of_its_own(tmp_path, monkeypatch):
    written = []
    real_save = teacher_module.save_file

    def save_file(tensors, filename, metadata=None):
        written.append(Path(filename))
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(teacher_module, "save_file", save_file)
    path = tmp_path / "teacher-rte-0123.safetensors"
    for value in (1.0, 2.0):  # two writers of the same teacher
        teacher_module._store("0123", path, torch.full((3, 2), value), {"cached": False})
    assert len(set(written)) == 2 and all(tmp.parent == tmp_path and not tmp.exists() for tmp in written)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert torch.equal(load_file(path)["logits"], torch.full((3, 2), 2.0))

    def interrupted(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(teacher_module, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        teacher_module._store("4567", tmp_path / "teacher-rte-4567.safetensors", torch.zeros(3, 2), {})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


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
    assert run_id(RunConfig(weight_norm="mean")) != run_id(RunConfig())


def test_fused_adamw_reaches_the_optimizer_and_the_record(tiny, monkeypatch):
    made = []

    def optimizer(model, cfg):
        made.append(real_optimizer(model, cfg))
        return made[-1]

    real_optimizer = train_module._optimizer
    monkeypatch.setattr(train_module, "_optimizer", optimizer)
    for fused in (True, False):
        cfg = dataclasses.replace(tiny, method="vanilla", device="cpu", epochs=1, fused_adamw=fused)
        record = run(cfg, progress=False, cache_dir=None)
        assert record["config"]["fused_adamw"] is fused
        assert torch.isfinite(torch.tensor(record["epochs"][0]["train_loss"]))
    fused, default = made
    assert all(group["fused"] is True for group in fused.param_groups)
    assert all(not group["fused"] and group["foreach"] for group in default.param_groups)


def test_bf16_on_the_cpu_is_recorded_or_refused(tiny, tmp_path, monkeypatch):
    cfg = dataclasses.replace(tiny, method="vanilla", amp="bf16", device="cpu", epochs=1)
    if train_module.cpu_supports_bf16():
        record = run(cfg, progress=False, cache_dir=None)
        assert record["precision"] == "bfloat16" and record["config"]["amp"] == "bf16"
    monkeypatch.setattr(train_module, "cpu_supports_bf16", lambda: False)
    with pytest.raises(DCSError, match="bf16 on the CPU needs AVX512-BF16 or AMX"):
        run(cfg, progress=False, cache_dir=None)
    assert run(dataclasses.replace(cfg, amp="off"), progress=False, cache_dir=None)["precision"] == "float32"
