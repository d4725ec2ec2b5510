"""Adam with hypergradient descent on its learning rate (Adam-HD; paper App. B.4, Algorithm 2;
Baydin et al., "Online learning rate adaptation with hypergradient descent", ICLR 2018)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch


class AdamHD(torch.optim.Optimizer):
    """Adam whose single, global learning rate ``alpha`` follows its own hypergradient.

    At step ``t``, with ``g_t`` the gradient of every parameter (``+ weight_decay * theta`` unless
    ``decoupled_weight_decay``) and ``d_{t-1} = m_hat_{t-1} / (sqrt(v_hat_{t-1}) + eps)`` the
    previous Adam direction (same shape as the parameter; zero at ``t = 1``):

    - hypergradient ``h_t = sum over parameters of g_t . (-d_{t-1})`` (a scalar, since
      ``u_{t-1} = -alpha d_{t-1}`` gives ``du_{t-1}/dalpha = -d_{t-1}``);
    - ``alpha_t = clip(alpha_{t-1} - hypergradient_lr * h_t, *lr_bounds)``;
    - the usual bias-corrected Adam step ``theta -= alpha_t * d_t`` (decoupled weight decay first
      applies ``theta -= alpha_t * weight_decay * theta``, as AdamW does).

    ``alpha`` is shared by all parameter groups (Baydin's formulation) and written into every
    group's ``"lr"`` after each step, so schedulers, loggers and envs read it there. Setting a
    group's ``"lr"`` between steps replaces ``alpha_{t-1}`` (the first group that differs from the
    optimizer's own value wins). With ``hypergradient_lr=0`` this is exactly Adam (or AdamW).

    :param params: parameters or parameter groups (groups may only differ in their parameters).
    :param lr: ``alpha_0``, inside ``lr_bounds``.
    :param hypergradient_lr: ``beta`` >= 0, the step size of the LR's own gradient descent.
    :param betas: Adam's ``(beta1, beta2)``, each in ``[0, 1)``.
    :param eps: added to ``sqrt(v_hat)``, >= 0.
    :param weight_decay: L2 penalty (coupled) or AdamW decay (decoupled), >= 0.
    :param decoupled_weight_decay: AdamW-style decay instead of adding it to the gradient.
    :param lr_bounds: ``(low, high)`` with ``0 <= low <= high``; ``alpha`` is clipped into it.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        hypergradient_lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        lr_bounds: tuple[float, float] = (0.0, math.inf),
    ) -> None:
        low, high = (float(b) for b in lr_bounds)
        if not 0.0 <= low <= high:
            raise ValueError(f"lr_bounds must be (low, high) with 0 <= low <= high, got {lr_bounds!r}")
        if not (math.isfinite(lr) and low <= lr <= high):
            raise ValueError(f"lr must be finite, >= 0 and inside lr_bounds={lr_bounds!r}, got {lr!r}")
        if not (math.isfinite(hypergradient_lr) and hypergradient_lr >= 0):
            raise ValueError(f"hypergradient_lr must be finite and >= 0, got {hypergradient_lr!r}")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps!r}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        defaults = dict(lr=float(lr), betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)
        for group in self.param_groups:
            if any(group[k] != defaults[k] for k in ("betas", "eps", "weight_decay")):
                raise ValueError("AdamHD's groups share one LR and one set of Adam hyperparameters")
            group["lr"] = float(lr)
        self.hypergradient_lr = float(hypergradient_lr)
        self.decoupled_weight_decay = decoupled_weight_decay
        self.lr_bounds = (low, high)
        self._alpha = float(lr)

    @property
    def alpha(self) -> float:
        """The current global learning rate (the one the last step used)."""
        return self._previous_alpha()

    def _previous_alpha(self) -> float:
        changed = [group["lr"] for group in self.param_groups if group["lr"] != self._alpha]
        return float(changed[0]) if changed else self._alpha

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One Adam-HD step over every parameter with a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        beta1, beta2 = self.defaults["betas"]
        eps, weight_decay = self.defaults["eps"], self.defaults["weight_decay"]
        items = []  # (param, effective gradient, state)
        products = []  # g_t . d_{t-1}, one 0-d tensor per parameter that has a previous direction
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError("AdamHD does not support sparse gradients")
                grad = param.grad
                if weight_decay != 0 and not self.decoupled_weight_decay:
                    grad = grad.add(param, alpha=weight_decay)
                state = self.state[param]
                if "direction" in state:
                    products.append(torch.sum(grad * state["direction"]))
                items.append((param, grad, state))
        alpha = self._previous_alpha()
        if products and self.hypergradient_lr != 0:
            hypergradient = -torch.stack(products).sum().item()  # h_t = g_t . (-d_{t-1})
            alpha = alpha - self.hypergradient_lr * hypergradient
        alpha = min(max(alpha, self.lr_bounds[0]), self.lr_bounds[1])
        for param, grad, state in items:
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["step"] += 1
            step = state["step"]
            if weight_decay != 0 and self.decoupled_weight_decay:
                param.mul_(1 - alpha * weight_decay)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            # The arithmetic of torch.optim.Adam's single-tensor path, so that beta = 0 matches it exactly.
            bias_correction1 = 1 - beta1**step
            denom = (exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(eps)
            param.addcdiv_(exp_avg, denom, value=-alpha / bias_correction1)
            state["direction"] = torch.div(exp_avg, denom).div_(bias_correction1)  # d_t = m_hat / (sqrt(v_hat) + eps)
        self._alpha = alpha
        for group in self.param_groups:
            group["lr"] = alpha
        return loss
