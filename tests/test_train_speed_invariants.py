"""What the loop's speed-ups must not change: a run's numbers.

The values below were computed by the loop as it was before its speed-ups (per-step loss
reads, the per-tensor AdamW, a tensor per example in the collator), on the tiny BERT of
conftest.py, in float32 on the CPU. The speed-ups compute bit for bit the same numbers on
one machine; the tolerance only absorbs what another thread count or CPU changes in the
last digits (about 1e-7 relative). Fused AdamW rounds differently, so it is opt-in.
"""

import dataclasses

import numpy as np
import pytest
import torch

from dcs_lib import get_task
from dcs_lib import train as train_module
from dcs_lib.data import PadCollator
from dcs_lib.methods import Weighted, prepare_data, run
from dcs_lib.models import load_model, load_tokenizer
from dcs_lib.train import Supervised, TrainConfig, _linear_schedule, _optimizer, fit, make_loader, predict, seed_everything

# case: (changes to the `tiny` fixture, train loss per epoch, dev accuracy per epoch)
PINNED = {
    "vanilla": (
        dict(method="vanilla"),
        [0.6927069822947184, 0.686201810836792, 0.6875504155953726],
        [0.6875, 0.6875, 0.6875],
    ),
    "vanilla, accumulation 2, random batches": (
        dict(method="vanilla", grad_accum=2, group_by_length=False),
        [0.6958257456620535, 0.6930291056632996, 0.6910206377506256],
        [0.3125, 0.6875, 0.6875],
    ),
    "dcs, train source": (
        dict(method="dcs", disagreement_source="train", lam=2.0),
        [0.6927069822947184, 0.3448633948961894, 0.34592704971631366],
        [0.6875, 0.6875, 0.6875],
    ),
    "dcs, eval source": (
        dict(method="dcs"),
        [0.6927069822947184, 0.3433598925669988, 0.3443854997555415],
        [0.6875, 0.6875, 0.6875],
    ),
}


def cpu_float32(cfg):
    return dataclasses.replace(cfg, device="cpu", amp="off")


@pytest.mark.parametrize("case", list(PINNED))
def test_a_tiny_run_gives_the_numbers_it_gave_before(tiny, case):
    changes, train_loss, accuracy = PINNED[case]
    record = run(cpu_float32(dataclasses.replace(tiny, **changes)), progress=False, cache_dir=None)
    assert [e["train_loss"] for e in record["epochs"]] == pytest.approx(train_loss, rel=1e-6)
    assert [e["dev"]["accuracy"] for e in record["epochs"]] == accuracy


def dcs_fit(tiny, **train_changes):
    """Two DCS epochs (train source, weights from epoch 1) against a fixed random teacher -> (history, dev logits)."""
    task = get_task("rte")
    cfg = cpu_float32(dataclasses.replace(tiny, method="dcs", disagreement_source="train", lam=2.0, plain_epochs=0))
    data = prepare_data(cfg, task, load_tokenizer(cfg.model))
    seed_everything(5)
    model = load_model(cfg.model, task)
    teacher = torch.randn(len(data["train"]), 2, generator=torch.Generator().manual_seed(1))
    objective = Weighted(task, cfg, torch.tensor(data["train"]["label"]), teacher, torch.device("cpu"))
    train_cfg = dataclasses.replace(cfg.train_config(epochs=2, progress=False), **train_changes)
    history = fit(model, data["train"], {"validation": data["validation"]}, task, objective, train_cfg)
    cpu = torch.device("cpu")
    logits = predict(model, make_loader(data["validation"], 16, 0, cpu, shuffle=False), cpu, len(data["validation"]))
    return history, logits


def test_fit_and_predict_give_the_logits_they_gave_before(tiny):
    history, logits = dcs_fit(tiny)
    assert [e["train_loss"] for e in history] == pytest.approx([0.42341924210389453, 0.4091271211703618], rel=1e-6)
    assert history[0]["weights"]["max"] == pytest.approx(1.8193269968032837, rel=1e-6)
    assert history[0]["weights"]["discordant"] == pytest.approx(0.4791666666666667)
    expected = [[0.032258182764053345, -0.05839957296848297], [0.03232463449239731, -0.05836739018559456]]
    assert logits[:2].tolist() == pytest.approx(np.array(expected), rel=1e-5)
    assert logits.double().sum().item() == pytest.approx(-0.8348826318979263, rel=1e-6)


def test_fused_adamw_is_opt_in_and_lands_close(tiny, monkeypatch):
    made = []

    def optimizer(model, cfg):
        made.append(_optimizer(model, cfg))
        return made[-1]

    monkeypatch.setattr(train_module, "_optimizer", optimizer)
    history, logits = dcs_fit(tiny, fused_adamw=True)
    assert len(made) == 1 and all(group["fused"] is True for group in made[0].param_groups)
    default = _optimizer(torch.nn.Linear(2, 2), TrainConfig())
    assert not any(group["fused"] for group in default.param_groups)
    assert [e["train_loss"] for e in history] == pytest.approx([0.42341924210389453, 0.4091271211703618], rel=1e-3)
    assert logits.double().sum().item() == pytest.approx(-0.8348826318979263, rel=1e-2)


def test_the_foreach_optimizer_is_bit_for_bit_the_per_tensor_loop(tiny_model):
    task = get_task("rte")
    ids = torch.randint(1000, 2000, (8, 24), generator=torch.Generator().manual_seed(0))
    weights = []
    for make in ("library", "per-tensor loop"):
        torch.manual_seed(0)
        model = load_model(tiny_model, task).train()
        optimizer = _optimizer(model, TrainConfig(lr=1e-3))
        if make == "per-tensor loop":
            for group in optimizer.param_groups:
                group["foreach"] = False
        else:
            assert all(group["foreach"] for group in optimizer.param_groups)
        for _ in range(3):
            model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.square().sum().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def per_example_padding(examples, pad_token_id, multiple):
    """The collator as it was: one small tensor per example, copied into a zeroed batch."""
    longest = max(len(e["input_ids"]) for e in examples)
    if multiple:
        longest = -(-longest // multiple) * multiple
    keys = [k for k in ("input_ids", "token_type_ids") if k in examples[0]]
    batch = {k: torch.zeros(len(examples), longest, dtype=torch.long) for k in (*keys, "attention_mask")}
    batch["input_ids"].fill_(pad_token_id)
    for i, example in enumerate(examples):
        n = len(example["input_ids"])
        for k in keys:
            batch[k][i, :n] = torch.tensor(example[k])
        batch["attention_mask"][i, :n] = 1
    return batch


@pytest.mark.parametrize("multiple", [None, 8])
def test_the_collator_pads_as_one_tensor_per_example_did(tiny, multiple):
    task = get_task("rte")
    data = prepare_data(tiny, task, load_tokenizer(tiny.model))
    examples = data["train"].select(range(11)).to_list()
    batch = PadCollator(pad_token_id=7, pad_to_multiple_of=multiple)(examples)
    expected = per_example_padding(examples, 7, multiple)
    assert list(batch) == ["input_ids", "token_type_ids", "attention_mask", "labels", "rows"]
    for key, value in expected.items():
        assert batch[key].dtype == torch.long and torch.equal(batch[key], value), key
    assert batch["rows"].tolist() == list(range(11)) and batch["labels"].dtype == torch.long


def test_fp16_skips_the_schedule_step_with_the_update_the_scaler_skips(tiny, monkeypatch):
    """An overflowing fp16 step is skipped by the GradScaler; the learning-rate schedule must not move on without it."""
    schedulers = []

    def schedule(optimizer, warmup, total):
        schedulers.append(_linear_schedule(optimizer, warmup, total))
        return schedulers[-1]

    class OverflowOnce(Supervised):  # a finite first loss whose fp16 gradients overflow: the scaler skips that step
        calls = 0

        def loss(self, logits, batch, epoch):
            OverflowOnce.calls += 1
            loss = super().loss(logits, batch, epoch)
            return loss * 1e30 if OverflowOnce.calls == 1 else loss

    monkeypatch.setattr(train_module, "_linear_schedule", schedule)
    task = get_task("rte")
    cfg = dataclasses.replace(tiny, device="cpu", amp="fp16", epochs=1)
    data = prepare_data(cfg, task, load_tokenizer(cfg.model))
    seed_everything(5)
    model = load_model(cfg.model, task)
    fit(model, data["train"], {"validation": data["validation"]}, task, OverflowOnce(task), cfg.train_config(progress=False))
    steps = len(data["train"]) // cfg.batch_size  # 48 examples, batch 8: 6 optimiser steps, the first skipped
    assert OverflowOnce.calls == steps and schedulers[0].last_epoch == steps - 1
