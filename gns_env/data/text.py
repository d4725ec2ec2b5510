"""Token tensors of a text dataset: tokenised once, then only indexed."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from gns_env.data.glue import GlueRows


def tokenize_rows(rows: GlueRows, tokenizer, max_length: int, regression: bool) -> TensorDataset:
    """Tokenise every example once.

    :return: ``input_ids``, ``attention_mask``, ``token_type_ids`` — int64 ``(N, L)`` with ``L``
        the longest tokenised example (at most ``max_length``; longer ones are truncated) — and
        targets ``(N,)``: int64 class ids, or float32 scores when ``regression``. Batches are
        trimmed to their own longest example by :class:`gns_env.models.text.TextClassifier`.
    """
    columns = list(zip(*rows.texts))
    encoded = tokenizer(
        *columns,
        truncation=True,
        max_length=max_length,
        padding="longest",
        return_token_type_ids=True,
        return_tensors="pt",
    )
    targets = torch.tensor(rows.labels, dtype=torch.float32 if regression else torch.int64)
    return TensorDataset(encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"], targets)
