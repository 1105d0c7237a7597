"""Deterministic A/B variant assignment: the same lead always gets the same variant of an
experiment, in every process and in replay, with no state to store or coordinate."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Mapping
from itertools import accumulate


def assign_variant(lead_id: str, experiment: str, weights: Mapping[str, int]) -> str:
    """The lead's variant: sha256 of `<experiment>:<lead_id>` picks a point in
    [0, total weight) and variants, sorted by name, own consecutive spans of their weight.

    Stable under reordering of `weights`; changing the weights or the variant names moves
    some leads. Raises ValueError when there is no variant or a weight is not positive.
    """
    if not weights or any(weight <= 0 for weight in weights.values()):
        raise ValueError(f"experiment {experiment!r} needs variants with positive weights")
    names = sorted(weights)
    span_ends = list(accumulate(weights[name] for name in names))
    digest = hashlib.sha256(f"{experiment}:{lead_id}".encode()).digest()
    # 64 bits against any realistic total weight: the modulo bias is negligible.
    point = int.from_bytes(digest[:8], "big") % span_ends[-1]
    return names[bisect_right(span_ends, point)]
