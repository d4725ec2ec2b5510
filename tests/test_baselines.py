import math

import pytest
import torch

from agents.baselines import IMAGE_SEARCH_SPACE, LANGUAGE_SEARCH_SPACE, Schedule, schedule_grid


def test_cosine_with_warmup_against_hand_computed_points():
    s = Schedule("cosine", total_steps=100, alpha_max=0.1, mu=0.1, eta1=0.1, eta2=0.5)
    assert s(0) == 0.0  # warmup starts at 0
    assert s(5) == pytest.approx(0.05)  # half-way through warmup
    assert s(10) == pytest.approx(0.1)  # end of warmup = alpha_max
    assert s(30) == pytest.approx(0.5 * 0.09 * (1 + math.cos(math.pi * 0.5)) + 0.01)  # mid-decay = 0.055
    assert s(50) == pytest.approx(0.01) and s(99) == pytest.approx(0.01)  # after T_decay: alpha_min


def test_polynomial_decay_against_hand_computed_points():
    s = Schedule("polynomial", total_steps=100, alpha_max=1.0, mu=0.0, eta2=1.0, power=2)
    assert s(0) == 1.0
    assert s(50) == pytest.approx(0.25)
    assert s(75) == pytest.approx(0.0625)


def test_constant_keeps_alpha_max_after_warmup():
    s = Schedule("constant", total_steps=10, alpha_max=0.01, eta1=0.2)
    assert [s(t) for t in (0, 1, 2, 9)] == pytest.approx([0.0, 0.005, 0.01, 0.01])


def test_table5_grid_sizes():
    assert IMAGE_SEARCH_SPACE["alpha_max"] == (1e-1, 1e-2, 1e-3)
    assert len(schedule_grid("constant", 100)) == 3
    assert len(schedule_grid("cosine", 100)) == 3 * 3 * 2
    assert len(schedule_grid("polynomial", 100)) == 3 * 3 * 2 * 2


def test_table6_grid_has_the_papers_40_settings():
    grids = {kind: schedule_grid(kind, 1000, LANGUAGE_SEARCH_SPACE) for kind in ("constant", "polynomial", "cosine")}
    assert {kind: len(grid) for kind, grid in grids.items()} == {"constant": 10, "polynomial": 20, "cosine": 10}
    warm = Schedule("polynomial", 1000, 2e-5, eta1=0.1, power=1)  # 100 warmup steps, then linear decay to 0
    assert [warm(t) for t in (0, 50, 100, 550, 999)] == pytest.approx([0, 1e-5, 2e-5, 1e-5, 2e-5 / 900])


def test_invalid_schedules():
    with pytest.raises(ValueError, match="kind"):
        Schedule("step", 10, 0.1)
    with pytest.raises(ValueError, match="eta1"):
        Schedule("cosine", 10, 0.1, eta1=0.6, eta2=0.5)


def test_as_lr_scheduler_makes_a_torch_optimizer_follow_the_schedule():
    schedule = Schedule("cosine", total_steps=12, alpha_max=0.1, mu=0.1, eta1=0.25, eta2=0.75)
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.Adam([{"params": [param]}, {"params": [torch.nn.Parameter(torch.zeros(1))]}], lr=5.0)
    scheduler = schedule.as_lr_scheduler(optimizer)
    seen = []
    for _ in range(schedule.total_steps):
        seen.append([group["lr"] for group in optimizer.param_groups])
        param.grad = torch.ones(3)
        optimizer.step()
        scheduler.step()
    assert seen == [pytest.approx([schedule(t)] * 2, rel=1e-12, abs=1e-15) for t in range(schedule.total_steps)]
    assert seen[0] == [0.0, 0.0] and max(lrs[0] for lrs in seen) == pytest.approx(0.1)
