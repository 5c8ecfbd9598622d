"""How many malicious clients a malicious percentage means."""

from __future__ import annotations

import math


def n_malicious(n_benign: int, ratio: float) -> int:
    """Malicious clients for the paper's percentage rho = n_mal / (n_benign + n_mal).

    The authors configure rho' = n_mal / n_benign truncated to 6 decimals (3% -> 0.030927)
    and take int(n_benign * rho'); we follow that so the counts match theirs exactly."""
    if not 0 <= ratio < 50:
        raise ValueError(f"malicious ratio {ratio}% is outside [0, 50)")
    return int(n_benign * (math.floor(ratio / (100 - ratio) * 1e6) / 1e6))
