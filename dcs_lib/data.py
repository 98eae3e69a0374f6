"""From GLUE files (or the hub) to padded batches.

The path of one example: a TSV row (:func:`read_glue_tsv`) becomes a row of a
``datasets.Dataset`` with the hub's column names (:func:`load_task`), is tokenised
once (:func:`tokenize`), keeps its position in the training set in the column
``row`` (so sample weights and cached teacher logits, both indexed by ``row``,
line up), and is padded only as far as the longest example in its batch
(:class:`PadCollator`). :class:`LengthBatchSampler` optionally groups examples of
similar length so that padding is rare.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .errors import DCSError
from .tasks import Task

GLUE_DIR_ENV = "DCS_GLUE_DIR"
HUB_DATASET = "nyu-mll/glue"


def project_root() -> Path | None:
    """The folder holding this project's ``pyproject.toml`` when ``dcs_lib`` runs from a checkout, else None."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def resolve_data_dir(data_dir: str | Path) -> Path:
    """Where a ``--data-dir`` or ``$DCS_GLUE_DIR`` points, from wherever the code runs.

    An absolute path is taken as it is. A relative one is taken from the current folder
    if it exists there, else from the project root, so that ``DCS_GLUE_DIR=../glue`` means
    the same folder for the command line and ``make`` at the project root and for a
    notebook kernel, which runs in ``notebooks/``. When it exists in neither, the path
    from the current folder is returned and the caller reports it missing.
    """
    path = Path(data_dir).expanduser()
    if path.is_absolute() or path.exists():
        return path
    root = project_root()
    if root is not None and (root / path).exists():
        return root / path
    return path


def _where_looked(data_dir: str | Path) -> str:
    path = Path(data_dir).expanduser()
    if path.is_absolute():
        return "an absolute path"
    places = [Path.cwd()] + ([project_root()] if project_root() not in (None, Path.cwd()) else [])
    return "looked in " + " and ".join(str(place) for place in places)


def features_for(task: Task) -> Features:
    """The column types the hub's ``glue`` dataset uses for ``task``."""
    label = Value("float32") if task.is_regression else ClassLabel(names=list(task.label_names))
    return Features({**{c: Value("string") for c in task.text_columns}, "label": label, "idx": Value("int32")})


def _layout_hint(task: Task, root: Path | str) -> str:
    files = ", ".join(f"{root}/{task.glue_dir}/{name}" for name in task.files.values())
    return f"expected the glue_data layout: {files}"


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # MRPC's header starts with a byte-order mark
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DCSError(
            f"{path}: line {line}, column {column}: byte 0x{raw[err.start]:02x} is not valid UTF-8"
        ) from None


def read_glue_tsv(path: str | Path, task: Task) -> Dataset:
    """Read one ``glue_data`` file into a Dataset with the hub's columns and types.

    ``idx`` is the example's 0-based position in the file, as on the hub. Errors name
    the file, the line (1-based, counting the header) and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise DCSError(f"{path}: file not found; {_layout_hint(task, path.parent.parent)}")
    text = _decode(path)
    if not text.strip():
        raise DCSError(f"{path}: the file is empty")
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)

    if task.header:
        header = next(reader)
        missing = [c for c in task.source_columns.values() if c not in header]
        if missing:
            raise DCSError(f"{path}: line 1: header lacks column(s) {missing}; found {header}")
        position = {hub: header.index(src) for hub, src in task.source_columns.items()}
        n_columns = len(header)
    else:
        position = dict(task.source_columns)  # already 0-based indices
        n_columns = None  # fixed by the first row

    columns: dict[str, list] = {c: [] for c in (*task.text_columns, "label")}
    for row in reader:
        line = reader.line_num
        if not row or row == [""]:
            continue  # blank line, e.g. at the end of the file
        if n_columns is None:
            n_columns = len(row)
        if len(row) != n_columns:
            raise DCSError(f"{path}: line {line}: expected {n_columns} tab-separated columns, found {len(row)}")
        for name in task.text_columns:
            columns[name].append(row[position[name]])
        raw_label = row[position["label"]]
        try:
            columns["label"].append(task.label_id(raw_label))
        except ValueError:
            expected = "a number" if task.is_regression else f"one of {list(task.raw_labels or range(task.num_labels))}"
            label_column = task.source_columns["label"]
            raise DCSError(
                f"{path}: line {line}, column {position['label'] + 1} ({label_column}): "
                f"unknown label {raw_label!r}; expected {expected}"
            ) from None
    if not columns["label"]:
        raise DCSError(f"{path}: the file has a header but no examples")
    columns["idx"] = list(range(len(columns["label"])))
    return Dataset.from_dict(columns, features=features_for(task))


def load_local(task: Task, data_dir: str | Path) -> DatasetDict:
    """Load every split of ``task`` from a ``glue_data`` folder (a relative one: see :func:`resolve_data_dir`)."""
    root = resolve_data_dir(data_dir)
    if not root.is_dir():
        raise DCSError(f"data directory {data_dir} does not exist ({_where_looked(data_dir)}); {_layout_hint(task, root)}")
    return DatasetDict({split: read_glue_tsv(root / task.glue_dir / name, task) for split, name in task.files.items()})


def load_hub(task: Task) -> DatasetDict:
    """Load ``task`` from the Hugging Face hub (needs a network or a warm cache)."""
    from datasets import load_dataset

    try:
        loaded = load_dataset(HUB_DATASET, task.name)
    except Exception as err:  # offline, hub down, ...: say how to get the data instead
        raise DCSError(
            f"could not load {task.name} from the Hugging Face hub ({type(err).__name__}: {err}).\n"
            f"Give a local copy instead: --data-dir DIR or {GLUE_DIR_ENV}=DIR; {_layout_hint(task, 'DIR')}"
        ) from None
    columns = [*task.text_columns, "label", "idx"]
    return DatasetDict({split: loaded[split].select_columns(columns).cast(features_for(task)) for split in task.files})


def load_task(task: Task, data_dir: str | Path | None = None) -> DatasetDict:
    """Load ``task`` from ``data_dir``, else from ``$DCS_GLUE_DIR``, else from the hub."""
    data_dir = data_dir or os.environ.get(GLUE_DIR_ENV)
    return load_local(task, data_dir) if data_dir else load_hub(task)


def subsample(dataset: Dataset, n: int | None, seed: int, what: str = "training set") -> Dataset:
    """A seeded random subset of ``n`` examples, kept in file order; ``None`` keeps all."""
    if n is not None and n <= 0:
        raise DCSError(f"cannot subsample the {what} to {n} examples: the {what} would be empty")
    if n is not None and n < len(dataset):
        keep = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:n])
        dataset = dataset.select(keep)
    if len(dataset) == 0:
        raise DCSError(f"the {what} is empty")
    return dataset


def tokenize(dataset: Dataset, tokenizer, task: Task, max_length: int = 128) -> Dataset:
    """Tokenise once, truncating to ``max_length``; add ``length`` and ``row`` columns.

    ``row`` is the position in this dataset: the index into per-sample weights and
    cached teacher logits.
    """

    def encode(batch):
        encoded = tokenizer(*[batch[c] for c in task.text_columns], truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    encoded = dataset.map(encode, batched=True, remove_columns=list(task.text_columns), desc=f"tokenise {task.name}")
    return encoded.add_column("row", list(range(len(encoded))))


@dataclass
class PadCollator:
    """Stack examples into a batch, padding to the longest one in the batch.

    Returns ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when present):
    (batch, longest) int64; ``labels``: (batch,) int64, or float32 for regression;
    ``rows``: (batch,) int64.
    """

    pad_token_id: int = 0
    pad_to_multiple_of: int | None = None  # 8 helps tensor cores on GPU

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        lengths = [len(e["input_ids"]) for e in examples]
        longest = max(lengths)
        if self.pad_to_multiple_of:
            longest = math.ceil(longest / self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {}
        for key in ("input_ids", "token_type_ids"):
            if key not in examples[0]:
                continue
            # Filling one NumPy array row by row is about 3x faster than a small tensor per example.
            padded = np.full((len(examples), longest), self.pad_token_id if key == "input_ids" else 0, dtype=np.int64)
            for i, example in enumerate(examples):
                padded[i, : lengths[i]] = example[key]
            batch[key] = torch.from_numpy(padded)
        batch["attention_mask"] = (torch.arange(longest) < torch.tensor(lengths)[:, None]).long()
        label = examples[0]["label"]
        batch["labels"] = torch.tensor(
            [e["label"] for e in examples], dtype=torch.float32 if isinstance(label, float) else torch.long
        )
        batch["rows"] = torch.tensor([e["row"] for e in examples], dtype=torch.long)
        return batch


class LengthBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Shuffled batches of row positions, optionally grouped by length.

    With ``group_by_length``, the shuffled order is cut into windows of
    ``batch_size * window`` examples, each window is sorted by length and cut into
    batches, and the batches are shuffled again: batches hold examples of similar
    length (little padding) while the epoch stays random. The shuffle is seeded by
    ``(seed, epoch)``; call :meth:`set_epoch` each epoch, as with PyTorch's
    ``DistributedSampler``. With ``num_replicas > 1`` each rank takes every
    ``num_replicas``-th batch (the batch list is padded by repetition so all ranks
    take the same number of steps).
    """

    def __init__(
        self,
        lengths,
        batch_size: int,
        *,
        shuffle: bool = True,
        group_by_length: bool = True,
        seed: int = 0,
        window: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.group_by_length = batch_size, shuffle, group_by_length
        self.seed, self.window, self.epoch = seed, window, 0
        self.num_replicas, self.rank = num_replicas, rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.group_by_length:
            span = self.batch_size * self.window if self.shuffle else n
            order = np.concatenate(
                [
                    chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                    for chunk in np.split(order, range(span, n, span))
                ]
            )
        batches = np.split(order, range(self.batch_size, n, self.batch_size))
        if self.shuffle and self.group_by_length:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self):
        batches = self._batches()
        if self.num_replicas > 1:
            per_rank = math.ceil(len(batches) / self.num_replicas)
            batches = (batches * self.num_replicas)[: per_rank * self.num_replicas][self.rank :: self.num_replicas]
        return (batch.tolist() for batch in batches)

    def __len__(self) -> int:
        return math.ceil(math.ceil(len(self.lengths) / self.batch_size) / self.num_replicas)
