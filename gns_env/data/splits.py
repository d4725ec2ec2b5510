"""One entry point for every task's data: the split as in-memory tensors on the CPU."""

from __future__ import annotations

import functools

from torch.utils.data import TensorDataset

from gns_env.data.glue import GLUE_TASKS, glue_folder, load_glue
from gns_env.data.images import load_image_split
from gns_env.data.text import tokenize_rows
from gns_env.models.text import load_tokenizer, resolve_source
from gns_env.tasks import TaskSpec


def load_task_split(task: TaskSpec, split: str) -> TensorDataset:
    """``split`` ("train" or "test") of ``task``'s dataset: model inputs first, targets last.

    Images: ``(N, C, H, W)`` float32, labels ``(N,)``. Text: token tensors (see
    :func:`gns_env.data.text.tokenize_rows`); GLUE's "test" is its dev set (test labels are private).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if task.dataset == "glue":
        tokenizer = resolve_source(task.tokenizer or task.model)
        return _glue_tokens(task.subset, "train" if split == "train" else "dev", glue_folder(task.data_dir), tokenizer,
                            task.max_seq_length)  # fmt: skip
    return load_image_split(task.dataset, split, task.data_dir)


@functools.lru_cache(maxsize=4)
def _glue_tokens(name: str, split: str, data_dir: str | None, tokenizer: str, max_length: int) -> TensorDataset:
    rows = load_glue(name, split, data_dir)
    return tokenize_rows(rows, load_tokenizer(tokenizer), max_length, regression=not GLUE_TASKS[name].labels)
