"""Divergence guard: stop a run whose loss or gradient norm has left its usual range.

A too-high learning rate rarely gives a NaN at once: the loss climbs to 1e13 and beyond
while staying finite. The guard keeps the running median of the last `window` losses and
gradient norms. For the loss, the run's first value stands in until `min_history` are in and
bounds the median from above (a loss 10x its starting value is never usual); a gradient norm
may grow from a small start, so its check waits for `min_history` values. When the loss stays
above `factor` x that, or the gradient norm above `grad_factor` x its median, for `patience`
consecutive steps, the run has diverged. Values of a streak do not enter the median, so a
loss that jumps and stays high is caught however long it stays.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import median


class DivergenceGuard:
    """Feed it every step's (global mean) loss and gradient norm; `observe` returns a message
    once the run has diverged, else None. Its state travels in the training state."""

    def __init__(self, factor: float = 10.0, patience: int = 20, window: int = 100, grad_factor: float = 100.0,
                 min_history: int = 10):
        if factor <= 1 or grad_factor <= 1 or patience < 1 or window < 2:
            raise ValueError(f"divergence guard: factors must be > 1, patience >= 1 and window >= 2 "
                             f"(got {factor}, {grad_factor}, {patience}, {window})")
        self.factor, self.grad_factor, self.patience = factor, grad_factor, patience
        self.window, self.min_history = window, min(min_history, window)
        self.losses: deque[float] = deque(maxlen=window)
        self.norms: deque[float] = deque(maxlen=window)
        self.loss_streak = self.norm_streak = 0
        self.rise_step: int | None = None
        self.first: dict[str, float] = {}

    def observe(self, step: int, loss: float, grad_norm: float | None = None) -> str | None:
        """Record step `step`; a message naming what diverged (loss or gradient norm) or None.
        Non-finite values are left to the non-finite checks (fp16 skips overflowing steps)."""
        verdicts = []
        if math.isfinite(loss):
            verdicts.append(self._check("loss", step, loss, self.losses, self.factor, "loss_streak", True))
        if grad_norm is not None and math.isfinite(grad_norm):
            verdicts.append(self._check("gradient norm", step, grad_norm, self.norms, self.grad_factor, "norm_streak", False))
        if not self.loss_streak and not self.norm_streak:
            self.rise_step = None
        return "; ".join(v for v in verdicts if v) or None

    def _check(self, what: str, step: int, value: float, history: deque, factor: float, streak: str,
               from_start: bool) -> str | None:
        if what not in self.first:
            self.first[what] = value
            history.append(value)
            return None
        if len(history) >= self.min_history:
            typical = min(median(history), self.first[what]) if from_start else median(history)
            basis = "its value at the start" if from_start and typical == self.first[what] else "its running median"
        elif from_start:
            typical, basis = self.first[what], "its value at the start"
        else:
            history.append(value)
            return None
        if value > factor * typical:
            if not self.loss_streak and not self.norm_streak:
                self.rise_step = step
            setattr(self, streak, getattr(self, streak) + 1)
        else:
            setattr(self, streak, 0)
            history.append(value)
        if getattr(self, streak) >= self.patience:
            return (f"the {what} diverged: above {factor:g} x {basis} ({typical:.4g}) for "
                    f"{self.patience} steps since step {self.rise_step} (now {value:.4g} at step {step})")
        return None

    def state_dict(self) -> dict:
        return {"losses": list(self.losses), "norms": list(self.norms), "loss_streak": self.loss_streak,
                "norm_streak": self.norm_streak, "rise_step": self.rise_step, "first": self.first}

    def load_state_dict(self, state: dict | None) -> None:
        if not state:
            return
        self.losses.extend(state.get("losses", []))
        self.norms.extend(state.get("norms", []))
        self.loss_streak, self.norm_streak = state.get("loss_streak", 0), state.get("norm_streak", 0)
        self.rise_step = state.get("rise_step")
        self.first = dict(state.get("first", {}))
