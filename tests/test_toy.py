"""The synthetic DCS toy: the library's pieces, deterministic, and honest about its teacher."""

from __future__ import annotations

import torch

from dcs_lib import weighting
from dcs_lib.toy import ToyConfig, accuracy, gains, make_data, make_model, out_of_fold_logits, sweep, train

SMALL = ToyConfig(n_train=60, n_test=200, epochs=3)


def test_lambda_zero_keeps_uniform_weights_and_the_loop_logs_every_update():
    x, y, _, _ = make_data(SMALL, 0)
    teacher = torch.randn(len(x), 2)
    log = []
    train(make_model(SMALL, 1), x, y, ToyConfig(**{**SMALL.__dict__, "lam": 0.0}), 3, 0, teacher, log)
    assert len(log) == 2 and all(entry["max"] == 1.0 and entry["min"] == 1.0 for entry in log)


def test_the_toy_update_is_the_librarys():
    x, y, _, _ = make_data(SMALL, 0)
    teacher = torch.randn(len(x), 2)
    log = []
    student = train(make_model(SMALL, 1), x, y, SMALL, 2, 0, teacher, log)  # one plain epoch, one update
    # Replay: the update after epoch 1 used the student after epoch 1, which a 1-epoch run reproduces.
    after_one = train(make_model(SMALL, 1), x, y, SMALL, 1, 0)
    with torch.no_grad():
        disagree = weighting.disagreement(after_one.eval()(x), teacher)
    expected = weighting.weight_stats(weighting.update_weights(torch.ones(len(x)), disagree, lam=SMALL.lam), disagree)
    assert log[0] == expected and student is not None


def test_out_of_fold_rows_come_from_the_teacher_that_did_not_see_them():
    x, y, _, _ = make_data(SMALL, 0)
    logits = out_of_fold_logits(x, y, SMALL, 2, seed=3)
    fold = torch.randperm(len(x), generator=torch.Generator().manual_seed(3)) % 2
    held_out_teacher = train(make_model(SMALL, 3), x[fold != 0], y[fold != 0], SMALL, 2, 3)
    with torch.no_grad():
        assert torch.equal(logits[fold == 0], held_out_teacher.eval()(x[fold == 0]))


def test_the_sweep_is_deterministic_and_a_memorising_teacher_hurts_the_reweighting():
    cfg = ToyConfig()
    first = sweep(cfg, teacher_epochs=(4, 64), seeds=[0])
    assert first == sweep(cfg, teacher_epochs=(4, 64), seeds=[0])
    table = gains(first)
    assert table.loc[64, "teacher_train"] > 95  # it has memorised the noisy labels
    assert table.loc[64, "dcs - kd"] < table.loc[4, "dcs - kd"]
    x, y, x_test, y_test = make_data(cfg, 0)
    assert 0.5 < accuracy(train(make_model(cfg, 0), x, y, cfg, cfg.epochs, 0), x_test, y_test) <= 1


def test_weight_norm_mean_is_the_batch_norm_for_uniform_weights_and_differs_once_they_move():
    x, y, _, _ = make_data(SMALL, 0)
    teacher = torch.randn(len(x), 2)

    def student(**changes):
        model = train(make_model(SMALL, 1), x, y, ToyConfig(**{**SMALL.__dict__, **changes}), 3, 0, teacher)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    # lambda = 0: every weight stays 1, so a batch's weight sum is its size and both norms agree
    assert torch.allclose(student(lam=0.0, weight_norm="mean"), student(lam=0.0, weight_norm="batch"))
    assert not torch.allclose(student(weight_norm="mean"), student(weight_norm="batch"))
