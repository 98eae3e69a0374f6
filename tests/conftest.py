"""Shared fixtures: the real GLUE folder, a tiny randomly initialised BERT, and synthetic GLUE files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def glue_dir() -> Path | None:
    from dcs_lib.data import resolve_data_dir

    given = os.environ.get("DCS_GLUE_DIR")
    if not given:
        return None
    candidate = resolve_data_dir(given)
    return candidate if (candidate / "RTE" / "train.tsv").is_file() else None


@pytest.fixture(autouse=True)
def no_teacher_in_memory():
    """Each test starts with an empty in-memory teacher cache, so no outcome depends on which tests ran first."""
    teacher = sys.modules.get("dcs_lib.teacher")  # tests that never load it do not pay for importing it
    if teacher is not None:
        teacher._CACHE.clear()


@pytest.fixture(scope="session")
def glue() -> Path:
    path = glue_dir()
    if path is None:
        pytest.skip("real GLUE files not found: set DCS_GLUE_DIR to a glue_data folder")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A 2-layer, 32-wide BERT with the bundled model's tokenizer: trains in a fraction of a second."""
    from transformers import BertConfig, BertForSequenceClassification

    from dcs_lib.models import load_tokenizer

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = load_tokenizer(None)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    import torch

    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture
def tiny(tiny_model, glue):
    """A quick run on 48 real RTE examples with the tiny model."""
    from dcs_lib.methods import RunConfig

    return RunConfig(
        task="rte",
        model=tiny_model,
        data_dir=str(glue),
        n_train=48,
        n_dev=32,
        epochs=3,
        teacher_epochs=1,
        batch_size=8,
        lr=1e-3,
        seed=5,
    )


def write_tsv(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path
