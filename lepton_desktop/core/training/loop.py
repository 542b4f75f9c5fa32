"""The training loop: batches, optimizer, schedule, early stopping, checkpoints.

Everything around the loop (where metrics go, how pause/stop arrive, where
checkpoints are kept) comes through :class:`Hooks`, so the loop runs the same in a
worker, in the CLI and in a script. The per-step hook only appends the (detached)
loss tensor: converting it to a float, which on a GPU waits for the device, happens
in the tracker's writer thread, off the hot path.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import math
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.core.training.data import TrainData
from lepton_desktop.core.training.models import augment
from lepton_desktop.core.training.optim import eager_optimizer
from lepton_desktop.core.training.privacy import PrivacyPlan, PrivateTraining, quiet

EVAL_BATCH = 4096
#: Evaluation batches hold about this many first-layer activations (floats): a CNN's
#: 4096-image batch spills the caches and ran at half the speed of 256-image batches.
EVAL_BATCH_FLOATS = 2**21
#: Per-epoch train metrics use a fixed seeded sample of at most this many train rows
#: (or as many as the val split has, if more), not a full pass over the train split.
TRAIN_METRIC_ROWS = 10_000
#: With no --epochs, aim for about this many optimizer steps (bounded below and above).
TARGET_STEPS = 3000
EPOCH_RANGE = (5, 200)
#: With fewer validation rows (or windows) than this, the validation loss is too noisy
#: to choose an epoch by: one or two rows decide it, often at an under-trained epoch.
#: The last weights are kept instead (as scikit-learn's MLP does without early stopping).
MIN_VAL_ROWS = 10


class DivergedError(LeptonError):
    """The loss became NaN or infinite."""


class Hooks(Protocol):
    """Where the loop reports to and learns whether to pause or stop."""

    def step(self, step: int, epoch: int, loss: torch.Tensor) -> None:
        """One optimizer step's (detached) loss."""

    def epoch(self, epoch: int, metrics: dict[str, float], best: bool) -> None:
        """End of an epoch: its metrics, and whether it is the best so far."""

    def checkpoint(self, kind: str, epoch: int, state: bytes) -> None:
        """Keep a serialized checkpoint (``best`` or ``last``)."""

    def control(self) -> str | None:
        """``"stop"`` to end training now; blocks while paused; else None."""


@dataclasses.dataclass
class FitResult:
    """How training ended."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_value: float
    epochs_done: int
    stopped: bool


def select_device(requested: str) -> torch.device:
    """CUDA, then MPS, then CPU for ``auto``; a missing device is a clear error."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if requested == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (requested == "cuda" and not cuda) or (requested == "mps" and not mps):
        raise LeptonError(f"--device {requested}: no such device on this machine; use auto or cpu")
    return torch.device(requested)


def effective_batch_size(config: TrainConfig, n_train: int) -> int:
    """The batch size used: small datasets get smaller batches (more steps per epoch)."""
    return max(1, min(config.batch_size, max(8, n_train // 8)))


def planned_epochs(config: TrainConfig, n_train: int) -> int:
    """``--epochs``, or enough epochs for about TARGET_STEPS steps."""
    if config.epochs:
        return config.epochs
    steps = math.ceil(n_train / effective_batch_size(config, n_train))
    return int(np.clip(math.ceil(TARGET_STEPS / steps), *EPOCH_RANGE))


def loss_function(config: TrainConfig, data: TrainData) -> nn.Module:
    """Cross-entropy (optionally class-weighted), MSE or Huber."""
    name = config.loss or ("cross_entropy" if data.task == "classification" else "mse")
    if name == "cross_entropy":
        if data.task != "classification":
            raise LeptonError(f"--loss cross_entropy needs a classification task, not {data.task}")
        weight = None
        if config.class_weights:
            counts = np.bincount(data.y["train"], minlength=data.n_outputs).astype(np.float32)
            weight = torch.tensor(counts.sum() / np.maximum(counts, 1) / len(counts))
        return nn.CrossEntropyLoss(weight=weight)
    if data.task == "classification":
        raise LeptonError(f"--loss {name} is for regression; classification uses cross_entropy")
    return nn.MSELoss() if name == "mse" else nn.HuberLoss()


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD with momentum.

    On the CPU, the eager twins of torch's optimizers (:mod:`.optim`): the same
    arithmetic without ``torch._dynamo``, whose import cost 1.5 s of every run.
    """
    params = model.parameters()
    if all(p.device.type == "cpu" for p in model.parameters()):
        return eager_optimizer(
            config.optimizer,
            params,
            lr=config.lr,
            weight_decay=config.weight_decay,
            momentum=config.momentum,
        )
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def make_schedule(config: TrainConfig, optimizer: torch.optim.Optimizer, epochs: int) -> Any:
    """The learning-rate schedule (stepped once per epoch), or None."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(2, config.patience // 3)
        )
    return None


def serialize(state: dict[str, Any]) -> bytes:
    """``torch.save`` into bytes (read back with :func:`deserialize`, weights only)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def deserialize(blob: bytes) -> dict[str, Any]:
    """Load a checkpoint or state dict without unpickling code (``weights_only=True``)."""
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


class Trainer:
    """One model trained on one TrainData; see :func:`fit`."""

    def __init__(
        self,
        model: nn.Module,
        data: TrainData,
        config: TrainConfig,
        hooks: Hooks,
        device: torch.device,
        privacy: PrivacyPlan | None = None,
    ) -> None:
        self.model = model.to(device)
        self.data, self.config, self.hooks, self.device = data, config, hooks, device
        self.loss_fn = loss_function(config, data).to(device)
        # Epoch metrics are computed on CPU arrays; a CPU twin avoids moving the loss
        # (and its class weights) back and forth every epoch.
        self.cpu_loss_fn = loss_function(config, data)
        n_train = len(data.y["train"])
        self.batch = effective_batch_size(config, n_train)
        self.epochs = planned_epochs(config, n_train)
        self.optimizer = make_optimizer(config, self.model)
        self.schedule = make_schedule(config, self.optimizer, self.epochs)
        self.generator = torch.Generator().manual_seed(config.seed)
        # DP-SGD: Opacus clips each example's gradient and adds noise in its optimizer,
        # and draws the batches (Poisson sampling); the loop's own clipping stays off.
        self.private: PrivateTraining | None = None
        if privacy is not None:
            self.private = PrivateTraining(
                self.model, self.optimizer, n_train, self.batch, privacy, config.seed
            )
            self.optimizer = self.private.optimizer
        self.amp = config.amp and device.type == "cuda" and self.private is None
        self.augment = config.augment and config.arch == "cnn"
        self.classify = data.task == "classification"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.x = {k: torch.from_numpy(v).to(device) for k, v in data.x.items()}
        self.y = {k: torch.from_numpy(v).to(device) for k, v in data.y.items()}
        self._add_train_probe(config.seed)
        per_sample = int(np.prod(data.input_shape))
        if config.arch == "cnn":
            per_sample *= int(config.channels[0])
        self.eval_batch = int(np.clip(EVAL_BATCH_FLOATS // per_sample, 64, EVAL_BATCH))
        self.step_no, self.epoch_no, self.bad_epochs = 0, 0, 0
        self.best_value, self.best_epoch = math.inf, 0
        self.last_val_loss = math.inf
        self.best_state = copy.deepcopy(self.model.state_dict())

    def _add_train_probe(self, seed: int) -> None:
        n_train = len(self.y["train"])
        n_probe = max(TRAIN_METRIC_ROWS, len(self.y["val"]))
        if n_probe >= n_train:
            self.x["train_probe"], self.y["train_probe"] = self.x["train"], self.y["train"]
            return
        generator = torch.Generator().manual_seed(seed)  # not self.generator: same batches
        pick = torch.randperm(n_train, generator=generator)[:n_probe].sort().values
        pick = pick.to(self.device)
        self.x["train_probe"], self.y["train_probe"] = self.x["train"][pick], self.y["train"][pick]

    # -- state -----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to continue from the end of the current epoch."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule else {},
            "epoch": self.epoch_no,
            "step": self.step_no,
            "bad_epochs": self.bad_epochs,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "rng": torch.get_rng_state(),
            "generator": self.generator.get_state(),
        }
        if self.private is not None:
            state["privacy_history"] = [list(h) for h in self.private.history()]
            state["privacy_sampling"] = self.private.sampling.get_state()
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a ``last`` checkpoint."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.schedule:
            self.schedule.load_state_dict(state["schedule"])
        self.epoch_no, self.step_no = state["epoch"], state["step"]
        self.bad_epochs, self.best_value = state["bad_epochs"], state["best_value"]
        self.best_epoch, self.best_state = state["best_epoch"], state["best_state"]
        torch.set_rng_state(state["rng"])
        self.generator.set_state(state["generator"])
        if self.private is not None:
            self.private.restore(state.get("privacy_history", []), state.get("privacy_sampling"))

    # -- the loop --------------------------------------------------------------------

    def fit(self) -> FitResult:
        """Train until the planned epochs, early stopping, or a stop request.

        The result holds the weights of the best validation epoch, or the last weights
        when the validation split is too small to judge by (:data:`MIN_VAL_ROWS`).
        """
        stopped = False
        while self.epoch_no < self.epochs and not self._patience_spent():
            if self._train_epoch() == "stop":
                stopped = True
                break
            self.epoch_no += 1
            metrics = self._epoch_metrics()
            self.last_val_loss = metrics["val_loss"]
            improved = self._track_best(metrics["val_loss"])
            self.hooks.epoch(self.epoch_no, metrics, improved)
            self.hooks.checkpoint("last", self.epoch_no, serialize(self.state()))
        # Validation rows inside the training data cannot choose an epoch either.
        keep_last = len(self.y["val"]) < MIN_VAL_ROWS or self.config.train_on == "train+val"
        if keep_last and self.epoch_no > 0:
            last = copy.deepcopy(self.model.state_dict())
            return FitResult(last, self.epoch_no, self.last_val_loss, self.epoch_no, stopped)
        return FitResult(self.best_state, self.best_epoch, self.best_value, self.epoch_no, stopped)

    def _patience_spent(self) -> bool:
        # Checked before each epoch, not only after: a run resumed from the checkpoint
        # of its early-stopping epoch (killed before it was registered) stops there too.
        return bool(self.config.patience) and self.bad_epochs >= self.config.patience

    def _batches(self) -> Iterator[torch.Tensor]:
        if self.private is not None:
            # Poisson sampling: every batch is drawn, whatever its size (even empty),
            # as the privacy analysis counts it.
            for index in self.private.batches():
                yield index.to(self.device)
            return
        n = len(self.y["train"])
        order = torch.randperm(n, generator=self.generator).to(self.device)
        for start in range(0, n, self.batch):
            index = order[start : start + self.batch]
            if len(index) < 2 and n > 1:
                continue  # a batch of one breaks batch norm and says little
            yield index

    def _train_epoch(self) -> str | None:
        self.model.train()
        total = torch.zeros((), device=self.device)
        for index in self._batches():
            loss = self._step(self.x["train"][index], self.y["train"][index])
            total += loss
            self.step_no += 1
            self.hooks.step(self.step_no, self.epoch_no + 1, loss)
            if self.hooks.control() == "stop":
                return "stop"
        if not torch.isfinite(total):
            raise DivergedError(
                f"the loss became NaN or infinite in epoch {self.epoch_no + 1}; "
                f"lower the learning rate (--lr {self.config.lr:g}) or use gradient clipping"
            )
        if self.schedule and not isinstance(
            self.schedule, torch.optim.lr_scheduler.ReduceLROnPlateau
        ):
            self.schedule.step()
        return None

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.augment:
            x = augment(x, self.generator, flip=self.config.flip)
        self.optimizer.zero_grad(set_to_none=True)
        if self.private is not None:
            return self._private_step(x, y)
        if not self.amp:
            # No autocast context and no scaler calls: both would be no-ops here, yet
            # cost ~10-15 us a step, which is several % of a small model's step on a CPU.
            loss = self._loss(self.model(x), y)
            loss.backward()
            if self.config.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            return loss.detach()
        with torch.autocast(self.device.type):
            loss = self._loss(self.model(x), y)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    def _private_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        assert self.private is not None
        out = self.private.module(x)
        # An empty Poisson batch still takes its noisy step; its loss is 0, not a mean
        # over nothing (NaN).
        loss = self._loss(out, y) if len(y) else out.sum() * 0.0
        with quiet():
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out if self.classify else out.squeeze(-1), y)

    def predict(self, split: str, state: dict[str, torch.Tensor] | None = None) -> np.ndarray:
        """Raw outputs (logits or scaled values) for a split, optionally with other weights."""
        if state is not None:
            self.model.load_state_dict(state)
        self.model.eval()
        outs = []
        with torch.no_grad():
            for start in range(0, len(self.x[split]), self.eval_batch):
                batch = self.x[split][start : start + self.eval_batch]
                outs.append(self.model(batch).float().cpu())
        return torch.cat(outs).numpy()

    def _epoch_metrics(self) -> dict[str, float]:
        metrics = {}
        for split, rows in (("train", "train_probe"), ("val", "val")):
            out = torch.from_numpy(self.predict(rows))
            y = self.y[rows].cpu()
            pred = out if self.data.task == "classification" else out.squeeze(-1)
            metrics[f"{split}_loss"] = float(self.cpu_loss_fn(pred, y))
            metrics.update(_quick_metrics(split, out.numpy(), y.numpy(), self.data))
        metrics["lr"] = float(self.optimizer.param_groups[0]["lr"])
        if isinstance(self.schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.schedule.step(metrics["val_loss"])
        return metrics

    def _track_best(self, value: float) -> bool:
        if value < self.best_value - 1e-7:
            self.best_value, self.best_epoch, self.bad_epochs = value, self.epoch_no, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.hooks.checkpoint("best", self.epoch_no, serialize(self.best_state))
            return True
        self.bad_epochs += 1
        return False


def _quick_metrics(
    split: str, out: np.ndarray, y: np.ndarray, data: TrainData
) -> dict[str, float]:
    if data.task == "classification":
        return {f"{split}_accuracy": float((out.argmax(1) == y).mean())}
    pred = out.squeeze(-1) * data.target_std
    true = y * data.target_std
    residual = ((true - pred) ** 2).sum()
    spread = ((true - true.mean()) ** 2).sum() or 1.0
    return {
        f"{split}_mae": float(np.abs(true - pred).mean()),
        f"{split}_r2": float(1 - residual / spread),
    }


def seed_everything(seed: int) -> None:
    """Seed torch and numpy so a CPU run repeats exactly.

    (Not ``torch.use_deterministic_algorithms``: the CPU kernels used here are already
    deterministic, and enabling it imports torch's compiler stack, ~2 s per worker.)
    """
    torch.manual_seed(seed)
    np.random.seed(seed)
