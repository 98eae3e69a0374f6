"""The four training methods and :func:`run`, which trains one of them end to end.

- ``vanilla``: cross-entropy on the labels.
- ``kd``: a fixed teacher, ``alpha * CE + (1 - alpha) * T^2 * KL``, uniform weights.
- ``reweight``: AdaBoost-style weights from the student's mistakes against the gold
  label; no teacher. The baseline that asks: is the teacher needed at all?
- ``dcs``: the teacher's soft labels *and* weights raised where student and teacher
  disagree.

The teacher (:mod:`dcs_lib.teacher`) is by default the same pretrained checkpoint
fine-tuned with plain CE for ``teacher_epochs`` epochs from the student's seed; a
peer (another seed), out-of-fold and other-model teachers are options. Its logits on
the training set are computed once and cached, in memory and on disk; the student's
loop only indexes them by ``row``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import distributed, losses, weighting
from .checkpoint import Checkpointer
from .data import load_task, subsample, tokenize
from .errors import DCSError
from .models import DEFAULT_MODEL, load_model, load_tokenizer
from .tasks import Task, get_task
from .teacher import precision, save_vanilla_as_teacher, teacher_logits
from .train import Supervised, TrainConfig, fit, pick_device, seed_everything  # noqa: F401 (Supervised: re-exported)

METHODS = ("vanilla", "kd", "reweight", "dcs")
DISAGREEMENT_SOURCES = ("eval", "train")


@dataclass
class RunConfig:
    """Everything that defines one run. Defaults are the package's reading of the paper."""

    task: str = "rte"
    method: str = "dcs"
    model: str = DEFAULT_MODEL
    seed: int = 42
    # data
    data_dir: str | None = None
    n_train: int | None = None  # seeded training subset (None: all)
    n_dev: int | None = None  # seeded dev subset, for quick checks (None: all)
    holdout: int | None = None  # carve N training examples out as the dev set, to tune without seeing dev
    data_seed: int | None = None  # subset seed (None: same as seed)
    max_length: int = 128
    # optimisation, student and teacher alike
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    group_by_length: bool = True
    amp: str = "auto"
    compile: bool = False
    fused_adamw: bool = False  # one fused AdamW kernel: faster, rounds differently (see TrainConfig)
    device: str | None = None  # None: cuda -> mps -> cpu
    # teacher
    teacher_epochs: int = 2
    teacher_seed: int | None = None  # None: the student's seed (the paper's reading)
    teacher_model: str | None = None  # None: the student's model
    teacher_folds: int = 1  # K >= 2: out-of-fold teacher logits from K teachers
    # distillation (kd, dcs)
    alpha: float = 0.5  # weight of CE on the labels; 1 - alpha goes to the teacher
    temperature: float = 2.0
    # reweighting (reweight, dcs)
    lam: float = 1.0
    step: str = "fixed"  # "fixed" or "adaboost"
    accumulate: bool = True
    clip_min: float = 0.1
    clip_max: float = 10.0
    weight_norm: str = "batch"  # "batch": a batch's loss divided by its weight sum; "mean": by its size
    disagreement_source: str = "eval"  # "eval": extra eval-mode pass; "train": the epoch's own logits
    delta: float = 0.5  # regression: disagreement when |student - teacher| > delta
    plain_epochs: int | None = None  # plain-CE epochs before weighting (None: 1 for dcs and reweight, 0 for kd)

    def validate(self) -> Task:
        """Check every value; return the task. Raises DCSError naming the bad value.

        A dcs or reweight run too short to ever train on updated weights is an error when
        ``plain_epochs`` is set, and a warning with the default plain epoch (``--epochs 1``
        is a quick check).
        """
        task = get_task(self.task)
        checks = [
            (self.method in METHODS, f"unknown method {self.method!r}; choose one of {METHODS}"),
            (self.lam >= 0, f"lambda must be >= 0, got {self.lam}"),
            (0 <= self.alpha <= 1, f"alpha must be in [0, 1], got {self.alpha}"),
            (self.temperature > 0, f"temperature T must be > 0, got {self.temperature}"),
            (self.step in weighting.STEPS, f"unknown step rule {self.step!r}; choose one of {weighting.STEPS}"),
            (
                self.weight_norm in losses.WEIGHT_NORMS,
                f"unknown weight normalisation {self.weight_norm!r}; choose one of {losses.WEIGHT_NORMS}",
            ),
            (
                self.disagreement_source in DISAGREEMENT_SOURCES,
                f"unknown disagreement source {self.disagreement_source!r}; choose one of {DISAGREEMENT_SOURCES}",
            ),
            (
                0 < self.clip_min <= 1 <= self.clip_max,
                f"clip range [{self.clip_min}, {self.clip_max}] must contain 1 and be > 0",
            ),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.teacher_epochs >= 0, f"teacher epochs must be >= 0, got {self.teacher_epochs}"),
            (self.teacher_folds >= 1, f"teacher folds must be >= 1 (1: no folds), got {self.teacher_folds}"),
            (
                self.teacher_folds == 1 or self.teacher_epochs > 0,
                "an out-of-fold teacher (--teacher-folds >= 2) needs --teacher-epochs >= 1",
            ),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (self.grad_accum >= 1, f"gradient accumulation must be >= 1, got {self.grad_accum}"),
            (0 <= self.warmup_ratio <= 1, f"warm-up ratio must be in [0, 1], got {self.warmup_ratio}"),
            (self.delta > 0, f"delta (regression disagreement threshold) must be > 0, got {self.delta}"),
            (self.plain >= 0, f"plain epochs must be >= 0, got {self.plain_epochs}"),
        ]
        for ok, message in checks:
            if not ok:
                raise DCSError(message)
        if self.method in ("reweight", "dcs") and max(self.plain, 1) >= self.epochs:
            message = (
                f"{self.method} with {self.plain} plain epoch(s) first trains on updated weights in epoch "
                f"{max(self.plain, 1) + 1}, but epochs is {self.epochs}: it would never reweight"
            )
            if self.plain_epochs is not None:  # asked for: an error
                raise DCSError(f"{message}; raise --epochs or lower --plain-epochs")
            warnings.warn(f"{message}; use --epochs {max(self.plain, 1) + 1} or more", stacklevel=2)
        return task

    @property
    def plain(self) -> int:
        """Epochs of plain CE first: ``plain_epochs``, or by default 1 for dcs and reweight, 0 for kd.

        Weights are updated at the end of every epoch from epoch max(plain, 1) on but the last,
        so dcs and reweight train on updated weights from epoch max(plain, 1) + 1 on.
        """
        if self.plain_epochs is not None:
            return self.plain_epochs
        return 0 if self.method == "kd" else 1

    @property
    def uses_teacher(self) -> bool:
        return self.method in ("kd", "dcs")

    def train_config(self, epochs: int | None = None, progress: bool | None = None) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        return TrainConfig(**{**values, "epochs": self.epochs if epochs is None else epochs, "progress": progress})


# ---------------------------------------------------------------- objectives


class Weighted:
    """KD, reweighting and DCS: one objective, three settings.

    ``teacher_logits`` (n, classes) on the training set, or None for ``reweight``
    (then the disagreement is with the gold labels, and the loss is weighted CE).
    ``lam = 0`` keeps the weights uniform: DCS then equals KD after its plain epochs, i.e.
    ``kd`` with the same ``plain_epochs`` (with the defaults, ``kd --plain-epochs 1``, not plain
    ``kd``, whose default is 0).
    """

    def __init__(
        self,
        task: Task,
        cfg: RunConfig,
        labels: torch.Tensor,
        teacher_logits: torch.Tensor | None,
        device: torch.device,
    ):
        self.task, self.cfg, self.regression = task, cfg, task.is_regression
        self.labels = labels
        self.teacher = teacher_logits.to(device) if teacher_logits is not None else None
        self.weights = torch.ones(len(labels), device=device)
        self.plain_epochs = cfg.plain
        self.reweighting = cfg.method in ("reweight", "dcs")
        self.needs_train_logits = self.reweighting and cfg.disagreement_source == "train"

    def loss(self, logits, batch, epoch):
        if epoch <= self.plain_epochs:
            return losses.weighted_mean(losses.supervised(logits, batch["labels"], self.regression))
        weights = self.weights[batch["rows"]]
        if self.teacher is None:
            return losses.weighted_mean(
                losses.supervised(logits, batch["labels"], self.regression), weights, self.cfg.weight_norm
            )
        return losses.dcs_loss(
            logits,
            batch["labels"],
            self.teacher[batch["rows"]],
            weights,
            self.cfg.alpha,
            self.cfg.temperature,
            self.regression,
            self.cfg.weight_norm,
        )

    def end_epoch(self, epoch, train_logits, predict_train):
        if not self.reweighting:
            return None
        if epoch < self.plain_epochs or epoch == self.cfg.epochs:
            return weighting.weight_stats(self.weights.cpu())  # no one trains on an update after the last epoch
        student = train_logits if self.cfg.disagreement_source == "train" else predict_train()
        reference = self.teacher.cpu() if self.teacher is not None else self.labels
        disagree = weighting.disagreement(student, reference, regression=self.regression, delta=self.cfg.delta)
        new = weighting.update_weights(
            self.weights.cpu(),
            disagree,
            lam=self.cfg.lam,
            step=self.cfg.step,
            accumulate=self.cfg.accumulate,
            clip_min=self.cfg.clip_min,
            clip_max=self.cfg.clip_max,
        )
        distributed.check_identical(new, "DCS sample weights")
        self.weights = new.to(self.weights.device)
        return weighting.weight_stats(new, disagree)

    def state(self):
        return {"weights": self.weights}

    def load_state(self, tensors):
        self.weights = tensors["weights"].to(self.weights.device)


# ---------------------------------------------------------------- one run


def _eval_sets(task: Task, data) -> dict:
    return {split: data[split] for split in task.eval_splits if split in data}


def prepare_data(cfg: RunConfig, task: Task, tokenizer):
    """Load, subsample and tokenise the task's splits for ``cfg``."""
    raw = load_task(task, cfg.data_dir)
    seed = cfg.seed if cfg.data_seed is None else cfg.data_seed
    if cfg.holdout:
        raw = carve_holdout(raw, task, cfg.holdout)
    raw["train"] = subsample(raw["train"], cfg.n_train, seed, "training set")
    for split in _eval_sets(task, raw):
        raw[split] = subsample(raw[split], cfg.n_dev, seed, f"{split} set")
    return {split: tokenize(ds, tokenizer, task, cfg.max_length) for split, ds in raw.items()}


def carve_holdout(raw, task: Task, n: int, seed: int = 0):
    """Replace the dev set by ``n`` training examples (the same ones for every run seed).

    Hyper-parameters chosen on this split never saw the real dev set.
    """
    train = raw["train"]
    if not 0 < n < len(train):
        raise DCSError(f"holdout must be between 1 and {len(train) - 1} (the training set's size - 1), got {n}")
    order = np.random.default_rng(seed).permutation(len(train))
    held, kept = np.sort(order[:n]), np.sort(order[n:])
    return {"train": train.select(kept), task.eval_splits[0]: train.select(held)}


def versions() -> dict[str, str]:
    import datasets
    import transformers

    from . import __version__

    return {
        "dcs_lib": __version__,
        "commit": _commit(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "python": platform.python_version(),
    }


def _commit() -> str | None:
    """The git commit of the library's checkout, when it is one (None for an installed copy)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def best_epoch(history: list[dict], task: Task) -> dict:
    return max(history, key=lambda record: record["dev"][task.primary])


# Settings that do not change a run's numbers, left out of its identity.
NOT_IDENTITY = ("data_dir", "device")
# Settings added after records existed: left out at their default, so older run ids keep their meaning.
LATER_SETTINGS = {
    "teacher_seed": None,
    "teacher_model": None,
    "teacher_folds": 1,
    "fused_adamw": False,
    "weight_norm": "batch",
}


def run_id(cfg: RunConfig) -> str:
    """A short hash of every setting that changes a run's numbers."""
    described = {
        k: v
        for k, v in dataclasses.asdict(cfg).items()
        if k not in NOT_IDENTITY and not (k in LATER_SETTINGS and v == LATER_SETTINGS[k])
    }
    described["task"] = cfg.task.lower()
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def run(
    cfg: RunConfig,
    *,
    progress: bool | None = None,
    cache_dir: str | Path | None = "runs/cache",
    data=None,
    tokenizer=None,
    on_epoch=None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> dict:
    """Train ``cfg.method`` on ``cfg.task`` and return the run's record (a JSON-ready dict).

    ``data`` and ``tokenizer`` may be passed in to reuse them across runs of the
    same task and model (a grid does). With ``checkpoint_dir`` the student is saved
    after every epoch; with ``resume`` too, the run continues from the newest
    checkpoint there (the teacher comes back from the logits cache), and the record
    says after which epoch in ``resumed_after_epoch``: its ``wall_s`` counts this
    process only, while every epoch's ``time_s`` is kept.
    """
    task = cfg.validate()
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = Checkpointer(
            checkpoint_dir, {"run_id": run_id(cfg), "task": task.name, "model": cfg.model, "method": cfg.method}
        )
        if not resume and checkpoint.latest() is not None:
            raise DCSError(
                f"{checkpoint_dir} already holds a checkpoint ({checkpoint.latest().name}); "
                "add --resume to continue that run, or choose another --checkpoint-dir"
            )
    latest = checkpoint.latest() if checkpoint is not None and resume else None
    world = distributed.setup()
    start = time.perf_counter()
    tokenizer = tokenizer or load_tokenizer(cfg.model)
    data = data or prepare_data(cfg, task, tokenizer)
    device = pick_device(cfg.device)

    teacher, teacher_record = None, None
    if cfg.uses_teacher:
        teacher, teacher_record = teacher_logits(cfg, task, data, tokenizer, cache_dir, progress)

    seed_everything(cfg.seed)
    model = load_model(cfg.model, task)
    labels = torch.tensor(data["train"]["label"])
    objective = Supervised(task) if cfg.method == "vanilla" else Weighted(task, cfg, labels, teacher, device)
    history = fit(
        model,
        data["train"],
        _eval_sets(task, data),
        task,
        objective,
        cfg.train_config(progress=progress),
        tokenizer.pad_token_id,
        desc=cfg.method,
        on_epoch=on_epoch,
        checkpoint=checkpoint,
        resume=resume,
    )
    if cfg.method == "vanilla":  # it is also the peer teacher of its seed: cache its logits for kd and dcs
        save_vanilla_as_teacher(
            cfg, task, model, data["train"], history, tokenizer.pad_token_id, cache_dir, time.perf_counter() - start
        )
    record = {
        "task": task.name,
        "method": cfg.method,
        "seed": cfg.seed,
        "config": dataclasses.asdict(cfg),
        "metric": task.primary,
        "n_train": len(data["train"]),
        "n_dev": len(data[task.eval_splits[0]]),
        "epochs": history,
        "best": {"epoch": (b := best_epoch(history, task))["epoch"], **b["dev"]},
        "final": {"epoch": history[-1]["epoch"], **history[-1]["dev"]},
        "teacher": teacher_record and {k: v for k, v in teacher_record.items() if k != "history"},
        "wall_s": time.perf_counter() - start,
        "device": describe_device(device),
        "precision": precision(device, cfg.amp),
        "world_size": world.size,
        "versions": versions(),
    }
    if latest is not None:
        record["resumed_after_epoch"] = int(latest.name.removeprefix("epoch-"))
    return record


def describe_device(device: torch.device) -> str:
    """Where a run trains, as its record says: 'cpu', 'cuda (NVIDIA H200)', 'cpu x2 (DDP)'."""
    name = f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else device.type
    world = distributed.world()
    return name + (f" x{world.size} (DDP)" if world.enabled else "")
