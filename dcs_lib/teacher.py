"""The teacher: which one, how it is trained, and the cache of its training-set logits.

A KD or DCS student only ever needs the teacher's logits on the training set,
(n_train, classes). They are computed once per teacher and kept in memory and, as
safetensors, on disk, under a key (:func:`teacher_key`) that names everything they
depend on. Three kinds of teacher are one option away:

- the paper's reading (the default): the student's checkpoint fine-tuned with plain
  CE for ``teacher_epochs`` epochs, from the student's own seed;
- a *peer*: the same, from another seed (``teacher_seed``) and trained as long as the
  student (``teacher_epochs = epochs``). That is exactly a vanilla run of that seed, so
  a vanilla run leaves its final training-set logits in the cache under this key
  (:func:`save_vanilla_as_teacher`) and a peer teacher costs nothing more;
- *out-of-fold* (``teacher_folds = K >= 2``): K teachers, each trained on the other
  K - 1 folds of the training set, so every example's logits come from a model that
  never saw it. On its own training examples a converged teacher is nearly one-hot
  and agrees with the labels, so "disagreement" there measures memorisation; held-out
  logits do not have that problem.

``teacher_model`` swaps in another checkpoint (another size or architecture; it gets
the training set tokenised by its own tokenizer, row for row the same examples).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from . import distributed
from .models import load_model, load_tokenizer, resolve
from .tasks import Task
from .train import Supervised, amp_dtype, fit, make_loader, pick_device, predict, scores, seed_everything

_CACHE: dict[str, tuple[torch.Tensor, dict]] = {}

# Settings of the run that a teacher's logits depend on, besides those resolved in teacher_key.
TEACHER_FIELDS = (
    "task",
    "n_train",
    "holdout",
    "max_length",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_ratio",
    "grad_accum",
    "max_grad_norm",
    "group_by_length",
)


def teacher_seed(cfg) -> int:
    return cfg.seed if cfg.teacher_seed is None else cfg.teacher_seed


def teacher_model(cfg) -> str:
    return cfg.model if cfg.teacher_model is None else cfg.teacher_model


def teacher_config(cfg):
    """The vanilla run that trains the teacher of ``cfg``: its seed, model and epochs (``teacher_epochs``, maybe 0)."""
    return dataclasses.replace(
        cfg,
        method="vanilla",
        seed=teacher_seed(cfg),
        model=teacher_model(cfg),
        epochs=cfg.teacher_epochs,
        data_seed=cfg.seed if cfg.data_seed is None else cfg.data_seed,  # the student's training subset
    )


def precision(device: torch.device, amp: str) -> str:
    """'float32', 'bfloat16' or 'float16': what the forward passes run in."""
    dtype = amp_dtype(device, amp)
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def fingerprint(train_set) -> str:
    """A hash of the tokenised training set (token ids and labels, in row order)."""
    digest = hashlib.sha256()
    for ids in train_set["input_ids"]:
        digest.update(np.asarray(ids, dtype=np.int64).tobytes())
        digest.update(b"|")
    digest.update(np.asarray(train_set["label"], dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


def teacher_key(cfg, train_set) -> str:
    """Everything a teacher's training-set logits depend on, hashed: the cache file's name.

    The optimisation settings, the teacher's own seed, model, epochs and folds, the
    device type and precision, and a fingerprint of the tokenised training set itself
    (which stands for the data files, the subset and the tokenizer), so that logits
    computed from other data, on another kind of device or in another precision are
    never reused.
    """
    device = pick_device(cfg.device)
    described = {name: getattr(cfg, name) for name in TEACHER_FIELDS}
    described.update(
        task=cfg.task.lower(),
        teacher_seed=teacher_seed(cfg),
        teacher_model=resolve(teacher_model(cfg)),
        teacher_epochs=cfg.teacher_epochs,
        teacher_folds=cfg.teacher_folds,
        device_type=device.type,
        precision=precision(device, cfg.amp),
        rows=len(train_set),
        data=fingerprint(train_set),
    )
    if cfg.fused_adamw:  # only when set, so that the keys of existing caches stay what they were
        described["fused_adamw"] = True
    if cfg.n_dev is not None:  # the record's dev score is on this dev subset (methods.prepare_data draws it)
        described["dev_subset"] = [cfg.n_dev, cfg.seed if cfg.data_seed is None else cfg.data_seed]
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def _eval_sets(task: Task, data) -> dict:
    return {split: data[split] for split in task.eval_splits if split in data}


def _train_logits(model, train_set, cfg, pad_token_id: int, n: int) -> torch.Tensor:
    """Eval-mode logits (n, classes) in float32 for the rows of ``train_set``; other rows stay 0."""
    device = pick_device(cfg.device)
    world = distributed.world()
    loader = make_loader(
        train_set,
        cfg.train_config().eval_batch_size,
        pad_token_id,
        device,
        shuffle=False,
        num_replicas=world.size,
        rank=world.rank,
    )
    return predict(model.to(device), loader, device, n)


def _train_one(tcfg, task: Task, train_set, eval_sets, pad_token_id: int, progress, desc: str):
    """Seed, load and fine-tune one teacher with plain CE -> (model, per-epoch history)."""
    seed_everything(tcfg.seed)
    model = load_model(tcfg.model, task)
    history = []
    if tcfg.epochs > 0:
        train_cfg = tcfg.train_config(progress=progress)
        history = fit(model, train_set, eval_sets, task, Supervised(task), train_cfg, pad_token_id, desc=desc)
    return model, history


def folds_of(n: int, k: int, seed: int) -> np.ndarray:
    """The fold (0 .. k-1) of each of ``n`` rows: a seeded permutation dealt out in turn."""
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return fold


def _mean_scores(dicts: list[dict]) -> dict:
    return {key: float(np.mean([d[key] for d in dicts])) for key in dicts[0]}


def teacher_logits(cfg, task: Task, data, tokenizer, cache_dir="runs/cache", progress=None):
    """Teacher logits on the training set, (n_train, classes), and the teacher's record.

    The record names the teacher (model, seed, epochs, folds) and gives its dev score
    (``final``; for out-of-fold teachers the mean over the folds' teachers) and its
    score on the training set (``train``: for out-of-fold teachers, on held-out rows).
    """
    if resolve(teacher_model(cfg)) != resolve(cfg.model):
        from .methods import prepare_data  # the same rows, tokenised for the teacher

        tokenizer = load_tokenizer(teacher_model(cfg))
        data = prepare_data(teacher_config(cfg), task, tokenizer)
    train_set = data["train"]
    key = teacher_key(cfg, train_set)
    if key in _CACHE:
        logits, record = _CACHE[key]
        return logits, {**record, "cached": True}  # the record kept in memory says how it was first made
    path = Path(cache_dir) / f"teacher-{task.name}-{key}.safetensors" if cache_dir else None
    if path is not None and path.is_file():
        tensors = load_file(path)
        with safe_open(path, "pt") as f:
            record = json.loads(f.metadata()["record"])
        record["cached"] = True
        _CACHE[key] = (tensors["logits"], record)
        return tensors["logits"], dict(record)  # a copy: what the caller adds stays out of the cache

    start = time.perf_counter()
    tcfg = teacher_config(cfg)
    n, pad = len(train_set), tokenizer.pad_token_id
    eval_sets = _eval_sets(task, data)
    describe = {"model": teacher_model(cfg), "seed": tcfg.seed, "epochs": cfg.teacher_epochs, "folds": cfg.teacher_folds}
    tensors = {}
    if cfg.teacher_folds <= 1:
        model, history = _train_one(tcfg, task, train_set, eval_sets, pad, progress, "teacher")
        logits = _train_logits(model, train_set, tcfg, pad, n)
        record = {"history": history, "final": history[-1]["dev"] if history else None}
        del model
    else:
        fold = folds_of(n, cfg.teacher_folds, tcfg.seed)
        logits = torch.zeros(n, task.num_labels)
        folds = []
        for k in range(cfg.teacher_folds):
            held = np.flatnonzero(fold == k)
            model, history = _train_one(
                tcfg, task, train_set.select(np.flatnonzero(fold != k)), eval_sets, pad, progress, f"teacher fold {k + 1}"
            )
            logits[held] = _train_logits(model, train_set.select(held), tcfg, pad, n)[held]
            folds.append({"fold": k, "n_train": int(n - len(held)), "dev": history[-1]["dev"] if history else None})
            del model
        tensors["fold"] = torch.from_numpy(fold)
        record = {
            "fold_runs": folds,
            "final": _mean_scores([f["dev"] for f in folds]) if folds[0]["dev"] else None,
            "source": f"out-of-fold: row i's logits come from the teacher that did not train on fold i "
            f"(folds: seeded permutation, seed {tcfg.seed}, dealt out in turn; per-row fold in the cache)",
        }
    record.update(describe, train=scores(task, logits, train_set["label"]), wall_s=time.perf_counter() - start)
    record["cached"] = False
    _store(key, path, logits, record, tensors)
    return logits, dict(record)


def _store(key: str, path: Path | None, logits: torch.Tensor, record: dict, extra: dict | None = None) -> None:
    _CACHE[key] = (logits, record)
    if path is not None and distributed.world().is_main:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name no other writer uses (as experiments.append_record does): grid shards share a cache folder
        # and may write the same teacher at once.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(tmp)
        try:
            save_file({"logits": logits.contiguous(), **(extra or {})}, tmp, metadata={"record": json.dumps(record)})
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def save_vanilla_as_teacher(cfg, task: Task, model, train_set, history, pad_token_id: int, cache_dir, wall_s: float):
    """Leave a finished vanilla run's training-set logits in the cache as the teacher it is.

    A vanilla run of seed s for E epochs trains exactly the teacher with
    ``teacher_seed = s, teacher_epochs = E`` (same data, same steps), so a KD or DCS run
    that asks for that peer teacher finds its logits here instead of training it again.
    """
    if cache_dir is None:
        return
    as_teacher = dataclasses.replace(
        cfg, teacher_seed=cfg.seed, teacher_epochs=cfg.epochs, teacher_model=None, teacher_folds=1
    )
    key = teacher_key(as_teacher, train_set)
    path = Path(cache_dir) / f"teacher-{task.name}-{key}.safetensors"
    if key in _CACHE or path.is_file():
        return
    logits = _train_logits(model, train_set, cfg, pad_token_id, len(train_set))
    record = {
        "history": history,
        "final": history[-1]["dev"],
        "model": cfg.model,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "folds": 1,
        "train": scores(task, logits, train_set["label"]),
        "wall_s": wall_s,
        "cached": False,
        "from_vanilla_run": True,
    }
    _store(key, path, logits, record)
