"""Losses against hand-computed values, and the identities that tie the methods together."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dcs_lib.losses import cross_entropy, dcs_loss, kd_kl, squared_error, supervised, weighted_mean


def test_kd_kl_by_hand():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[2.0 * math.log(3.0), 0.0]])  # at T = 2: teacher probs (3/4, 1/4)
    p = torch.tensor([0.75, 0.25])
    expected = 4 * float((p * (p.log() - math.log(0.5))).sum())
    assert kd_kl(student, teacher, 2.0).item() == pytest.approx(expected, rel=1e-6)


def test_kd_kl_is_zero_for_identical_logits_and_matches_torch():
    logits = torch.randn(5, 3)
    assert torch.allclose(kd_kl(logits, logits, 3.0), torch.zeros(5), atol=1e-6)
    student, teacher = torch.randn(5, 3), torch.randn(5, 3)
    reference = (
        F.kl_div(F.log_softmax(student / 2, -1), F.log_softmax(teacher / 2, -1), reduction="none", log_target=True).sum(
            -1
        )
        * 4
    )
    assert torch.allclose(kd_kl(student, teacher, 2.0), reference, atol=1e-6)


def test_cross_entropy_and_squared_error_by_hand():
    assert cross_entropy(torch.tensor([[0.0, 0.0]]), torch.tensor([1])).item() == pytest.approx(math.log(2))
    assert squared_error(torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 3.0])).tolist() == [1.0, 0.0]


def test_weighted_mean_by_hand():
    assert weighted_mean(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 3.0])).item() == pytest.approx(2.5)
    assert weighted_mean(torch.tensor([1.0, 3.0])).item() == 2.0


def test_weights_only_rebalance_examples_within_a_batch():
    losses, weights = torch.tensor([0.5, 2.0, 1.0]), torch.tensor([1.0, 4.0, 2.0])
    assert weighted_mean(losses, 10 * weights).item() == pytest.approx(weighted_mean(losses, 0.1 * weights).item())
    assert weighted_mean(losses, torch.full((3,), 10.0)).item() == pytest.approx(losses.mean().item())
    s, t, y = torch.randn(3, 2), torch.randn(3, 2), torch.tensor([0, 1, 1])
    heavy, light = dcs_loss(s, y, t, torch.full((3,), 10.0)), dcs_loss(s, y, t, torch.full((3,), 0.1))
    assert heavy.item() == pytest.approx(light.item())


def test_dcs_loss_by_hand():
    s, t, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 1])
    w = torch.tensor([2.0, 1.0])
    per = 0.3 * cross_entropy(s, y) + 0.7 * kd_kl(s, t, 1.5)
    assert dcs_loss(s, y, t, w, alpha=0.3, temperature=1.5).item() == pytest.approx(float((w * per).sum() / 3))


def test_regression_dcs_loss():
    s, t, y = torch.tensor([[1.0], [2.0]]), torch.tensor([[2.0], [2.0]]), torch.tensor([1.0, 4.0])
    # 0.5 * (0 + 4) / 2 + 0.5 * (1 + 0) / 2
    assert dcs_loss(s, y, t, alpha=0.5, regression=True).item() == pytest.approx(1.25)


logits = st.integers(1, 8).flatmap(
    lambda n: st.integers(2, 4).flatmap(
        lambda c: st.tuples(
            st.lists(st.lists(st.floats(-8, 8), min_size=c, max_size=c), min_size=n, max_size=n),
            st.lists(st.lists(st.floats(-8, 8), min_size=c, max_size=c), min_size=n, max_size=n),
            st.lists(st.integers(0, c - 1), min_size=n, max_size=n),
        )
    )
)


@settings(max_examples=150, deadline=None)
@given(logits, st.floats(0.0, 1.0), st.floats(0.5, 5.0))
def test_uniform_weights_give_the_kd_loss(data, alpha, temperature):
    s, t, y = torch.tensor(data[0]), torch.tensor(data[1]), torch.tensor(data[2])
    kd = (alpha * cross_entropy(s, y) + (1 - alpha) * kd_kl(s, t, temperature)).mean()
    uniform = torch.ones(len(y)) * 3.7  # any constant weight is uniform
    assert dcs_loss(s, y, t, uniform, alpha, temperature).item() == pytest.approx(kd.item(), rel=1e-5, abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(logits)
def test_alpha_one_with_uniform_weights_is_exactly_vanilla_ce(data):
    s, t, y = torch.tensor(data[0]), torch.tensor(data[1]), torch.tensor(data[2])
    vanilla = weighted_mean(supervised(s, y))  # what the vanilla objective computes
    assert torch.equal(dcs_loss(s, y, t, None, alpha=1.0), vanilla)
    assert torch.equal(dcs_loss(s, y, t, torch.ones(len(y)), alpha=1.0), vanilla)
    assert torch.allclose(vanilla, F.cross_entropy(s, y), atol=1e-6)


def test_weighted_mean_divided_by_the_batch_size():
    """norm="mean": weights that average 1 over the training set scale a batch's loss (AdaBoost's global weighting)."""
    losses_, weights = torch.tensor([2.0, 0.0]), torch.tensor([math.e, 1.0])
    assert weighted_mean(losses_, weights).item() == pytest.approx(2 * math.e / (math.e + 1))  # 1.46: rebalanced
    assert weighted_mean(losses_, weights, norm="mean").item() == pytest.approx(math.e)
    heavy, light = torch.full((4,), 10.0), torch.full((4,), 0.1)
    loss = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert weighted_mean(loss, heavy, norm="mean").item() == pytest.approx(100 * weighted_mean(loss, light, norm="mean").item())
    assert weighted_mean(loss, torch.ones(4), norm="mean").item() == weighted_mean(loss).item()
    student, teacher, labels = torch.randn(4, 2), torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    assert dcs_loss(student, labels, teacher, heavy, norm="mean").item() == pytest.approx(
        10 * dcs_loss(student, labels, teacher).item()
    )
    with pytest.raises(ValueError, match="unknown weight normalisation 'sum'"):
        weighted_mean(loss, heavy, norm="sum")
