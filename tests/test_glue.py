"""GLUE rows: the real shared copy, fabricated files for the edge cases, tokenisation, metrics."""

import math

import numpy as np
import pytest
import torch

from gns_env.data import DatasetError
from gns_env.data.glue import GLUE_TASKS, load_glue, read_glue_tsv
from gns_env.data.text import tokenize_rows
from gns_env.metrics import compute_metrics, f1, matthews, pearson
from gns_env.models.text import load_tokenizer

REAL_COUNTS = {  # task: (train rows, dev rows, train labels of class 1 or None), from SOURCES.md
    "RTE": (2490, 277, 1241),
    "MRPC": (3668, 408, 2474),
    "CoLA": (8551, 1043, 6023),
    "STSB": (5749, 1500, None),
}


@pytest.mark.parametrize("task", sorted(REAL_COUNTS))
def test_real_glue_rows_match_the_official_counts(glue_dir, task):
    train, dev = load_glue(task, "train", glue_dir), load_glue(task, "dev", glue_dir)
    n_train, n_dev, positives = REAL_COUNTS[task]
    assert (len(train.labels), len(dev.labels), train.skipped, dev.skipped) == (n_train, n_dev, 0, 0)
    assert all(len(text) == len(GLUE_TASKS[task].text_columns) and all(text) for text in train.texts)
    if positives is None:
        assert min(train.labels) == 0.0 and max(train.labels) == 5.0
    else:
        assert sum(train.labels) == positives


def test_real_rte_row_starting_with_a_quote_keeps_its_neighbours(glue_dir):
    rows = load_glue("RTE", "train", glue_dir)
    quoted = [i for i, (premise, _) in enumerate(rows.texts) if premise.startswith('"')]
    assert quoted, "RTE train has sentences that begin with a quote"
    assert rows.texts[0][0] == "No Weapons of Mass Destruction Found in Iraq Yet."
    assert rows.labels[0] == GLUE_TASKS["RTE"].labels.index("not_entailment")


def _write(path, lines, bom=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_fabricated_file_with_quotes_empty_lines_and_missing_labels(tmp_path):
    path = _write(
        tmp_path / "RTE" / "train.tsv",
        [
            "index\tsentence1\tsentence2\tlabel",
            '0\t"Quoted start, no end\tsecond\tentailment',
            "",
            "1\tplain\tpair\tnot_entailment",
            "2\tno label\there\t",
            "3\ttoo few columns",
            "4\tunknown\tlabel\tmaybe",
            '5\tlast "one"\tok\tentailment',
        ],
    )
    rows = read_glue_tsv(path, GLUE_TASKS["RTE"])
    assert rows.texts == [('"Quoted start, no end', "second"), ("plain", "pair"), ('last "one"', "ok")]
    assert rows.labels == [0, 1, 0] and rows.skipped == 3


def test_bom_header_and_headerless_layouts(tmp_path):
    mrpc = _write(tmp_path / "MRPC" / "dev.tsv", ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", "1\t1\t2\tA\tB"], bom=True)
    assert read_glue_tsv(mrpc, GLUE_TASKS["MRPC"]).texts == [("A", "B")]
    cola = _write(tmp_path / "CoLA" / "train.tsv", ["src\t1\t\tGood sentence.", "src\t0\t*\tBad sentence ."])
    rows = read_glue_tsv(cola, GLUE_TASKS["CoLA"])
    assert rows.texts == [("Good sentence.",), ("Bad sentence .",)] and rows.labels == [1, 0]
    stsb = _write(tmp_path / "STS-B" / "train.tsv", ["sentence1\tsentence2\tscore", "a\tb\t3.800", "c\td\tn/a"])
    rows = read_glue_tsv(stsb, GLUE_TASKS["STSB"])
    assert rows.labels == [3.8] and rows.skipped == 1


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "is empty"),
        (["sentence1\tsentence2\tlabel_typo", "a\tb\tentailment"], "lacks the column"),
        (["sentence1\tsentence2\tlabel", "a\tb\t"], "no row with a usable label"),
    ],
)
def test_unusable_files_raise_one_clear_error(tmp_path, lines, message):
    path = _write(tmp_path / "RTE" / "train.tsv", lines)
    with pytest.raises(DatasetError, match=message):
        read_glue_tsv(path, GLUE_TASKS["RTE"])


def test_missing_task_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match="GNS_GLUE_DIR"):
        load_glue("RTE", "train", str(tmp_path))


def test_a_changed_glue_dir_variable_is_read_not_served_from_the_cache(tmp_path, monkeypatch):
    for name, pair in (("a", "first\tpair"), ("b", "second\tpair")):
        _write(tmp_path / name / "RTE" / "train.tsv", ["sentence1\tsentence2\tlabel", f"{pair}\tentailment"])
    monkeypatch.setenv("GNS_GLUE_DIR", str(tmp_path / "a"))
    assert load_glue("RTE", "train").texts == [("first", "pair")]
    monkeypatch.setenv("GNS_GLUE_DIR", str(tmp_path / "b"))
    assert load_glue("RTE", "train").texts == [("second", "pair")]


def test_tokenisation_pads_to_the_longest_and_truncates(glue_dir, minilm):
    rows = load_glue("MRPC", "dev", glue_dir)
    tensors = tokenize_rows(rows, load_tokenizer(minilm), max_length=32, regression=False).tensors
    ids, mask, types, labels = tensors
    assert ids.shape == mask.shape == types.shape == (408, 32) and labels.dtype == torch.int64
    assert mask.sum(1).max() == 32  # MRPC pairs are longer than 32 tokens: truncated
    assert types.max() == 1  # sentence pairs get segment ids
    assert labels.tolist() == rows.labels


def test_metrics_against_hand_computed_values():
    targets = torch.tensor([1, 1, 1, 0, 0, 0, 1, 0])
    predictions = torch.tensor([1, 1, 0, 0, 0, 1, 1, 1])
    tp, tn, fp, fn = 3, 2, 2, 1
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert matthews(predictions, targets) == pytest.approx(mcc)
    assert f1(predictions, targets) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    scores, gold = torch.tensor([1.0, 2.0, 3.0, 5.0]), torch.tensor([1.0, 3.0, 2.0, 4.0])
    x, y = scores - scores.mean(), gold - gold.mean()
    assert pearson(scores, gold) == pytest.approx(float((x * y).sum() / (x.norm() * y.norm())))
    values = compute_metrics(("accuracy", "f1"), predictions, targets)
    assert values == pytest.approx({"accuracy": 5 / 8, "f1": 2 * tp / (2 * tp + fp + fn)})


def test_undefined_metrics_count_as_chance():
    constant = torch.zeros(6, dtype=torch.long)
    targets = torch.tensor([0, 1, 0, 1, 0, 1])
    assert matthews(constant, targets) == 0.0
    assert pearson(torch.full((6,), 2.5), targets.float()) == 0.0
    assert pearson(torch.tensor([np.nan, 1.0, 2.0]), torch.tensor([0.0, 1.0, 2.0])) == 0.0
