"""Zero-inflated lognormal (ZILN) distribution: loss, mean and quantiles.

The network outputs three numbers per customer: the logit of ``p`` (probability of any spend),
and ``mu``, ``sigma`` of the lognormal spend given a purchase (Wang, Liu & Miao, 2019).

* loss = BCE(1[y > 0], logit) - 1[y > 0] * log LogNormal(y; mu, sigma), averaged over the batch;
* E[y] = p * exp(mu + sigma^2 / 2);
* quantiles are those of the whole mixture: 0 below ``1 - p``, otherwise the lognormal quantile
  at ``(q - (1 - p)) / p``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special

SIGMA_MIN = 1e-3


def split_outputs(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logit, mu, sigma) from raw network outputs of shape ``(n, 3)``."""
    logit, mu, raw_sigma = out[:, 0], out[:, 1], out[:, 2]
    sigma = torch.nn.functional.softplus(raw_sigma) + SIGMA_MIN
    return logit, mu, sigma


def ziln_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean ZILN negative log-likelihood of ``y`` (shape ``(n,)``, ``y >= 0``)."""
    out = out.float()
    logit, mu, sigma = split_outputs(out)
    positive = (y > 0).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, positive, reduction="none")
    safe_y = torch.where(y > 0, y, torch.ones_like(y))
    log_y = torch.log(safe_y)
    log_pdf = (-log_y - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
               - (log_y - mu) ** 2 / (2 * sigma**2))
    return (bce - positive * log_pdf).mean()


def ziln_mean_torch(out: torch.Tensor) -> torch.Tensor:
    """Expected value ``p * exp(mu + sigma^2 / 2)`` of raw outputs ``(n, 3)``, differentiable.

    The same clamp of the exponent as :func:`ziln_mean`, so attributions (integrated gradients)
    explain exactly the number that is reported as ``predicted_clv``.
    """
    logit, mu, sigma = split_outputs(out.float())
    return torch.sigmoid(logit) * torch.exp(torch.clamp(mu + sigma**2 / 2, max=50.0))


def ziln_mean(logit: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Expected value ``p * exp(mu + sigma^2 / 2)``."""
    return special.expit(logit) * np.exp(np.minimum(mu + sigma**2 / 2, 50.0))


def ziln_quantile(q: float, logit: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The ``q`` quantile of the zero-inflated lognormal mixture."""
    p = special.expit(logit)
    inner = np.clip((q - (1 - p)) / np.maximum(p, 1e-12), 1e-12, 1 - 1e-12)
    value = np.exp(np.minimum(mu + sigma * special.ndtri(inner), 50.0))
    return np.where(q <= 1 - p, 0.0, value)


#: Bisection steps of :func:`ziln_mixture_quantile` (on the log scale; enough for float64).
MIXTURE_STEPS = 64


def ziln_mixture_quantile(q: float, logit: np.ndarray, mu: np.ndarray,
                          sigma: np.ndarray) -> np.ndarray:
    """The ``q`` quantile of an equal-weight mixture of ZILN distributions.

    Parameters
    ----------
    q
        The probability level.
    logit, mu, sigma
        ``[n, m]``: each row's ``m`` members (e.g. the networks of a seed ensemble).

    Returns
    -------
    ``[n]``: 0 where the mixture's probability of no spend is at least ``q``, else the root of
    the mixture's distribution function, found by bisection on the log scale below the
    members' largest quantile (a mixture's quantile is at most its members' largest). With one
    member it is :func:`ziln_quantile`.
    """
    if logit.shape[1] == 1:
        return ziln_quantile(q, logit[:, 0], mu[:, 0], sigma[:, 0])
    p = special.expit(logit)
    members = ziln_quantile(q, logit, mu, sigma)
    lo = (mu + sigma * special.ndtri(1e-12)).min(axis=1)  # below every member's spend
    hi = np.log(np.maximum(members.max(axis=1), 1e-300))
    for _ in range(MIXTURE_STEPS):
        mid = (lo + hi) / 2
        cdf = ((1 - p) + p * special.ndtr((mid[:, None] - mu) / sigma)).mean(axis=1)
        below = cdf < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.where(q <= (1 - p).mean(axis=1), 0.0, np.exp(hi))
