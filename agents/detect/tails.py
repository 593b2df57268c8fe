"""Tail probabilities of counts: how surprising an observation is under an expectation."""

from __future__ import annotations

import math

from scipy.special import betainc

__all__ = ["binomial_tail", "negbin_tail", "poisson_tail"]


def poisson_tail(observed: int, expected: float) -> float:
    """P(X >= observed) for X ~ Poisson(expected)."""
    if observed <= 0:
        return 1.0
    expected = max(expected, 1e-9)
    if observed > expected:
        log_term = -expected + observed * math.log(expected) - math.lgamma(observed + 1)
        total, term, k = 0.0, math.exp(log_term), observed
        while term > 1e-300 and k < observed + 10_000:
            total += term
            k += 1
            term *= expected / k
        return min(1.0, total)
    cdf, term = 0.0, math.exp(-expected)
    for k in range(observed):
        cdf += term
        term *= expected / (k + 1)
    return max(0.0, 1.0 - cdf)


def negbin_tail(observed: int, expected: float, dispersion: float) -> float:
    """P(X >= observed) for a negative binomial X of mean ``expected`` and variance
    ``expected + dispersion * expected**2``.

    Real streams are clumpier than Poisson (a thread, a newsletter, one busy author): hour
    counts vary more than their mean, and a Poisson test there calls ordinary clumps
    crises. ``dispersion`` 0 is the Poisson tail."""
    if observed <= 0:
        return 1.0
    if dispersion <= 0:
        return poisson_tail(observed, expected)
    expected = max(expected, 1e-9)
    r = 1 / dispersion
    # P(X >= k) = I_{mu/(r+mu)}(k, r), the regularized incomplete beta function.
    return float(min(1.0, max(0.0, betainc(observed, r, expected / (r + expected)))))


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    p = min(max(p, 1e-9), 1 - 1e-9)
    lp, lq = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    return min(1.0, sum(math.exp(base - math.lgamma(j + 1) - math.lgamma(n - j + 1)
                                 + j * lp + (n - j) * lq) for j in range(k, n + 1)))
