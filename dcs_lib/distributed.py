"""Several processes, one training loop: PyTorch's DistributedDataParallel under torchrun.

``torchrun --nproc_per_node=N -m dcs_lib train ...`` starts N copies of the same
command; :func:`setup` reads the variables torchrun sets and joins the process
group (NCCL on GPUs, gloo on CPUs). Each rank trains on its share of the batches;
DDP averages the gradients. Predictions (on dev, and on the training set for the
DCS update) are summed across ranks row by row, so every rank sees all of them and
computes the same metrics and the same sample weights. Rank 0 alone shows
progress and writes files.
"""

from __future__ import annotations

import hashlib

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup() -> World:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); safe to call twice."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return world()


def world() -> World:
    if not dist.is_initialized():
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _collective_device(tensor: torch.Tensor) -> torch.device:
    """Where ``tensor`` must be for a collective: NCCL reduces CUDA tensors only (the current device)."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return tensor.device


def sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, in place; a no-op in a single process."""
    if dist.is_initialized():
        device = _collective_device(tensor)
        if device == tensor.device:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        else:  # e.g. a CPU tensor under NCCL: reduce a copy on the GPU, copy the sum back
            on_device = tensor.to(device)
            dist.all_reduce(on_device, op=dist.ReduceOp.SUM)
            tensor.copy_(on_device)
    return tensor


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def check_identical(tensor: torch.Tensor, what: str) -> None:
    """Raise if ``tensor`` differs between ranks in any bit (compares the lowest and highest hashes).

    A hash of the bytes, not a sum: after one fixed-step update the weights take two values,
    so sums match on ranks that agree on how many examples are discordant but not on which.
    """
    if not dist.is_initialized():
        return
    digest = hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).digest()
    checksum = torch.tensor([int.from_bytes(digest[:7], "little")], dtype=torch.int64)  # 7 bytes: a positive int64
    checksum = checksum.to(_collective_device(checksum))  # the weights live on the CPU, NCCL wants CUDA
    low, high = checksum.clone(), checksum.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    if not torch.equal(low, high):
        raise RuntimeError(f"{what} differ between ranks")
