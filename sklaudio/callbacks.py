"""skorch callbacks shared by the sklaudio estimators (one concern each)."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

from skorch.callbacks import Callback, Checkpoint

__all__ = ["CosineLR", "EpochProgressBar", "TrainingCheckpoint"]

CHECKPOINT_FILE = "checkpoint.pt"


def is_main_process(net) -> bool:
    """False on the secondary processes of a multi-process accelerator (they stay quiet)."""
    accelerator = getattr(net, "accelerator", None)
    return accelerator is None or accelerator.is_main_process


class CosineLR(Callback):
    """Anneal every optimizer group's learning rate to 0 over ``max_epochs``.

    The rate of epoch ``e`` (counted in ``history_``) is
    ``lr₀ · (1 + cos(π · e / max_epochs)) / 2`` where ``lr₀`` is the group's
    own initial rate (``net.lr``, or the rate given by
    ``optimizer__param_groups``; kept in the group as ``initial_lr`` and saved
    with the optimizer's state), so a fit resumed from a checkpoint continues
    the same schedule. The cycle restarts from ``lr₀`` every ``max_epochs``
    epochs of ``history_`` (a warm restart, as in SGDR), so the epochs that
    ``partial_fit`` or ``fit`` with ``warm_start=True`` add after a complete fit
    train with a new cycle instead of a rate of 0. ``set_params(lr=...)`` on a
    fitted net sets a new ``lr₀`` for the epochs that follow (the groups of
    ``optimizer__param_groups`` keep their ratio to it; a group marked
    ``own_lr``, FineTunedClassifier's ``head_lr``, keeps its rate). ``history_``
    records the first group's rate.
    """

    def on_epoch_begin(self, net, **kwargs):
        done = len(net.history_) - 1  # the current epoch's row already exists
        total = max(int(net.max_epochs), 1)
        factor = 0.5 * (1 + math.cos(math.pi * (done % total) / total))
        net_lr = float(net.lr)
        for group in net.optimizer_.param_groups:
            if "initial_lr" not in group:
                group["initial_lr"], group["net_lr"] = float(group["lr"]), net_lr
            elif group.get("net_lr", net_lr) != net_lr:  # set_params(lr=...) since then
                old = group["net_lr"]
                # every group's lr₀ by the same factor: a group with its own rate (a new
                # layer's, by optimizer__param_groups) keeps its ratio to lr; one whose rate
                # is a parameter of its own (FineTunedClassifier's head_lr) keeps that rate
                if not group.get("own_lr", False):
                    group["initial_lr"] = group["initial_lr"] * net_lr / old if old else net_lr
                group["net_lr"] = net_lr
            group["lr"] = group["initial_lr"] * factor
        net.history_.record("lr", net.optimizer_.param_groups[0]["lr"])


def _planned_epochs(net) -> int:
    """Epochs this training call runs: a resumed fit runs only those left."""
    planned = getattr(net, "_epochs_planned", None)
    if planned is None:
        planned = getattr(net, "n_epochs_", None) or net.max_epochs
    return int(planned)


def _redraws(stream) -> bool:
    """Whether a progress bar redrawn in place reads well on ``stream``: a terminal, or a
    notebook's output (not a file or a pipe, where every redraw stays in the log)."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return type(stream).__module__.startswith("ipykernel")


class EpochProgressBar(Callback):
    """One tqdm bar over epochs, showing the last training loss (and the validation
    accuracy when there is a validation split); only with ``verbose == 1``.

    Within an epoch the bar shows the batches done (redrawn at most twice a second), so a
    slow epoch is seen to progress; an embedder with training phases (AFP) names the phase.
    Written to a file or a pipe (a batch job's log), it prints a plain line instead, about
    twenty times a fit (the first epoch, every 5 %, the last), with the time so far.
    """

    def on_epoch_begin(self, net, **kwargs):
        # (trailing underscores: skorch lists a callback's other attributes as parameters)
        self.batches_, self.drawn_at_ = 0, time.monotonic()
        phase = getattr(net, "_training_phase", None)
        if getattr(self, "bar_", None) is not None and phase is not None:
            self.bar_.set_description(f"{type(net).__name__} ({phase()})", refresh=False)

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training or getattr(self, "bar_", None) is None:
            return
        self.batches_ = getattr(self, "batches_", 0) + 1
        now = time.monotonic()
        if now - getattr(self, "drawn_at_", 0.0) >= 0.5:
            postfix = {"batch": self.batches_}
            loss = net.history_[-1, "batches", -1].get("train_loss")
            if loss is not None:
                postfix["loss"] = f"{loss:.4f}"
            self.bar_.set_postfix(postfix)  # redraws
            self.drawn_at_ = now

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.bar_ = self.lines_ = None
        if net.verbose == 1 and is_main_process(net) and not _redraws(sys.stderr):
            # a log file or a pipe (a batch job): a line now and then, not a redrawn bar
            done = len(net.history_)
            self.lines_ = (done, done + _planned_epochs(net), time.monotonic())
        elif net.verbose == 1 and is_main_process(net):
            from importlib.util import find_spec

            if find_spec("ipywidgets") is not None:
                from tqdm.auto import tqdm  # a widget in a notebook, text elsewhere
            else:  # text everywhere, without tqdm.auto's IProgress warning in a notebook
                from tqdm import tqdm

            done = len(net.history_)
            self.bar_ = tqdm(
                total=done + _planned_epochs(net),
                initial=done,
                desc=type(net).__name__,
                unit="epoch",
                file=sys.stderr,
                leave=True,
            )

    def on_epoch_end(self, net, **kwargs):
        row = net.history_[-1]
        # the training loss, and a validation split's accuracy when there is one
        postfix = {
            label: f"{row[key]:.4f}"
            for key, label in (("train_loss", "loss"), ("valid_acc", "valid_acc"))
            if row.get(key) is not None
        }
        if getattr(self, "bar_", None) is not None:
            if postfix:
                self.bar_.set_postfix(postfix)
            self.bar_.update(1)
        elif getattr(self, "lines_", None) is not None:
            first, total, started = self.lines_
            epoch = len(net.history_)
            # about 20 lines a fit: the first epoch, every 5 %, the last
            if epoch in (first + 1, total) or (20 * epoch) // total != (20 * (epoch - 1)) // total:
                phase = getattr(net, "_training_phase", None)
                name = type(net).__name__ + (f" ({phase()})" if phase is not None else "")
                values = "".join(f", {k}={v}" for k, v in postfix.items())
                elapsed = time.monotonic() - started
                print(
                    f"{name}: epoch {epoch}/{total}{values}, {elapsed:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if getattr(self, "bar_", None) is not None:
            self.bar_.close()
            self.bar_ = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["bar_"] = None
        return state


class TrainingCheckpoint(Checkpoint):
    """Save everything a fit needs to resume, after every epoch, into one file.

    A :class:`skorch.callbacks.Checkpoint` that writes ``dirname/checkpoint.pt``
    holding the module and optimizer state dicts (the memory bank too), the
    history (hence the epoch, the learning-rate schedule and AFP's phase), the
    fitted attributes, the states of every random generator, and a fingerprint
    of the data and parameters. The file is written to a temporary name and
    renamed into place, so a crash mid-write keeps the previous epoch's file.
    The sklaudio estimators add it when ``checkpoint=`` is set and read it
    back at the start of the next ``fit``.

    Parameters
    ----------
    dirname : str or path-like
        Folder of the checkpoint; created when missing.
    """

    def __init__(self, dirname):
        super().__init__(
            monitor=None,
            f_params=None,
            f_optimizer=None,
            f_criterion=None,
            f_history=None,
            dirname=dirname,
            event_name=None,
        )

    def save_model(self, net):
        from sklaudio.persist import atomic_torch_save

        if not is_main_process(net):
            return  # the processes hold the same state; one writes it
        atomic_torch_save(net._training_state(), Path(os.fspath(self.dirname)) / CHECKPOINT_FILE)
