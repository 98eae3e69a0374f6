#!/usr/bin/env bash
# Runs the study "When does DCS help?" (data/results/study/PROTOCOL.md), resumably.
#
#   DCS_GLUE_DIR=/path/to/glue_data scripts/run_study.sh          all cells, in the protocol's order
#   DCS_GLUE_DIR=... scripts/run_study.sh sst2-4k                   one cell: sst2-4k, mrpc, sst2-4k-mpnet,
#                                                                   sst2-1k, sst2-8k
#
# Every run uses the library as it was at the commit that added the protocol (checked out
# once into runs/study-code), two one-thread processes at a time, one grid shard each.
# Finished runs are appended to data/results/study/runs-{1,2}.jsonl and skipped when the
# script runs again; a run cut off midway resumes after its last finished epoch
# (runs/study-checkpoints). Teacher logits are kept in data/results/study/teachers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STUDY=$ROOT/data/results/study
: "${DCS_GLUE_DIR:?set DCS_GLUE_DIR to a glue_data folder}"
export DCS_GLUE_DIR=$(cd "$DCS_GLUE_DIR" && pwd)  # read from the environment, so no machine path enters the records
PY=${PY:-$ROOT/.venv/bin/python}
CODE=$ROOT/runs/study-code
if [ ! -d "$CODE" ]; then
    # In a shallow clone the oldest commit held would pass for the one that added the protocol.
    if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
        echo "this clone is shallow: the study runs the library as of the protocol's commit;" \
            "fetch the history first (git fetch --unshallow)" >&2
        exit 2
    fi
    COMMIT=$(git log --diff-filter=A --format=%H -- data/results/study/PROTOCOL.md | tail -1)
    git worktree prune
    git worktree add --detach "$CODE" "$COMMIT"
fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TQDM_DISABLE=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
touch "$STUDY/runs-1.jsonl" "$STUDY/runs-2.jsonl"

grid() {  # grid FILE I ARGS...: the runs of FILE selected by ARGS, in process I (results in runs-I.jsonl)
    local file=$1 i=$2
    shift 2
    (cd "$CODE" && PYTHONPATH="$CODE" "$PY" -m dcs_lib grid "$STUDY/$file" --no-progress \
        --results "$STUDY/runs-$i.jsonl" --skip-runs-in "$STUDY/runs-$((3 - i)).jsonl" \
        --cache-dir "$STUDY/teachers" --checkpoint-dir "$ROOT/runs/study-checkpoints" "$@")
}

shards() {  # the runs of grid.toml selected by "$@" (--only ...), split over two processes
    grid grid.toml 1 --shard 1/2 "$@" &
    grid grid.toml 2 --shard 2/2 "$@" &
    wait
}

cell() {  # vanilla first (it is the peer teacher of the next seed), then the teachers' runs two seeds at a time
    shards "$@" --only method=vanilla
    # Each process goes on to its share of the next two seeds as soon as it is done with this
    # one's, rather than wait for the other: no run of a pair needs a run of another.
    for i in 1 2; do
        (for pair in 1,2 3,4 5,6 7,8 9,10; do grid grid.toml "$i" --shard "$i/2" "$@" --only seed="$pair"; done) &
    done
    wait
}

mpnet() {  # addendum A1: one all-mpnet-base-v2 teacher (seed 1) for every student, seeds 1-10
    if [ ! -d "$CODE/models/all-mpnet-base-v2" ]; then  # joined from its PyPI pieces by today's library
        local path err=$ROOT/runs/mpnet-error.txt
        if ! path=$("$PY" -c 'from dcs_lib.models import mpnet_path; print(mpnet_path())' 2>"$err"); then
            # without the extra, go on with the next cell rather than stop the night's runs
            echo "addendum A1 skipped: $(tail -1 "$err")" >&2
            return 0
        fi
        mkdir -p "$CODE/models"
        ln -s "$path" "$CODE/models/all-mpnet-base-v2"
    fi
    grid grid-mpnet.toml 1 --only seed=1  # trains the teacher; the other process has nothing to share yet
    grid grid-mpnet.toml 1 --only seed=2,4,6,8,10 &
    grid grid-mpnet.toml 2 --only seed=3,5,7,9 &
    wait
}

for name in ${1:-sst2-4k mrpc sst2-4k-mpnet sst2-1k sst2-8k}; do
    case $name in
        sst2-4k) cell --only task=sst2 --only n_train=4000 ;;
        mrpc) cell --only task=mrpc ;;
        sst2-4k-mpnet) mpnet ;;
        sst2-1k) cell --only task=sst2 --only n_train=1000 ;;
        sst2-8k) cell --only task=sst2 --only n_train=8000 ;;
        *) echo "unknown cell $name; choose sst2-4k, mrpc, sst2-4k-mpnet, sst2-1k or sst2-8k" >&2; exit 2 ;;
    esac
done
