"""Save a run after every epoch and resume it exactly.

A checkpoint is a folder ``epoch-NNN`` inside the checkpoint directory holding
``model.safetensors`` (the student's weights), ``tensors.safetensors`` (the
objective's tensors: DCS sample weights), ``state.pt`` (optimiser, scheduler,
GradScaler and every random generator, loaded with ``weights_only=True`` so nothing
but tensors and plain containers is ever unpickled) and ``meta.json`` (which run it
belongs to, the epoch, the history so far). It is written under a temporary name
and renamed when complete, so the newest ``epoch-NNN`` folder is always whole.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import DCSError

FILES = ("model.safetensors", "tensors.safetensors", "state.pt", "meta.json")


def rng_state() -> dict:
    """Every generator's state, as tensors and plain values (safe for weights_only loading)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "python": [version, list(internal), gauss_next],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpointer:
    """Writes and reads the checkpoints of one run in ``folder``.

    ``identity`` (JSON-ready: task, model, run id, ...) is stored with every checkpoint
    and must match on resume, so a checkpoint is never loaded into another run.
    """

    def __init__(self, folder: str | Path, identity: dict):
        self.folder = Path(folder)
        self.identity = identity

    def latest(self) -> Path | None:
        done = sorted(p for p in self.folder.glob("epoch-[0-9][0-9][0-9]") if p.is_dir())
        return done[-1] if done else None

    def save(
        self,
        epoch: int,
        model,
        optimizer,
        scheduler,
        scaler,
        objective_tensors: dict[str, torch.Tensor],
        history: list[dict],
    ) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"epoch-{epoch:03d}"
        tmp = self.folder / f".epoch-{epoch:03d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp / "model.safetensors")
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in objective_tensors.items()} or {"_empty": torch.zeros(0)},
            tmp / "tensors.safetensors",
        )
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
            },
            tmp / "state.pt",
        )
        (tmp / "meta.json").write_text(json.dumps({"identity": self.identity, "epoch": epoch, "history": history}))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for older in self.folder.glob("epoch-[0-9][0-9][0-9]"):
            if older != final:
                shutil.rmtree(older, ignore_errors=True)
        return final

    def load(self, model, optimizer, scheduler, scaler) -> tuple[int, list[dict], dict[str, torch.Tensor]]:
        """Restore the newest checkpoint into the given objects; return (epoch, history, objective tensors)."""
        path = self.latest()
        if path is None:
            raise DCSError(f"--resume: no checkpoint in {self.folder}")
        for name in FILES:
            if not (path / name).is_file():
                raise DCSError(f"checkpoint {path} is incomplete: {name} is missing")
        try:
            meta = json.loads((path / "meta.json").read_text())
        except ValueError as err:
            raise DCSError(f"checkpoint {path / 'meta.json'} is corrupt: {err}") from None
        for key, value in self.identity.items():
            if meta.get("identity", {}).get(key) != value:
                raise DCSError(
                    f"checkpoint {path} belongs to another run: its {key} is "
                    f"{meta.get('identity', {}).get(key)!r}, this run's is {value!r}"
                )
        try:
            weights = load_file(path / "model.safetensors")
            tensors = load_file(path / "tensors.safetensors")
            state = torch.load(path / "state.pt", weights_only=True)
        except Exception as err:  # truncated or garbled files surface as many exception types
            raise DCSError(f"checkpoint {path} is corrupt: {type(err).__name__}: {err}") from None
        try:
            model.load_state_dict(weights)
        except RuntimeError as err:
            # torch's message is a heading, then one line per mismatch: keep the error on one line
            lines = [line.strip() for line in str(err).strip().splitlines()] or ["(no detail)"]
            detail = lines[0]
            if len(lines) > 1:
                detail = lines[1] + (f" (and {len(lines) - 2} more)" if len(lines) > 2 else "")
            raise DCSError(f"checkpoint {path / 'model.safetensors'} does not fit this model: {detail}") from None
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        tensors.pop("_empty", None)
        return meta["epoch"], meta["history"], tensors
