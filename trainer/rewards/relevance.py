"""Contextual relevance: MiniLM similarity of the reply to the client's words and to the
therapist's reference reply."""

from __future__ import annotations

import numpy as np

from trainer.rewards.resources import LazyReward, load_embedder
from trainer.rewards.text import column, replies


class ContextualRelevance(LazyReward):
    """`client_weight * cos(reply, client_words) + (1 - client_weight) * cos(reply, reference)`,
    clipped to 0..1; rows without a reference use the client's words alone. `embed` is
    texts -> unit vectors, or "auto" for the bundled MiniLM.

    >>> def embed(texts):  # a toy embedding: counts of three words
    ...     rows = [[t.lower().count(w) + 1e-9 for w in ("sleep", "work", "dog")] for t in texts]
    ...     return np.asarray(rows) / np.linalg.norm(rows, axis=1, keepdims=True)
    >>> reward = ContextualRelevance(embed=embed, client_weight=1.0)
    >>> [round(x, 3) for x in reward(["Sleep sounds hard.", "Tell me about the dog."], client_words="I can't sleep.")]
    [1.0, 0.0]
    """

    name = "contextual_relevance"

    def __init__(self, embed="auto", client_weight: float = 0.5) -> None:
        if not 0.0 <= client_weight <= 1.0:
            raise ValueError(f"client_weight must be within 0..1, not {client_weight}")
        if not (callable(embed) or embed == "auto"):
            raise ValueError("embed must be a callable or 'auto' (the bundled MiniLM)")
        super().__init__(embed=embed)
        self.client_weight = client_weight

    def _load(self, name, spec):
        return load_embedder() if spec == "auto" else spec

    def __call__(self, completions, client_words=None, reference=None, **kwargs) -> list[float | None]:
        texts = replies(completions)
        n = len(texts)
        clients = column({"c": client_words}, "c", n)
        refs = column({"r": reference}, "r", n)
        if all(c is None for c in clients):
            return [None] * n
        embed = self.resource("embed")
        others = [c or "" for c in clients] + [r or "" for r in refs]
        vectors = np.asarray(embed(texts + others), dtype=np.float64)
        reply_v, client_v, ref_v = vectors[:n], vectors[n : 2 * n], vectors[2 * n :]
        scores: list[float | None] = []
        for i in range(n):
            if not texts[i] or clients[i] is None:
                scores.append(None if clients[i] is None else 0.0)
                continue
            to_client = float(reply_v[i] @ client_v[i])
            if refs[i]:
                score = self.client_weight * to_client + (1 - self.client_weight) * float(reply_v[i] @ ref_v[i])
            else:
                score = to_client
            scores.append(min(1.0, max(0.0, score)))
        return scores
