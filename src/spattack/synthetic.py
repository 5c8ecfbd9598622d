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


def power_law_interactions(n_interactions: int, seed: int = 0) -> Interactions:
    """About `n_interactions` training pairs with ML-1M's degree profile, for scale
    benchmarks: users = n / 165 with log-normal degrees (ML-1M: median 95, mean 165,
    at least 19), items = 3,706 * sqrt(n / 1e6) with Zipf popularity rank^-0.72 (ML-1M's
    slope over its 2,000 most popular items). Each user's items are distinct; one more per
    user is its test item."""
    rng = np.random.default_rng(seed)
    n_users = max(10, round(n_interactions / 165))
    n_items = max(100, round(3706 * (n_interactions / 1e6) ** 0.5))
    degree = np.clip(rng.lognormal(np.log(95), 1.0, n_users), 19, n_items // 2).astype(np.int64)
    degree = np.maximum(19, np.round(degree * n_interactions / degree.sum())).astype(np.int64).clip(max=n_items // 2)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.72
    popularity = rng.permutation(popularity / popularity.sum())
    # draw with replacement, then keep each user's first distinct items (in draw order)
    draws = degree * 2 + 20
    users = np.repeat(np.arange(n_users), draws)
    items = rng.choice(n_items, size=users.size, p=popularity)
    key = users * n_items + items
    _, first = np.unique(key, return_index=True)
    first.sort()
    users, items = users[first], items[first]
    rank = np.arange(users.size) - np.searchsorted(users, users)
    keep = rank <= degree[users]  # degree training items, then one test item
    users, items, rank = users[keep], items[keep], rank[keep]
    test = rank == np.bincount(users, minlength=n_users)[users] - 1
    return Interactions.from_pairs(np.stack([users[~test], items[~test]], 1), np.stack([users[test], items[test]], 1),
                                   n_users, n_items)
