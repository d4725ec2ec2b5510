"""Adam-HD (paper App. B.4, Algorithm 2; Baydin et al. 2018) and its env option."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import gns_env  # noqa: F401  (registers the IDs)
from agents.baselines import HYPERGRADIENT_SEARCH_SPACES, HypergradientConfig, Schedule, hypergradient_grid
from gns_env.optim import AdamHD


def reference_adam_hd(theta, grad, alpha, beta, steps, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False,
                      bounds=(0.0, math.inf)):
    """Algorithm 2 on one flat float64 vector: returns the thetas and alphas after each step."""
    theta = np.array(theta, dtype=np.float64)
    m, v, previous_direction = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    thetas, alphas = [], []
    for t in range(1, steps + 1):
        g = grad(theta) + (0.0 if decoupled else wd * theta)
        h = g @ -previous_direction
        alpha = min(max(alpha - beta * h, bounds[0]), bounds[1])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        direction = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        if decoupled:
            theta = theta - alpha * wd * theta
        theta = theta - alpha * direction
        previous_direction = direction
        thetas.append(theta)
        alphas.append(alpha)
    return thetas, alphas


CURVATURE = np.array([1.0, 3.0, 0.5])
TARGET = np.array([0.5, -1.0, 2.0])
START = np.array([2.0, 1.0, -1.0])


def quadratic(theta):
    return 0.5 * (CURVATURE * (theta - TARGET) ** 2).sum()


def two_groups():
    """theta[:2] in one parameter group, theta[2] in another (float64)."""
    a = torch.nn.Parameter(torch.tensor(START[:2]))
    b = torch.nn.Parameter(torch.tensor(START[2:]))
    return a, b


def run_torch(optimizer, params, loss_fn, steps):
    thetas, alphas = [], []
    for t in range(steps):
        optimizer.zero_grad()
        loss_fn(torch.cat(params), t).backward()
        optimizer.step()
        thetas.append(torch.cat(params).detach().numpy().copy())
        alphas.append([group["lr"] for group in optimizer.param_groups])
    return thetas, alphas


def torch_quadratic(theta, t):
    c, target = torch.tensor(CURVATURE), torch.tensor(TARGET)
    return 0.5 * (c * (theta - target) ** 2).sum()


@pytest.mark.parametrize("wd, decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_matches_a_numpy_reimplementation_of_algorithm_2(wd, decoupled):
    a, b = two_groups()
    optimizer = AdamHD([{"params": [a]}, {"params": [b]}], lr=0.1, hypergradient_lr=0.01, weight_decay=wd,
                       decoupled_weight_decay=decoupled)
    thetas, alphas = run_torch(optimizer, [a, b], torch_quadratic, 5)
    expected_thetas, expected_alphas = reference_adam_hd(
        START, lambda th: CURVATURE * (th - TARGET), 0.1, 0.01, 5, wd=wd, decoupled=decoupled
    )
    for got, want in zip(thetas, expected_thetas):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for got, want in zip(alphas, expected_alphas):
        assert got == pytest.approx([want, want], rel=1e-12)  # one alpha, shared by both groups
    assert alphas[0][0] == 0.1  # no hypergradient at t = 1
    assert len(set(expected_alphas)) == 5  # the check is not vacuous: alpha moved every step
    assert optimizer.alpha == alphas[-1][0]


def linear_loss(sign_of_step):
    return lambda theta, t: sign_of_step(t) * theta.sum()


def test_alpha_rises_when_gradients_agree_and_falls_when_they_flip():
    # Constant gradient: d_{t-1} has the sign of g_t, so h_t = -g_t . d_{t-1} < 0 and alpha grows.
    a, b = two_groups()
    _, same = run_torch(AdamHD([a, b], lr=0.01, hypergradient_lr=1e-3), [a, b], linear_loss(lambda t: 1.0), 5)
    same = [lrs[0] for lrs in same]
    assert same[0] == 0.01 and all(x < y for x, y in zip(same, same[1:]))
    # Alternating gradient: m_hat keeps the sign of the latest gradient, so g_t . d_{t-1} < 0 and alpha shrinks.
    a, b = two_groups()
    _, flip = run_torch(AdamHD([a, b], lr=0.01, hypergradient_lr=1e-3), [a, b], linear_loss(lambda t: (-1.0) ** t), 5)
    flip = [lrs[0] for lrs in flip]
    assert flip[0] == 0.01 and all(x > y for x, y in zip(flip, flip[1:]))


@pytest.mark.parametrize("decoupled, reference", [(False, torch.optim.Adam), (True, torch.optim.AdamW)])
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_beta_zero_is_exactly_adam(decoupled, reference, wd):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    twin.load_state_dict(model.state_dict())
    hd = AdamHD([{"params": model[0].parameters()}, {"params": model[2].parameters()}], lr=1e-2, hypergradient_lr=0.0,
                weight_decay=wd, decoupled_weight_decay=decoupled)
    adam = reference(twin.parameters(), lr=1e-2, weight_decay=wd)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    for _ in range(6):
        for net, opt in ((model, hd), (twin, adam)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)
    assert [g["lr"] for g in hd.param_groups] == [1e-2, 1e-2]


def test_lr_bounds_clip_alpha():
    a, b = two_groups()
    _, up = run_torch(AdamHD([a, b], lr=0.01, hypergradient_lr=1.0, lr_bounds=(0.005, 0.012)), [a, b],
                      linear_loss(lambda t: 1.0), 4)
    assert [lrs[0] for lrs in up] == [0.01, 0.012, 0.012, 0.012]
    a, b = two_groups()
    _, down = run_torch(AdamHD([a, b], lr=0.01, hypergradient_lr=1.0, lr_bounds=(0.005, 0.012)), [a, b],
                        linear_loss(lambda t: (-1.0) ** t), 4)
    assert [lrs[0] for lrs in down] == [0.01, 0.005, 0.005, 0.005]


def test_an_externally_set_lr_becomes_alpha():
    a, b = two_groups()
    optimizer = AdamHD([{"params": [a]}, {"params": [b]}], lr=0.01, hypergradient_lr=0.0)
    run_torch(optimizer, [a, b], torch_quadratic, 1)
    optimizer.param_groups[1]["lr"] = 0.5  # e.g. a scheduler or the env
    run_torch(optimizer, [a, b], torch_quadratic, 1)
    assert [g["lr"] for g in optimizer.param_groups] == [0.5, 0.5]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": -1.0}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"hypergradient_lr": -1e-3}, "hypergradient_lr"),
        ({"betas": (1.0, 0.999)}, "betas"),
        ({"betas": (0.9, -0.1)}, "betas"),
        ({"lr_bounds": (0.1, 0.01)}, "lr_bounds"),
        ({"lr_bounds": (-1.0, 1.0)}, "lr_bounds"),
        ({"lr": 2.0, "lr_bounds": (0.0, 1.0)}, "lr"),
        ({"eps": -1.0}, "eps"),
        ({"weight_decay": -0.1}, "weight_decay"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    arguments = {"lr": 0.01, "hypergradient_lr": 1e-3, **kwargs}
    with pytest.raises(ValueError, match=match):
        AdamHD([torch.nn.Parameter(torch.zeros(2))], **arguments)


def test_task_builds_adam_hd_with_its_weight_decay_and_bounds():
    from gns_env.tasks import PRESETS

    task = next(spec for spec in PRESETS.values() if spec.optimizer == "adamw")
    optimizer = task.build_optimizer([torch.nn.Parameter(torch.zeros(2))], 1e-5, hypergradient_lr=1e-8)
    assert isinstance(optimizer, AdamHD) and optimizer.decoupled_weight_decay
    assert optimizer.defaults["weight_decay"] == task.weight_decay and optimizer.lr_bounds == task.lr_bounds
    assert type(task.build_optimizer([torch.nn.Parameter(torch.zeros(2))], 1e-5)) is torch.optim.AdamW


# --- the env option ---------------------------------------------------------------------------

HD_OPTIONS = {"initial_lr": 1e-2, "hypergradient_lr": 1e-4}


def lrs_of_episode(env, actions, options=HD_OPTIONS):
    _, info = env.reset(seed=0, options=options)
    lrs = [info["lr"]]
    for action in actions:
        observation, _, terminated, _, info = env.step(np.array([action], np.float32))
        lrs.append(info["lr"])
        assert observation["globals"][0] == pytest.approx(math.log10(info["lr"]))
        if terminated:
            break
    return lrs


def test_env_hypergradient_option_moves_the_lr_and_ignores_actions():
    env = gym.make("GNS/Debug-v0")
    try:
        lrs = lrs_of_episode(env, [1.0, 1.0, 1.0])
        assert len(lrs) == 4 and len(set(lrs)) == 4  # changes between every two decisions
        assert lrs == lrs_of_episode(env, [1.0, 1.0, 1.0])  # replayed with the same seed
        assert lrs == lrs_of_episode(env, [-1.0, 0.3, -0.7])  # actions are ignored
        assert env.unwrapped._trainer.optimizer.alpha == lrs[-1]
        with pytest.raises(ValueError, match="lr_schedule"):
            env.reset(seed=0, options={**HD_OPTIONS, "lr_schedule": lambda t: 1e-2})
        for bad in (-1e-4, math.inf, math.nan):
            with pytest.raises(ValueError, match="hypergradient_lr"):
                env.reset(seed=0, options={"hypergradient_lr": bad})
    finally:
        env.close()


def test_hypergradient_grids_and_configs():
    assert len(hypergradient_grid(HYPERGRADIENT_SEARCH_SPACES["image"])) == 9
    language = hypergradient_grid(HYPERGRADIENT_SEARCH_SPACES["language"])
    assert len(language) == 6 and {c.alpha0 for c in language} == {1e-5, 2e-5}
    config = HypergradientConfig(alpha0=0.01, beta=1e-7)
    assert config.label() == "adam-hd(alpha0=0.01, beta=1e-07)"
    assert config.reset_options() == {"initial_lr": 0.01, "hypergradient_lr": 1e-7}
    schedule = Schedule("constant", 10, 0.01)
    assert schedule.reset_options() == {"lr_schedule": schedule}
