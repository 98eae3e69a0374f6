"""The nine GLUE tasks: what the text is, what the labels mean, how to score.

Every other module asks this one. A :class:`Task` describes a task twice: as the
Hugging Face ``glue`` dataset presents it (column names, integer label ids) and as
the files of the classic ``glue_data`` download lay it out (file names, header,
which column holds what, how labels are spelled). The loaders in :mod:`dcs_lib.data`
turn both into the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import DCSError


@dataclass(frozen=True)
class Task:
    name: str  # lower-case, as on the hub: "rte", "sst2", ...
    glue_dir: str  # folder in glue_data: "RTE", "SST-2", ...
    text_columns: tuple[str, ...]  # hub column names, one or two
    label_names: tuple[str, ...]  # index = label id; empty for regression
    metrics: tuple[str, ...]  # keys of dcs_lib.metrics.METRICS
    primary: str  # the metric a GLUE table reports and model selection uses
    # glue_data layout
    files: dict[str, str] = field(default_factory=lambda: {"train": "train.tsv", "validation": "dev.tsv"})
    header: bool = True
    # hub column -> glue_data column (a header name, or a 0-based index when there is no header)
    source_columns: dict[str, str | int] = field(default_factory=dict)
    # how labels are spelled in the files; None means they are the ids themselves ("0", "1")
    raw_labels: tuple[str, ...] | None = None

    @property
    def is_regression(self) -> bool:
        return not self.label_names

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.label_names)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return tuple(split for split in self.files if split != "train")

    def label_id(self, raw: str) -> int | float:
        """Parse one label as written in a TSV file; raises ``ValueError`` if unknown."""
        if self.is_regression:
            return float(raw)
        spellings = self.raw_labels or tuple(str(i) for i in range(self.num_labels))
        return spellings.index(raw)  # ValueError when absent


def _pair(first: str, second: str) -> dict[str, str]:
    return {first: first, second: second}


TASKS: dict[str, Task] = {
    task.name: task
    for task in [
        Task(
            "cola",
            "CoLA",
            ("sentence",),
            ("unacceptable", "acceptable"),
            ("mcc",),
            "mcc",
            header=False,
            source_columns={"sentence": 3, "label": 1},
        ),
        Task(
            "sst2",
            "SST-2",
            ("sentence",),
            ("negative", "positive"),
            ("accuracy",),
            "accuracy",
            source_columns={"sentence": "sentence", "label": "label"},
        ),
        Task(
            "mrpc",
            "MRPC",
            ("sentence1", "sentence2"),
            ("not_equivalent", "equivalent"),
            ("f1", "accuracy"),
            "f1",
            source_columns={"sentence1": "#1 String", "sentence2": "#2 String", "label": "Quality"},
        ),
        Task(
            "qqp",
            "QQP",
            ("question1", "question2"),
            ("not_duplicate", "duplicate"),
            ("f1", "accuracy"),
            "f1",
            source_columns={**_pair("question1", "question2"), "label": "is_duplicate"},
        ),
        Task(
            "stsb",
            "STS-B",
            ("sentence1", "sentence2"),
            (),
            ("pearson", "spearman"),
            "pearson",
            source_columns={**_pair("sentence1", "sentence2"), "label": "score"},
        ),
        Task(
            "mnli",
            "MNLI",
            ("premise", "hypothesis"),
            ("entailment", "neutral", "contradiction"),
            ("accuracy",),
            "accuracy",
            files={
                "train": "train.tsv",
                "validation_matched": "dev_matched.tsv",
                "validation_mismatched": "dev_mismatched.tsv",
            },
            source_columns={"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"},
            raw_labels=("entailment", "neutral", "contradiction"),
        ),
        Task(
            "qnli",
            "QNLI",
            ("question", "sentence"),
            ("entailment", "not_entailment"),
            ("accuracy",),
            "accuracy",
            source_columns={**_pair("question", "sentence"), "label": "label"},
            raw_labels=("entailment", "not_entailment"),
        ),
        Task(
            "rte",
            "RTE",
            ("sentence1", "sentence2"),
            ("entailment", "not_entailment"),
            ("accuracy",),
            "accuracy",
            source_columns={**_pair("sentence1", "sentence2"), "label": "label"},
            raw_labels=("entailment", "not_entailment"),
        ),
        Task(
            "wnli",
            "WNLI",
            ("sentence1", "sentence2"),
            ("not_entailment", "entailment"),
            ("accuracy",),
            "accuracy",
            source_columns={**_pair("sentence1", "sentence2"), "label": "label"},
        ),
    ]
}

_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli"}


def get_task(name: str) -> Task:
    """Look a task up by name, case-insensitively (``"RTE"``, ``"sst-2"`` and ``"SST2"`` work)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise DCSError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[key]
