"""The DCS weight update: hand-computed cases and properties that must hold for any input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dcs_lib.weighting import disagreement, rescale, step_size, update_weights, weight_stats


def test_fixed_step_by_hand():
    # 4 samples, one discordant: pre-scale weights (1, 1, 1, e); mean (3 + e) / 4.
    new = update_weights(torch.ones(4), torch.tensor([0.0, 0.0, 0.0, 1.0]), lam=1.0)
    low = 4 / (3 + math.e)
    assert new.tolist() == pytest.approx([low, low, low, math.e * low], rel=1e-6)


def test_adaboost_step_by_hand():
    # eps = 1/4 -> step = 0.5 * ln(3); discordant weight sqrt(3) before rescaling.
    d = torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert step_size(torch.ones(4), d, 1.0, "adaboost") == pytest.approx(0.5 * math.log(3))
    new = update_weights(torch.ones(4), d, lam=1.0, step="adaboost")
    low = 4 / (3 + math.sqrt(3))
    assert new.tolist() == pytest.approx([low, low, low, math.sqrt(3) * low], rel=1e-6)


def test_adaboost_step_is_one_sided_the_square_root_of_adaboosts_ratio():
    # eps = 1/5: AdaBoost's ratio (1 - eps) / eps = 4; raising the discordant weight alone gives sqrt(4) = 2.
    d = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0])
    new = update_weights(torch.ones(5), d, lam=1.0, step="adaboost")
    assert float(new[4] / new[0]) == pytest.approx(2.0, rel=1e-6)
    new = update_weights(torch.ones(5), d, lam=2.0, step="adaboost")  # ((1 - eps) / eps) ** (lam / 2)
    assert float(new[4] / new[0]) == pytest.approx(4.0, rel=1e-6)


def test_adaboost_step_never_negative():
    # eps = 3/4 > 0.5: AdaBoost would shrink discordant samples; we hold the step at 0.
    assert step_size(torch.ones(4), torch.tensor([1.0, 1.0, 1.0, 0.0]), 1.0, "adaboost") == 0.0


def test_accumulate_versus_restart():
    d = torch.tensor([1.0, 0.0])
    once = update_weights(torch.ones(2), d, lam=1.0)
    twice = update_weights(once, d, lam=1.0)
    restarted = update_weights(once, d, lam=1.0, accumulate=False)
    assert twice[0] / twice[1] == pytest.approx(math.e**2, rel=1e-5)
    assert restarted.tolist() == pytest.approx(once.tolist())


def test_clipping_keeps_mean_one_and_bounds():
    d = torch.zeros(100)
    d[0] = 1.0
    new = update_weights(torch.ones(100), d, lam=10.0)  # exp(10) would be far past the cap
    assert float(new.max()) == pytest.approx(10.0)
    assert float(new.mean()) == pytest.approx(1.0, abs=1e-6)
    assert float(new.min()) >= 0.1


def test_rescale_rejects_a_range_without_one():
    with pytest.raises(ValueError, match="must contain 1"):
        rescale(torch.ones(3), 2.0, 10.0)


def test_negative_lambda_is_refused():
    with pytest.raises(ValueError, match="lambda must be >= 0"):
        update_weights(torch.ones(3), torch.zeros(3), lam=-0.1)


def test_disagreement_classification_and_regression():
    student = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    assert disagreement(student, teacher).tolist() == [0.0, 1.0, 1.0]
    assert disagreement(student, torch.tensor([0, 1, 1])).tolist() == [0.0, 0.0, 1.0]  # against gold ids
    scores = torch.tensor([[1.0], [2.0], [3.0]])
    assert disagreement(scores, torch.tensor([1.4, 2.6, 3.0]), regression=True, delta=0.5).tolist() == [0.0, 1.0, 0.0]


def test_weight_stats():
    stats = weight_stats(torch.tensor([1.0, 1.0, 2.0, 0.0]), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert stats["mean"] == 1.0 and stats["max"] == 2.0 and stats["discordant"] == 0.5
    assert stats["ess"] == pytest.approx(16 / 6 / 4)
    assert weight_stats(torch.ones(7))["ess"] == pytest.approx(1.0)


weights_and_flags = st.integers(2, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(0.1, 10.0), min_size=n, max_size=n),
        st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n),
    )
)
settings_ = dict(
    lam=st.floats(0.0, 5.0),
    step=st.sampled_from(["fixed", "adaboost"]),
    accumulate=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(data=weights_and_flags, **settings_)
def test_weights_stay_positive_bounded_and_average_one(data, lam, step, accumulate):
    w, d = map(torch.tensor, data)
    new = update_weights(w.double(), d.double(), lam=lam, step=step, accumulate=accumulate)
    assert bool((new > 0).all())
    assert float(new.min()) >= 0.1 - 1e-9 and float(new.max()) <= 10.0 + 1e-9
    assert float(new.mean()) == pytest.approx(1.0, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(data=weights_and_flags, **settings_)
def test_a_discordant_sample_never_loses_weight_to_a_concordant_one(data, lam, step, accumulate):
    w, d = (torch.tensor(x).double() for x in data)
    new = update_weights(w, d, lam=lam, step=step, accumulate=accumulate)
    base = w if accumulate else torch.ones_like(w)
    for i in torch.nonzero(d).flatten():
        for j in torch.nonzero(d == 0).flatten():
            if base[i] >= base[j]:
                assert new[i] >= new[j] - 1e-9


@settings(max_examples=200, deadline=None)
@given(weights_and_flags, st.sampled_from(["fixed", "adaboost"]))
def test_lambda_zero_leaves_uniform_weights_uniform(data, step):
    d = torch.tensor(data[1]).double()
    new = update_weights(torch.ones_like(d), d, lam=0.0, step=step)
    assert torch.allclose(new, torch.ones_like(d))
