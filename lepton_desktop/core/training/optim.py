"""Adam, AdamW and SGD for eager training on the CPU, without torch's compiler hooks.

torch's own optimizers wrap their constructor, ``step``, ``zero_grad`` and
``state_dict`` in ``torch._disable_dynamo``, which imports ``torch._dynamo`` (and with
it sympy and most of the compiler stack) on first use: about 1.5 s of a worker's start,
spent on a compiler that eager training never calls. The classes here are
:class:`torch.optim.Optimizer` subclasses (schedulers, GradScaler and checkpoints treat
them as torch's own) whose methods are the undecorated ones, and whose update is the
arithmetic of torch's single-tensor path, which torch itself runs on CPU tensors: the
same operations in the same order, so a run's numbers do not change.

:func:`eager_optimizer` builds one; on other devices (CUDA, MPS) training keeps torch's
optimizers, whose multi-tensor kernels matter there more than the import does. Their
``state_dict`` layout (``step``, ``exp_avg``, ``exp_avg_sq``; ``momentum_buffer``) and
param-group keys are torch's, so a checkpoint written by either loads into the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer


def _undecorated(method: Callable[..., Any]) -> Callable[..., Any]:
    """The method ``torch._disable_dynamo`` wrapped (``functools.wraps`` keeps it)."""
    return getattr(method, "__wrapped__", method)


class _Eager(Optimizer):
    """Optimizer's own methods, minus the wrappers that import ``torch._dynamo``."""

    add_param_group = _undecorated(Optimizer.add_param_group)
    zero_grad = _undecorated(Optimizer.zero_grad)
    state_dict = _undecorated(Optimizer.state_dict)
    load_state_dict = _undecorated(Optimizer.load_state_dict)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._update(param, param.grad, group)
        return loss

    def _update(self, param: torch.Tensor, grad: torch.Tensor, group: dict[str, Any]) -> None:
        raise NotImplementedError


class EagerAdam(_Eager):
    """Adam (``decoupled=False``) or AdamW (``decoupled=True``), as torch computes them.

    Args:
        params: the parameters to optimize.
        lr: learning rate.
        betas: decay rates of the first and second moment estimates.
        eps: added to the denominator.
        weight_decay: L2 penalty (Adam) or decoupled decay (AdamW).
        decoupled: AdamW's decay, applied to the weights instead of the gradient.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        decoupled: bool = False,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(
                f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}, "
                f"weight_decay={weight_decay}"
            )
        # torch.optim.Adam's group keys, so its checkpoints and ours are interchangeable.
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": False,
            "maximize": False,
            "foreach": None,
            "capturable": False,
            "differentiable": False,
            "fused": None,
            "decoupled_weight_decay": decoupled,
        }
        super().__init__(params, defaults)

    def _update(self, param: torch.Tensor, grad: torch.Tensor, group: dict[str, Any]) -> None:
        lr, (beta1, beta2) = group["lr"], group["betas"]
        weight_decay, eps = group["weight_decay"], group["eps"]
        state = self.state[param]
        if not state:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        step_t += 1
        if weight_decay != 0:
            if group.get("decoupled_weight_decay", False):
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(param, alpha=weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = step_t.item()
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-step_size)


class EagerSGD(_Eager):
    """SGD with (heavy-ball) momentum and L2 weight decay, as torch computes it."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"invalid SGD settings: lr={lr}, momentum={momentum}, weight_decay={weight_decay}"
            )
        # torch.optim.SGD's group keys (see EagerAdam).
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": 0.0,
            "weight_decay": weight_decay,
            "nesterov": False,
            "maximize": False,
            "foreach": None,
            "differentiable": False,
            "fused": None,
        }
        super().__init__(params, defaults)

    def _update(self, param: torch.Tensor, grad: torch.Tensor, group: dict[str, Any]) -> None:
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum != 0:
            state = self.state[param]
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = grad.detach().clone()
            else:
                buffer.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = buffer
        param.add_(grad, alpha=-group["lr"])


def eager_optimizer(
    name: str, params: Iterable[torch.Tensor], *, lr: float, weight_decay: float, momentum: float
) -> Optimizer:
    """``adam``, ``adamw`` or ``sgd`` (with ``momentum``) over ``params``."""
    if name == "sgd":
        return EagerSGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name not in ("adam", "adamw"):
        raise ValueError(f"unknown optimizer {name!r}")
    return EagerAdam(params, lr=lr, weight_decay=weight_decay, decoupled=name == "adamw")
