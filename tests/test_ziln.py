import numpy as np
import pytest
import torch
from scipy import stats

from clv_models.models.ziln import split_outputs, ziln_loss, ziln_mean, ziln_quantile


def test_loss_matches_the_formula_by_hand():
    out = torch.tensor([[0.3, 1.0, 0.2], [1.2, 0.5, -0.4]], dtype=torch.float64)
    y = torch.tensor([0.0, 2.0], dtype=torch.float64)
    logit, mu, sigma = (t.numpy() for t in split_outputs(out))
    p = 1 / (1 + np.exp(-logit))
    expected_zero = -np.log(1 - p[0])
    expected_pos = -np.log(p[1]) - stats.lognorm.logpdf(2.0, s=sigma[1], scale=np.exp(mu[1]))
    got = float(ziln_loss(out, y))
    assert got == pytest.approx((expected_zero + expected_pos) / 2, rel=1e-5)


def test_loss_gradients_are_finite_for_zeros_and_large_values():
    out = torch.zeros((3, 3), requires_grad=True)
    loss = ziln_loss(out, torch.tensor([0.0, 1e-4, 1e6]))
    loss.backward()
    assert torch.isfinite(out.grad).all()


def test_mean_and_quantiles_match_sampling():
    rng = np.random.default_rng(0)
    logit, mu, sigma = np.array([0.4]), np.array([3.0]), np.array([0.8])
    p = 1 / (1 + np.exp(-logit[0]))
    samples = np.where(rng.random(400_000) < p, rng.lognormal(mu[0], sigma[0], 400_000), 0.0)
    assert ziln_mean(logit, mu, sigma)[0] == pytest.approx(samples.mean(), rel=0.02)
    for q in (0.1, 0.5, 0.9):
        assert ziln_quantile(q, logit, mu, sigma)[0] == pytest.approx(
            np.quantile(samples, q), rel=0.03, abs=1e-9)
    # Below the zero mass the quantile is exactly 0.
    assert ziln_quantile(0.2, np.array([-1.0]), mu, sigma)[0] == 0.0


def test_torch_mean_matches_the_numpy_mean_and_has_gradients():
    from clv_models.models.ziln import ziln_mean_torch

    out = torch.tensor([[0.4, 3.0, 0.1], [-2.0, 1.0, -1.0], [1.0, 80.0, 0.5]],
                       dtype=torch.float64, requires_grad=True)
    value = ziln_mean_torch(out)
    logit, mu, sigma = (t.detach().numpy() for t in split_outputs(out))
    np.testing.assert_allclose(value.detach().numpy(), ziln_mean(logit, mu, sigma), rtol=1e-6)
    value.sum().backward()
    assert torch.isfinite(out.grad).all()
