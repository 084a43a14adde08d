"""How information flows through a pattern stacked over layers.

At each layer token q reads the tokens k with allowed[q, k], so information moves k -> q in
one hop; the number of layers it takes to get from token a to token b is the graph distance,
and after L layers a token has heard from the L-th boolean power of the mask.
"""

from __future__ import annotations

from collections import deque

import torch

from tefviz.errors import InputError

MAX_FLOW = 4096


def _check(mask: torch.Tensor) -> int:
    n = mask.shape[0]
    if mask.dim() != 2 or mask.shape[1] != n:
        raise InputError("the mask must be square")
    if n > MAX_FLOW:
        raise InputError(f"information flow is computed up to {MAX_FLOW} tokens; this pattern has {n}")
    return n


def hop_distances(mask: torch.Tensor, source: int) -> torch.Tensor:
    """Layers needed for information at `source` to reach every token (-1: never)."""
    n = _check(mask)
    if not 0 <= source < n:
        raise InputError(f"token {source} is outside 0..{n - 1}")
    readers = [torch.nonzero(mask[:, k], as_tuple=True)[0].tolist() for k in range(n)]  # k -> queries
    dist = [-1] * n
    dist[source] = 0
    todo = deque([source])
    while todo:
        k = todo.popleft()
        for q in readers[k]:
            if dist[q] < 0:
                dist[q] = dist[k] + 1
                todo.append(q)
    return torch.tensor(dist)


def hops(mask: torch.Tensor, source: int, target: int) -> tuple[int | None, list[int]]:
    """(layers from source to target or None, one shortest path source -> ... -> target)."""
    n = _check(mask)
    if not (0 <= source < n and 0 <= target < n):
        raise InputError(f"tokens must lie in 0..{n - 1}")
    parent = {source: source}
    todo = deque([source])
    while todo and target not in parent:
        k = todo.popleft()
        for q in torch.nonzero(mask[:, k], as_tuple=True)[0].tolist():
            if q not in parent:
                parent[q] = k
                todo.append(q)
    if target not in parent:
        return None, []
    path = [target]
    while path[-1] != source:
        path.append(parent[path[-1]])
    return len(path) - 1, path[::-1]


def receptive_field(mask: torch.Tensor, layers: int) -> list[float]:
    """Mean number of tokens each token has heard from after 1..layers layers (itself included)."""
    n = _check(mask)
    if layers < 1:
        raise InputError(f"layers must be at least 1, got {layers}")
    step = (mask | torch.eye(n, dtype=torch.bool)).float()
    reach = torch.eye(n)
    out = []
    for _ in range(layers):
        reach = ((step @ reach) > 0).float()  # row q: tokens that reached q
        out.append(float(reach.sum(1).mean()))
    return out


def max_hops(mask: torch.Tensor, sample: int = 64) -> int | None:
    """The largest number of layers information needs between two tokens (for a causal pattern,
    from each token to the later ones), over sources spread across the sequence (exact when
    n <= sample); None when some token can never reach another."""
    n = _check(mask)
    causal = not mask.triu(1).any()  # then information only ever moves forward
    sources = range(n) if n <= sample else torch.linspace(0, n - 1, sample).long().tolist()
    worst = 0
    for s in sources:
        d = hop_distances(mask, s)
        targets = d[s:] if causal else d
        if (targets < 0).any():
            return None
        worst = max(worst, int(targets.max()))
    return worst
