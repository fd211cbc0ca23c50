r"""Data-parallel training helpers (``torchrun`` + :class:`~torch.nn.parallel.DistributedDataParallel`).

The sampler here makes a run on ``W`` processes see exactly the same *global*
batches as a single-process run with the same seed: every process draws the
same permutation, cuts it into global batches of ``batch_size`` and keeps its
own share of each batch. With the loss normalised by the global number of
labels (see :func:`all_reduce_sum`) the averaged gradients equal the
single-process gradients up to float summation order. (Unlike
:class:`~torch.utils.data.DistributedSampler`, nothing is padded or dropped.)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistEnv", "TIMEOUT_VARIABLE", "resolve_device", "setup", "cleanup", "GlobalBatchSampler",
           "all_reduce_sum", "gather_shards", "sync_buffers", "barrier"]

# Seconds the process group may take to form (and each collective operation); see :func:`setup`.
TIMEOUT_VARIABLE = "PYG_PLSTM_DIST_TIMEOUT"


@dataclass(frozen=True)
class DistEnv:
    """This process' place in the (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` (CUDA when available), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``, checked to exist."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r} (use e.g. 'cpu', 'cuda', 'cuda:1' or 'auto')") from None
    if dev.type not in ("cpu", "cuda"):
        # e.g. 'meta', where a model moved there loses its weights; the other backends are untested here.
        raise ValueError(f"device {device!r} is not supported (use 'cpu', 'cuda', 'cuda:N' or 'auto')")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} requested but there are {torch.cuda.device_count()} CUDA devices")
    return dev


def setup(device: str = "auto", timeout: Optional[timedelta] = None) -> DistEnv:
    """Join the process group described by ``torchrun``'s environment (if any) and pick the device.

    ``device='auto'`` uses CUDA when available. Under ``torchrun`` each process
    takes the GPU ``LOCAL_RANK``; the backend is NCCL on GPU and gloo on CPU.
    ``timeout`` bounds the rendezvous and every collective operation (default:
    ``$PYG_PLSTM_DIST_TIMEOUT`` seconds if set, else torch's default), so a
    process group that cannot form fails instead of waiting indefinitely.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    dev = resolve_device(device)
    if dev.type == "cuda":
        if world_size > 1:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        if timeout is None and os.environ.get(TIMEOUT_VARIABLE) is not None:
            seconds = _env_int(TIMEOUT_VARIABLE, 0)
            if seconds <= 0:
                raise ValueError(f"environment variable {TIMEOUT_VARIABLE} must be a positive number of seconds, "
                                 f"got {seconds}")
            timeout = timedelta(seconds=seconds)
        options = {} if timeout is None else {"timeout": timeout}
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world_size,
                                **options)
    return DistEnv(rank=rank, world_size=world_size, device=dev)


def cleanup(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


class GlobalBatchSampler:
    r"""Batches of indices whose union over processes is the single-process batch.

    The permutation depends only on ``(seed, epoch)`` (call :meth:`set_epoch`),
    so a resumed run reshuffles exactly as an uninterrupted one. Process ``r``
    gets items ``r, r + W, ...`` of each global batch; a process left with no
    item of a short last batch gets the batch's first item and ``weight`` 0
    (every process must take part in each gradient all-reduce).
    """

    def __init__(self, num_samples: int, batch_size: int, shuffle: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}")
        if num_samples <= 0:
            raise ValueError("cannot sample batches from an empty dataset split")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples)
        # Spread seeds apart so that (seed, epoch + 1) never replays (seed + 1, epoch).
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.num_samples, generator=g)

    def batches(self) -> list[tuple[list[int], float]]:
        """This process' ``(indices, weight)`` for every global batch of the epoch."""
        out = []
        for batch in self._order().split(self.batch_size):
            mine = batch[self.rank::self.world_size].tolist()
            out.append((mine, 1.0) if mine else (batch[:1].tolist(), 0.0))
        return out

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)


def all_reduce_sum(values: list[float], env: DistEnv) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64, exact for counts)."""
    if not env.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=env.device if env.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return t.tolist()


def sync_buffers(module: nn.Module, env: DistEnv) -> None:
    """Give every process rank 0's buffers (BatchNorm statistics drift apart between DDP steps)."""
    if env.distributed:
        for buf in module.buffers():
            dist.broadcast(buf, 0)


def gather_shards(shard: Any, env: DistEnv) -> list[Any]:
    """Every process' ``shard`` (any picklable object), in rank order."""
    if not env.distributed:
        return [shard]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, shard)
    return out
