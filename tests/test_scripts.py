import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import compare  # noqa: E402
import train_gns  # noqa: E402


def test_train_then_compare_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_gns.main(["--env", "GNS/Debug-v0", "--episodes", "2", "--out", str(out), "--no-progress"]) == 0
    episodes = json.loads((out / "episodes.json").read_text())
    assert [e["episode"] for e in episodes] == [1, 2] and all(e["decisions"] == 3 for e in episodes)
    assert all(abs(e["return"] - (e["final_val_metric"] - 0)) < 1.0 for e in episodes)
    assert (out / "agent.zip").is_file() and list((out / "tb").rglob("events.out.tfevents*"))
    cmp = tmp_path / "cmp"
    argv = ["--agent", str(out / "agent.zip"), "--env", "GNS/Debug-v0", "--methods", "constant", "cosine", "gns",
            "--seeds", "2", "--out", str(cmp)]  # fmt: skip
    assert compare.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| Constant |" in printed and "| Cosine |" in printed and "| GNS |" in printed
    rows = json.loads((cmp / "report.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["Constant", "Cosine", "GNS"] and all(r["seeds"] == 2 for r in rows)
    assert rows[-1]["search_minutes"] is None and str(out / "agent.zip") in rows[-1]["config"]  # given, not trained
    assert (cmp / "table.md").read_text().count("±") == 3
    assert (cmp / "table.csv").read_text().startswith("method,config,test_mean")
    assert (cmp / "trajectories.png").stat().st_size > 10_000 and (cmp / "search.png").stat().st_size > 10_000
    assert compare.main(argv) == 0  # a second run reuses every stored result
    assert "already done" in capsys.readouterr().out


def test_env_kwargs_reach_the_env(tmp_path):
    out = tmp_path / "run"
    train_gns.main(["--env", "GNS/Debug-v0", "--episodes", "1", "--out", str(out), "--no-progress",
                    "--env-kwargs", "total_steps=12", "val_prob=1.0"])  # fmt: skip
    assert json.loads((out / "episodes.json").read_text())[0]["decisions"] == 5
    assert json.loads((out / "config.json").read_text())["env_kwargs"] == {"total_steps": 12, "val_prob": 1.0}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "GNS/Nope-v0"], "Nope"),
        (["--env", "GNS/FashionMNIST-Lit-v0"], "Did you mean: `FashionMNIST-Lite`?"),
        (["--env", "GNS/Debug-v0", "--env-kwargs", "batch_size=0"], "batch_size"),
        (["--env", "GNS/Debug-v0", "--env-kwargs", "colour=red"], "colour"),
        (["--env", "GNS/Debug-v0", "--n-envs", "0"], "n_envs must be positive, got 0"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        train_gns.main([*argv, "--out", str(tmp_path), "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err


def _foreign_agent_files(folder):
    """Files a user may pass as --agent that are no GNS agent, each with the words of its error."""
    import zipfile

    from stable_baselines3 import PPO

    json_file, empty_zip, cartpole = folder / "config.json", folder / "empty.zip", folder / "cartpole.zip"
    json_file.write_text("{}")
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("notes.txt", "no SB3 data")
    PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=64).save(cartpole)
    not_an_agent = "is not an agent saved by scripts/train_gns.py"
    return [(json_file, not_an_agent), (empty_zip, not_an_agent), (cartpole, "not a GNS-env agent"),
            (folder / "missing.zip", "does not exist"), (folder, "is a folder")]  # fmt: skip


def test_compare_rejects_a_file_that_is_not_an_agent(tmp_path, capsys):
    for path, message in _foreign_agent_files(tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            compare.main(["--agent", str(path), "--env", "GNS/Debug-v0", "--out", str(tmp_path / "cmp")])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.startswith("error:") and message in err, (path, err)
    assert not (tmp_path / "cmp").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "CartPole-v1"], "CartPole-v1 is not a GNS-env learning-rate env"),
        (["--transfer-to", "CartPole-v1"], "CartPole-v1 is not a GNS-env learning-rate env"),
        (["--transfer-to", "GNS/Debug-v0", "GNS/Nope-v0"], "Nope"),  # the second target, before the first runs
        (["--transfer-kwargs", "total_steps=12"], "give --transfer-to"),
        (["--methods", "gns", "--transfer-to", "GNS/Debug-v0", "--transfer-kwargs", "max_nodes=64"],
         "observation space of agents trained on GNS/Debug-v0 does not match"),  # fmt: skip
        (["--transfer-to", "GNS/GLUE-RTE-Lite-v0"], "transfer stays within images or within text"),
    ],
)
def test_compare_refuses_a_bad_env_or_transfer_before_running_anything(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--env", "GNS/Debug-v0", "--methods", "constant", *argv, "--out", str(tmp_path / "cmp")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "cmp").exists()


def test_training_with_two_parallel_envs(tmp_path):
    out = tmp_path / "run"
    assert train_gns.main(["--env", "GNS/Debug-v0", "--episodes", "2", "--n-envs", "2", "--out", str(out), "--no-progress"]) == 0
    episodes = json.loads((out / "episodes.json").read_text())
    assert sorted(e["env_index"] for e in episodes) == [0, 1] and all(e["decisions"] == 3 for e in episodes)


def test_divergence_in_a_parallel_worker_ends_only_that_episode_and_training_goes_on(tmp_path):
    out = tmp_path / "run"
    # Initial LRs up to 1000 make some episodes blow up at once (NaN loss), others train normally.
    kwargs = ["initial_lr_range=[0.001,1000]", "lr_bounds=[1e-6,1000]"]
    argv = ["--env", "GNS/Debug-v0", "--episodes", "8", "--n-envs", "2", "--out", str(out), "--no-progress"]
    assert train_gns.main([*argv, "--env-kwargs", *kwargs]) == 0
    episodes = json.loads((out / "episodes.json").read_text())
    diverged = [e for e in episodes if e["diverged"]]
    healthy = [e for e in episodes if not e["diverged"]]
    assert diverged and healthy and {e["env_index"] for e in diverged} == {0, 1}  # both workers diverged
    assert all(e["decisions"] == 1 and e["return"] == -1.0 for e in diverged)  # ended at once, with the penalty
    assert all(e["decisions"] == 3 and 0 <= e["final_val_metric"] <= 1 for e in healthy)
    assert len(episodes) >= 8 and (out / "agent.zip").is_file()  # every requested episode ran, the agent saved

def test_each_worker_gets_its_share_of_the_cores(monkeypatch):
    from agents.vec_env import threads_per_worker

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert [threads_per_worker(n) for n in (1, 2, 3, 16)] == [8, 4, 2, 1]


def test_bench_overhead_reports_every_figure(tmp_path, capsys):
    import bench_overhead

    out = tmp_path / "bench.json"
    argv = ["--env", "GNS/Debug-v0", "--repeats", "1", "--env-kwargs", "total_steps=12", "--out", str(out)]
    assert bench_overhead.main(argv) == 0
    result = json.loads(out.read_text())[0]
    assert 0 < result["ratio"]["min"] <= result["ratio"]["median"] <= result["ratio"]["max"]
    assert result["observation_share"] > 0 and result["peak_rss_mb"]["env"] > 0
    assert 0 < result["validation_share"]["p=0.2"] < result["validation_share"]["p=1"] < 1
    assert "| peak RSS env / bare |" in capsys.readouterr().out


def test_a_killed_run_resumes_without_losing_or_repeating_episodes(tmp_path, monkeypatch, capsys):
    from agents.callbacks import EpisodeResultsCallback

    out, argv = tmp_path / "run", ["--env", "GNS/Debug-v0", "--out", str(tmp_path / "run"), "--no-progress"]
    finish = EpisodeResultsCallback._finish

    def killed_in_episode_3(self, i, info):
        if len(self.results) == 2:
            raise KeyboardInterrupt  # the machine goes down while episode 3 ends
        finish(self, i, info)

    monkeypatch.setattr(EpisodeResultsCallback, "_finish", killed_in_episode_3)
    with pytest.raises(SystemExit) as exit_info:
        train_gns.main([*argv, "--episodes", "4"])
    assert exit_info.value.code == 130  # one line, not a traceback
    kept = f"interrupted: the checkpoints in {out} are kept: the same command with --resume continues from the last"
    assert capsys.readouterr().err.endswith(kept + "\n")
    assert json.loads((out / "checkpoint.json").read_text()) == {"episodes": 2, "timesteps": 6}
    monkeypatch.setattr(EpisodeResultsCallback, "_finish", finish)
    assert train_gns.main([*argv, "--episodes", "4", "--resume"]) == 0
    episodes = json.loads((out / "episodes.json").read_text())
    assert [e["episode"] for e in episodes] == [1, 2, 3, 4]
    assert [e["timesteps"] for e in episodes] == [3, 6, 9, 12]
    first_lrs = {e["initial_lr"] for e in episodes[:2]}
    assert not first_lrs & {e["initial_lr"] for e in episodes[2:]}, "resumed episodes must not replay the first ones"
    assert json.loads((out / "checkpoint.json").read_text()) == {"episodes": 4, "timesteps": 12}
    from agents.ppo import GNSPPO

    agent = GNSPPO.load(out / "agent.zip")
    assert agent.num_timesteps == 12 and agent._n_updates == 4 * agent.n_epochs


def test_resume_without_a_checkpoint_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_gns.main(["--env", "GNS/Debug-v0", "--out", str(tmp_path), "--resume", "--no-progress"])
    assert exit_info.value.code == 2 and "no checkpoint" in capsys.readouterr().err
    train_gns.main(["--env", "GNS/Debug-v0", "--out", str(tmp_path), "--episodes", "2", "--no-progress"])
    with pytest.raises(SystemExit) as exit_info:
        train_gns.main(["--env", "GNS/Debug-v0", "--out", str(tmp_path), "--episodes", "2", "--resume", "--no-progress"])
    assert exit_info.value.code == 2 and "has 2 episodes already" in capsys.readouterr().err


def test_step_time_reports_seconds_per_optimizer_step(tmp_path, capsys):
    import step_time

    out = tmp_path / "t.json"
    assert step_time.main(["--env", "GNS/Debug-v0", "--decisions", "2", "--env-kwargs", "precision=bf16", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())["GNS/Debug-v0"]
    assert 0 < figures["seconds_per_step"] < 10 and figures["device"] == "cpu" and figures["env_kwargs"]["precision"] == "bf16"
    assert "s / optimizer step on cpu" in capsys.readouterr().out


def _process_state(pid: int) -> tuple[str, int, bytes] | None:
    """(state, parent PID, command line) of a process from Linux's /proc; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid), cmdline


def _live_workers(parent: int) -> list[int]:
    """The live multiprocessing workers of ``parent``."""
    workers = []
    for entry in Path("/proc").iterdir():
        info = _process_state(int(entry.name)) if entry.name.isdigit() else None
        if info and info[0] != "Z" and info[1] == parent and b"spawn_main" in info[2]:
            workers.append(int(entry.name))
    return workers


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_stopping_a_parallel_comparison_stops_its_workers(tmp_path, signum):
    long_job = ["--env", "GNS/Debug-v0", "--env-kwargs", "total_steps=200000", "decision_interval=100000",
                "--methods", "constant", "--seeds", "1", "--workers", "2", "--out", str(tmp_path)]  # fmt: skip
    parent = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "compare.py"), *long_job], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal, not a background job
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(workers := _live_workers(parent.pid)) < 2:
        assert parent.poll() is None and time.monotonic() < deadline, parent.communicate()
        time.sleep(0.2)
    time.sleep(3)  # the workers are inside their (several minutes long) jobs
    if signum == signal.SIGINT:
        os.killpg(parent.pid, signum)  # Ctrl-C reaches the whole terminal group, workers included
    else:
        parent.send_signal(signum)
    _, err = parent.communicate(timeout=60)  # returns once nothing holds its pipes: the workers too
    deadline = time.monotonic() + 10
    while any((info := _process_state(w)) and info[0] != "Z" for w in workers):
        assert time.monotonic() < deadline, f"workers {workers} outlived their comparison"
        time.sleep(0.2)
    if signum != signal.SIGKILL:
        assert parent.returncode == 128 + signum
        assert err.strip().splitlines()[-1].startswith("interrupted: every finished run is stored")
        assert "Traceback" not in err
    assert not list(tmp_path.rglob("store/**/*.json"))  # nothing half-finished was stored
