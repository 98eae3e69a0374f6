"""DCS for Hugging Face ``Trainer`` users: :class:`DCSTrainer`, a drop-in ``Trainer``.

Give it the teacher's logits on the training set, computed once (``teacher_logits``: (n, classes),
row ``r`` for the example whose ``row`` column is ``r``), and a training set with that ``row``
column. It then does what :mod:`dcs_lib.methods` does for ``dcs``:

- the first ``plain_epochs`` epochs train on plain cross-entropy, all weights 1;
- every other batch's loss is :func:`dcs_lib.losses.dcs_loss`, the examples weighted by their
  current sample weight;
- at the end of every epoch but the last, the student predicts the whole training set (an
  eval-mode pass through :meth:`Trainer.predict`, each prediction placed by its row id, whatever
  order the eval sampler visits the examples in), and the weights are updated from where it
  disagrees with the teacher by :func:`dcs_lib.weighting.update_weights`.

Several GPUs: under ``accelerate launch`` or ``torchrun`` the ``Trainer`` shards batches and
averages gradients as usual, and :meth:`Trainer.predict` gathers the predictions of every
process, so every process computes the same weights (checked). Each process's loss is
normalised by its own batch's weight sum, as in :mod:`dcs_lib.train`. The weights are saved in
every checkpoint folder (``dcs_weights.safetensors``) and restored by
``train(resume_from_checkpoint=...)``. Needs ``accelerate`` (``pip install -e ".[hf]"``).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from . import distributed, losses, weighting
from .errors import DCSError

WEIGHTS_FILE = "dcs_weights.safetensors"


class DCSTrainer(Trainer):
    """A ``Trainer`` whose loss is the DCS loss and whose sample weights follow the student's mistakes.

    ``teacher_logits``: (n, classes) float, or (n,) / (n, 1) scores for regression. The training
    set needs a ``row_column`` (default ``"row"``) holding 0..n-1 in any order; it is kept through
    ``remove_unused_columns`` and never reaches the model. The other keywords are the options of
    :class:`dcs_lib.methods.RunConfig`, with the same defaults. Per-update statistics
    (:func:`dcs_lib.weighting.weight_stats`) collect in ``weight_history`` and are logged.
    """

    def __init__(
        self,
        *args,
        teacher_logits: torch.Tensor,
        row_column: str = "row",
        alpha: float = 0.5,
        temperature: float = 2.0,
        lam: float = 1.0,
        step: str = "fixed",
        accumulate: bool = True,
        clip_min: float = 0.1,
        clip_max: float = 10.0,
        plain_epochs: int = 1,
        regression: bool = False,
        delta: float = 0.5,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.teacher_logits = torch.as_tensor(teacher_logits).float().cpu()
        self.row_column = row_column
        self.alpha, self.temperature, self.regression, self.delta = alpha, temperature, regression, delta
        self.update_options = dict(lam=lam, step=step, accumulate=accumulate, clip_min=clip_min, clip_max=clip_max)
        self.plain_epochs = plain_epochs
        self.sample_weights = torch.ones(len(self.teacher_logits))
        self.weight_history: list[dict] = []
        self.epoch = 1  # 1-based, as in dcs_lib; set at every epoch's start
        self._on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._rows_as_labels = False  # True during student_logits's prediction pass
        # compute_loss returns a per-batch mean: the Trainer divides it by the accumulation steps
        self.loss_is_scaled_for_ga = False
        self.model_accepts_loss_kwargs = False
        if self.train_dataset is not None:
            self._check_rows(self.train_dataset)
        self.add_callback(_DCSCallback(self))

    # ------------------------------------------------------------ data

    def _check_rows(self, dataset) -> None:
        if self.row_column not in getattr(dataset, "column_names", []):
            raise DCSError(
                f"the training set has no {self.row_column!r} column: add one with "
                f'dataset.add_column("{self.row_column}", list(range(len(dataset)))), and compute the '
                "teacher logits in that order"
            )
        rows = np.asarray(dataset[self.row_column])
        n = len(self.teacher_logits)
        if len(rows) != n or not np.array_equal(np.sort(rows), np.arange(n)):
            raise DCSError(
                f"the {self.row_column!r} column must hold 0..{n - 1} once each, one per teacher logit "
                f"({n} teacher logits, {len(rows)} training examples)"
            )

    def _set_signature_columns_if_needed(self) -> None:
        # Keep the row column through remove_unused_columns; compute_loss takes it out before the model.
        super()._set_signature_columns_if_needed()
        if self.row_column not in self._signature_columns:
            self._signature_columns.append(self.row_column)

    # ------------------------------------------------------------ the loss

    def _tensors_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = str(device)
        if key not in self._on_device:
            self._on_device = {key: (self.teacher_logits.to(device), self.sample_weights.to(device))}
        return self._on_device[key]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Plain CE in the plain epochs and in evaluation; else the weighted DCS loss of the batch."""
        inputs = dict(inputs)
        rows = inputs.pop(self.row_column, None)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs["logits"].float()
        if model.training and rows is not None and self.epoch > self.plain_epochs:
            teacher, weights = self._tensors_on(logits.device)
            loss = losses.dcs_loss(
                logits, labels, teacher[rows], weights[rows], self.alpha, self.temperature, self.regression
            )
        else:
            loss = losses.weighted_mean(losses.supervised(logits, labels, self.regression))
        return (loss, outputs) if return_outputs else loss

    # ------------------------------------------------------------ the weight update

    def student_logits(self) -> torch.Tensor:
        """Eval-mode student outputs on the training set, (n, classes), row r for ``row == r``.

        :meth:`Trainer.predict` may visit the examples in any order (``group_by_length`` makes the eval
        sampler length-grouped and shuffled), so every prediction comes back with its row id (in the
        place of the labels) and is put in its row by that id; ``dataloader_drop_last`` is off for
        this pass, and a missing row raises.
        """
        saved = (self.compute_metrics, self.preprocess_logits_for_metrics, self.args.dataloader_drop_last)
        # the metric hooks would receive row ids as labels, and drop_last would lose the last rows
        self.compute_metrics, self.preprocess_logits_for_metrics, self.args.dataloader_drop_last = None, None, False
        self._rows_as_labels = True
        try:
            output = self.predict(self.train_dataset, metric_key_prefix="dcs_train")
        finally:
            self.compute_metrics, self.preprocess_logits_for_metrics, self.args.dataloader_drop_last = saved
            self._rows_as_labels = False
        predictions = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        n = len(self.teacher_logits)
        if predictions is None or output.label_ids is None:
            raise DCSError("the prediction pass over the training set returned no predictions or no row ids")
        rows = torch.as_tensor(np.asarray(output.label_ids)).long().reshape(-1)
        predictions = torch.as_tensor(np.asarray(predictions)).float().reshape(len(rows), -1)
        seen = torch.zeros(n, dtype=torch.bool)
        seen[rows[(rows >= 0) & (rows < n)]] = True
        if len(rows) != n or not seen.all():
            missing = (~seen).nonzero().flatten().tolist()
            raise DCSError(
                f"the prediction pass over the training set returned {len(rows)} predictions for {n} rows; "
                f"no prediction for {self.row_column!r} {missing[:10]}{' ...' if len(missing) > 10 else ''}"
            )
        by_row = torch.zeros_like(predictions)
        by_row[rows] = predictions
        return by_row

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Trainer.prediction_step; in :meth:`student_logits`'s pass the row ids take the labels' place."""
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
        if self._rows_as_labels:
            labels = self._prepare_input(inputs[self.row_column])  # on the device, to be gathered like the logits
        return loss, logits, labels

    def update_weights(self) -> dict:
        """One DCS update from the student's current predictions; returns its statistics."""
        student = self.student_logits()
        disagree = weighting.disagreement(student, self.teacher_logits, regression=self.regression, delta=self.delta)
        new = weighting.update_weights(self.sample_weights, disagree, **self.update_options)
        distributed.check_identical(new, "DCS sample weights")
        self.sample_weights, self._on_device = new, {}
        stats = {"epoch": self.epoch, **weighting.weight_stats(new, disagree)}
        self.weight_history.append(stats)
        return stats

    # ------------------------------------------------------------ checkpoints

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        path = resume_from_checkpoint
        if path is True:
            path = get_last_checkpoint(self.args.output_dir)
        if isinstance(path, str) and os.path.isfile(os.path.join(path, WEIGHTS_FILE)):
            self.sample_weights, self._on_device = load_file(os.path.join(path, WEIGHTS_FILE))["weights"], {}
        return super().train(resume_from_checkpoint, *args, **kwargs)


class _DCSCallback(TrainerCallback):
    """Tells the trainer which epoch runs, updates the weights at epoch ends, saves them with checkpoints."""

    def __init__(self, trainer: DCSTrainer):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.trainer.epoch = math.floor(state.epoch + 1e-9) + 1  # state.epoch: epochs done so far (a float)

    def on_epoch_end(self, args, state, control, **kwargs):
        epoch = self.trainer.epoch
        if self.trainer.plain_epochs <= epoch < state.num_train_epochs:  # no one trains on a last update
            stats = self.trainer.update_weights()
            self.trainer.log({f"dcs_weights_{k}": v for k, v in stats.items() if k != "epoch"})

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            if os.path.isdir(folder):
                save_file({"weights": self.trainer.sample_weights.contiguous()}, os.path.join(folder, WEIGHTS_FILE))
