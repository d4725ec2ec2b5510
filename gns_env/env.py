"""The learning-rate scheduling environment."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.utils.data import TensorDataset

from gns_env.data.splits import load_task_split
from gns_env.graph.builder import ModelGraph, build_graph
from gns_env.graph.features import NodeFeaturizer
from gns_env.metrics import compute_metrics
from gns_env.models import build_model
from gns_env.spaces import GraphObservationEncoder, global_features
from gns_env.tasks import PRECISIONS, PRESETS, TaskSpec, resolve_device
from gns_env.trainer import Trainer

_RESET_OPTIONS = ("initial_lr", "lr_schedule", "hypergradient_lr")


class LRSchedulingEnv(gym.Env):
    """Choose the learning rate while a network trains (GNS, Xiong et al., ICLR 2022).

    ## Description
    Every episode trains a fresh network (random init; pretrained with a new head for the GLUE
    tasks) for T optimizer steps (Adam, or AdamW for GLUE). Every K
    steps the agent sees the network as a graph — one node per module that owns parameters,
    edges along the computation, nodes grouped into input / repeated / output blocks — and
    scales the learning rate. The reward is the change of the validation metric.

    ## Action Space
    ``Box(-1, 1, (1,), float32)``: ``lr <- clip(lr * (1 + action_scale * a), *lr_bounds)``;
    with the default ``action_scale=0.1`` the factor lies in the paper's [0.9, 1.1]. Actions
    outside [-1, 1] are clipped; a non-finite action raises ``ValueError``.

    ## Observation Space
    A ``Dict`` of float32 Boxes (see :mod:`gns_env.spaces`): ``x`` (max_nodes, 11) node features,
    ``node_mask`` (max_nodes,), ``edge_index`` (2, max_edges), ``edge_mask`` (max_edges,),
    ``block`` (max_nodes,), ``globals`` (3,) = log10 LR, log(1 + mean train loss), progress t/T.
    Node features (:data:`gns_env.graph.features.NODE_FEATURE_NAMES`): log-scaled mean and
    variance of weights, biases and |gradients|, a has-bias flag, log10 LR and log(1 + loss).
    Always finite.

    ## Rewards
    At a validated decision (probability ``val_prob``; the last decision always) the reward is
    ``P_now - P_prev``, the change of the validation metric since the previous validation (the
    first reference P is measured at the end of ``reset``). Elsewhere it is 0 and
    ``info["validated"]`` is False; learners spread each change over the decisions since the
    previous validation (Eq. 3, :func:`gns_env.rewards.spread_rewards`). Divergence pays
    ``-divergence_penalty``. With ``val_prob=1`` the reward is dense.

    ## Starting State
    ``reset`` builds a new model (seeded), samples the initial LR log-uniformly from
    ``initial_lr_range`` (or takes ``options={"initial_lr": x}``), draws a fresh validation split
    from the training data, runs the first K optimizer steps and validates. The first
    observation is the state after those K steps (Algorithm 1: the first decision is at step K).
    ``options={"lr_schedule": f}`` instead sets the LR of every optimizer step ``i`` to ``f(i)``
    and ignores actions: this is how hand-designed baselines run on exactly the same task. ``f``
    must return an LR in ``[0, lr_bounds[1]]`` (0 is observed as ``SMALLEST_OBSERVED_LR``); anything else is
    one ``ValueError`` naming the step, and ends the episode (as any error inside reset/step does).
    ``options={"hypergradient_lr": beta}`` (not with ``lr_schedule``) trains with Adam-HD
    (:class:`gns_env.optim.AdamHD`, App. B.4; AdamW-style for ``adamw`` tasks), starting at the
    initial LR: the optimizer adapts the LR itself, actions are ignored, and ``info["lr"]`` and the
    observation report its current LR.

    ## Episode End
    - Termination: T optimizer steps are done (``ceil((T - K) / K)`` env steps; the last one
      runs the remainder when K does not divide T).
    - Termination: divergence — the mean loss over the last steps is not finite or exceeds
      ``divergence_factor`` x the first batch's loss. ``info["diverged"]`` is True and the
      observation is finite. If the divergence already happened in ``reset`` (absurd initial
      LR), the first ``step`` terminates at once.
    There is no truncation.

    ## Rendering
    ``render_mode="ansi"``: ``render()`` returns one line of text (step, LR, loss, metric).

    ## Info
    ``lr``, ``train_loss``, ``step`` (optimizer steps so far), ``validated``, ``val_metric``
    (when validated; the task's metric: accuracy, Matthews or Pearson correlation) and
    ``val_<name>`` for the task's extra metrics (``val_f1`` on MRPC/QQP), ``diverged``.

    ## Arguments
    ```python
    import gymnasium as gym, gns_env
    env = gym.make("GNS/Debug-v0", total_steps=16, val_prob=0.5)
    ```
    Every field of :data:`gns_env.tasks.OVERRIDABLE` can be overridden (see
    :class:`gns_env.tasks.TaskSpec` for meanings and defaults); anything else raises ``TypeError``
    and out-of-range values ``ValueError``, both naming the field.

    ## Version History
    - v0: initial release.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self, task: str | TaskSpec = "GNS/FashionMNIST-Lite-v0", render_mode: str | None = None, **overrides: Any
    ) -> None:
        self.render_mode = render_mode
        if isinstance(task, str):
            if task not in PRESETS:
                close = difflib.get_close_matches(task, PRESETS, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"unknown task {task!r}.{hint} Known: {', '.join(PRESETS)}")
            task = PRESETS[task]
        self.task: TaskSpec = task.with_overrides(**overrides)
        self.device = resolve_device(self.task.device)
        self._pool: TensorDataset | None = self._load_pool()
        example_input = tuple(t[:2] for t in self._pool.tensors[:-1])
        self.graph: ModelGraph = build_graph(self._new_model(seed=0), example_input)
        self._encoder = GraphObservationEncoder(self.graph, self.task.max_nodes, self.task.max_edges)
        self.observation_space = self._encoder.space
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._trainer: Trainer | None = None
        self._featurizer: NodeFeaturizer | None = None
        self._val: TensorDataset | None = None
        self._schedule: Callable[[int], float] | None = None
        self._self_driven = False  # the optimizer sets its own LR (Adam-HD)
        self._lr = 0.0
        self._loss = 0.0
        self._last_metric = 0.0
        self._diverged = False
        self._done = True

    def _load_pool(self) -> TensorDataset:
        """The training split (validation is drawn from it at every reset), on the device."""
        pool = load_task_split(self.task, "train")
        needed = self.task.val_size + self.task.batch_size
        if len(pool) < needed:
            raise ValueError(
                f"{self.task.env_id}: val_size + batch_size = {needed} exceeds the {len(pool)} training examples"
            )
        return TensorDataset(*(t.to(self.device) for t in pool.tensors))

    def _new_model(self, seed: int) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            model = build_model(self.task.model, self.task.num_classes, self.task.pretrained, self.task.model_config)
            return model.to(self.device)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        try:
            return self._reset(seed, dict(options or {}))
        except BaseException:  # a bad option or schedule: no half-started episode to step
            self._end_episode()
            raise

    def _reset(self, seed: int | None, options: dict[str, Any]):
        super().reset(seed=seed)
        unknown = sorted(set(options) - set(_RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; allowed: {', '.join(_RESET_OPTIONS)}")
        model_seed, order_seed = (int(s) for s in self.np_random.integers(0, 2**62, size=2))
        self._end_episode()
        if self._pool is None:
            self._pool = self._load_pool()
        model = self._new_model(model_seed)
        split = torch.as_tensor(self.np_random.permutation(len(self._pool)), device=self.device)
        val_index = split[: self.task.val_size]
        train_index = split[self.task.val_size :]
        if self.task.train_size is not None:
            train_index = train_index[: self.task.train_size]
        self._val = TensorDataset(*self._pool[val_index])
        self._lr = self._initial_lr(options.get("initial_lr"))
        schedule = options.get("lr_schedule")
        if schedule is not None and not callable(schedule):
            raise ValueError("options['lr_schedule'] must be a function step -> learning rate")
        self._schedule = None if schedule is None else _checked_schedule(schedule, self.task.lr_bounds[1])
        beta = options.get("hypergradient_lr")
        if beta is not None:
            if self._schedule is not None:
                raise ValueError("options['hypergradient_lr'] and options['lr_schedule'] exclude each other")
            if isinstance(beta, bool) or not (isinstance(beta, numbers.Real) and math.isfinite(beta) and beta >= 0):
                raise ValueError(f"options['hypergradient_lr']={beta!r} must be a finite number >= 0")
            beta = float(beta)
        self._self_driven = beta is not None
        optimizer = self.task.build_optimizer(model.parameters(), self._lr, beta)
        self._trainer = Trainer(
            model, optimizer, self._pool, self.task.batch_size, order_seed, train_index,
            regression=self.task.num_classes == 1, autocast_dtype=PRECISIONS[self.task.precision],
        )  # fmt: skip
        self._featurizer = NodeFeaturizer(self.graph, model)
        self._done = False
        observation, self._diverged = self._advance(self.task.decision_interval)
        info = self._info(validated=not self._diverged, diverged=self._diverged)
        if not self._diverged:
            self._last_metric = self._validate(info)
        return observation, info

    def _initial_lr(self, requested: float | None) -> float:
        if requested is None:
            low, high = np.log(self.task.initial_lr_range)
            return float(np.exp(self.np_random.uniform(low, high)))
        lr = float(requested)
        low, high = self.task.lr_bounds
        if not (math.isfinite(lr) and low <= lr <= high):
            raise ValueError(f"options['initial_lr']={requested!r} must lie in lr_bounds={self.task.lr_bounds}")
        return lr

    def step(self, action):
        if self._trainer is None or self._done:
            raise RuntimeError("the episode is over or was never started: call reset() first")
        value = np.asarray(action, dtype=np.float64).reshape(-1)
        if value.shape != (1,) or not np.isfinite(value).all():
            raise ValueError(f"action must be one finite number (clipped to [-1, 1]), got {action!r}")
        try:
            return self._step(float(np.clip(value[0], -1.0, 1.0)))
        except BaseException:  # e.g. the schedule returned a bad LR mid-way: the episode is over
            self._end_episode()
            raise

    def _step(self, a: float):
        validate_now = self.np_random.random() < self.task.val_prob
        if self._diverged:  # diverged inside reset: end at once
            observation, diverged = self._observe(), True
        else:
            if self._schedule is None and not self._self_driven:
                self._lr = float(np.clip(self._lr * (1 + self.task.action_scale * a), *self.task.lr_bounds))
            steps = min(self.task.decision_interval, self.task.total_steps - self._trainer.steps_done)
            observation, diverged = self._advance(steps)
        self._diverged = diverged
        self._done = diverged or self._trainer.steps_done >= self.task.total_steps
        validated = not diverged and (self._done or validate_now)
        info = self._info(validated=validated, diverged=diverged)
        reward = 0.0
        if diverged:
            reward = -self.task.divergence_penalty
        elif validated:
            metric = self._validate(info)
            reward = metric - self._last_metric
            self._last_metric = metric
        return observation, reward, self._done, False, info

    def _advance(self, num_steps: int) -> tuple[dict[str, np.ndarray], bool]:
        """Train ``num_steps`` steps; return the observation and whether training diverged."""
        lr = None if self._self_driven else self._schedule if self._schedule is not None else self._lr
        self._loss = self._trainer.run(num_steps, lr)
        if self._schedule is not None:
            self._lr = float(self._schedule(self._trainer.steps_done - 1))
        elif self._self_driven:
            self._lr = float(self._trainer.optimizer.param_groups[0]["lr"])
        bound = self.task.divergence_factor * max(self._trainer.first_loss or 0.0, 1e-3)
        diverged = not math.isfinite(self._loss) or self._loss > bound
        observation = self._observe()
        return observation, diverged or not self._featurizer.last_finite

    def _observe(self) -> dict[str, np.ndarray]:
        nodes = self._featurizer.compute(self._lr, self._loss)
        progress = self._trainer.steps_done / self.task.total_steps
        return self._encoder.encode(nodes, global_features(self._lr, self._loss, progress))

    def _validate(self, info: dict[str, Any]) -> float:
        """Measure the task's metrics on the validation split; record them in ``info``
        (``val_metric`` = the reward metric, ``val_<name>`` for the extra ones) and return the first."""
        values = self._metrics(self._val)
        info["val_metric"] = values[self.task.metric]
        info.update({f"val_{name}": values[name] for name in self.task.extra_metrics})
        return values[self.task.metric]

    def _metrics(self, data: TensorDataset) -> dict[str, float]:
        predictions, targets = self._trainer.predict(data, self.task.eval_batch_size)
        return compute_metrics(self.task.metrics, predictions, targets)

    def _info(self, validated: bool, diverged: bool) -> dict[str, Any]:
        return {
            "lr": self._lr,
            "train_loss": self._loss,
            "step": self._trainer.steps_done,
            "validated": validated,
            "diverged": diverged,
        }

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: one line with the step, LR, training loss and last metric."""
        if self.render_mode != "ansi" or self._trainer is None:
            return None
        return (
            f"step {self._trainer.steps_done}/{self.task.total_steps}  lr {self._lr:.3e}  "
            f"loss {self._loss:.4f}  val {self.task.metric} {self._last_metric:.4f}"
        )

    def evaluate_test(self) -> float:
        """The task metric of the current network on the test split (GLUE: the dev set). For
        evaluation scripts only: the split is loaded on the first call and never used for rewards."""
        if self._trainer is None:
            raise RuntimeError("call reset() and train before evaluating")
        return self._metrics(load_task_split(self.task, "test"))[self.task.metric]

    def _end_episode(self) -> None:
        self._trainer = None
        self._featurizer = None
        self._val = None
        self._done = True

    def close(self) -> None:
        """Free the network, optimizer and data (safe to call twice; a later reset reloads)."""
        self._end_episode()
        self._pool = None


def _checked_schedule(schedule: Callable[[int], float], highest: float) -> Callable[[int], float]:
    """``schedule`` that raises one ``ValueError`` naming the step when it returns anything but a
    number in ``[0, highest]`` (0 is a warmup's first step; ``highest`` is the task's top LR bound)."""

    def lr_at(step: int) -> float:
        value = schedule(step)
        try:
            lr = math.nan if isinstance(value, (str, bytes, bool)) else float(value)
        except (TypeError, ValueError):
            lr = math.nan
        if not 0 <= lr <= highest:  # False for NaN
            raise ValueError(f"options['lr_schedule'] returned {value!r} at step {step}: an LR must be a number in [0, {highest}]")
        return lr

    return lr_at
