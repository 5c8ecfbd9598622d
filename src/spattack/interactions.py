"""Train/test interactions of a leave-one-out split, held in memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data.split import read_split


@dataclass
class Interactions:
    """A leave-one-out split with 0-based user and item ids.

    `indptr`/`indices` are the CSR rows of the training positives (user -> items),
    `test_items[u]` is user u's held-out item, `popularity[j]` counts item j in train
    and test (the attacks' notion of popularity).
    """

    n_users: int
    n_items: int
    indptr: np.ndarray  # int64 (n_users + 1,)
    indices: np.ndarray  # int64 (n_train,)
    test_items: np.ndarray  # int64 (n_users,)

    @classmethod
    def from_pairs(cls, train: np.ndarray, test: np.ndarray, n_users: int, n_items: int) -> "Interactions":
        """Build from (user, item) training pairs and one test item per user."""
        train = np.asarray(train, dtype=np.int64).reshape(-1, 2)
        order = np.argsort(train[:, 0], kind="stable")
        users, items = train[order, 0], train[order, 1]
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
        test_items = np.full(n_users, -1, dtype=np.int64)
        test = np.asarray(test, dtype=np.int64).reshape(-1, 2)
        test_items[test[:, 0]] = test[:, 1]
        if (test_items < 0).any():
            missing = np.flatnonzero(test_items < 0)[:5].tolist()
            raise ValueError(f"users without a test item (first ids: {missing}); every user needs exactly one")
        return cls(n_users, n_items, indptr, items, test_items)

    @classmethod
    def load(cls, split_dir: str | Path) -> "Interactions":
        """The split in `split_dir` as written by the split stage, read by `data.split.read_split`.

        FileNotFoundError when one of its four files is missing; ValueError (`from_pairs`)
        when a user has no test item."""
        split = read_split(split_dir)
        return cls.from_pairs(split.train[["user", "item"]].to_numpy(), split.test[["user", "item"]].to_numpy(),
                              split.n_users, split.n_items)

    @property
    def train_counts(self) -> np.ndarray:
        """Number of training positives per user."""
        return np.diff(self.indptr)

    @property
    def train_users(self) -> np.ndarray:
        """User id of every training pair, aligned with `indices`."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), self.train_counts)

    @property
    def popularity(self) -> np.ndarray:
        """Item degree counted over train and test."""
        return np.bincount(np.concatenate([self.indices, self.test_items]), minlength=self.n_items)

    def train_mask(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Dense bool (n_users, n_items): True where the user has a training positive."""
        mask = torch.zeros(self.n_users, self.n_items, dtype=torch.bool, device=device)
        mask[torch.as_tensor(self.train_users, device=device), torch.as_tensor(self.indices, device=device)] = True
        return mask
