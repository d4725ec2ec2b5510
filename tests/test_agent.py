import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.extractor import GNSExtractor
from agents.ppo import GNSPPO, SpreadRewardRolloutBuffer, make_gns_ppo


def batch(*observations):
    return {k: torch.as_tensor(np.stack([o[k] for o in observations])) for k in observations[0]}


@pytest.fixture
def two_paddings(debug_env):
    small = debug_env(max_nodes=16, max_edges=20)
    large = debug_env()  # max_nodes=256, max_edges=1024
    return small, large


@pytest.mark.parametrize("conv", ["gcn", "gat"])
@pytest.mark.parametrize("training", [False, True])
def test_extractor_output_does_not_depend_on_padding(two_paddings, conv, training):
    small, large = two_paddings
    obs_small, _ = small.reset(seed=1)
    obs_large, _ = large.reset(seed=1)
    torch.manual_seed(0)
    extractor = GNSExtractor(large.observation_space, conv=conv).train(training)
    np.testing.assert_array_equal(obs_small["x"], obs_large["x"][:16])
    out_small = extractor(batch(obs_small, obs_small))
    out_large = extractor(batch(obs_large, obs_large))
    assert out_small.shape == (2, 64)
    torch.testing.assert_close(out_small, out_large)


def test_extractor_batches_graphs_independently(debug_env):
    env = debug_env()
    a, _ = env.reset(seed=1)
    b, _ = env.reset(seed=2)
    b["x"][: env.unwrapped.graph.num_nodes] *= 3.0
    extractor = GNSExtractor(env.observation_space).eval()
    together = extractor(batch(a, b))
    torch.testing.assert_close(together[0], extractor(batch(a))[0])
    torch.testing.assert_close(together[1], extractor(batch(b))[0])
    assert not torch.allclose(together[0], together[1])


def test_extractor_reads_every_block(debug_env):
    env = debug_env()
    obs, _ = env.reset(seed=1)
    extractor = GNSExtractor(env.observation_space).eval()
    base = extractor(batch(obs))
    last = env.unwrapped.graph.num_nodes - 1  # the output block's node
    changed = {k: v.copy() for k, v in obs.items()}
    changed["x"][last] += 5.0
    assert not torch.allclose(base, extractor(batch(changed)))


def test_globals_are_appended_when_asked(debug_env):
    env = debug_env()
    obs, _ = env.reset(seed=0)
    extractor = GNSExtractor(env.observation_space, use_globals=True).eval()
    out = extractor(batch(obs))
    assert out.shape == (1, 64 + 3)
    torch.testing.assert_close(out[0, 64:], torch.as_tensor(obs["globals"]))


def test_policy_follows_the_paper(debug_env):
    agent = make_gns_ppo(debug_env(), seed=0)
    policy = agent.policy
    assert not policy.log_std.requires_grad
    assert float(policy.log_std.exp()[0]) == pytest.approx(0.5)
    groups = policy.optimizer.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 5e-3])
    critic = {id(p) for p in list(policy.value_net.parameters()) + list(policy.mlp_extractor.value_net.parameters())}
    assert {id(p) for p in groups[1]["params"]} == critic
    assert (agent.gamma, agent.gae_lambda, agent.ent_coef) == (0.99, 0.95, 0.01)
    assert agent.n_steps == 3  # one episode per update
    obs = {k: torch.as_tensor(v).unsqueeze(0) for k, v in debug_env().reset(seed=0)[0].items()}
    with torch.no_grad():
        policy.action_net[0].bias.fill_(50.0)  # saturate: the mean is tanh-bounded
        mean = policy.get_distribution(obs).distribution.mean
    assert torch.all(mean <= 1.0) and torch.all(mean > 0.99)


def test_buffer_spreads_rewards_before_gae_against_a_hand_computation(debug_env):
    env = debug_env()
    buffer = SpreadRewardRolloutBuffer(5, env.observation_space, env.action_space, gamma=0.5, gae_lambda=1.0)
    obs, _ = env.reset(seed=0)
    # episode 1: steps 0-2, validated at 2 (+0.3); episode 2: steps 3-4, open segment (+0.0 so far)
    rewards = [0.0, 0.0, 0.3, 0.0, 0.2]
    validated = [False, False, True, False, True]
    dones = [False, False, True, False, False]
    starts = [True, False, False, True, False]
    for t in range(5):
        buffer.record_segment_ends([{"validated": validated[t]}], np.array([dones[t]]))
        buffer.add({k: v[None] for k, v in obs.items()}, np.zeros((1, 1)), np.array([rewards[t]]),
                   np.array([starts[t]]), torch.zeros(1), torch.zeros(1))  # fmt: skip
    buffer.compute_returns_and_advantage(last_values=torch.zeros(1), dones=np.array([False]))
    np.testing.assert_allclose(buffer.rewards[:, 0], [0.1, 0.1, 0.1, 0.1, 0.1], atol=1e-7)
    # values are 0, so advantage = discounted return within the episode (gamma * lambda = 0.5)
    expected = [0.1 + 0.05 + 0.025, 0.1 + 0.05, 0.1, 0.1 + 0.05, 0.1]
    np.testing.assert_allclose(buffer.advantages[:, 0], expected, atol=1e-7)


def test_ppo_records_validations_and_learns(debug_env, tmp_path):
    env = debug_env(val_prob=0.0)
    agent = make_gns_ppo(env, seed=0, n_epochs=2)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.learn(total_timesteps=6)
    buffer = agent.rollout_buffer
    assert buffer.segment_ends[:, 0].tolist() == [False, False, True]  # p = 0: only the episode end
    assert np.allclose(buffer.rewards[:, 0], buffer.rewards[0, 0])  # one segment, one value
    changed = [not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters())]
    assert any(changed) and not changed[[n for n, _ in agent.policy.named_parameters()].index("log_std")]
    obs, _ = env.reset(seed=0)
    agent.save(tmp_path / "agent.zip")
    loaded = GNSPPO.load(tmp_path / "agent.zip")
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0])
    assert [g["lr"] for g in loaded.policy.optimizer.param_groups] == pytest.approx([1e-3, 5e-3])


def test_single_decision_episodes_update_every_two_episodes(debug_env):
    env = debug_env(total_steps=4, decision_interval=2)  # reset runs K steps, one decision is left
    assert env.unwrapped.task.num_decisions == 1
    agent = make_gns_ppo(env, seed=0)
    assert (agent.n_steps, agent.batch_size) == (2, 2)
    agent.learn(total_timesteps=2)
    assert agent.rollout_buffer.segment_ends[:, 0].tolist() == [True, True]
    with pytest.raises(ValueError, match="at least 2 decisions"):
        make_gns_ppo(env, n_steps=1)


def test_agent_acts_on_an_env_with_another_graph(debug_env, fashion_mnist):
    agent = make_gns_ppo(debug_env(), seed=0)
    other = gym.make("GNS/FashionMNIST-Lite-v0", total_steps=4, decision_interval=2, val_size=256)
    assert other.observation_space == agent.observation_space
    obs, _ = other.reset(seed=0)
    action, _ = agent.predict(obs, deterministic=True)
    assert action.shape == (1,) and -1 <= action[0] <= 1
    other.close()


class ConstantCritic:
    """Stands in for a trained agent: V(s) depends only on the LR feature of the state."""

    def __init__(self, value_of_log_lr):
        self.value_of_log_lr = value_of_log_lr
        self.policy = self

    def obs_to_tensor(self, observation):
        return observation, True

    def set_training_mode(self, mode):
        pass  # a stand-in has no layers whose mode matters

    def predict_values(self, observation):
        return torch.tensor([[self.value_of_log_lr(float(observation["globals"][0]))]])


def test_initial_lr_selection_picks_the_highest_scoring_candidate(debug_env):
    from agents.apply import select_initial_lr

    env = debug_env()
    candidates = [1e-3, 1e-2, 3e-2]
    prefers_1e2 = ConstantCritic(lambda log_lr: -abs(log_lr + 2.0))  # peaks at lr = 1e-2
    assert select_initial_lr(prefers_1e2, env, 0, candidates, criterion="value") == 1e-2
    assert select_initial_lr(prefers_1e2, env, 0, candidates, criterion="final") == 1e-2
    # "final" adds the measured metric: a flat critic then picks the best start
    flat = ConstantCritic(lambda log_lr: 0.0)
    metrics = [env.reset(seed=0, options={"initial_lr": lr})[1]["val_metric"] for lr in candidates]
    assert select_initial_lr(flat, env, 0, candidates, criterion="final") == candidates[int(np.argmax(metrics))]
    with pytest.raises(ValueError, match="criterion"):
        select_initial_lr(flat, env, 0, candidates, criterion="best")


def test_initial_lr_scores_after_t_pre_steps(debug_env):
    from agents.apply import initial_lr_scores

    class RisingCritic(ConstantCritic):
        """V(s) = progress t/T of the state, and it always raises the LR."""

        def __init__(self):
            super().__init__(None)

        def predict_values(self, observation):
            return torch.tensor([[float(observation["globals"][2])]])

        def predict(self, observation, deterministic=True):
            return np.ones(1, np.float32), None

    env = debug_env()
    task = env.unwrapped.task  # T = 8, K = 2
    assert initial_lr_scores(RisingCritic(), env, 0, [1e-3, 1e-2]) == pytest.approx([2 / 8, 2 / 8])  # T_pre = K
    assert initial_lr_scores(RisingCritic(), env, 0, [1e-3], pre_decisions=3) == pytest.approx([6 / 8])
    # the agent acted during T_pre: the LR feature of the scored state was raised twice by (1 + 0.1)
    lr_after = {}
    probe = ConstantCritic(lambda log_lr: lr_after.setdefault("lr", 10**log_lr))
    probe.predict = RisingCritic().predict
    initial_lr_scores(probe, env, 0, [1e-3], pre_decisions=3)
    assert lr_after["lr"] == pytest.approx(1e-3 * (1 + task.action_scale) ** 2, rel=1e-5)
    with pytest.raises(ValueError, match="pre_decisions"):
        initial_lr_scores(RisingCritic(), env, 0, [1e-3], pre_decisions=0)


def test_scoring_initial_lrs_uses_eval_mode_and_leaves_batch_norm_alone(debug_env):
    from agents.apply import initial_lr_scores
    from agents.ppo import make_gns_ppo

    env = debug_env()
    agent = make_gns_ppo(env, seed=0)  # a fresh (or freshly loaded) policy is in training mode
    norms = [m for m in agent.policy.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and agent.policy.training
    before = [m.running_mean.clone() for m in norms]
    first = initial_lr_scores(agent, env, 0, [1e-3, 1e-2])
    assert initial_lr_scores(agent, env, 0, [1e-3, 1e-2]) == first  # the order of calls changes nothing
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, norms))


def test_an_agent_of_another_kind_of_env_is_one_clear_error():
    import gymnasium as gym

    from agents.apply import check_observation_space
    from gns_env.spaces import graph_observation_space

    with pytest.raises(ValueError, match="not a GNS-env agent"):
        check_observation_space(gym.spaces.Box(-1, 1, (4,)), graph_observation_space(256, 1024), "GNS/Debug-v0")
