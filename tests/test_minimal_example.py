"""examples/dcs_minimal.py, the one-file DCS, computes what dcs_lib computes.

The file imports nothing from dcs_lib, so each piece is checked against the library's: the
weight update and the loss on random tensors, then a whole run (teacher, its logits, the
student's losses, the weights after every update, dev scores) on real SST-2 examples. On the CPU
the two are the same operations on tensors of the same shapes in the same order, so the test
asks for equality, not closeness.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import torch

from dcs_lib import losses, methods, weighting

from .conftest import ROOT

EXAMPLE = ROOT / "examples" / "dcs_minimal.py"


@pytest.fixture(scope="module")
def minimal():
    spec = importlib.util.spec_from_file_location("dcs_minimal", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_short_and_free_of_dcs_lib():
    lines = EXAMPLE.read_text().splitlines()
    assert len(lines) <= 230
    assert not [line for line in lines if line.lstrip().startswith(("import dcs_lib", "from dcs_lib"))]


@pytest.mark.parametrize("clip_max", [10.0, 3.0, 1.5])
def test_weight_update_equals_library(minimal, clip_max):
    generator = torch.Generator().manual_seed(0)
    w = torch.ones(200)
    for _ in range(6):  # accumulate, so that the clip is reached
        d = (torch.rand(200, generator=generator) < 0.3).float()
        ours = minimal.update_weights(w, d, 1.0, 0.1, clip_max)
        theirs = weighting.update_weights(w, d, lam=1.0, clip_min=0.1, clip_max=clip_max)
        assert torch.equal(ours, theirs)
        w = ours
    assert float(w.max()) == pytest.approx(clip_max) or clip_max == 10.0


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_loss_and_disagreement_equal_library(minimal, alpha):
    generator = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(16, 3, generator=generator), torch.randn(16, 3, generator=generator)
    labels, weights = torch.randint(0, 3, (16,), generator=generator), torch.rand(16, generator=generator) + 0.1
    ours = minimal.dcs_loss(student, labels, teacher, weights, alpha, 2.0)
    assert torch.equal(ours, losses.dcs_loss(student, labels, teacher, weights, alpha, 2.0))
    assert torch.equal(minimal.disagreement(student, teacher), weighting.disagreement(student, teacher))


def test_batches_equal_library_sampler(minimal):
    from dcs_lib.data import LengthBatchSampler

    lengths = torch.randint(3, 40, (530,), generator=torch.Generator().manual_seed(2)).tolist()
    for shuffle in (True, False):
        sampler = LengthBatchSampler(lengths, 8, shuffle=shuffle, seed=7)
        sampler.set_epoch(3)
        ours = minimal.batches(lengths, 8, 7, 3 if shuffle else 0, shuffle)
        assert [b.tolist() for b in ours] == list(sampler)


def test_whole_run_equals_library(minimal, glue, monkeypatch):
    """Same data, seed and settings: identical teacher logits, losses, weights and dev scores.

    The bundled MiniLM at a high learning rate: small models on a few examples tend to predict one
    class, and then student and teacher never disagree; here 3 and 9 of 48 examples do.
    """
    settings = dict(task="sst2", data_dir=str(glue), n_train=48, n_dev=32, max_length=24,
                    epochs=3, teacher_epochs=1, batch_size=8, lr=3e-4, seed=1)
    updates, teachers = [], []

    class Recording(methods.Weighted):
        def __init__(self, task, cfg, labels, teacher_logits, device):
            super().__init__(task, cfg, labels, teacher_logits, device)
            teachers.append(teacher_logits.cpu())

        def end_epoch(self, epoch, train_logits, predict_train):
            stats = super().end_epoch(epoch, train_logits, predict_train)
            if "discordant" in stats:
                updates.append(self.weights.cpu().clone())
            return stats

    monkeypatch.setattr(methods, "Weighted", Recording)
    record = methods.run(methods.RunConfig(method="dcs", **settings), cache_dir=None, progress=False)

    ours = minimal.main(minimal.Config(model="", **settings), log=lambda line: None)
    assert torch.equal(ours["teacher_logits"], teachers[0])
    assert [r["train_loss"] for r in ours["student"]] == [r["train_loss"] for r in record["epochs"]]
    ours_updates = [r["weights"] for r in ours["student"] if "weights" in r]
    assert len(ours_updates) == len(updates) == 2  # after the plain epoch and after epoch 2, not after the last
    for a, b in zip(ours_updates, updates):
        assert torch.equal(a, b)
    assert [r["weights"]["discordant"] for r in record["epochs"][:2]] == [3 / 48, 9 / 48]  # the weights moved
    assert [r["dev"]["accuracy"] for r in ours["student"]] == pytest.approx(
        [100 * r["dev"]["accuracy"] for r in record["epochs"]], abs=1e-9
    )


def test_command_line_prints_epochs_and_weights(tiny_model, glue):
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--task", "rte", "--n-train", "24", "--n-dev", "16", "--epochs", "2",
         "--teacher-epochs", "1", "--max-length", "32", "--batch-size", "8", "--model", tiny_model,
         "--data-dir", str(glue)],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    assert "teacher: 1 epochs on 24 examples" in out
    assert "epoch 2/2" in out and "dev accuracy" in out and "w.ess" in out


def test_unknown_task_is_refused_with_the_choices(minimal, capsys):
    with pytest.raises(SystemExit):
        minimal.parse(["--task", "cola"])
    err = capsys.readouterr().err
    assert "'cola'" in err and "sst2" in err and "mrpc" in err
    assert minimal.parse(["--task", "mrpc"]).task == "mrpc"
