import pytest
import torch

from ssl_text.training.running_means import RunningMeans


def test_means_pool_sums_and_counts_and_drop_keys_never_counted():
    meter = RunningMeans()
    meter.add("loss", torch.tensor(2.0))
    meter.add("loss", torch.tensor(4.0))
    meter.add("mask_rate_PER", torch.tensor(1.0), torch.tensor(4.0))  # 1 of 4 PER tokens confident
    meter.add("mask_rate_PER", torch.tensor(6.0), torch.tensor(6.0))  # 6 of 6: pooled 7/10, not (1/4 + 1) / 2
    meter.add("mask_rate_LOC", torch.tensor(0.0), torch.tensor(0.0))  # no LOC token in the window
    assert meter.means() == pytest.approx({"loss": 3.0, "mask_rate_PER": 0.7})


def test_merge_adds_a_step_into_the_window_and_python_floats_are_accepted():
    window, step = RunningMeans(), RunningMeans()
    window.add("loss", 1.0)
    step.add("loss", torch.tensor(3.0))
    step.add("lambda_u", 0.5)
    window.merge(step)
    assert window.means() == pytest.approx({"loss": 2.0, "lambda_u": 0.5})
    assert RunningMeans().means() == {}
