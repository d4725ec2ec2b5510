"""A trained GNS agent as a drop-in LR scheduler for your own PyTorch loop or a HF ``Trainer``.

Plain loop (call :meth:`GNSScheduler.step` after every ``optimizer.step()``, like a torch LR
scheduler, with that batch's loss)::

    scheduler = GNSScheduler(optimizer, "runs/gns/agent.zip", model, example_input,
                             total_steps=T, decision_interval=K)
    for x, y in batches:                      # T steps
        optimizer.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward()
        optimizer.step(); scheduler.step(loss)
    schedule = scheduler.export_schedule()    # the LR of every step: replay it without the agent

Every K steps the scheduler builds exactly the env's observation
(:class:`gns_env.env.LRSchedulingEnv`: the same node featurizer on the gradients the last step
left, the same padded encoder, globals ``[log10 lr, log1p(mean loss of the last K steps),
t/T]``), asks the agent for a deterministic action ``a`` and sets every parameter group's LR to
``clip(lr * (1 + action_scale * a), *lr_bounds)``. As in the env, the first decision is at step
K, decisions stop at T, and all parameter groups share one LR.

Hugging Face: ``Trainer(..., callbacks=[GNSTrainerCallback(agent, example_input, K)])`` (see
:class:`GNSTrainerCallback`). Initial LR (paper §4.3): :func:`select_initial_lr`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from stable_baselines3.common.base_class import BaseAlgorithm
from torch.optim.lr_scheduler import LambdaLR

from agents.apply import CRITERIA, best_candidate, check_observation_space, state_value
from agents.ppo import load_agent_file
from gns_env.graph.builder import build_graph
from gns_env.graph.features import NODE_FEATURE_NAMES, NodeFeaturizer
from gns_env.spaces import GraphObservationEncoder, global_features
from gns_env.tasks import PRESETS, TaskSpec

#: The env's defaults (:class:`gns_env.tasks.TaskSpec`) for the settings the scheduler shares with it.
_SHARED = ("action_scale", "lr_bounds", "max_nodes", "max_edges", "divergence_factor")
_TASK_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TaskSpec) if f.name in _SHARED}
_LOSS_COLUMN = NODE_FEATURE_NAMES.index("log1p_loss")


def load_agent(agent: BaseAlgorithm | str | os.PathLike, device: str = "cpu") -> BaseAlgorithm:
    """``agent`` itself, or the :class:`agents.ppo.GNSPPO` saved at that path (``agent.zip``)."""
    if isinstance(agent, (str, os.PathLike)):
        return load_agent_file(agent, device=device)
    return agent


class GNSScheduler:
    """Sets the optimizer's LR every ``decision_interval`` steps from a trained GNS agent.

    :param optimizer: the optimizer of ``model``; all its parameter groups get the same LR.
    :param agent: a trained agent (:class:`agents.ppo.GNSPPO`, or anything with
        ``observation_space`` and ``predict(obs, deterministic=True)``) or the path of its ``.zip``.
    :param model: the network being trained (its graph is built once, from ``example_input``).
    :param example_input: one input batch, passed as ``model(x)``, ``model(*x)`` for a tuple or
        ``model(**x)`` for a mapping (Hugging Face); only used to trace the graph.
    :param total_steps: T, the optimizer steps of the whole run (the agent sees progress t/T).
    :param decision_interval: K, optimizer steps between two decisions.
    :param initial_lr: the starting LR; default the optimizer's (which must then be the same
        in every group). It must lie in ``lr_bounds``.
    :param task: an env ID or :class:`~gns_env.tasks.TaskSpec` (the one the agent was trained
        on) whose ``action_scale``, ``lr_bounds``, ``max_nodes``, ``max_edges`` and
        ``divergence_factor`` become the defaults; without it, the env's own defaults.
    :param action_scale: ``lr <- lr * (1 + action_scale * a)``.
    :param lr_bounds: ``(min, max)`` the LR is clipped to after every action.
    :param max_nodes: padding of the observation: must be the agent's (checked).
    :param max_edges: likewise.
    :param divergence_factor: :attr:`diverged` turns True when the mean loss of a window is
        not finite or exceeds this factor x the first step's loss (the env's rule).
    :param block_type: the repeated block's module class or name (:func:`~gns_env.graph.build_graph`).
    :raises ValueError: the agent's observation space differs from the one built here (the
        message names the keys and the ``max_nodes``/``max_edges`` to pass), the graph does not
        fit the padding, or the initial LR is outside ``lr_bounds``.

    :ivar lrs: the LR used at each optimizer step so far (``lrs[i]`` for step ``i``, 0-based).
    :ivar decisions: ``(step, action, new_lr)`` of every decision.
    :ivar last_observation: the observation of the last decision (``None`` before step K).
    :ivar diverged: whether a window's loss (or the network's statistics) went non-finite or
        past ``divergence_factor`` x the first loss. The scheduler keeps acting; stopping is yours.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        agent: BaseAlgorithm | str | os.PathLike,
        model: nn.Module,
        example_input: Any,
        total_steps: int,
        decision_interval: int,
        *,
        initial_lr: float | None = None,
        task: str | TaskSpec | None = None,
        action_scale: float | None = None,
        lr_bounds: tuple[float, float] | None = None,
        max_nodes: int | None = None,
        max_edges: int | None = None,
        divergence_factor: float | None = None,
        block_type: type[nn.Module] | str | None = None,
    ) -> None:
        _check_steps(total_steps, decision_interval)
        if isinstance(task, str):
            if task not in PRESETS:
                raise ValueError(f"unknown task {task!r}; known: {', '.join(PRESETS)}")
            task = PRESETS[task]
        defaults = {name: getattr(task, name) for name in _SHARED} if task is not None else _TASK_DEFAULTS
        given = dict(action_scale=action_scale, lr_bounds=lr_bounds, max_nodes=max_nodes, max_edges=max_edges,
                     divergence_factor=divergence_factor)  # fmt: skip
        settings = {name: defaults[name] if value is None else value for name, value in given.items()}
        self.optimizer = optimizer
        self.agent = load_agent(agent)
        self.model = model
        self.total_steps = total_steps
        self.decision_interval = decision_interval
        self.action_scale = float(settings["action_scale"])
        if not 0 < self.action_scale < 1:
            raise ValueError(f"action_scale={self.action_scale} must lie in (0, 1) so the LR factor 1 + scale * a stays positive")
        self.lr_bounds = _checked_bounds(settings["lr_bounds"])
        self.divergence_factor = float(settings["divergence_factor"])
        self.max_nodes, self.max_edges = int(settings["max_nodes"]), int(settings["max_edges"])
        self.graph = build_graph(model, example_input, block_type)
        self._encoder = GraphObservationEncoder(self.graph, self.max_nodes, self.max_edges)
        self.observation_space = self._encoder.space
        self._check_agent()
        self._featurizer = NodeFeaturizer(self.graph, model)
        if initial_lr is None:
            group_lrs = sorted({float(group["lr"]) for group in optimizer.param_groups})
            if len(group_lrs) != 1:
                raise ValueError(
                    f"the parameter groups have different LRs {group_lrs}; GNS schedules one LR for all "
                    "groups: pass initial_lr=..."
                )
            initial_lr = group_lrs[0]
        low, high = self.lr_bounds
        if not (math.isfinite(initial_lr) and low <= initial_lr <= high):
            raise ValueError(f"initial_lr={initial_lr!r} must lie in lr_bounds={self.lr_bounds}")
        self._lr = float(initial_lr)
        self.steps_done = 0
        self.lrs: list[float] = []
        self.decisions: list[tuple[int, float, float]] = []
        self.last_observation: dict[str, np.ndarray] | None = None
        self.diverged = False
        self.first_loss: float | None = None
        self._window_sum: torch.Tensor | float = 0.0
        self._window_steps = 0
        self._apply_lr()

    # -- torch LR-scheduler conventions ---------------------------------------------------------
    @property
    def lr(self) -> float:
        """The LR the next optimizer step uses."""
        return self._lr

    def get_last_lr(self) -> list[float]:
        """The current LR of every parameter group (as :meth:`torch.optim.lr_scheduler.LRScheduler.get_last_lr`)."""
        return [self._lr] * len(self.optimizer.param_groups)

    def step(self, loss: float | torch.Tensor) -> None:
        """Record the step just taken (call it after ``optimizer.step()``) and its batch loss (a
        number or a tensor: a tensor is only read, once, at decisions); decide every K steps.

        :raises RuntimeError: something else changed the optimizer's LR since the last call
            (another scheduler on the same optimizer).
        """
        changed = [g["lr"] for g in self.optimizer.param_groups if g["lr"] != self._lr]
        if changed:
            raise RuntimeError(
                f"the optimizer's LR was changed outside GNSScheduler ({changed[0]!r} instead of {self._lr!r}): "
                "is another LR scheduler stepping the same optimizer?"
            )
        self._record(loss)
        if self._decision_due():
            mean_loss = self._end_window()
            self._decide(self._featurizer.compute(self._lr, mean_loss), mean_loss)

    def state_dict(self) -> dict[str, Any]:
        """What :meth:`load_state_dict` needs to resume (not the agent, model or optimizer)."""
        return {
            "lr": self._lr,
            "steps_done": self.steps_done,
            "lrs": list(self.lrs),
            "decisions": list(self.decisions),
            "diverged": self.diverged,
            "first_loss": self.first_loss,
            "window_sum": float(self._window_sum),
            "window_steps": self._window_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._lr, self.steps_done, self.diverged = float(state["lr"]), int(state["steps_done"]), bool(state["diverged"])
        self.lrs, self.decisions = list(state["lrs"]), [tuple(d) for d in state["decisions"]]
        self.first_loss, self._window_sum = state["first_loss"], float(state["window_sum"])
        self._window_steps = int(state["window_steps"])
        self._apply_lr()

    # -- replay without the agent ---------------------------------------------------------------
    def export_schedule(self) -> list[float]:
        """The LR of every optimizer step so far (a copy of :attr:`lrs`; JSON-friendly)."""
        return list(self.lrs)

    def as_lambda_lr(self, optimizer: torch.optim.Optimizer) -> LambdaLR:
        """A :class:`~torch.optim.lr_scheduler.LambdaLR` on ``optimizer`` that replays
        :meth:`export_schedule` (see :func:`replay_schedule`)."""
        return replay_schedule(optimizer, self.export_schedule())

    # -- internals (shared with GNSTrainerCallback) ---------------------------------------------
    def _check_agent(self) -> None:
        agent_space = self.agent.observation_space
        try:
            check_observation_space(agent_space, self.observation_space, "GNSScheduler")
        except ValueError as err:
            hint = ""
            if "x" in agent_space.spaces and "edge_index" in agent_space.spaces:
                nodes, edges = agent_space["x"].shape[0], agent_space["edge_index"].shape[1]
                hint = f" (here: GNSScheduler(..., max_nodes={nodes}, max_edges={edges}))"
            raise ValueError(
                f"{err}{hint}; this scheduler pads to max_nodes={self.max_nodes}, max_edges={self.max_edges}"
            ) from None

    def _apply_lr(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr

    def _record(self, loss: float | torch.Tensor) -> None:
        """Count one optimizer step at the current LR with its batch ``loss``."""
        if isinstance(loss, torch.Tensor):
            value = loss.detach().reshape(-1).mean() if loss.numel() != 1 else loss.detach().reshape(())
            if not isinstance(self._window_sum, torch.Tensor) and self._window_steps == 0:
                self._window_sum = torch.zeros((), device=value.device)  # accumulate like the env's Trainer
        else:
            value = float(loss)
        if self.first_loss is None:
            self.first_loss = float(value)
        self._window_sum += value
        self._window_steps += 1
        self.lrs.append(self._lr)
        self.steps_done += 1

    def _decision_due(self, ahead: int = 0) -> bool:
        """Whether a decision follows step ``steps_done + ahead``."""
        step = self.steps_done + ahead
        return step % self.decision_interval == 0 and step < self.total_steps

    def _end_window(self) -> float:
        """The mean loss of the steps since the last decision; starts a new window."""
        mean = float(self._window_sum) / max(self._window_steps, 1)
        self._window_sum, self._window_steps = 0.0, 0
        return mean

    def _decide(self, node_features: torch.Tensor, mean_loss: float) -> None:
        bound = self.divergence_factor * max(self.first_loss or 0.0, 1e-3)
        self.diverged |= not math.isfinite(mean_loss) or mean_loss > bound or not self._featurizer.last_finite
        progress = self.steps_done / self.total_steps
        observation = self._encoder.encode(node_features, global_features(self._lr, mean_loss, progress))
        self.last_observation = observation
        action = np.asarray(self.agent.predict(observation, deterministic=True)[0], dtype=np.float64).reshape(-1)
        if action.shape != (1,) or not np.isfinite(action).all():
            raise ValueError(f"the agent's action must be one finite number, got {action!r}")
        a = float(np.clip(action[0], -1.0, 1.0))
        self._lr = float(np.clip(self._lr * (1 + self.action_scale * a), *self.lr_bounds))
        self.decisions.append((self.steps_done, a, self._lr))
        self._apply_lr()


def _replayed_factor(schedule: tuple[float, ...], base_lr: float, step: int) -> float:
    return schedule[min(step, len(schedule) - 1)] / base_lr


def replay_schedule(optimizer: torch.optim.Optimizer, schedule: Sequence[float]) -> LambdaLR:
    """A :class:`~torch.optim.lr_scheduler.LambdaLR` whose LR at optimizer step ``i`` is
    ``schedule[i]`` (the last value after the end), for every parameter group: call its
    ``step()`` after each ``optimizer.step()`` as usual. ``schedule`` is
    :meth:`GNSScheduler.export_schedule` (e.g. saved as JSON), so no agent is needed.
    """
    schedule = tuple(float(lr) for lr in schedule)
    if not schedule:
        raise ValueError("the schedule is empty: run some steps with the GNSScheduler first")
    bad = [(i, lr) for i, lr in enumerate(schedule) if not (math.isfinite(lr) and lr >= 0)]
    if bad:
        raise ValueError(f"schedule[{bad[0][0]}] = {bad[0][1]!r}: every LR must be a finite number >= 0")
    factors = [functools.partial(_replayed_factor, schedule, float(group["lr"])) for group in optimizer.param_groups]
    return LambdaLR(optimizer, factors)


def initial_lr_scores(run: Callable[[float], Any], candidates: Sequence[float], criterion: str = "value") -> list[float]:
    """The score of each candidate initial LR after ``T_pre`` steps (paper §4.3).

    :param run: ``run(lr)`` trains a fresh model *from the same seed* with initial LR ``lr`` under a
        :class:`GNSScheduler` for ``T_pre`` steps (a multiple of K, at least K) and returns the
        scheduler; with ``criterion="final"`` it returns ``(scheduler, validation_metric)``.
    :param criterion: ``"value"`` (default, the paper's rule) = the critic's V(s_T_pre);
        ``"final"`` = the validation metric at T_pre plus V(s), as in
        :func:`agents.apply.initial_lr_scores`.
    :return: one score per candidate; a run whose scheduler :attr:`~GNSScheduler.diverged` scores -inf.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    bad = [lr for lr in candidates if not (isinstance(lr, numbers.Real) and 0 < lr < math.inf)]
    if bad:
        raise ValueError(f"candidate initial LRs {bad} must be positive finite numbers")
    scores = []
    for lr in candidates:
        result = run(float(lr))
        scheduler, metric = result if criterion == "final" else (result, 0.0)
        if not isinstance(scheduler, GNSScheduler):
            raise TypeError(f"run(lr) must return the GNSScheduler{' and the metric' * (criterion == 'final')}")
        if scheduler.last_observation is None or scheduler.steps_done % scheduler.decision_interval:
            raise ValueError(
                f"run(lr) stopped after {scheduler.steps_done} steps; T_pre must be a positive multiple of "
                f"decision_interval={scheduler.decision_interval}"
            )
        if scheduler.diverged:
            scores.append(-math.inf)
            continue
        scores.append(float(metric) + state_value(scheduler.agent, scheduler.last_observation))
    return scores


def select_initial_lr(run: Callable[[float], Any], candidates: Sequence[float], criterion: str = "value") -> float:
    """The candidate with the highest :func:`initial_lr_scores`; then train from scratch (same
    seed) with it for all T steps. The env-based twin is :func:`agents.apply.select_initial_lr`."""
    scores = initial_lr_scores(run, candidates, criterion)
    return best_candidate(candidates, scores)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_steps(total_steps: Any, decision_interval: Any) -> None:
    """T and K as the env takes them: positive integers with T >= 2K (a decision after K steps,
    and at least K more steps for it to act on)."""
    for name, value in (("total_steps", total_steps), ("decision_interval", decision_interval)):
        if not _is_positive_int(value):
            raise ValueError(f"{name}={value!r} must be a positive integer")
    if total_steps < 2 * decision_interval:
        raise ValueError(
            f"total_steps={total_steps} must be at least 2 x decision_interval ({2 * decision_interval}): "
            "the first decision comes after K steps and needs K more to act on"
        )


def _checked_bounds(bounds: Any) -> tuple[float, float]:
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"lr_bounds={bounds!r} must be a pair (low, high)") from None
    if not 0 < low <= high < math.inf:
        raise ValueError(f"lr_bounds={bounds!r} must be (low, high) with 0 < low <= high < inf")
    return low, high


def _to_device(example_input: Any, device: torch.device) -> Any:
    if isinstance(example_input, torch.Tensor):
        return example_input.to(device)
    if isinstance(example_input, Mapping):
        return {key: _to_device(value, device) for key, value in example_input.items()}
    if isinstance(example_input, tuple):
        return tuple(_to_device(value, device) for value in example_input)
    return example_input


@functools.cache
def _trainer_callback_class() -> type:
    from transformers import TrainerCallback  # imported only when the callback is used

    class GNSTrainerCallback(TrainerCallback):
        """:class:`GNSScheduler` inside a Hugging Face ``Trainer``.

        ``Trainer(model, args, ..., callbacks=[GNSTrainerCallback(agent, example_input, decision_interval=K)])``

        - T defaults to the Trainer's ``max_steps``; the initial LR is ``args.learning_rate``.
        - The per-step training loss reaches callbacks only through the logs, so the callback
          makes the Trainer log every step (``control.should_log = True``; ``logging_steps`` is
          overridden) and reads ``logs["loss"]``: the loss of that optimizer step, whatever
          ``compute_loss``, label smoothing or gradient accumulation are in use (so the
          progress bar / printer shows one log line per step).
        - The node features are taken in ``on_optimizer_step``, right after ``optimizer.step()``,
          while the gradients still exist (the Trainer zeroes them before ``on_step_end``).
        - The callback owns the LR: it sets every group's LR at the start of every step,
          so the Trainer's own ``lr_scheduler`` has no effect. Use ``lr_scheduler_type="constant"``
          (and no warmup): the ``learning_rate`` the Trainer logs is its scheduler's, not the one
          applied; that is :attr:`scheduler` ``.lrs``.
        - Not for resuming from a checkpoint, DeepSpeed or sharded (FSDP) models: the node
          features need the full gradients in ``.grad``.

        :param agent: trained agent or its ``.zip`` path.
        :param example_input: one batch as the model takes it (e.g. a tokenizer's output dict);
            moved to the model's device.
        :param decision_interval: K.
        :param total_steps: T; default the Trainer's ``max_steps``.
        :param scheduler_kwargs: passed to :class:`GNSScheduler` (``task``, ``max_nodes`` ...).

        :ivar scheduler: the :class:`GNSScheduler`, made at ``on_train_begin``.
        """

        def __init__(
            self,
            agent: BaseAlgorithm | str | os.PathLike,
            example_input: Any,
            decision_interval: int,
            total_steps: int | None = None,
            **scheduler_kwargs: Any,
        ) -> None:
            if total_steps is not None:
                _check_steps(total_steps, decision_interval)
            elif not _is_positive_int(decision_interval):
                raise ValueError(f"decision_interval={decision_interval!r} must be a positive integer")
            self.agent = load_agent(agent)
            self.example_input = example_input
            self.decision_interval = decision_interval
            self.total_steps = total_steps
            self.scheduler_kwargs = scheduler_kwargs
            self.scheduler: GNSScheduler | None = None
            self._features: torch.Tensor | None = None

        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            if state.global_step != 0:
                raise ValueError("GNSTrainerCallback cannot resume a run from a checkpoint (global_step > 0)")
            device = next(model.parameters()).device
            kw = {"initial_lr": args.learning_rate, **self.scheduler_kwargs}
            total = self.total_steps if self.total_steps is not None else state.max_steps
            self.scheduler = GNSScheduler(
                optimizer, self.agent, model, _to_device(self.example_input, device), total, self.decision_interval, **kw
            )

        def on_step_begin(self, args, state, control, **kwargs):
            self.scheduler._apply_lr()  # undo what the Trainer's lr_scheduler set after the last step

        def on_optimizer_step(self, args, state, control, **kwargs):
            if self.scheduler._decision_due(ahead=1):  # the loss column is filled in at on_log
                self._features = self.scheduler._featurizer.compute(self.scheduler.lr, 0.0)

        def on_step_end(self, args, state, control, **kwargs):
            control.should_log = True  # logs["loss"] of every step is the only per-step loss
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            scheduler = self.scheduler
            if scheduler is None or not logs or "loss" not in logs or state.global_step == scheduler.steps_done:
                return
            if state.global_step != scheduler.steps_done + 1:
                raise RuntimeError(
                    f"GNSTrainerCallback missed the loss of steps {scheduler.steps_done + 1}..{state.global_step - 1}"
                )
            scheduler._record(float(logs["loss"]))
            if scheduler._decision_due():
                mean_loss = scheduler._end_window()
                features, self._features = self._features, None
                if features is None:
                    raise RuntimeError("GNSTrainerCallback saw no on_optimizer_step before this decision")
                features[:, _LOSS_COLUMN] = math.log1p(mean_loss) if math.isfinite(mean_loss) and mean_loss > -1 else 0.0
                scheduler._decide(features, mean_loss)

    GNSTrainerCallback.__module__ = __name__
    GNSTrainerCallback.__qualname__ = "GNSTrainerCallback"
    return GNSTrainerCallback


def __getattr__(name: str):
    if name == "GNSTrainerCallback":  # lazily: plain-loop users need not import transformers' Trainer
        return _trainer_callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [  # and GNSTrainerCallback, made on first access (module __getattr__)
    "GNSScheduler",
    "initial_lr_scores",
    "load_agent",
    "replay_schedule",
    "select_initial_lr",
]
