"""scripts/pool_prior.py's EM prior re-estimate on a hand-made label shift."""

import numpy as np
import pool_prior


def test_em_recovers_the_shifted_prior_of_a_calibrated_classifier():
    likelihood = np.array([[0.9, 0.1], [0.2, 0.8]])  # p(x | y): rows are classes, columns the two kinds of text
    pool_prior_true = np.array([0.8, 0.2])
    counts = np.round(1000 * pool_prior_true[:, None] * likelihood).astype(int)  # texts of each (class, kind)
    kinds = np.concatenate([np.full(counts[:, k].sum(), k) for k in range(2)])
    posterior = likelihood.T * 0.5  # a classifier trained under uniform shares: p(y | x) ∝ p(x | y) / 2
    probs = (posterior / posterior.sum(axis=1, keepdims=True))[kinds]
    estimate = pool_prior.em_prior(probs, np.array([0.5, 0.5]))
    np.testing.assert_allclose(estimate, pool_prior_true, atol=1e-3)


def test_a_folder_that_is_not_a_recipe_run_stops_with_the_fix(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match=r"not an `ssl-text recipe` output_dir .* runs/quickstart/seed_0/recipe"):
        pool_prior.check(str(tmp_path))
