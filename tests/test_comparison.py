"""The comparison protocol: CMA-ES, the result store, resumption, backends and the report."""

import json
import math

import numpy as np
import pytest

import agents.jobs as jobs_module
from agents.cma_search import CMA_SEARCH_SPACES, CosineCMASearch, decode
from agents.comparison import ComparisonSettings, baseline_grid, retarget, run_comparison, run_transfer, transfer_folder
from agents.jobs import EpisodeJob, JobsFailed, ResultStore, run_jobs
from agents.baselines import HypergradientConfig, Schedule
from agents.report import markdown_table, write_report
from gns_env.tasks import PRESETS

IMAGE = CMA_SEARCH_SPACES["image"]


def test_decode_maps_the_unit_cube_onto_table_16():
    low, high = decode(np.zeros(3), IMAGE, 100), decode(np.ones(3), IMAGE, 100)
    assert (low.alpha_max, low.mu, low.eta2) == pytest.approx((1e-3, 1e-3, 0.5))
    assert (high.alpha_max, high.mu, high.eta2) == pytest.approx((1e-1, 1e-1, 1.0))
    assert decode(np.full(3, 0.5), IMAGE, 100).alpha_max == pytest.approx(1e-2)  # log-uniform centre
    language = decode(np.array([1.0, 0.5]), CMA_SEARCH_SPACES["language"], 100)
    assert language.kind == "cosine" and language.alpha_max == pytest.approx(1e-4) and language.eta1 == pytest.approx(0.05)


def _search(metric, evaluations=40, seed=0):
    search = CosineCMASearch(IMAGE, 100, evaluations=evaluations, seed=seed)
    asked = []
    while generation := search.ask():
        asked += generation
        search.tell([metric(s) for s in generation])
    return asked


def test_cma_es_finds_the_optimum_and_replays_with_the_same_seed():
    def metric(s: Schedule) -> float:  # best at alpha_max = 3e-2, mu = 1e-2, eta2 = 0.8
        return -((math.log10(s.alpha_max) - math.log10(3e-2)) ** 2 + (math.log10(s.mu) + 2) ** 2 + (s.eta2 - 0.8) ** 2)

    asked = _search(metric)
    assert len(asked) == 40  # the budget, a partial last generation included
    best = max(asked, key=metric)
    assert best.alpha_max == pytest.approx(3e-2, rel=0.5) and best.mu == pytest.approx(1e-2, rel=0.8)
    assert max(map(metric, asked[-7:])) > max(map(metric, asked[:7]))  # it improves on its first generation
    assert _search(metric) == asked  # deterministic: a resumed comparison replays the same search
    assert _search(metric, seed=1) != asked


def test_small_and_paper_grids():
    fmnist = PRESETS["GNS/FashionMNIST-Lite-v0"]
    sizes = {m: len(baseline_grid(m, fmnist, "paper")) for m in ("constant", "polynomial", "cosine", "adam-hd")}
    assert sizes == {"constant": 3, "polynomial": 36, "cosine": 18, "adam-hd": 9}
    assert [c.alpha_max for c in baseline_grid("cosine", fmnist)] == [1e-3, 1e-2, 1e-1]
    assert {c.beta for c in baseline_grid("adam-hd", fmnist)} == {1e-7}
    rte = PRESETS["GNS/GLUE-RTE-RoBERTaBase-v0"]
    sizes = {m: len(baseline_grid(m, rte, "paper")) for m in ("constant", "polynomial", "cosine", "adam-hd")}
    assert sizes == {"constant": 10, "polynomial": 20, "cosine": 10, "adam-hd": 6}


def _episode_jobs(n):
    schedules = [Schedule("constant", 8, lr) for lr in (1e-3, 3e-3, 1e-2)[:n]]
    return [EpisodeJob(key=f"tune/constant/{s.label()}", env_id="GNS/Debug-v0", seed=0, config=s) for s in schedules]


def test_run_jobs_stores_results_and_skips_stored_ones(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    first = run_jobs(_episode_jobs(2), store, log=lambda line: None)
    calls = []
    real = jobs_module.run_job
    monkeypatch.setattr(jobs_module, "run_job", lambda job: calls.append(job.key) or real(job))
    again = run_jobs(_episode_jobs(3), store, log=lambda line: None)
    assert calls == [_episode_jobs(3)[2].key]  # only the new job ran
    assert all(again[key] == first[key] for key in first)


def test_a_failing_job_is_reported_and_the_others_are_kept(tmp_path, monkeypatch):
    real = jobs_module.run_job

    def flaky(job):
        if "0.003" in job.key:
            raise RuntimeError("boom")
        return real(job)

    monkeypatch.setattr(jobs_module, "run_job", flaky)
    store = ResultStore(tmp_path)
    with pytest.raises(JobsFailed, match=r"(?s)1 job\(s\) failed.*0\.003.*boom"):
        run_jobs(_episode_jobs(3), store, log=lambda line: None)
    assert [job.key in store for job in _episode_jobs(3)] == [True, False, True]


def test_local_processes_give_the_in_process_results(tmp_path):
    serial = run_jobs(_episode_jobs(2), ResultStore(tmp_path / "a"), log=lambda line: None)
    parallel = run_jobs(_episode_jobs(2), ResultStore(tmp_path / "b"), workers=2, log=lambda line: None)
    for key in serial:
        assert parallel[key]["val_metrics"] == serial[key]["val_metrics"] and parallel[key]["lrs"] == serial[key]["lrs"]


def test_ray_backend_runs_the_same_jobs(tmp_path):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    try:
        serial = run_jobs(_episode_jobs(2), ResultStore(tmp_path / "a"), log=lambda line: None)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        remote = run_jobs(_episode_jobs(2), ResultStore(tmp_path / "b"), backend="ray", log=lambda line: None)
    finally:
        ray.shutdown()
    assert all(remote[key]["val_metrics"] == serial[key]["val_metrics"] for key in serial)


SETTINGS = dict(env_id="GNS/Debug-v0", seeds=2, episodes=2, cma_evaluations=3)
ALL = ["constant", "polynomial", "cosine", "adam-hd", "cma-es", "gns", "gat", "frs", "srls", "css"]


def test_full_comparison_on_two_seeds_then_resume_after_a_kill(tmp_path, monkeypatch):
    out = tmp_path / "cmp"
    report = run_comparison(ComparisonSettings(**SETTINGS), ALL, out, log=lambda line: None)
    names = ["Constant", "Polynomial", "Cosine", "Adam-HD", "CMA-ES", "GNS", "GNS-GAT", "FRS", "SRLS", "CSS"]
    assert [row["method"] for row in report["rows"]] == names
    assert all(row["seeds"] == 2 and row["search_minutes"] is not None for row in report["rows"])
    assert len(report["search"]["CMA-ES"]) == 3 and len(report["search"]["GNS"]) == 2
    learned = report["runs"]["GNS"][0]
    assert learned["candidates"] == pytest.approx([1e-3, 3.16e-3, 1e-2]) and len(learned["scores"]) == 3
    assert learned["initial_lr"] == learned["candidates"][int(np.argmax(learned["scores"]))]
    paths = write_report(report, out)
    assert all(p.stat().st_size > 0 for p in paths) and paths[0].read_text().count("±") == len(names)

    # Kill the comparison in the middle of its test phase, then run it again.
    test_results = sorted((out / "store" / "test").rglob("*.json"))
    lost = {p: json.loads(p.read_text()) for p in test_results[3:6]}
    for p in lost:
        p.unlink()
    ran = []
    real = jobs_module.run_job
    monkeypatch.setattr(jobs_module, "run_job", lambda job: ran.append(job.key) or real(job))
    resumed = run_comparison(ComparisonSettings(**SETTINGS), ALL, out, log=lambda line: None)
    assert sorted(ran) == sorted(str(p.relative_to(out / "store").with_suffix("")) for p in lost)
    for p, result in lost.items():  # rerun jobs reproduce what was lost, seconds aside
        again = json.loads(p.read_text())
        assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in result.items() if k != "seconds"}
    assert [r["test_mean"] for r in resumed["rows"]] == [r["test_mean"] for r in report["rows"]]


#: A transfer target with another graph (ResNet-8 vs. the debug ResNet) and another T.
TARGET = ("GNS/FashionMNIST-Lite-v0", dict(total_steps=6, decision_interval=2, val_size=256))


def test_transfer_tests_on_the_target_what_the_source_tuned_and_trained(tmp_path, monkeypatch, fashion_mnist):
    out, settings, methods = tmp_path / "cmp", ComparisonSettings(**{**SETTINGS, "seeds": 1, "episodes": 1}), ["cosine", "gns"]
    report = run_transfer(settings, methods, out, *TARGET, log=lambda line: None)
    assert report["task"] == {"env_id": TARGET[0], "env_kwargs": TARGET[1], "source_env_id": "GNS/Debug-v0",
                              "metric": "accuracy", "is_text": False, "total_steps": 6}  # fmt: skip
    tuned = [e for e in report["search"]["Cosine"]]
    assert report["rows"][0]["config"] == max(tuned, key=lambda e: e["val_metric"])["config"]  # tuned on the source
    assert len(report["search"]["GNS"]) == 1 and report["rows"][1]["config"].startswith(str(out / "agents" / "gns"))
    for records in report["runs"].values():  # every decision of the target's 6-step episode
        assert records[0]["steps"][-1] == 6 and records[0]["test_metric"] is not None
    assert sorted(p.name for p in (transfer_folder(out, TARGET[0]) / "store" / "test").iterdir()) == ["cosine", "gns"]
    assert "transfer" in write_report(report, transfer_folder(out, TARGET[0]))[0].read_text()

    # The source's own comparison reuses the search: only its test runs execute.
    ran = []
    real = jobs_module.run_job
    monkeypatch.setattr(jobs_module, "run_job", lambda job: ran.append(job) or real(job))
    run_comparison(settings, methods, out, log=lambda line: None)
    assert ran and all(job.key.startswith("test/") and job.env_id == "GNS/Debug-v0" for job in ran)
    with pytest.raises(ValueError, match="env_kwargs: stored {'total_steps': 6.*now {'total_steps': 8"):
        run_transfer(settings, methods, out, TARGET[0], {**TARGET[1], "total_steps": 8}, log=lambda line: None)


def test_transfer_to_an_env_the_agents_cannot_observe_fails_before_any_run(tmp_path):
    with pytest.raises(ValueError, match="nodes"):
        run_transfer(ComparisonSettings(**SETTINGS), ["gns"], tmp_path, "GNS/Debug-v0", {"max_nodes": 64})
    assert not (tmp_path / "store").exists()
    with pytest.raises(ValueError, match="not a GNS-env"):
        run_transfer(ComparisonSettings(**SETTINGS), ["cosine"], tmp_path, "CartPole-v1")


def test_retarget_keeps_a_schedules_fractions_and_takes_the_targets_length():
    tuned = Schedule("cosine", 8, alpha_max=1e-2, mu=0.1, eta1=0.25, eta2=0.5)
    moved = retarget(tuned, PRESETS["GNS/FashionMNIST-Lite-v0"])
    assert moved.total_steps == 420 and moved.label() == tuned.label()
    assert moved(105) == pytest.approx(1e-2) and moved(210) == pytest.approx(1e-3)  # end of warmup, end of decay
    hypergradient = HypergradientConfig(alpha0=1e-3, beta=1e-7)
    assert retarget(hypergradient, PRESETS["GNS/FashionMNIST-Lite-v0"]) is hypergradient


def test_a_resumed_comparison_must_use_the_same_settings(tmp_path):
    run_comparison(ComparisonSettings(**{**SETTINGS, "seeds": 1}), ["constant"], tmp_path, log=lambda line: None)
    with pytest.raises(ValueError, match="seeds"):
        run_comparison(ComparisonSettings(**{**SETTINGS, "seeds": 2}), ["constant"], tmp_path, log=lambda line: None)


def test_bad_methods_and_settings(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        run_comparison(ComparisonSettings(**SETTINGS), ["cosine", "sgdr"], tmp_path)
    with pytest.raises(ValueError, match="grid"):
        run_comparison(ComparisonSettings(**{**SETTINGS, "grid": "huge"}), ["cosine"], tmp_path)
    with pytest.raises(ValueError, match=r"initial_lrs \[5.0\] lie outside GNS/Debug-v0's lr_bounds"):
        run_comparison(ComparisonSettings(**{**SETTINGS, "initial_lrs": (1e-3, 5.0)}), ["gns"], tmp_path / "a")
    with pytest.raises(ValueError, match="pre_decisions=4 exceeds the 3 decisions"):
        run_comparison(ComparisonSettings(**{**SETTINGS, "pre_decisions": 4}), ["gns"], tmp_path / "a")
    assert not (tmp_path / "a").exists()  # refused before anything is written
    with pytest.raises(ValueError, match="backend"):
        run_jobs(_episode_jobs(1), ResultStore(tmp_path), backend="slurm")


def test_markdown_table_shows_unknown_cost_as_a_dash():
    row = {"method": "GNS", "config": "a.zip", "test_mean": 1.0, "test_std": 0.5, "val_mean": 2.0, "seeds": 2,
           "diverged": 0, "search_minutes": None, "test_minutes": 0.1}  # fmt: skip
    assert "| GNS | 1.00 ± 0.50 | 2.00 | 2 | 0 | — | a.zip |" in markdown_table([row])


def test_a_training_killed_after_its_last_checkpoint_is_not_trained_again(tmp_path, monkeypatch):
    from agents.jobs import TrainJob, run_job

    job = TrainJob(key="train/gns", env_id="GNS/Debug-v0", scheduler="gns", episodes=2, seed=0, out=str(tmp_path))
    first = run_job(job)  # as if the comparison died before storing this summary
    monkeypatch.setattr("agents.training.train_agent", lambda *a, **k: pytest.fail("trained again"))
    assert run_job(job) == first and first["episodes"] == 2 and len(first["final_val_metrics"]) == 2
