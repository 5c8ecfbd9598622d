"""Item-degree power law (Fig. 2(c)) and the Proposition 2 bound.

The paper models the item degree x with p(x) = C x^-beta and states (Proposition 2) that
at least 1 - C/(beta-1) * ((1-alpha)/alpha * n_mal)^(1-beta) of the item embeddings can be
broken down by n_mal malicious clients when the aggregator's breakdown point is alpha:
an item of degree x receives x benign rows and up to n_mal malicious ones, and it falls
once n_mal / (x + n_mal) >= alpha, i.e. x <= (1-alpha)/alpha * n_mal =: x0. The bound is
1 - P(X >= x0) with the tail probability integrated from the power law.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..malicious import n_malicious


@dataclass(frozen=True)
class PowerLawFit:
    """A power law p(x) = C x^-beta for item degrees x >= xmin.

    `C` is normalised over ALL items (not only the fitted tail): with n items of which
    n_tail have degree >= xmin, C = (beta - 1) * xmin^(beta - 1) * n_tail / n. Then
    C x^-beta is the share of all items per unit of degree (comparable with the share of
    items having degree exactly x), and for x0 >= xmin the continuous tail
    integral_x0^inf C x^-beta dx = C/(beta-1) x0^(1-beta) is the share of all items with
    degree >= x0, which is the quantity in Proposition 2. For x0 < xmin the fit says
    nothing (the bound is then marked invalid).

    `beta`, `xmin`, `sigma` (standard error of beta) and `ks_distance` come from the
    `powerlaw` package (discrete maximum likelihood; xmin chosen by minimising the
    Kolmogorov-Smirnov distance, Clauset et al. 2009, unless fixed).
    """

    beta: float
    C: float
    xmin: float
    n_tail: int
    n_items: int
    sigma: float
    ks_distance: float

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """C x^-beta."""
        return self.C * np.asarray(x, dtype=float) ** -self.beta

    def tail_share(self, x0: float) -> float:
        """Share of all items with degree >= x0 under the fit: C/(beta-1) x0^(1-beta)."""
        return self.C / (self.beta - 1) * x0 ** (1 - self.beta)

    def to_dict(self) -> dict:
        return asdict(self)


def fit_power_law(degrees: np.ndarray, xmin: float | None = None) -> PowerLawFit:
    """Fit p(x) = C x^-beta to the item degrees (items of degree 0 are counted in n_items
    but cannot enter a power law). `xmin=None` lets `powerlaw` choose it."""
    import powerlaw

    degrees = np.asarray(degrees)
    positive = degrees[degrees > 0]
    if len(np.unique(positive)) < 3:
        raise ValueError(f"cannot fit a power law to {len(positive)} positive degrees with <3 distinct values")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(positive, discrete=True, xmin=xmin, verbose=False)
        pl = fit.power_law
        beta, x_min, sigma, ks = float(pl.alpha), float(pl.xmin), float(pl.sigma), float(pl.D)
    n_tail = int((degrees >= x_min).sum())
    C = (beta - 1) * x_min ** (beta - 1) * n_tail / len(degrees)
    return PowerLawFit(beta=beta, C=C, xmin=x_min, n_tail=n_tail, n_items=len(degrees), sigma=sigma, ks_distance=ks)


def head_tail(degrees: np.ndarray, head_degree: int) -> dict:
    """Counts and shares of tail items (degree < head_degree) and head items (>=)."""
    degrees = np.asarray(degrees)
    tail = int((degrees < head_degree).sum())
    return {"head_degree": head_degree, "tail_items": tail, "head_items": len(degrees) - tail,
            "tail_share": tail / len(degrees), "zero_degree_items": int((degrees == 0).sum())}


def prop2_table(degrees: np.ndarray, fit: PowerLawFit, n_benign: int, alpha: float,
                ratios: list[float]) -> pd.DataFrame:
    """Proposition 2 per malicious percentage: predicted lower bound vs measured share.

    threshold x0 = (1-alpha)/alpha * n_mal; `bound` = 1 - C/(beta-1) x0^(1-beta) (valid
    when x0 >= xmin); `measured` = share of items (index space, degree-0 items included)
    whose degree is below x0."""
    degrees = np.asarray(degrees)
    rows = []
    for rho in ratios:
        n_mal = n_malicious(n_benign, rho)
        x0 = (1 - alpha) / alpha * n_mal
        bound = 1 - fit.tail_share(x0) if x0 > 0 else float("nan")
        rows.append({
            "rho_pct": rho, "n_benign": n_benign, "n_mal": n_mal, "alpha": alpha, "threshold": x0,
            "bound": bound, "bound_valid": bool(x0 >= fit.xmin), "measured": float((degrees < x0).mean()),
            "beta": fit.beta, "C": fit.C, "xmin": fit.xmin,
        })
    return pd.DataFrame(rows)
