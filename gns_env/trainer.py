"""The inner training loop an environment drives: K optimizer steps at a time, and validation."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import TensorDataset


class Trainer:
    """Trains ``model`` on in-memory data with shuffled mini-batches (no replacement per epoch).

    Batches are rows of ``data``: every tensor but the last is passed to ``model`` positionally,
    the last holds the targets. The loss is cross-entropy on logits ``(B, C)``, or the mean
    squared error on scores ``(B,)`` when ``regression``.

    All randomness (batch order, and dropout through the global torch RNG) comes from
    ``seed``, and the global RNG state outside :meth:`run` is left untouched.

    :param model: the network, already on ``device``.
    :param optimizer: its optimizer; :meth:`run` sets the LR of every parameter group (unless
        given ``lr=None``).
    :param data: model inputs ``(N, ...)`` and targets ``(N,)`` (int64 classes or float scores), on ``device``.
    :param indices: ``(n,)`` rows of ``data`` to train on (default: all); batches are gathered
        from ``data`` directly, so no copy of the training split is made.
    :param batch_size: mini-batch size (the last incomplete batch of an epoch is dropped).
    :param seed: seed of the batch order and of the global RNG inside :meth:`run`.
    :param regression: mean squared error instead of cross-entropy.
    :param autocast_dtype: run forward passes under ``torch.autocast`` with this dtype
        (``torch.bfloat16``); ``None``: full precision.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        data: TensorDataset,
        batch_size: int,
        seed: int,
        indices: torch.Tensor | None = None,
        regression: bool = False,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.data = data
        self._device = next(model.parameters()).device
        self.indices = indices.to(self._device) if indices is not None else torch.arange(len(data), device=self._device)
        self.batch_size = min(batch_size, len(self.indices))
        self.regression = regression
        self.autocast_dtype = autocast_dtype
        self.steps_done = 0
        self.first_loss: float | None = None
        self._order_generator = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._cursor = 0
        with torch.random.fork_rng(devices=self._cuda_devices()):
            torch.manual_seed(seed)
            self._rng_state = self._get_rng_state()

    def _cuda_devices(self) -> list[torch.device]:
        return [self._device] if self._device.type == "cuda" else []

    def _get_rng_state(self) -> tuple:
        cuda = torch.cuda.get_rng_state(self._device) if self._device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _next_batch(self) -> tuple[torch.Tensor, ...]:
        if self._cursor + self.batch_size > len(self._order):
            self._order = torch.randperm(len(self.indices), generator=self._order_generator).to(self._device)
            self._cursor = 0
        rows = self.indices[self._order[self._cursor : self._cursor + self.batch_size]]
        self._cursor += self.batch_size
        return self.data[rows]

    def run(self, num_steps: int, lr: float | Callable[[int], float] | None) -> float:
        """Run ``num_steps`` optimizer steps and return their mean training loss.

        :param lr: a constant LR, a function of the global step index (per-step schedules), or
            ``None`` to leave the optimizer's LR alone (an optimizer that sets its own, e.g. AdamHD).
        :return: the mean loss (``nan``/``inf`` when training diverged). Gradients of the last
            step stay in ``.grad`` for the node features.
        """
        self.model.train()
        total = torch.zeros((), device=self._device)
        with torch.random.fork_rng(devices=self._cuda_devices()):
            cpu_state, cuda_state = self._rng_state
            torch.set_rng_state(cpu_state)
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state, self._device)
            for _ in range(num_steps):
                if lr is not None:
                    step_lr = lr(self.steps_done) if callable(lr) else lr
                    for group in self.optimizer.param_groups:
                        group["lr"] = step_lr
                *inputs, targets = self._next_batch()
                self.optimizer.zero_grad(set_to_none=True)
                with self._autocast():
                    loss = self._loss(self.model(*inputs), targets)
                loss.backward()
                self.optimizer.step()
                total += loss.detach()
                if self.first_loss is None:
                    self.first_loss = loss.item()
                self.steps_done += 1
            self._rng_state = self._get_rng_state()
        return total.item() / max(num_steps, 1)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self._device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def _loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.regression:
            return F.mse_loss(outputs.float(), targets.float())
        return F.cross_entropy(outputs, targets)

    @torch.no_grad()
    def predict(self, data: TensorDataset, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions ``(N,)`` on ``data`` (class ids, or scores for regression) and its targets
        ``(N,)``, both on the CPU. Runs in eval mode; the training flag is restored."""
        self.model.eval()
        *inputs, targets = data.tensors
        predictions = []
        for start in range(0, len(targets), batch_size):
            batch = [t[start : start + batch_size].to(self._device, non_blocking=True) for t in inputs]
            with self._autocast():
                outputs = self.model(*batch)
            predictions.append(outputs.float() if self.regression else outputs.argmax(dim=1))
        self.model.train()
        if not predictions:
            return targets[:0], targets
        return torch.cat(predictions).cpu(), targets.cpu()
