"""GLUE tasks: rows of text and labels, read offline from the official TSV layout or online
through Hugging Face ``datasets``.

Where a task's files are looked for, in order:

1. ``data_dir`` when given (else ``$GNS_GLUE_DIR`` when set): the official GLUE download layout,
   ``<dir>/<TASK>/train.tsv`` and ``dev.tsv`` (MNLI: ``dev_matched.tsv``);
2. otherwise the ``nyu-mll/glue`` dataset on the Hugging Face hub (needs internet).

TSV files are read with ``csv.QUOTE_NONE`` (several sentences start with a ``"``) and
``utf-8-sig`` (MRPC starts with a byte-order mark). Empty lines are skipped; a row without a
usable label (missing column, empty or unknown label) is skipped and counted in
:attr:`GlueRows.skipped`. GLUE's test labels are private, so ``"dev"`` is the test split of
this library and validation is drawn from ``"train"``.
"""

from __future__ import annotations

import csv
import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from gns_env.data.errors import DatasetError


@dataclass(frozen=True)
class GlueTask:
    """Where a GLUE task keeps its text and labels.

    :param directory: folder name in the GLUE download (``SST-2``).
    :param hub_config: configuration name of ``nyu-mll/glue`` on the hub (``sst2``).
    :param text_columns: TSV column names (or indices when the file has no header) of the
        sentence or sentence pair.
    :param label_column: TSV column name (or index) of the label.
    :param labels: label strings in class-id order; ``()`` for regression (float scores).
    :param header: whether the TSV files start with a header line.
    :param dev_file: the dev split's file name.
    :param hub_columns: the hub dataset's text columns.
    """

    directory: str
    hub_config: str
    text_columns: tuple
    label_column: str | int
    labels: tuple[str, ...]
    header: bool = True
    dev_file: str = "dev.tsv"
    hub_columns: tuple[str, ...] = ("sentence1", "sentence2")

    @property
    def num_labels(self) -> int:
        """Classes of the head; 1 for a regression task (STS-B)."""
        return len(self.labels) or 1


GLUE_TASKS: dict[str, GlueTask] = {
    "CoLA": GlueTask("CoLA", "cola", (3,), 1, ("0", "1"), header=False, hub_columns=("sentence",)),
    "SST2": GlueTask("SST-2", "sst2", ("sentence",), "label", ("0", "1"), hub_columns=("sentence",)),
    "MRPC": GlueTask("MRPC", "mrpc", ("#1 String", "#2 String"), "Quality", ("0", "1")),
    "QQP": GlueTask("QQP", "qqp", ("question1", "question2"), "is_duplicate", ("0", "1"),
                    hub_columns=("question1", "question2")),
    "STSB": GlueTask("STS-B", "stsb", ("sentence1", "sentence2"), "score", ()),
    "MNLI": GlueTask("MNLI", "mnli", ("sentence1", "sentence2"), "gold_label",
                     ("entailment", "neutral", "contradiction"), dev_file="dev_matched.tsv",
                     hub_columns=("premise", "hypothesis")),
    "QNLI": GlueTask("QNLI", "qnli", ("question", "sentence"), "label", ("entailment", "not_entailment"),
                     hub_columns=("question", "sentence")),
    "RTE": GlueTask("RTE", "rte", ("sentence1", "sentence2"), "label", ("entailment", "not_entailment")),
}  # fmt: skip

HOW_TO_GET = (
    "Put the GLUE files in the official layout (<dir>/<TASK>/train.tsv, dev.tsv, e.g. from "
    "https://gluebenchmark.com/tasks) and pass data_dir=<dir> or set GNS_GLUE_DIR, or run with "
    "internet access and the `datasets` package so they come from the Hugging Face hub."
)


@dataclass(frozen=True)
class GlueRows:
    """One split: ``texts`` holds one tuple of strings per example (a sentence or a pair),
    ``labels`` the class ids (int) or scores (float); ``skipped`` counts unusable rows."""

    texts: list[tuple[str, ...]]
    labels: list[float] | list[int]
    skipped: int = 0


def read_glue_tsv(path: Path, task: GlueTask) -> GlueRows:
    """Parse one GLUE TSV file; raises :class:`DatasetError` when it has no usable row."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = [row for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if row]
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"GLUE file {path} is unreadable ({err}). {HOW_TO_GET}") from err
    columns = [*task.text_columns, task.label_column]
    if task.header:
        if not rows:
            raise DatasetError(f"GLUE file {path} is empty. {HOW_TO_GET}")
        header, rows = rows[0], rows[1:]
        missing = [c for c in columns if c not in header]
        if missing:
            raise DatasetError(f"GLUE file {path} lacks the column(s) {missing}; its header is {header}. {HOW_TO_GET}")
        columns = [header.index(c) for c in columns]
    texts, labels, skipped = [], [], 0
    for row in rows:
        label = _parse_label(row[columns[-1]] if len(row) > max(columns) else "", task)
        if label is None:
            skipped += 1
            continue
        texts.append(tuple(row[c] for c in columns[:-1]))
        labels.append(label)
    if not labels:
        raise DatasetError(f"GLUE file {path} has no row with a usable label ({skipped} skipped). {HOW_TO_GET}")
    return GlueRows(texts, labels, skipped)


def _parse_label(text: str, task: GlueTask) -> int | float | None:
    text = text.strip()
    if not task.labels:
        try:
            return float(text)
        except ValueError:
            return None
    return task.labels.index(text) if text in task.labels else None


def glue_folder(data_dir: str | None) -> str | None:
    """The GLUE folder to read: ``data_dir``, else ``$GNS_GLUE_DIR`` (``None``: the hub)."""
    return data_dir or os.environ.get("GNS_GLUE_DIR")


def load_glue(task_name: str, split: str, data_dir: str | None = None) -> GlueRows:
    """Rows of GLUE ``task_name`` (a key of :data:`GLUE_TASKS`) for ``split`` ("train"/"dev"),
    cached per process and folder (:func:`glue_folder`, resolved at every call)."""
    if task_name not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {task_name!r}; known: {', '.join(GLUE_TASKS)}")
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev', got {split!r}")
    return _load_glue(task_name, split, glue_folder(data_dir))


@functools.lru_cache(maxsize=8)
def _load_glue(task_name: str, split: str, folder: str | None) -> GlueRows:
    task = GLUE_TASKS[task_name]
    if folder:
        path = Path(folder).expanduser() / task.directory / ("train.tsv" if split == "train" else task.dev_file)
        if not path.is_file():
            raise DatasetError(f"GLUE {task_name} {split} file {path} does not exist. {HOW_TO_GET}")
        return read_glue_tsv(path, task)
    return _load_from_hub(task, split)


def _load_from_hub(task: GlueTask, split: str) -> GlueRows:
    hub_split = {"train": "train", "dev": "validation_matched" if task.hub_config == "mnli" else "validation"}[split]
    try:
        from datasets import load_dataset

        dataset = load_dataset("nyu-mll/glue", task.hub_config, split=hub_split)
    except Exception as err:  # offline: ConnectionError, OSError, HF hub errors
        raise DatasetError(
            f"GLUE {task.directory}: no data_dir / GNS_GLUE_DIR given and the Hugging Face hub "
            f"download failed ({type(err).__name__}: {err}). {HOW_TO_GET}"
        ) from err
    texts = list(zip(*(dataset[column] for column in task.hub_columns)))
    labels = [float(v) for v in dataset["label"]] if not task.labels else [int(v) for v in dataset["label"]]
    return GlueRows(texts, labels)
