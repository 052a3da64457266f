"""A model-based cross-check of the group gaps: a mixed-effects logistic regression of the primary measure
with a fixed effect per group (the reference group as baseline) and crossed random intercepts for template
and name, fitted per cell on the counts of each (template, name) slot, so its size is templates x names
whatever the number of rows.

Fitting: the Laplace approximation, as lme4's ``glmer`` does. Given the two random-effect SDs, Newton's
method finds the joint mode of fixed and random effects of the penalized binomial likelihood; the SDs
maximize the Laplace approximation of the marginal likelihood, with the fixed effects integrated too (the
REML-like choice: with 8 names per group and a fixed effect per group, profiling them out shrinks the name
SD); the group effects' covariance is the fixed-effect block of the inverse Hessian at the mode. Intervals
use a t quantile with (names - groups) degrees of freedom, the between-name residual. On simulated null data
(24 templates, 8 + 8 names, name SD 1 logit) the interval excludes 0 in 5.0% of 300 datasets.

Hand-written, with numpy and scipy, because the maintained option was measured and falls short here:
statsmodels' ``BinomialBayesMixedGLM`` fits by mean-field variational Bayes, whose posterior of a group
effect is conditional on the effects of that group's names and so as narrow as a names-fixed interval (75%
false rejections on the null data above), and it took 1-3 s per cell of 12,500 slots, most of the 60 s
budget of a 1M-row build; gpboost took 8.5 s per such cell and gave no standard errors. Here the Hessian
is assembled from (template x name) arrays (its blocks are sums of the binomial weights), a fit of such a
cell takes a fraction of a second, and a test checks the variance components against statsmodels' fit.

What it assumes that the design-based figures do not: one name SD for every group (the design-based
template x name interval lets each group keep its own spread, which the pilot shows can differ tenfold),
normal random effects, and a log-odds scale, on which gaps between rates near 0% look large. The two can
therefore disagree; ``design_agrees`` and ``note`` say when their intervals differ on excluding 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from qos_pipeline.metrics.stats.cells import Cell

FE_PRIOR_SD = 10.0  # a weak ridge on the fixed effects: finite estimates when a group never (or always) refuses
LOG_SD_BOUNDS = (-5.0, 3.0)  # random-effect SDs between 0.007 and 20 logits
METHOD = "laplace (glmer-like)"


@dataclass
class Counts:
    """One cell as the model sees it: ``k`` of ``n`` (T, N) per slot (0 of 0 where there is no slot),
    ``F`` (N, P) the fixed-effect design of each name (intercept, then one column per non-reference group)."""

    k: np.ndarray
    n: np.ndarray
    F: np.ndarray

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(P fixed effects, T templates, N names)."""
        return self.F.shape[1], self.k.shape[0], self.k.shape[1]


def _split(counts: Counts, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    P, T, _ = counts.sizes
    return theta[:P], theta[P:P + T], theta[P + T:]


def _eta(counts: Counts, theta: np.ndarray) -> np.ndarray:
    beta, u, v = _split(counts, theta)
    return u[:, None] + (counts.F @ beta + v)[None, :]


def _penalties(counts: Counts, log_sd: np.ndarray) -> np.ndarray:
    P, T, N = counts.sizes
    return np.r_[np.full(P, FE_PRIOR_SD ** -2.0), np.full(T, np.exp(-2 * log_sd[0])),
                 np.full(N, np.exp(-2 * log_sd[1]))]


def _objective(counts: Counts, theta: np.ndarray, penalty: np.ndarray) -> float:
    """Penalized binomial log-likelihood (slots without rows add nothing: k = n = 0)."""
    eta = _eta(counts, theta)
    return float((counts.k * eta - counts.n * np.logaddexp(0, eta)).sum() - 0.5 * penalty @ theta ** 2)


def _gradient_hessian(counts: Counts, theta: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and negative Hessian, assembled from (T, N) arrays: each block is a sum of residuals or of
    binomial weights n p (1 - p) over templates, names or groups."""
    from scipy.special import expit

    F = counts.F
    p = expit(_eta(counts, theta))
    R, W = counts.k - counts.n * p, counts.n * p * (1 - p)
    w_name, w_template = W.sum(0), W.sum(1)
    grad = np.r_[F.T @ R.sum(0), R.sum(1), R.sum(0)] - penalty * theta
    hessian = np.block([[F.T @ (w_name[:, None] * F), (W @ F).T, F.T * w_name[None, :]],
                        [W @ F, np.diag(w_template), W],
                        [w_name[:, None] * F, W.T, np.diag(w_name)]]) + np.diag(penalty)
    return grad, hessian


def _mode(counts: Counts, theta: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Newton's method from ``theta`` to the joint mode; steps halved until the objective rises (a
    separated group can overshoot). Returns the mode, the negative Hessian there, and convergence."""
    from scipy.linalg import cho_factor, cho_solve

    current = _objective(counts, theta, penalty)
    for _ in range(100):
        grad, hessian = _gradient_hessian(counts, theta, penalty)
        step = cho_solve(cho_factor(hessian), grad)  # positive definite: the penalty keeps it so
        for _ in range(30):
            value = _objective(counts, theta + step, penalty)
            if value >= current - 1e-9:
                break
            step = step / 2
        theta, current = theta + step, value
        if np.abs(step).max() < 1e-8:
            return theta, _gradient_hessian(counts, theta, penalty)[1], True
    return theta, _gradient_hessian(counts, theta, penalty)[1], False


def _laplace_fit(counts: Counts) -> dict:
    """The SDs maximizing the Laplace marginal likelihood, and the mode and Hessian at them."""
    from scipy.optimize import minimize

    P, T, N = counts.sizes
    state: dict[str, Any] = {"theta": np.zeros(P + T + N)}

    from scipy.linalg import cho_factor
    from threadpoolctl import threadpool_limits

    def negative(log_sd: np.ndarray) -> float:
        penalty = _penalties(counts, log_sd)
        theta, hessian, ok = _mode(counts, state["theta"], penalty)
        state.update(theta=theta, hessian=hessian, ok=ok, log_sd=log_sd)
        logdet = 2 * np.log(np.diag(cho_factor(hessian)[0])).sum()
        return -(_objective(counts, theta, penalty) - T * log_sd[0] - N * log_sd[1] - 0.5 * logdet)

    # one BLAS thread: matrices of a few hundred rows factor in ms alone, and threads that wait for a busy
    # second core made each factorization ten times slower (measured on a shared 2-core machine)
    with threadpool_limits(1, user_api="blas"):
        result = minimize(negative, np.zeros(2), method="L-BFGS-B", bounds=[LOG_SD_BOUNDS] * 2)
        negative(result.x)  # leave the state at the optimum
        state["cov"] = np.linalg.inv(state["hessian"])
    return {**state, "converged": bool(result.success and state["ok"])}


def _counts(cell: Cell, measure: str, reference: str) -> tuple[Counts, list[str]]:
    others = [g for g in cell.group_list if g != reference]
    F = np.column_stack([np.ones(len(cell.names))] + [(cell.groups == g).astype(float) for g in others])
    return Counts(cell.measure(measure).astype(float), cell.n.astype(float), F), others


def group_effects(cell: Cell, measure: str, reference: str) -> pd.DataFrame:
    """One row per non-reference group: its log-odds effect against the reference group with a 95%
    interval, and the fitted template and name SDs. Empty when the cell cannot support the model (no
    reference group, fewer than two templates, as many names as groups, or no variation at all)."""
    from scipy.special import stdtrit  # the t quantile (scipy.stats costs seconds to import)

    K, n = cell.measure(measure), cell.n
    df = len(cell.names) - len(cell.group_list)
    if reference not in cell.group_list or len(cell.group_list) < 2 or len(cell.templates) < 2 or df < 1 \
            or K.sum() in (0, n.sum()):
        return pd.DataFrame()
    counts, others = _counts(cell, measure, reference)
    fit = _laplace_fit(counts)
    beta = fit["theta"][: counts.sizes[0]]
    se = np.sqrt(np.diag(fit["cov"])[: counts.sizes[0]])
    quantile = float(stdtrit(df, 0.975))
    ref = cell.groups == reference
    rows = []
    for j, group in enumerate(others, start=1):
        mine = cell.groups == group
        separated = K[:, mine].sum() in (0, n[:, mine].sum()) or K[:, ref].sum() in (0, n[:, ref].sum())
        rows.append({"measure": measure, "name_group": group, "vs_group": reference, "log_odds": beta[j],
                     "log_odds_se": se[j], "log_odds_ci_low": beta[j] - quantile * se[j],
                     "log_odds_ci_high": beta[j] + quantile * se[j], "odds_ratio": float(np.exp(min(beta[j], 700.0))),
                     "df": df, "sd_template": float(np.exp(fit["log_sd"][0])),
                     "sd_name": float(np.exp(fit["log_sd"][1])), "converged": fit["converged"], "method": METHOD,
                     "separated": bool(separated)})
    return pd.DataFrame(rows)


def _excludes_zero(low: float, high: float) -> int:
    """+1 / -1 when the interval lies above / below 0, 0 when it holds 0 (or is missing)."""
    return 1 if low > 0 else -1 if high < 0 else 0


def agreement(effects: pd.DataFrame, comparisons: pd.DataFrame) -> pd.DataFrame:
    """``effects`` with ``design_agrees`` (its interval and the design-based template x name interval of
    the same gap in ``comparisons`` agree on excluding 0, and on the side) and a ``note`` when they do not."""
    if effects.empty:
        return effects
    keys = ["measure", "name_group", "vs_group"]
    design = comparisons.set_index(keys)[["diff_ci_tn_low", "diff_ci_tn_high"]] if len(comparisons) else None
    agrees: list[Any] = []  # True / False, None where there is no design-based comparison
    notes: list[str] = []
    for row in cast(Iterable[Any], effects.itertuples(index=False)):
        key = (row.measure, row.name_group, row.vs_group)
        if design is None or key not in design.index:
            agrees.append(None)
            notes.append("no design-based comparison of this gap")
            continue
        row_ci = design.loc[key]  # type: ignore[index]  # pandas-stubs: a MultiIndex row by its full key
        d = _excludes_zero(*cast(pd.Series, row_ci).tolist())
        m = _excludes_zero(row.log_odds_ci_low, row.log_odds_ci_high)
        agrees.append(d == m)
        notes.append("" if d == m else "opposite signs" if d * m < 0 else
                     "the design-based interval excludes 0, the model's does not" if d else
                     "the model's interval excludes 0, the design-based one does not")
    separated = effects["separated"].to_numpy()
    notes = [n + ("; " if n else "") + "a side with no refusal (or only refusals): the log odds are bounded by "
             "the prior only" if z else n for n, z in zip(notes, separated)]
    return effects.drop(columns="separated").assign(design_agrees=agrees, note=notes)
