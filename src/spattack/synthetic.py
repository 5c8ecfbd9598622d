"""Small synthetic implicit-feedback datasets for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from .interactions import Interactions


def synthetic_interactions(n_users: int = 60, n_items: int = 80, per_user: int = 12,
                           n_groups: int = 4, seed: int = 0) -> Interactions:
    """Users of `n_groups` taste groups pick items mostly from their group's block,
    with popularity following a power law: a tiny dataset that MF can learn.

    Every user has `per_user` distinct items; the last one drawn is the test item.
    """
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rng.shuffle(popularity)
    item_group = np.arange(n_items) % n_groups
    train, test = [], []
    for u in range(n_users):
        weights = popularity * np.where(item_group == u % n_groups, 20.0, 1.0)
        items = rng.choice(n_items, size=per_user, replace=False, p=weights / weights.sum())
        train += [(u, i) for i in items[:-1]]
        test.append((u, items[-1]))
    return Interactions.from_pairs(np.array(train), np.array(test), n_users, n_items)
