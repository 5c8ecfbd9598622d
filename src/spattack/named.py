"""The registry type: config names mapped to the entries of one kind (spattack.registry)."""

from __future__ import annotations


class Registry(dict):
    """Names -> entries of one `kind` (defense, attack, model, dataset), in registration
    order. A plain dict otherwise: add an entry with `registry[name] = entry`."""

    def __init__(self, kind: str, entries=()):
        super().__init__(entries)
        self.kind = kind

    def entry(self, name: str):
        """The entry called `name`; ValueError naming the registered ones if there is none."""
        try:
            return self[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} '{name}'; registered: {', '.join(self)}") from None
