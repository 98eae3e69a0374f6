"""Loaders on the real GLUE files, on synthetic files for tasks with no local copy, and on broken files."""

import os

import numpy as np
import pytest

from dcs_lib import DCSError, get_task
from dcs_lib.data import LengthBatchSampler, PadCollator, load_local, load_task, read_glue_tsv, subsample, tokenize
from dcs_lib.models import load_tokenizer

from .conftest import write_tsv

REAL_SIZES = {"rte": (2490, 277), "mrpc": (3668, 408), "cola": (8551, 1043), "sst2": (67349, 872)}


@pytest.mark.parametrize("name", REAL_SIZES)
def test_real_files_row_counts_and_columns(glue, name):
    task = get_task(name)
    data = load_local(task, glue)
    assert (len(data["train"]), len(data["validation"])) == REAL_SIZES[name]
    assert data["train"].column_names == [*task.text_columns, "label", "idx"]
    assert set(data["train"]["label"]) == set(range(task.num_labels))
    assert data["train"]["idx"][:3] == [0, 1, 2]


def test_real_label_ids_follow_the_hub(glue):
    rte = load_local(get_task("rte"), glue)["train"]
    assert rte.features["label"].names == ["entailment", "not_entailment"]
    first = (glue / "RTE" / "train.tsv").read_text().splitlines()[1].split("\t")
    assert rte[0]["label"] == (0 if first[-1] == "entailment" else 1)
    assert rte[0]["sentence1"] == first[1]


def test_mrpc_bom_and_cola_without_header(glue):
    mrpc = load_local(get_task("MRPC"), glue)["train"]
    assert not mrpc[0]["sentence1"].startswith("\ufeff") and mrpc[0]["label"] in (0, 1)
    cola = load_local(get_task("cola"), glue)["validation"]
    first = (glue / "CoLA" / "dev.tsv").read_text().splitlines()[0].split("\t")
    assert cola[0]["sentence"] == first[3] and cola[0]["label"] == int(first[1])


def test_data_dir_from_environment(glue, monkeypatch):
    monkeypatch.setenv("DCS_GLUE_DIR", str(glue))
    assert len(load_task(get_task("rte"))["validation"]) == 277


def test_synthetic_tasks_in_their_glue_formats(tmp_path):
    write_tsv(
        tmp_path / "STS-B" / "train.tsv",
        [
            "index genre filename year old_index source1 source2 sentence1 sentence2 score".split(),
            ["0", "main", "f", "2012", "1", "s", "s", "A man plays.", "A man is playing.", "4.8"],
            ["1", "main", "f", "2012", "2", "s", "s", "A cat.", "A dog runs.", "0.5"],
        ],
    )
    (tmp_path / "STS-B" / "dev.tsv").write_text((tmp_path / "STS-B" / "train.tsv").read_text())
    stsb = load_local(get_task("sts-b"), tmp_path)
    assert stsb["train"]["label"] == pytest.approx([4.8, 0.5]) and get_task("stsb").is_regression

    write_tsv(
        tmp_path / "QQP" / "train.tsv",
        ["id qid1 qid2 question1 question2 is_duplicate".split(), ["7", "1", "2", "How?", "How so?", "1"]],
    )
    write_tsv(
        tmp_path / "QQP" / "dev.tsv",
        ["id qid1 qid2 question1 question2 is_duplicate".split(), ["8", "3", "4", "Why?", "When?", "0"]],
    )
    qqp = load_local(get_task("qqp"), tmp_path)
    assert qqp["train"][0] == {"question1": "How?", "question2": "How so?", "label": 1, "idx": 0}

    train_header = (
        "index promptID pairID genre sentence1_binary_parse sentence2_binary_parse sentence1_parse "
        "sentence2_parse sentence1 sentence2 label1 gold_label"
    ).split()
    dev_header = train_header[:-1] + ["label2", "label3", "label4", "label5", "gold_label"]
    write_tsv(tmp_path / "MNLI" / "train.tsv", [train_header, ["0"] * 8 + ["P", "H", "neutral", "neutral"]])
    for name in ("dev_matched.tsv", "dev_mismatched.tsv"):
        write_tsv(tmp_path / "MNLI" / name, [dev_header, ["0"] * 8 + ["P", "H"] + ["x"] * 5 + ["contradiction"]])
    mnli = load_local(get_task("mnli"), tmp_path)
    assert list(mnli) == ["train", "validation_matched", "validation_mismatched"]
    assert mnli["train"][0]["label"] == 1 and mnli["validation_mismatched"][0]["label"] == 2

    write_tsv(tmp_path / "WNLI" / "train.tsv", [["index", "sentence1", "sentence2", "label"], ["0", "a", "b", "1"]])
    write_tsv(tmp_path / "WNLI" / "dev.tsv", [["index", "sentence1", "sentence2", "label"], ["0", "c", "d", "0"]])
    assert load_local(get_task("wnli"), tmp_path)["train"][0]["label"] == 1


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(DCSError, match="unknown task 'xnli'; valid tasks: cola, sst2, mrpc"):
        get_task("xnli")


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tentailment\n",
            r"line 3: expected 4 tab-separated columns, found 3",
        ),
        (
            "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tmaybe\n",
            r"line 3, column 4 \(label\): unknown label 'maybe'; expected one of \['entailment', 'not_entailment'\]",
        ),
        ("", "the file is empty"),
        ("index\tsentence1\tsentence2\tlabel\n", "has a header but no examples"),
        ("index\tsentence1\tsentence2\n0\ta\tb\n", r"line 1: header lacks column\(s\) \['label'\]"),
    ],
)
def test_malformed_files_name_file_line_and_value(tmp_path, content, message):
    path = tmp_path / "RTE" / "train.tsv"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(DCSError, match=message) as err:
        read_glue_tsv(path, get_task("rte"))
    assert str(path) in str(err.value)


def test_non_utf8_byte_names_line_and_column(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"index\tsentence1\tsentence2\tlabel\n0\tcaf\xe9\tb\tentailment\n")
    with pytest.raises(DCSError, match=r"line 2, column 6: byte 0xe9 is not valid UTF-8"):
        read_glue_tsv(path, get_task("rte"))


def test_missing_folder_and_file_show_the_expected_layout(tmp_path):
    with pytest.raises(DCSError, match=r"does not exist.*; expected the glue_data layout: .*RTE/train.tsv"):
        load_local(get_task("rte"), tmp_path / "nowhere")
    with pytest.raises(DCSError, match=r"RTE/train.tsv: file not found"):
        load_local(get_task("rte"), tmp_path)


def test_subsample_is_seeded_and_refuses_empty(glue):
    train = load_local(get_task("rte"), glue)["train"]
    a, b, c = (subsample(train, 50, seed)["idx"] for seed in (1, 1, 2))
    assert a == b and a != c and a == sorted(a) and len(a) == 50
    assert len(subsample(train, None, 0)) == 2490
    with pytest.raises(DCSError, match="would be empty"):
        subsample(train, 0, 0)


def test_tokenize_truncates_and_numbers_rows(glue):
    tokenizer = load_tokenizer(None)
    train = subsample(load_local(get_task("rte"), glue)["train"], 40, 0)
    encoded = tokenize(train, tokenizer, get_task("rte"), max_length=32)
    assert encoded["row"] == list(range(40))
    assert max(encoded["length"]) == 32 and all(len(x) == n for x, n in zip(encoded["input_ids"], encoded["length"]))
    assert encoded["idx"] == train["idx"]


def test_collator_pads_to_the_longest_in_the_batch():
    examples = [
        {"input_ids": [101, 7, 102], "token_type_ids": [0, 0, 0], "label": 1, "row": 4},
        {"input_ids": [101, 102], "token_type_ids": [0, 0], "label": 0, "row": 9},
    ]
    batch = PadCollator(pad_token_id=0)(examples)
    assert batch["input_ids"].tolist() == [[101, 7, 102], [101, 102, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [1, 0] and batch["rows"].tolist() == [4, 9]
    assert PadCollator(0, pad_to_multiple_of=8)(examples)["input_ids"].shape == (2, 8)
    regression = PadCollator()([{**examples[0], "label": 3.5}])
    assert regression["labels"].dtype.is_floating_point


def test_batch_sampler_covers_every_row_once_and_groups_lengths():
    lengths = np.random.default_rng(0).integers(5, 128, size=1000)
    grouped = LengthBatchSampler(lengths, 32, seed=3)
    plain = LengthBatchSampler(lengths, 32, seed=3, group_by_length=False)
    for sampler in (grouped, plain):
        rows = [i for batch in sampler for i in batch]
        assert sorted(rows) == list(range(1000)) and len(list(sampler)) == len(sampler)

    def padded(sampler):
        return sum(len(b) * lengths[b].max() for b in sampler)

    assert padded(grouped) < 0.8 * padded(plain)  # real tokens / processed tokens rises with grouping
    assert list(grouped) == list(LengthBatchSampler(lengths, 32, seed=3))
    grouped.set_epoch(1)
    assert list(grouped) != list(LengthBatchSampler(lengths, 32, seed=3))


def test_batch_sampler_splits_batches_across_ranks():
    lengths = np.arange(100)
    ranks = [list(LengthBatchSampler(lengths, 8, seed=1, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(LengthBatchSampler(lengths, 8, num_replicas=3))
    rows = {i for r in ranks for batch in r for i in batch}
    assert rows == set(range(100))


def test_relative_data_dir_means_the_same_folder_from_any_folder(glue, tmp_path, monkeypatch):
    """A relative $DCS_GLUE_DIR is found from the project root and from notebooks/, where kernels run."""
    from dcs_lib.data import project_root, resolve_data_dir

    root = project_root()
    if root is None:
        pytest.skip("dcs_lib does not run from a checkout")
    relative = os.path.relpath(glue.resolve(), root)
    monkeypatch.setenv("DCS_GLUE_DIR", relative)
    for folder in (root, root / "notebooks", root / "tests"):
        monkeypatch.chdir(folder)
        assert resolve_data_dir(relative).resolve() == glue.resolve()
        assert len(load_task(get_task("rte"))["validation"]) == 277
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DCSError, match=r"data directory nowhere/glue does not exist \(looked in .*\)"):
        load_task(get_task("rte"), "nowhere/glue")
