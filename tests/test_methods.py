"""The training loop and the four methods, end to end.

Identities run on a tiny random BERT (seconds); each method also runs once on a
few dozen real RTE examples with the bundled pretrained model.
"""

import dataclasses

import pytest
import torch

from dcs_lib import DCSError, get_task, methods, weighting
from dcs_lib import teacher as teacher_module
from dcs_lib import train as train_module
from dcs_lib.methods import RunConfig, prepare_data, run, teacher_logits
from dcs_lib.models import load_model, load_tokenizer
from dcs_lib.train import TrainConfig, amp_dtype, fit, group_size, pick_device

REQUIRED = {"task", "method", "seed", "config", "epochs", "best", "final", "wall_s", "device", "versions"}


def same_numbers(a: dict, b: dict) -> bool:
    return [e["dev"] for e in a["epochs"]] == [e["dev"] for e in b["epochs"]] and [
        e["train_loss"] for e in a["epochs"]
    ] == [e["train_loss"] for e in b["epochs"]]


def test_record_has_every_field_and_weight_stats(tiny, tmp_path):
    record = run(dataclasses.replace(tiny, method="dcs"), progress=False, cache_dir=tmp_path)
    assert REQUIRED <= record.keys() and record["n_train"] == 48 and record["n_dev"] == 32
    assert len(record["epochs"]) == 3 and all("accuracy" in e["dev"] for e in record["epochs"])
    weights = [e["weights"] for e in record["epochs"]]
    assert all(w["mean"] == pytest.approx(1.0, abs=1e-5) for w in weights)
    assert "discordant" in weights[0] and "discordant" not in weights[-1]  # no update after the last epoch
    assert record["teacher"]["cached"] is False
    best = max(record["epochs"], key=lambda e: e["dev"]["accuracy"])  # the first of equal scores
    assert record["best"] == {"epoch": best["epoch"], **best["dev"]}
    assert record["final"] == {"epoch": 3, **record["epochs"][-1]["dev"]}


def test_runs_are_reproducible(tiny, tmp_path):
    cfg = dataclasses.replace(tiny, method="reweight")
    assert same_numbers(run(cfg, progress=False, cache_dir=None), run(cfg, progress=False, cache_dir=None))


def test_dcs_with_lambda_zero_is_exactly_kd(tiny, tmp_path):
    kd = run(dataclasses.replace(tiny, method="kd"), progress=False, cache_dir=tmp_path)
    dcs = run(dataclasses.replace(tiny, method="dcs", lam=0.0, plain_epochs=0), progress=False, cache_dir=tmp_path)
    assert same_numbers(kd, dcs)
    assert all(e["weights"]["max"] == pytest.approx(1.0) for e in dcs["epochs"])


def test_dcs_with_lambda_zero_and_defaults_is_kd_after_one_plain_epoch(tiny, tmp_path):
    """What the README states for `--lam 0` as run from the CLI: DCS keeps its plain first epoch."""
    dcs = run(dataclasses.replace(tiny, method="dcs", lam=0.0), progress=False, cache_dir=tmp_path)
    kd_plain = run(dataclasses.replace(tiny, method="kd", plain_epochs=1), progress=False, cache_dir=tmp_path)
    kd = run(dataclasses.replace(tiny, method="kd"), progress=False, cache_dir=tmp_path)
    assert same_numbers(dcs, kd_plain)
    assert dcs["epochs"][0]["train_loss"] != kd["epochs"][0]["train_loss"]  # plain KD distils from the start


def test_dcs_with_alpha_one_and_lambda_zero_is_exactly_vanilla(tiny, tmp_path):
    vanilla = run(dataclasses.replace(tiny, method="vanilla"), progress=False, cache_dir=tmp_path)
    dcs = run(dataclasses.replace(tiny, method="dcs", lam=0.0, alpha=1.0), progress=False, cache_dir=tmp_path)
    assert same_numbers(vanilla, dcs)


def test_weights_move_away_from_uniform(tiny, tmp_path):
    record = run(
        dataclasses.replace(tiny, method="dcs", lam=2.0, disagreement_source="train", teacher_epochs=2, plain_epochs=1),
        progress=False,
        cache_dir=tmp_path,
    )
    first = record["epochs"][0]["weights"]
    assert first["discordant"] > 0 and first["max"] > 1.5 and first["ess"] < 1.0


def test_the_clip_range_reaches_the_weights_of_a_run(tiny, tmp_path):
    cfg = dataclasses.replace(
        tiny, method="dcs", lam=2.0, disagreement_source="train", teacher_epochs=2, plain_epochs=1, clip_max=1.5
    )
    first = run(cfg, progress=False, cache_dir=tmp_path)["epochs"][0]["weights"]
    assert first["discordant"] > 0 and first["max"] == pytest.approx(1.5)  # above 1.5 with the default clip_max


@pytest.mark.parametrize("source", methods.DISAGREEMENT_SOURCES)
@pytest.mark.parametrize("method", ["dcs", "reweight"])
def test_every_update_setting_reaches_the_weight_update(method, source, monkeypatch):
    """Each setting differs from its default, so one left at the default would show."""
    cfg = RunConfig(
        method=method,
        epochs=4,
        lam=0.7,
        step="adaboost",
        accumulate=False,
        clip_min=0.5,
        clip_max=2.0,
        delta=0.3,
        disagreement_source=source,
    )
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    teacher = torch.randn(8, 2, generator=generator)
    train_logits, eval_logits = torch.randn(8, 2, generator=generator), torch.randn(8, 2, generator=generator)
    objective = methods.Weighted(
        get_task("rte"), cfg, labels, teacher if method == "dcs" else None, torch.device("cpu")
    )
    objective.weights = torch.linspace(0.5, 1.5, 8)
    calls = {}
    real_disagreement, real_update = weighting.disagreement, weighting.update_weights

    def disagreement(student, reference, **kwargs):
        calls["disagreement"] = student, reference, kwargs
        return real_disagreement(student, reference, **kwargs)

    def update_weights(weights, disagree, **kwargs):
        calls["update"] = weights.clone(), kwargs
        return real_update(weights, disagree, **kwargs)

    monkeypatch.setattr(weighting, "disagreement", disagreement)
    monkeypatch.setattr(weighting, "update_weights", update_weights)
    objective.end_epoch(2, train_logits, lambda: eval_logits)

    student, reference, options = calls["disagreement"]
    assert student is (train_logits if source == "train" else eval_logits)
    assert torch.equal(reference, teacher if method == "dcs" else labels)  # reweight: against the gold labels
    assert options == {"regression": False, "delta": 0.3}
    weights, options = calls["update"]
    assert torch.equal(weights, torch.linspace(0.5, 1.5, 8))
    assert options == {"lam": 0.7, "step": "adaboost", "accumulate": False, "clip_min": 0.5, "clip_max": 2.0}
    assert 0.5 <= objective.weights.min() and objective.weights.max() <= 2.0


def test_teacher_logits_are_cached_in_memory_and_on_disk(tiny, tmp_path, monkeypatch):
    task = get_task("rte")
    tokenizer = load_tokenizer(tiny.model)
    data = prepare_data(tiny, task, tokenizer)
    teacher_module._CACHE.clear()  # other tests trained this teacher already
    logits, record = teacher_logits(tiny, task, data, tokenizer, tmp_path)
    assert logits.shape == (48, 2) and len(list(tmp_path.glob("teacher-rte-*.safetensors"))) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("the teacher was trained again")

    monkeypatch.setattr(teacher_module, "fit", no_training)
    assert teacher_logits(tiny, task, data, tokenizer, tmp_path)[0] is logits  # memory
    teacher_module._CACHE.clear()
    again, again_record = teacher_logits(tiny, task, data, tokenizer, tmp_path)  # disk
    assert torch.equal(again, logits) and again_record["cached"] and again_record["final"] == record["final"]
    with pytest.raises(AssertionError, match="trained again"):  # another teacher budget is another key
        teacher_logits(dataclasses.replace(tiny, teacher_epochs=2), task, data, tokenizer, tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(lam=-1.0), "lambda must be >= 0"),
        (dict(alpha=1.5), r"alpha must be in \[0, 1\]"),
        (dict(temperature=0.0), "temperature T must be > 0"),
        (dict(method="boost"), "unknown method 'boost'"),
        (dict(step="linear"), "unknown step rule 'linear'"),
        (dict(weight_norm="sum"), "unknown weight normalisation 'sum'"),
        (dict(task="glue"), "unknown task 'glue'"),
        (dict(warmup_ratio=1.5), r"warm-up ratio must be in \[0, 1\], got 1.5"),
        (dict(warmup_ratio=-0.1), r"warm-up ratio must be in \[0, 1\]"),
        (dict(delta=0.0), "delta .* must be > 0, got 0.0"),
        (dict(method="kd", plain_epochs=-1), "plain epochs must be >= 0, got -1"),
        (dict(method="dcs", epochs=3, plain_epochs=3), "dcs with 3 plain epoch.* epochs is 3: it would never reweight"),
        (dict(method="reweight", epochs=1, plain_epochs=0), "reweight .* in epoch 2, but epochs is 1"),
    ],
)
def test_bad_settings_are_refused(change, message):
    with pytest.raises(DCSError, match=message):
        RunConfig(**change).validate()


def test_a_run_too_short_to_reweight_warns_with_the_default_plain_epoch():
    RunConfig(method="dcs", epochs=2).validate()  # plain epoch 1, then weights from epoch 1's end
    RunConfig(method="dcs", epochs=2, plain_epochs=0).validate()
    RunConfig(method="kd", epochs=2, plain_epochs=2).validate()  # kd does not reweight: plain CE throughout is allowed
    with pytest.warns(UserWarning, match="dcs with 1 plain epoch.* it would never reweight; use --epochs 2"):
        RunConfig(method="dcs", epochs=1).validate()


def one_epoch_classifier(tiny, n_train, batch_size, accum, **changes):
    """The tiny model's classifier weights after one epoch of plain CE, without dropout, in random batches."""
    task = get_task("rte")
    tokenizer = load_tokenizer(tiny.model)
    data = prepare_data(dataclasses.replace(tiny, n_train=n_train), task, tokenizer)
    torch.manual_seed(0)
    model = load_model(tiny.model, task)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    train_cfg = TrainConfig(
        epochs=1,
        batch_size=batch_size,
        grad_accum=accum,
        group_by_length=False,
        progress=False,
        lr=1e-3,
        warmup_ratio=0.0,
    )
    train_cfg = dataclasses.replace(train_cfg, **changes)
    fit(model, data["train"], {}, task, methods.Supervised(task), train_cfg, tokenizer.pad_token_id)
    return model.classifier.weight.detach().clone()


def test_gradient_accumulation_matches_a_bigger_batch(tiny):
    # 16 examples: one batch of 16, or two of 8 accumulated; padding differs, so compare loosely.
    assert torch.allclose(one_epoch_classifier(tiny, 16, 16, 1), one_epoch_classifier(tiny, 16, 8, 2), atol=1e-4)


def test_a_short_last_accumulation_step_is_a_mean_over_its_own_batches(tiny):
    assert [group_size(step, 3, 2) for step in (1, 2, 3)] == [2, 2, 1]
    assert [group_size(step, 78, 4) for step in (1, 76, 77, 78)] == [4, 4, 2, 2]
    assert [group_size(step, 5, 1) for step in range(1, 6)] == [1] * 5
    # 24 examples in random batches of 8 (not regrouped by length), two accumulated per step: steps of 16
    # and 8 examples, the same examples as batches of 16. A last step halved would differ by about 1e-3.
    # No clipping, which would hide the scale; Adam's update does not hide it from the second step on.
    big, accumulated = (
        one_epoch_classifier(tiny, 24, size, accum, lr=1e-2, max_grad_norm=0.0) for size, accum in ((16, 1), (8, 2))
    )
    assert torch.allclose(big, accumulated, atol=1e-5)


def test_device_and_amp_choice_on_cpu():
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert pick_device().type in ("cpu", "mps")
        with pytest.raises(DCSError, match="CUDA is not available"):
            pick_device("cuda")
    assert amp_dtype(torch.device("cpu"), "auto") is None
    assert amp_dtype(torch.device("cpu"), "bf16") is torch.bfloat16
    with pytest.raises(DCSError, match="unknown amp mode"):
        amp_dtype(torch.device("cpu"), "int8")


@pytest.mark.parametrize("method", methods.METHODS)
def test_each_method_on_real_rte_with_the_bundled_model(glue, tmp_path, monkeypatch, method):
    cfg = RunConfig(
        task="RTE",
        method=method,
        data_dir=str(glue),
        n_train=32,
        n_dev=32,
        epochs=2,
        teacher_epochs=1,
        batch_size=16,
        seed=1,
    )
    dev_logits = []
    real_predict = train_module.predict

    def predict(*args, **kwargs):
        logits = real_predict(*args, **kwargs)
        if kwargs.get("desc", "predict") == "predict":  # the dev set's, not the training set's
            dev_logits.append(logits)
        return logits

    monkeypatch.setattr(train_module, "predict", predict)
    record = run(cfg, progress=False, cache_dir=tmp_path)
    assert record["task"] == "rte" and record["method"] == method and len(record["epochs"]) == 2
    labels = torch.tensor(prepare_data(cfg, get_task("rte"), load_tokenizer(cfg.model))["validation"]["label"])
    dev_logits = dev_logits[-2:]  # the student's two epochs, after the teacher's (kd, dcs)
    assert all(logits.shape == (32, 2) for logits in dev_logits)
    for epoch, logits in zip(record["epochs"], dev_logits, strict=True):
        assert epoch["dev"]["accuracy"] == (logits.argmax(dim=-1) == labels).double().mean().item()
        assert epoch["train_loss"] > 0
    assert ("weights" in record["epochs"][0]) == (method in ("reweight", "dcs"))
    assert (record["teacher"] is not None) == (method in ("kd", "dcs"))


def synthetic_stsb(folder):
    import random

    rng = random.Random(0)
    words = "a man woman dog cat plays runs eats sleeps guitar ball food".split()
    header = "index genre filename year old_index source1 source2 sentence1 sentence2 score".split()
    for split, n in (("train", 40), ("dev", 16)):
        rows = [header]
        for i in range(n):
            s1, s2 = " ".join(rng.choices(words, k=5)), " ".join(rng.choices(words, k=5))
            rows.append([str(i), "main", "f", "2012", str(i), "s", "s", s1, s2, f"{rng.uniform(0, 5):.2f}"])
        path = folder / "STS-B" / f"{split}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join("\t".join(r) + "\n" for r in rows))
    return folder


@pytest.mark.parametrize("method", ["vanilla", "dcs"])
def test_regression_task_end_to_end(tiny_model, tmp_path, method):
    data_dir = synthetic_stsb(tmp_path / "glue")
    cfg = RunConfig(
        task="STS-B",
        method=method,
        model=tiny_model,
        data_dir=str(data_dir),
        epochs=2,
        teacher_epochs=3,
        batch_size=8,
        lr=1e-3,
        seed=3,
        delta=0.02,
    )
    record = run(cfg, progress=False, cache_dir=tmp_path / "cache")
    assert record["metric"] == "pearson" and set(record["final"]) == {"epoch", "pearson", "spearman"}
    if method == "dcs":
        assert record["epochs"][0]["weights"]["discordant"] > 0  # |student - teacher| > delta somewhere


def test_holdout_replaces_dev_with_training_examples(tiny, glue):
    task = get_task("rte")
    tokenizer = load_tokenizer(tiny.model)
    cfg = dataclasses.replace(tiny, n_train=None, n_dev=None, holdout=300)
    data = prepare_data(cfg, task, tokenizer)
    assert len(data["train"]) == 2190 and len(data["validation"]) == 300
    assert not set(data["train"]["idx"]) & set(data["validation"]["idx"])  # carved out of train, disjoint
    again = prepare_data(dataclasses.replace(cfg, seed=99), task, tokenizer)
    assert again["validation"]["idx"] == data["validation"]["idx"]  # the same split for every seed
    with pytest.raises(DCSError, match="holdout must be between 1 and 2489"):
        prepare_data(dataclasses.replace(cfg, holdout=2490), task, tokenizer)


@pytest.mark.parametrize("method", ["dcs", "reweight"])
def test_the_weight_normalisation_reaches_the_loss(method):
    """With weight_norm="mean" a batch's loss is sum_i w_i l_i / |B|; with "batch" it is divided by sum_i w_i."""
    task, rows = get_task("sst2"), torch.tensor([0, 2, 3])
    logits, labels = torch.randn(3, 2), torch.tensor([0, 1, 1])
    teacher = torch.randn(5, 2) if method == "dcs" else None
    batch = {"rows": rows, "labels": labels}
    got = {}
    for norm in ("batch", "mean"):
        objective = methods.Weighted(
            task, RunConfig(method=method, weight_norm=norm), torch.tensor([0, 1, 1, 1, 0]), teacher, torch.device("cpu")
        )
        objective.weights = torch.tensor([1.0, 1.0, 4.0, 2.0, 1.0])
        got[norm] = objective.loss(logits, batch, epoch=2).item()
    weights = torch.tensor([1.0, 4.0, 2.0])
    assert got["mean"] == pytest.approx(got["batch"] * weights.sum().item() / 3)
