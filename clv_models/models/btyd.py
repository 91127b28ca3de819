"""BG/NBD + Gamma-Gamma: the textbook "buy 'til you die" reference model, fitted by maximum
likelihood.

Two independent models on the BTYD-convention RFM features of the ``customer_rfm`` feature view
(``frequency`` = repeat purchase days x, ``recency_days`` = first to last purchase day t_x,
``t_days`` = first purchase day to the as-of date T, ``monetary_value`` = mean revenue of the
repeat purchase days z̄; all times in days):

* **BG/NBD** (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"): while alive a
  customer purchases as a Poisson process with rate λ ~ Gamma(r, α); after each purchase they
  drop out with probability p ~ Beta(a, b). It gives the expected number of purchase days and the
  probability of at least one purchase in (T, T + horizon].
* **Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie 2013, "The
  Gamma-Gamma Model of Monetary Value"): the value of a purchase is Gamma(p, ν) with
  ν ~ Gamma(q, γ), independent of the purchase process. It shrinks each customer's observed mean
  spend towards the population mean, more so the fewer purchases it rests on.

``predicted_clv`` = E[purchases in the horizon] x E[spend per purchase]. Everything here is
numpy/scipy (``gammaln``, ``hyp2f1``, L-BFGS-B on log-parameters with analytic gradients); the
``lifetimes`` package is not needed. Time units are whatever the inputs use: fitted in days, α is
7 times the weekly α of the papers and r, a, b are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import integrate, optimize, special

from clv_models.models.base import CLVModel, Features, Prediction, n_rows

log = logging.getLogger(__name__)

FEATURES = ["frequency", "recency_days", "t_days", "monetary_value"]
WEIGHTS_FILE = "btyd.json"
# Log-parameters are kept in [-LOG_BOUND, LOG_BOUND]: wide enough for any real shop (e^18 ~ 7e7),
# narrow enough that exp() never overflows when a parameter runs off to a degenerate limit
# (e.g. b -> inf when nobody ever drops out).
LOG_BOUND = 18.0
# The closed form of E[Y(t)] divides by (a - 1); closer to 1 than this it is the mean of its
# values at 1 - A_EPS and 1 + A_EPS (the expectation is smooth in a: error of order A_EPS^2).
A_EPS = 1e-6


@dataclass(frozen=True)
class BGNBDParams:
    """BG/NBD parameters: purchase rate λ ~ Gamma(shape r, rate α), dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma parameters: spend per purchase ~ Gamma(shape p, rate ν), ν ~ Gamma(q, γ)."""

    p: float
    q: float
    gamma: float

    @property
    def mean_spend(self) -> float:
        """The population mean spend per purchase, E[Z] = pγ / (q - 1) (infinite for q <= 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")


# -- data preparation ------------------------------------------------------------------------------
def clean_rfm(frequency, recency, age) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coerce (x, t_x, T) to a consistent BTYD history.

    Missing values become 0, negatives 0, ``x`` is rounded to an integer count, ``T`` is at
    least ``t_x`` and ``t_x`` is 0 when there is no repeat purchase. A warehouse never produces
    inconsistent rows, but a model must not return NaN for a customer scored from a hand-made
    frame.
    """
    x = np.rint(np.clip(np.nan_to_num(np.asarray(frequency, float)), 0, None))
    tx = np.clip(np.nan_to_num(np.asarray(recency, float)), 0, None)
    T = np.clip(np.nan_to_num(np.asarray(age, float)), 0, None)
    tx = np.where(x > 0, tx, 0.0)
    T = np.maximum(T, tx)
    return x, tx, T


def _compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the columns and their counts: customers with the same history share one
    likelihood term, which makes the fit cost depend on distinct histories, not customers."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, j] for j in range(unique.shape[1])], counts.astype(float)


# -- BG/NBD ----------------------------------------------------------------------------------------
def bgnbd_log_likelihood(log_params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                         weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Weighted mean BG/NBD log-likelihood and its gradient in ``log(r, α, a, b)``.

    Per customer (Fader, Hardie & Lee 2005, eq. 6)::

        L = B(a, b+x)/B(a, b) · Γ(r+x)α^r/Γ(r) · [ (α+T)^-(r+x)
                                                  + 1{x>0} a/(b+x-1) (α+t_x)^-(r+x) ]

    The bracket is a log-sum-exp of its two terms, so large frequencies or ages never overflow.
    """
    r, alpha, a, b = np.exp(log_params)
    w = np.ones_like(x) if weights is None else weights
    repeat = x > 0
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    bx1 = np.where(repeat, b + x - 1, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + tx), -np.inf)
    lse = np.logaddexp(a3, a4)
    ll = a1 + a2 + lse
    w3, w4 = np.exp(a3 - lse), np.exp(a4 - lse)  # shares of the two bracket terms
    psi_ab, psi_abx = special.digamma(a + b), special.digamma(a + b + x)
    d_r = (special.digamma(r + x) - special.digamma(r) + np.log(alpha)
           - w3 * np.log(alpha + T) - w4 * np.log(alpha + tx))
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + tx)
    d_a = psi_ab - psi_abx + w4 / a
    d_b = (psi_ab + special.digamma(b + x) - special.digamma(b) - psi_abx
           - np.where(repeat, w4 / bx1, 0.0))
    total = w.sum()
    grad = np.array([(w * d).sum() for d in (d_r, d_alpha, d_a, d_b)]) / total
    return float((w * ll).sum() / total), grad * np.array([r, alpha, a, b])


def fit_bgnbd(frequency, recency, age) -> BGNBDParams:
    """Maximum-likelihood BG/NBD parameters for one calibration cross-section.

    L-BFGS-B on the log-parameters (so they stay positive) with the analytic gradient, from two
    starting points (the better optimum wins; the likelihood has no closed-form start).
    """
    x, tx, T = clean_rfm(frequency, recency, age)
    if x.size == 0:
        raise ValueError("BG/NBD: no customers to fit")
    (x, tx, T), w = _compress(x, tx, T)
    # Start: r = 1 and α matching the mean repeat rate, a = b = 1 (uniform dropout).
    rate = max(float((w * x).sum()), 1.0) / max(float((w * T).sum()), 1.0)
    starts = [np.log([1.0, 1.0 / rate, 1.0, 1.0]), np.log([0.25, 0.25 / rate, 0.8, 2.5])]
    best = None
    for start in starts:
        res = optimize.minimize(
            lambda z: tuple(-v for v in bgnbd_log_likelihood(z, x, tx, T, w)), start, jac=True,
            method="L-BFGS-B", bounds=[(-LOG_BOUND, LOG_BOUND)] * 4,
            options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-10})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    if not best.success:
        log.warning("BG/NBD fit did not report convergence: %s", best.message)
    return BGNBDParams(*(float(v) for v in np.exp(best.x)))


def bgnbd_log_odds_dead(params: BGNBDParams, x: np.ndarray, tx: np.ndarray,
                        T: np.ndarray) -> np.ndarray:
    """log[(1 - P(alive)) / P(alive)] = log[a/(b+x-1) ((α+T)/(α+t_x))^(r+x)], -inf for x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    bx1 = np.where(repeat, b + x - 1, 1.0)
    odds = np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
    return np.where(repeat, odds, -np.inf)


def bgnbd_prob_alive(params: BGNBDParams, x: np.ndarray, tx: np.ndarray,
                     T: np.ndarray) -> np.ndarray:
    """P(alive at T | x, t_x, T) (Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD
    model"): 1 when x = 0, since the BG/NBD customer can only drop out after a repeat purchase."""
    return special.expit(-bgnbd_log_odds_dead(params, x, tx, T))


def bgnbd_p_purchase(params: BGNBDParams, t: float, x: np.ndarray, tx: np.ndarray,
                     T: np.ndarray) -> np.ndarray:
    """P(at least one purchase in (T, T+t] | x, t_x, T).

    A customer who has dropped out buys nothing; one alive at T has, given the history, rate
    λ ~ Gamma(r+x, α+T) (the likelihood of λ given "alive through T" is λ^x e^(-λT)), and drops out
    only right after a purchase, so P(no purchase | alive) = E[e^(-λt)] = ((α+T)/(α+T+t))^(r+x)::

        P(X(T, T+t) = 0 | history) = 1 - P(alive) + P(alive) ((α+T)/(α+T+t))^(r+x)
    """
    alive = bgnbd_prob_alive(params, x, tx, T)
    log_none = -(params.r + x) * np.log1p(t / (params.alpha + T))
    return np.clip(alive * -np.expm1(log_none), 0.0, 1.0)


def bgnbd_expected_given_alive_quad(params: BGNBDParams, t: float, x: float, T: float) -> float:
    """E[purchases in (T, T+t] | alive at T] by quadrature over the dropout probability.

    Given alive at T, p ~ Beta(a, b+x) and λ ~ Gamma(r+x, α+T) independently, and a customer with
    (λ, p) makes (1 - e^(-λpt))/p purchases in t on average, so the expectation is
    E_p[(1 - ((α+T)/(α+T+pt))^(r+x)) / p]. A slow but always-finite check of the hyp2f1 form.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b

    def integrand(u: float) -> float:
        # Integrate over the Beta(a, b+x) quantile u, p = F^-1(u): the integrand is then bounded
        # and smooth however concentrated or singular the density of p is.
        p = special.betaincinv(a, b + x, u)
        if p <= 0.0:
            return (r + x) * t / (alpha + T)  # the limit of the expression below as p -> 0
        return float(-np.expm1(-(r + x) * np.log1p(p * t / (alpha + T))) / p)

    value, _ = integrate.quad(integrand, 0.0, 1.0, limit=500, epsabs=0.0, epsrel=1e-10)
    return value


def _given_alive(params: BGNBDParams, t: float, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T, x, T] in the Euler-transformed closed form."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite rows are redone below
        hyp = special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        out = (a + b + x - 1) / (a - 1) * (1.0 - (1.0 - z) ** (a - 1) * hyp)
    bad = ~np.isfinite(out) | (out < 0)
    if np.any(bad):
        out = out.copy()
        for i in np.flatnonzero(bad):
            out[i] = bgnbd_expected_given_alive_quad(params, t, float(x[i]), float(T[i]))
    return out


def bgnbd_expected_purchases(params: BGNBDParams, t: float, x: np.ndarray, tx: np.ndarray,
                             T: np.ndarray) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10).

    The paper's form is P(alive) · (a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x)
    ₂F₁(r+x, b+x; a+b+x-1; z)] with z = t/(α+T+t). Its hypergeometric factor grows like
    (1-z)^-(r+x) for large x and overflows; Euler's transformation
    ₂F₁(A, B; C; z) = (1-z)^(C-A-B) ₂F₁(C-A, C-B; C; z) turns the product into
    (1-z)^(a-1) ₂F₁(a+b-1-r, a-1; a+b+x-1; z), whose parameters no longer grow with x. Rows
    where scipy's ₂F₁ still fails (non-finite) are integrated numerically instead.
    """
    if abs(params.a - 1.0) < A_EPS:
        # a = 1 is a removable singularity: average the two sides (error O(A_EPS^2)).
        lo, hi = (BGNBDParams(params.r, params.alpha, 1.0 + s * A_EPS, params.b)
                  for s in (-1.0, 1.0))
        given_alive = 0.5 * (_given_alive(lo, t, x, T) + _given_alive(hi, t, x, T))
    else:
        given_alive = _given_alive(params, t, x, T)
    return np.maximum(bgnbd_prob_alive(params, x, tx, T) * given_alive, 0.0)


# -- Gamma-Gamma -----------------------------------------------------------------------------------
def gamma_gamma_log_likelihood(log_params: np.ndarray, x: np.ndarray, zbar: np.ndarray,
                               weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Weighted mean Gamma-Gamma log-likelihood of the mean spends and its gradient in
    ``log(p, q, γ)``.

    Given ν the mean of x purchases is Gamma(px, xν); integrating ν ~ Gamma(q, γ) out::

        f(z̄ | x) = Γ(px+q)/(Γ(px)Γ(q)) · γ^q · x^(px) z̄^(px-1) / (γ + x z̄)^(px+q)
    """
    p, q, g = np.exp(log_params)
    w = np.ones_like(x) if weights is None else weights
    px = p * x
    log_xz = np.log(g + x * zbar)
    ll = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(g)
          + px * np.log(x) + (px - 1) * np.log(zbar) - (px + q) * log_xz)
    psi_pxq = special.digamma(px + q)
    d_p = x * (psi_pxq - special.digamma(px) + np.log(x) + np.log(zbar) - log_xz)
    d_q = psi_pxq - special.digamma(q) + np.log(g) - log_xz
    d_g = q / g - (px + q) / (g + x * zbar)
    total = w.sum()
    grad = np.array([(w * d).sum() for d in (d_p, d_q, d_g)]) / total
    return float((w * ll).sum() / total), grad * np.array([p, q, g])


def fit_gamma_gamma(frequency, monetary_value) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from the customers with repeat purchases.

    Only customers with x > 0 and a positive mean repeat spend carry information about spend
    (x = 0 has no repeat purchase to average; a zero mean is outside the gamma's support).
    """
    x = np.rint(np.nan_to_num(np.asarray(frequency, float)))
    z = np.nan_to_num(np.asarray(monetary_value, float))
    keep = (x > 0) & (z > 0) & np.isfinite(z)
    if not keep.any():
        raise ValueError("Gamma-Gamma: no customer with a repeat purchase of positive value")
    (x, z), w = _compress(x[keep], z[keep])
    mean = float((w * z).sum() / w.sum())
    var = float((w * (z - mean) ** 2).sum() / w.sum()) or mean**2
    # Start: q = 3 (a finite mean and variance), p from the squared coefficient of variation of
    # the mean spends, γ so that the model mean pγ/(q-1) equals the observed mean.
    p0 = max(mean**2 / var, 0.1)
    starts = [np.log([p0, 3.0, mean * 2.0 / p0]), np.log([1.0, 1.0, 1.0])]
    best = None
    for start in starts:
        res = optimize.minimize(
            lambda v: tuple(-u for u in gamma_gamma_log_likelihood(v, x, z, w)), start, jac=True,
            method="L-BFGS-B", bounds=[(-LOG_BOUND, LOG_BOUND)] * 3,
            options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-10})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    if not best.success:
        log.warning("Gamma-Gamma fit did not report convergence: %s", best.message)
    return GammaGammaParams(*(float(v) for v in np.exp(best.x)))


def gamma_gamma_expected_spend(params: GammaGammaParams, frequency, monetary_value,
                               fallback_mean: float | None = None) -> np.ndarray:
    """E[spend per purchase | x, z̄] = (γ + x z̄) p / (px + q - 1).

    This is a weighted average of the population mean pγ/(q-1) and the customer's own mean z̄,
    with weight px/(px+q-1) on z̄. Customers without a repeat purchase get the population mean.
    Where q <= 1 the gamma mixture has no mean; then ``fallback_mean`` (the observed mean of the
    calibration customers) stands in for it.
    """
    x = np.rint(np.clip(np.nan_to_num(np.asarray(frequency, float)), 0, None))
    z = np.clip(np.nan_to_num(np.asarray(monetary_value, float)), 0, None)
    p, q = params.p, params.q
    population = params.mean_spend
    if not np.isfinite(population):
        if fallback_mean is None:
            raise ValueError("Gamma-Gamma: q <= 1 (no population mean) and no fallback given")
        population = fallback_mean
    denom = p * x + q - 1
    ok = (x > 0) & (denom > 0)
    own = np.where(ok, p * x / np.where(ok, denom, 1.0), 0.0)
    shrunk = (1 - own) * population + own * z
    return np.where(x > 0, shrunk, population)


# -- the forecast distribution --------------------------------------------------------------------
#: Draws per customer of :func:`bgnbd_gg_quantiles` (the same uniforms for every customer).
QUANTILE_DRAWS = 256
#: Customers per block of :func:`bgnbd_gg_quantiles` (bounds the memory to block x draws).
QUANTILE_BLOCK = 8192
QUANTILE_LEVELS = (0.1, 0.5, 0.9)


def _uniforms(draws: int, variates: int, seed: int = 0) -> np.ndarray:
    """``[variates, draws]`` stratified uniforms in (0, 1), the same in every call: each row
    holds one draw from each of ``draws`` equal strata, shuffled, so even few draws cover the
    whole range of every variate."""
    rng = np.random.default_rng(seed)
    u = (np.arange(draws) + rng.random((variates, draws))) / draws
    return np.clip(rng.permuted(u, axis=1), 1e-12, 1 - 1e-12)


#: Shapes from which :func:`_gamma_quantile` uses the Wilson-Hilferty approximation.
WILSON_HILFERTY_SHAPE = 2.0


def _gamma_quantile(shape: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Quantile ``u`` of Gamma(``shape``, 1) (arrays broadcast together).

    Wilson-Hilferty's cube-root normal approximation where the shape is at least
    :data:`WILSON_HILFERTY_SHAPE` (relative error well under 1 % between the 1st and 99th
    percentiles there), the exact inverse below it.
    """
    shape, u = np.broadcast_arrays(np.asarray(shape, float), np.asarray(u, float))
    k = np.maximum(shape, WILSON_HILFERTY_SHAPE)
    z = special.ndtri(u)
    out = k * np.maximum(1.0 - 1.0 / (9.0 * k) + z / (3.0 * np.sqrt(k)), 0.0) ** 3
    small = shape < WILSON_HILFERTY_SHAPE
    if small.any():
        out[small] = special.gammaincinv(shape[small], u[small])
    return out


def bgnbd_gg_quantiles(bgnbd: BGNBDParams, gg: GammaGammaParams, t: float, x: np.ndarray,
                       tx: np.ndarray, T: np.ndarray, zbar: np.ndarray,
                       levels: tuple[float, ...] = QUANTILE_LEVELS,
                       draws: int = QUANTILE_DRAWS) -> np.ndarray:
    """Quantiles of the spend in (T, T+t] under BG/NBD + Gamma-Gamma, given each history.

    The posterior predictive distribution is drawn by inverse transforms of fixed uniforms
    (common random numbers), so a customer's quantiles depend on its own history only, not on
    the batch it is scored in. Given the history, a customer is alive with P(alive); then::

        N ~ NegBin(r + x, (α+T)/(α+T+t))   purchases the Poisson process would make
                                          (λ ~ Gamma(r + x, α + T) integrated out)
        G ~ BetaGeometric(a, b + x)        purchases until the dropout
                                          (p ~ Beta(a, b + x) integrated out)
        n = min(N, G)                      purchases in the horizon (0 when not alive)
        ν ~ Gamma(q + p_gg·x, γ + x·z̄)    the Gamma-Gamma posterior of the spend rate
        spend ~ Gamma(n·p_gg, ν)           the sum of n Gamma(p_gg, ν) purchase values

    The mean of these draws is the model's ``predicted_clv`` up to simulation error.

    Returns
    -------
    ndarray
        ``[n, len(levels)]`` quantiles of the spend.
    """
    x, tx, T = clean_rfm(x, tx, T)
    zbar = np.nan_to_num(np.asarray(zbar, dtype=float))
    u = _uniforms(draws, 5)
    out = np.zeros((len(x), len(levels)))
    alive_p = bgnbd_prob_alive(bgnbd, x, tx, T)
    for start in range(0, len(x), QUANTILE_BLOCK):
        sl = slice(start, start + QUANTILE_BLOCK)
        xs, Ts, zs = x[sl, None], T[sl, None], zbar[sl, None]
        # N by inverse transform: N = #{k : CDF(k) < u}, the pmf by its recursion.
        shape = bgnbd.r + xs
        log_theta = np.log(bgnbd.alpha + Ts) - np.log(bgnbd.alpha + Ts + t)
        pmf = np.exp(shape * log_theta)
        cdf = pmf.copy()
        counts = np.zeros((len(xs), draws))
        # ... and n = min(N, G) = #{k >= 1 : N >= k and G >= k}, with P(G >= k) = S(k - 1),
        # S(k) = P(G > k) = prod_{j<k} (b+x+j)/(a+b+x+j).
        survival = np.ones_like(xs)
        g_uniform = u[1]
        n = np.zeros((len(xs), draws))
        k = 0
        while True:
            below = cdf < u[0]  # N > k
            if not below.any() or k > 10_000:
                break
            counts += below
            k += 1
            n += below & (survival > 1.0 - g_uniform)  # N >= k and G >= k
            survival = survival * (bgnbd.b + xs + k - 1) / (bgnbd.a + bgnbd.b + xs + k - 1)
            pmf = pmf * (shape + k - 1) / k * -np.expm1(log_theta)
            cdf = cdf + pmf
        n = np.where(u[2] < alive_p[sl, None], n, 0.0)
        repeat = zs > 0
        rate = gg.gamma + np.where(repeat, xs * zs, 0.0)
        nu = _gamma_quantile(gg.q + gg.p * np.where(repeat, xs, 0.0), u[3]) / rate
        with np.errstate(divide="ignore", invalid="ignore"):
            spend = np.where(n > 0, _gamma_quantile(np.maximum(n, 1) * gg.p, u[4]) / nu, 0.0)
        out[sl] = np.quantile(np.nan_to_num(spend), levels, axis=1).T
    return out


# -- the estimator ---------------------------------------------------------------------------------
class BGNBDGammaGammaCLV(CLVModel):
    """BG/NBD purchases x Gamma-Gamma spend over the horizon: the BTYD reference model.

    ``predicted_clv`` = E[purchase days in (T, T+h] | x, t_x, T] · E[spend per day | x, z̄],
    ``p_purchase`` = 1 - P(no purchase in the horizon | x, t_x, T); ``clv_p10/p50/p90`` are
    quantiles of the posterior predictive spend (:func:`bgnbd_gg_quantiles`).

    The model predicts gross spend as BTYD models do (``monetary_value`` is gross revenue per
    repeat purchase day); refunds are not modelled.

    Parameters
    ----------
    horizon_days
        The prediction horizon h in days (the same unit as the features).
    """

    name = "bgnbd_gg"

    def __init__(self, horizon_days: int = 180) -> None:
        self.horizon_days = horizon_days
        self.feature_names = list(FEATURES)
        self.metadata = {"horizon_days": horizon_days}
        self.bgnbd: BGNBDParams | None = None
        self.gamma_gamma: GammaGammaParams | None = None
        self.fallback_mean_spend: float | None = None

    @staticmethod
    def calibration_rows(X: pd.DataFrame, X_val: pd.DataFrame | None) -> pd.DataFrame:
        """The one as-of cross-section the model is calibrated on.

        BTYD models are fitted to one calibration cross-section of customer histories, not to
        labels. The training set stacks several as-of dates, so each customer appears several
        times with nested histories; fitting on the stack would count the same purchases again
        at every date and overweight long-standing customers. So: the validation rows (one date,
        the latest before evaluation) when given, else the latest ``as_of_date`` of ``X`` when
        it has that column, else all of ``X`` (taken to be one cross-section).
        """
        if X_val is not None and len(X_val):
            return X_val
        if "as_of_date" in X.columns and len(X):
            return X[X["as_of_date"] == X["as_of_date"].max()]
        return X

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None,
            X_val: pd.DataFrame | None = None,
            y_val: np.ndarray | None = None) -> BGNBDGammaGammaCLV:
        """Fit both models on the calibration cross-section (see :meth:`calibration_rows`).

        ``y`` and ``y_val`` are accepted for the common interface and ignored: the BTYD models
        are likelihoods of the purchase history itself.
        """
        self._check_features(X)
        rows = self.calibration_rows(X, X_val)
        x, tx, T, z = self._check_features(rows).T
        self.bgnbd = fit_bgnbd(x, tx, T)
        self.gamma_gamma = fit_gamma_gamma(x, z)
        xs = np.rint(np.nan_to_num(x))
        zs = np.nan_to_num(z)
        repeat = (xs > 0) & (zs > 0)
        self.fallback_mean_spend = float((xs[repeat] * zs[repeat]).sum() / xs[repeat].sum())
        self.metadata = {
            "horizon_days": self.horizon_days,
            "calibration_rows": len(rows),
            "bgnbd": asdict(self.bgnbd), "gamma_gamma": asdict(self.gamma_gamma),
            "population_mean_spend": self._population_mean_spend(),
        }
        return self

    def _population_mean_spend(self) -> float:
        assert self.gamma_gamma is not None
        mean = self.gamma_gamma.mean_spend
        return mean if np.isfinite(mean) else float(self.fallback_mean_spend or 0.0)

    def _columns(self, X: Features) -> np.ndarray:
        """``[4, n]``: the features as contiguous rows, however ``X`` holds them.

        NumPy's vectorised ``exp``/``log`` kernels run on contiguous arrays and its scalar ones
        on strided arrays, and they may differ in the last bit; contiguous columns give a
        DataFrame and a mapping of the same values the very same results.
        """
        return np.ascontiguousarray(self._check_features(X).T)

    def components(self, X: Features) -> dict[str, np.ndarray]:
        """The BTYD quantities of each row over ``horizon_days``: ``p_alive``,
        ``expected_purchases``, ``expected_spend`` (per purchase day), ``predicted_clv``
        (their product) and ``p_purchase``."""
        if self.bgnbd is None or self.gamma_gamma is None:
            raise RuntimeError("BGNBDGammaGammaCLV: fit or load the model before predicting")
        freq, rec, age, money = self._columns(X)
        x, tx, T = clean_rfm(freq, rec, age)
        h = float(self.horizon_days)
        purchases = bgnbd_expected_purchases(self.bgnbd, h, x, tx, T)
        spend = gamma_gamma_expected_spend(self.gamma_gamma, x, money,
                                           fallback_mean=self.fallback_mean_spend)
        return {"p_alive": bgnbd_prob_alive(self.bgnbd, x, tx, T),
                "expected_purchases": purchases, "expected_spend": spend,
                "predicted_clv": purchases * spend,
                "p_purchase": bgnbd_p_purchase(self.bgnbd, h, x, tx, T)}

    def quantiles(self, X: Features) -> np.ndarray:
        """``[n, 3]``: the 10th, 50th and 90th percentiles of each row's spend over
        ``horizon_days`` (:func:`bgnbd_gg_quantiles`)."""
        if self.bgnbd is None or self.gamma_gamma is None:
            raise RuntimeError("BGNBDGammaGammaCLV: fit or load the model before predicting")
        freq, rec, age, money = self._columns(X)
        return bgnbd_gg_quantiles(self.bgnbd, self.gamma_gamma, float(self.horizon_days),
                                  freq, rec, age, money)

    def predict(self, X: Features, explain: bool = False) -> Prediction:
        """Expected spend, purchase probability and the spend's 10/50/90 % quantiles over
        ``horizon_days``; no drivers (``explain`` is accepted for the common interface)."""
        parts = self.components(X)
        q = self.quantiles(X)
        return Prediction(predicted_clv=parts["predicted_clv"], p_purchase=parts["p_purchase"],
                          clv_p10=q[:, 0], clv_p50=q[:, 1], clv_p90=q[:, 2])

    def state(self) -> dict:
        """The fitted parameters as JSON-ready data (:meth:`from_state` reads them back)."""
        if self.bgnbd is None or self.gamma_gamma is None:
            raise RuntimeError("BGNBDGammaGammaCLV: nothing to save before fit")
        return {"horizon_days": self.horizon_days, "bgnbd": asdict(self.bgnbd),
                "gamma_gamma": asdict(self.gamma_gamma),
                "fallback_mean_spend": self.fallback_mean_spend}

    @classmethod
    def from_state(cls, state: dict) -> BGNBDGammaGammaCLV:
        """A fitted model from :meth:`state`'s data."""
        model = cls(int(state["horizon_days"]))
        model.bgnbd = BGNBDParams(**state["bgnbd"])
        model.gamma_gamma = GammaGammaParams(**state["gamma_gamma"])
        model.fallback_mean_spend = state.get("fallback_mean_spend")
        return model

    def _save_weights(self, directory: Path) -> None:
        (directory / WEIGHTS_FILE).write_text(json.dumps(self.state(), indent=2, sort_keys=True))

    def _load_weights(self, directory: Path) -> None:
        payload = json.loads((directory / WEIGHTS_FILE).read_text())
        fitted = self.from_state(payload)
        self.horizon_days = int(self.metadata.get("horizon_days", payload["horizon_days"]))
        self.bgnbd, self.gamma_gamma = fitted.bgnbd, fitted.gamma_gamma
        self.fallback_mean_spend = fitted.fallback_mean_spend


# -- BTYD quantities as inputs of the learned models ---------------------------------------------
#: The columns :class:`BTYDInputs` adds to a learned model's inputs.
BTYD_INPUTS = ["btyd_p_alive", "btyd_expected_purchases", "btyd_expected_spend", "btyd_clv"]
#: The as-of date column a training frame may carry beside the features (one cross-section per
#: date); models never take it as an input.
DATE_COLUMN = "as_of_date"


#: Cross-sections whose BTYD fit :class:`BTYDInputs` keeps (the oldest is dropped first).
FIT_CACHE_SIZE = 256
#: BTYD fits by (horizon, digest of the cross-section's features): XGBoost and the deep model
#: are fitted on the same rows, and the maximum-likelihood fit is a function of them alone.
_FITS: dict[tuple[int, str], BGNBDGammaGammaCLV | None] = {}


class BTYDInputs:
    """BG/NBD + Gamma-Gamma quantities per customer and as-of date, as inputs of a learned model.

    A BTYD model is fitted on each as-of date's cross-section of histories (events before that
    date, no label), and gives every customer of that date P(alive), the expected purchase days
    in the horizon, the expected spend per purchase day and their product. The learned model
    then starts from the BTYD forecast and learns what it misses (seasonality, returns,
    engagement) instead of rediscovering the purchase process from few rows.

    Rows without an as-of date (scoring, the online endpoint) use the parameters of the latest
    cross-section seen in :meth:`fit_transform` (the validation date in training), as the
    ``bgnbd_gg`` reference model does.

    Parameters
    ----------
    horizon_days
        The prediction horizon in days.
    """

    def __init__(self, horizon_days: int) -> None:
        self.horizon_days = horizon_days
        self.latest: BGNBDGammaGammaCLV | None = None

    def _fit(self, rows: Features) -> BGNBDGammaGammaCLV | None:
        values = np.ascontiguousarray(rows[FEATURES].to_numpy(dtype=np.float64,
                                                              na_value=np.nan))
        key = (self.horizon_days, hashlib.sha256(values.tobytes()).hexdigest())
        if key in _FITS:
            return _FITS[key]
        level = log.level
        log.setLevel(logging.ERROR)  # early cross-sections are small: no warning per date
        try:
            fitted = BGNBDGammaGammaCLV(self.horizon_days).fit(rows)
        except ValueError:  # no repeat buyer in this cross-section: nothing to fit
            fitted = None
        finally:
            log.setLevel(level)
        if len(_FITS) >= FIT_CACHE_SIZE:
            _FITS.pop(next(iter(_FITS)))
        _FITS[key] = fitted
        return fitted

    def _values(self, model: BGNBDGammaGammaCLV | None, X: Features) -> np.ndarray:
        if model is None:
            return np.full((n_rows(X), len(BTYD_INPUTS)), np.nan)
        parts = model.components(X)
        return np.column_stack([parts["p_alive"], parts["expected_purchases"],
                                parts["expected_spend"], parts["predicted_clv"]])

    def fit_transform(self, X: pd.DataFrame, latest: pd.DataFrame | None = None) -> np.ndarray:
        """The inputs of each row of ``X``, fitted per as-of date (:data:`DATE_COLUMN`).

        ``latest`` (the validation cross-section) becomes the stored fit used for rows without
        a date; without it, the latest date of ``X``.
        """
        out = np.full((len(X), len(BTYD_INPUTS)), np.nan)
        if DATE_COLUMN in X.columns:
            dates = X[DATE_COLUMN].to_numpy()
            for date in sorted(set(dates)):
                idx = np.flatnonzero(dates == date)
                model = self._fit(X.iloc[idx])
                out[idx] = self._values(model, X.iloc[idx])
                if model is not None:
                    self.latest = model
        if latest is not None and len(latest):
            self.latest = self._fit(latest) or self.latest
        if DATE_COLUMN not in X.columns:
            self.latest = self.latest or self._fit(X)
            out = self._values(self.latest, X)
        return out

    def transform(self, X: Features) -> np.ndarray:
        """The inputs of each row of ``X`` with the stored fit."""
        return self._values(self.latest, X)

    def state(self) -> dict | None:
        return None if self.latest is None else self.latest.state()

    @classmethod
    def from_state(cls, horizon_days: int, state: dict | None) -> BTYDInputs | None:
        """The inputs saved as :meth:`state` (``None``: a learner without BTYD inputs)."""
        if state is None:
            return None
        inputs = cls(horizon_days)
        inputs.latest = BGNBDGammaGammaCLV.from_state(state)
        return inputs

    @classmethod
    def for_learner(cls, enabled: bool, horizon_days: int, X: pd.DataFrame,
                    X_val: pd.DataFrame) -> tuple[BTYDInputs | None, np.ndarray | None]:
        """A learner's BTYD inputs and their values for its training rows ``X``.

        ``(None, None)`` unless ``enabled`` and ``X`` holds the RFM features BG/NBD needs;
        else the inputs fitted per as-of date of ``X`` (:meth:`fit_transform`), with the
        validation rows ``X_val`` as the stored fit.
        """
        if not enabled or not set(FEATURES) <= set(X.columns):
            return None, None
        inputs = cls(horizon_days)
        return inputs, inputs.fit_transform(X, latest=X_val)


def input_names(feature_names: list[str], inputs: BTYDInputs | None) -> list[str]:
    """A learner's input columns: its features, then the BTYD inputs when it uses them."""
    return feature_names + (BTYD_INPUTS if inputs is not None else [])
