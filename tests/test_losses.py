"""Shared loss math on hand-made inputs."""

import math

import pytest
import torch

from ssl_text.algorithms.losses import (
    confidence_mask,
    kl_from_probs,
    linear_rampup,
    masked_mean,
    sharpen,
    sigmoid_rampup,
    soft_cross_entropy,
    tsa_threshold,
)


def test_confidence_mask_includes_exactly_tau():
    probs = torch.tensor([[0.95, 0.05], [0.9499, 0.0501], [0.5, 0.5], [0.02, 0.98]])
    assert confidence_mask(probs, 0.95).tolist() == [1.0, 0.0, 0.0, 1.0]


def test_confidence_mask_works_per_token():
    probs = torch.tensor([[[0.99, 0.01], [0.6, 0.4]]])  # [B=1, L=2, C=2]
    assert confidence_mask(probs, 0.9).tolist() == [[1.0, 0.0]]


def test_sharpen_known_values():
    probs = torch.tensor([[0.6, 0.4]])
    expected = torch.tensor([[0.36 / 0.52, 0.16 / 0.52]])  # T = 0.5 squares then renormalises
    assert torch.allclose(sharpen(probs, 0.5), expected)
    assert torch.allclose(sharpen(probs, 1.0), probs)
    assert sharpen(probs, 0.01)[0, 0] > 0.999  # T -> 0 approaches one-hot


@pytest.mark.parametrize(
    "schedule,progress,expected",
    [
        ("linear", 0.0, 0.25),
        ("linear", 0.5, 0.25 + 0.5 * 0.75),
        ("linear", 1.0, 1.0),
        ("exp", 1.0, 1.0),
        ("exp", 0.0, math.exp(-5) * 0.75 + 0.25),
        ("log", 0.0, 0.25),
        ("log", 0.5, (1 - math.exp(-2.5)) * 0.75 + 0.25),
    ],
)
def test_tsa_threshold_schedules(schedule, progress, expected):
    assert tsa_threshold(schedule, int(progress * 100), 100, 4) == pytest.approx(expected)


def test_tsa_orders_schedules_as_in_the_uda_paper():
    mid = [tsa_threshold(s, 30, 100, 4) for s in ("exp", "linear", "log")]
    assert mid[0] < mid[1] < mid[2]  # exp releases the signal late, log early


def test_tsa_rejects_unknown_schedule():
    with pytest.raises(ValueError, match="unknown TSA schedule"):
        tsa_threshold("cosine", 1, 10, 2)


def test_soft_cross_entropy_equals_hard_ce_for_one_hot():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    one_hot = torch.tensor([[1.0, 0.0, 0.0]])
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0]))
    assert torch.allclose(soft_cross_entropy(logits, one_hot), expected)


def test_kl_zero_for_matching_distribution_and_positive_otherwise():
    logits = torch.tensor([[1.0, 2.0]])
    probs = torch.softmax(logits, -1)
    assert kl_from_probs(probs, logits).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_from_probs(torch.tensor([[0.9, 0.1]]), logits).item() > 0.1


def test_masked_mean_divides_by_batch_not_mask():
    values = torch.tensor([2.0, 4.0, 6.0, 8.0])
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert masked_mean(values, mask).item() == pytest.approx(2.0)  # (2 + 6) / 4


def test_rampups():
    assert linear_rampup(5, 10) == 0.5
    assert linear_rampup(50, 10) == 1.0
    assert linear_rampup(3, 0) == 1.0
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(10, 10) == 1.0
