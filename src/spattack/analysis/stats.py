"""Dataset statistics and the paper's Table 2."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..paperdata import paper_table


def paper_table2() -> dict[str, dict]:
    """Table 2 of the paper (users, items, interactions = '#Edges', sparsity in percent),
    from `paperdata.paper_table`, keyed by dataset."""
    return {row.pop("dataset"): row for row in paper_table("table2").to_dict("records")}


TABLE2_COLUMNS = ["dataset", "source", "users", "items", "items_used", "interactions", "train", "test",
                  "sparsity_pct"]


def item_degrees(train_items: np.ndarray, test_items: np.ndarray, n_items: int) -> np.ndarray:
    """Degree of every item 0..n_items-1: its count over train and test (the attacks' popularity)."""
    return np.bincount(np.concatenate([np.asarray(train_items), np.asarray(test_items)]).astype(np.int64),
                       minlength=n_items)


def split_stats(n_users: int, n_items: int, train_items: np.ndarray, test_items: np.ndarray) -> dict:
    """Users, items (index space), items used, interactions, train/test sizes and sparsity.

    Sparsity = 1 - interactions / (users * items) with `items` the full index space (as the
    paper counts Steam's 5,134 keys although 42 of them occur only for dropped users)."""
    deg = item_degrees(train_items, test_items, n_items)
    n_train, n_test = len(train_items), len(test_items)
    inter = n_train + n_test
    return {
        "users": int(n_users),
        "items": int(n_items),
        "items_used": int((deg > 0).sum()),
        "interactions": int(inter),
        "train": int(n_train),
        "test": int(n_test),
        "sparsity": float(1 - inter / (n_users * n_items)),
    }


def table2(stats: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """Table 2 side by side with the paper: `stats[dataset][source]` -> split_stats dict.

    Each dataset gets the paper's row first, then one row per source (e.g. 'ours (paper
    mode)', 'ours (correct mode)'); sparsity is in percent, rounded to 2 decimals."""
    paper = paper_table2()
    rows = []
    for dataset, by_source in stats.items():
        if dataset in paper:
            rows.append({"dataset": dataset, "source": "paper (Table 2)", **paper[dataset]})
        for source, s in by_source.items():
            rows.append({"dataset": dataset, "source": source, **{k: s[k] for k in
                         ("users", "items", "items_used", "interactions", "train", "test")},
                         "sparsity_pct": round(100 * s["sparsity"], 2)})
    df = pd.DataFrame(rows, columns=TABLE2_COLUMNS)
    for c in ("users", "items", "items_used", "interactions", "train", "test"):
        df[c] = df[c].astype("Int64")
    return df
