"""The outputs of a comparison: the paper-style table (Markdown, CSV, JSON) and its plots."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _minutes(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def markdown_table(rows: Sequence[dict], metric: str = "accuracy") -> str:
    """The rows as a Markdown table (test metric as mean ± std, like the paper's Tables 1/2)."""
    lines = [
        f"| Scheduler | Test {metric} (%) | Val {metric} (%) | Seeds | Diverged | Search cost (min) | Configuration |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {row['test_mean']:.2f} ± {row['test_std']:.2f} | {row['val_mean']:.2f} "
            f"| {row['seeds']} | {row['diverged']} | {_minutes(row['search_minutes'])} | {row['config']} |"
        )
    return "\n".join(lines)


def write_report(report: dict, out: Path) -> list[Path]:
    """``table.md``, ``table.csv``, ``report.json``, ``trajectories.png`` and ``search.png`` in
    ``out``; returns their paths."""
    task = report["task"]
    settings = report["settings"]
    title = (
        f"Test {task['metric']}{' (GLUE dev set)' if task['is_text'] else ''} on {task['env_id']}, "
        f"{settings['seeds']} held-out seeds"
    )
    if "source_env_id" in task:
        kwargs = f" with {task['env_kwargs']}" if task.get("env_kwargs") else ""
        title += f"{kwargs}; baselines tuned and agents trained on {task['source_env_id']} (transfer, paper §5.4)"
    table = markdown_table(report["rows"], task["metric"])
    paths = [out / name for name in ("table.md", "table.csv", "report.json", "trajectories.png", "search.png")]
    paths[0].write_text(f"{title}\n\n{table}\n")
    with open(paths[1], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(report["rows"][0]))
        writer.writeheader()
        writer.writerows(report["rows"])
    paths[2].write_text(json.dumps(report, indent=1))
    plot_trajectories(report["runs"], paths[3], task["env_id"], task["metric"])
    plot_search(report["search"], paths[4], task["env_id"], task["metric"])
    return paths


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_trajectories(runs: dict[str, Sequence[dict]], path: Path, title: str, metric: str = "accuracy") -> None:
    """LR (log scale) and validation metric against optimizer steps, first held-out seed of each
    method (like paper Fig. 3)."""
    plt = _pyplot()
    fig, (ax_lr, ax_val) = plt.subplots(1, 2, figsize=(12, 4.5))
    for method, records in runs.items():
        record = records[0]
        ax_lr.plot(record["steps"], record["lrs"], label=method, drawstyle="steps-post")
        ax_val.plot(record["val_steps"], np.array(record["val_metrics"]) * 100, marker="o", ms=3, label=method)
    seed = next(iter(runs.values()))[0]["seed"]
    ax_lr.set(xlabel="optimizer step", ylabel="learning rate", yscale="log", title=f"{title}: LR (seed {seed})")
    ax_val.set(xlabel="optimizer step", ylabel=f"validation {metric} (%)", title="validation at validated decisions")
    for ax in (ax_lr, ax_val):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_search(search: dict[str, Sequence[dict]], path: Path, title: str, metric: str = "accuracy") -> None:
    """Best validation metric so far against evaluations (grids, CMA-ES) or training episodes
    (learned schedulers), like paper Fig. 5."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, evaluations in search.items():
        values = np.array([e["val_metric"] for e in evaluations], dtype=float) * 100
        values = np.where(np.isfinite(values), values, -np.inf)  # a diverged training episode
        ax.plot(np.arange(1, len(values) + 1), np.maximum.accumulate(values), marker=".", label=method)
    ax.set(xlabel="evaluations / training episodes", ylabel=f"best validation {metric} so far (%)", title=f"{title}: search")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
