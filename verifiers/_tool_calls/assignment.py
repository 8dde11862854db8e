"""Pairing predicted calls with reference calls: whether a perfect pairing exists (exact mode)
and the pairing of maximum total weight (partial and component modes)."""

from __future__ import annotations

import itertools
from collections.abc import Callable


def first_unmatchable(n: int, ok: Callable[[int, int], bool]) -> int | None:
    """The first row left out of a perfect bipartite matching, or None if there is one.

    Kuhn's augmenting paths: a row that cannot be augmented when its turn comes never can be,
    so the search stops there. `ok(row, col)` is asked lazily, the row's own column first, so
    that a nearly ordered answer costs few checks.
    """
    owner: list[int | None] = [None] * n

    def augment(row: int, seen: list[bool]) -> bool:
        for col in itertools.chain((row,), (c for c in range(n) if c != row)):
            if not seen[col] and ok(row, col):
                seen[col] = True
                holder = owner[col]
                if holder is None or augment(holder, seen):
                    owner[col] = row
                    return True
        return False

    for row in range(n):
        if not augment(row, [False] * n):
            return row
    return None


def max_weight_assignment(weights: list[list[float]]) -> list[tuple[int, int]]:
    """Row/column pairs maximizing the total weight (Hungarian method, O(n^3))."""
    n_rows, n_cols = len(weights), len(weights[0])
    if n_rows == 1:
        j = max(range(n_cols), key=lambda c: weights[0][c])
        return [(0, j)]
    if n_cols == 1:
        i = max(range(n_rows), key=lambda r: weights[r][0])
        return [(i, 0)]
    transposed = n_rows > n_cols
    cost = [list(col) for col in zip(*weights, strict=True)] if transposed else weights
    n, m = len(cost), len(cost[0])
    inf = float("inf")
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    p = [0] * (m + 1)
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = -cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    pairs = [(p[j] - 1, j - 1) for j in range(1, m + 1) if p[j]]
    return sorted((b, a) for a, b in pairs) if transposed else sorted(pairs)
