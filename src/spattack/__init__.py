"""spattack: Byzantine attacks and defenses in federated recommendation.

Reference implementation of "Rethinking Byzantine Robustness in Federated Recommendation
from Sparse Aggregation Perspective" (AAAI 2025): federated recommenders whose item
embeddings are aggregated per item over the clients that uploaded that item.
"""

__version__ = "0.1.0"
