"""DistributedDataParallel under ``torchrun``: the process group, where each rank runs, the
data each rank sees and the figures gathered over ranks.

``torchrun --nproc_per_node N -m sceneparse train ...`` starts N processes with ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` in their environment;
:func:`setup` reads them and joins the group (gloo on the CPU, NCCL on GPUs). Without them it
is one process, and nothing here changes what training does.
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from sceneparse.errors import ConfigError

__all__ = [
    "DistContext",
    "setup",
    "teardown",
    "launched",
    "ShardSampler",
    "sum_over_ranks",
    "gather_objects",
    "per_rank_batch",
    "sync_buffers",
    "CpuSyncBatchNorm",
    "GlobalMeanCrossEntropy",
    "convert_sync_batchnorm",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run: ``rank`` of ``world_size`` processes,
    ``local_rank`` on its node, the ``device`` it trains on and the ``backend`` of the group
    (None for a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    joined_here: bool = False  # setup() created the group, so teardown() ends it

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes the run's files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched() -> bool:
    """Started by ``torchrun`` (or another launcher that sets ``WORLD_SIZE`` above 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str = "auto") -> DistContext:
    """Join the process group that ``torchrun`` set up, if it did; the device of this rank.

    ``device``: as ``sceneparse train --device``. "auto" and "cuda" give each rank the GPU of
    its ``LOCAL_RANK`` (NCCL); "cpu" (or no GPU) runs every rank on the CPU (gloo). A single
    process (no ``WORLD_SIZE``) just resolves the device.

    Raises:
        ConfigError: several ranks on a node would share one GPU that was named (``cuda:N``),
            or there are fewer GPUs than ranks on this node.
    """
    from sceneparse.engine import resolve_device

    if not launched():
        return DistContext(device=resolve_device(device))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = resolve_device(device)
    if wanted.type == "cuda":
        if wanted.index is not None:
            raise ConfigError(f"option device: {device!r} names one GPU, but torchrun starts a process per GPU; "
                              "give --device cuda (or auto): rank LOCAL_RANK uses GPU LOCAL_RANK")  # fmt: skip
        if local_rank >= torch.cuda.device_count():
            gpus = torch.cuda.device_count()
            raise ConfigError(f"rank {rank} has LOCAL_RANK {local_rank} but this node has {gpus} GPU(s): "
                              "start at most that many processes a node")  # fmt: skip
        wanted = torch.device("cuda", local_rank)
        torch.cuda.set_device(wanted)
        backend = "nccl"
    else:
        backend = "gloo"
    joined_here = not dist.is_initialized()
    if joined_here:
        kw = {"device_id": wanted} if backend == "nccl" else {}
        dist.init_process_group(backend=backend, **kw)
    ctx = DistContext(rank, world, local_rank, wanted, backend, joined_here)
    if rank == 0:
        log.info("process group of %d ranks joined (%s); rank 0 on %s", world, backend, wanted)
    return ctx


def teardown(ctx: DistContext) -> None:
    """Leave the process group if :func:`setup` created it (a group of the caller's stays).

    The ``DistributedDataParallel`` wrapper of a finished run lives on in reference cycles, its
    reducer holding the group: collected first, or it dies during the interpreter's shutdown,
    where gloo's threads can abort the process (SIGABRT, "terminate called without an active
    exception") after a run that wrote everything.
    """
    if ctx.joined_here and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


class ShardSampler(torch.utils.data.Sampler):
    """Every ``world_size``-th index from ``rank``, in order, nothing padded: validation over
    ranks counts each image once (torch's ``DistributedSampler`` repeats images to even the
    shards out, which would count them twice in the confusion matrix)."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def sum_over_ranks(array, ctx: DistContext):
    """The element-wise sum of ``array`` (numpy or tensor) over all ranks; ``array`` itself
    for a single process."""
    if not ctx.distributed:
        return array
    is_numpy = isinstance(array, np.ndarray)
    t = torch.as_tensor(array)
    # NCCL reduces tensors on the GPU only; gloo on the CPU.
    t = t.to(ctx.device if ctx.backend == "nccl" else "cpu").clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().numpy() if is_numpy else t.cpu()


def gather_objects(obj, ctx: DistContext) -> list:
    """``obj`` of every rank, in rank order (picklable objects; a list of one for one process)."""
    if not ctx.distributed:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def per_rank_batch(batch_size: int, ctx: DistContext) -> int:
    """The batch each rank trains on: the global ``batch_size`` shared out evenly.

    Raises:
        ConfigError: it does not divide by the number of processes.
    """
    if batch_size % ctx.world_size:
        raise ConfigError(f"option batch_size: the global batch {batch_size} does not divide among "
                          f"{ctx.world_size} processes; give a multiple of {ctx.world_size}")  # fmt: skip
    return batch_size // ctx.world_size


def sync_buffers(module: torch.nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics).

    DistributedDataParallel copies them from rank 0 at the start of each forward pass, but the
    last pass then updates each rank's copy from its own batch (without SyncBatchNorm, on the
    CPU): validation on every rank must use the statistics that rank 0 saves.
    """
    if not ctx.distributed:
        return
    for buf in module.buffers():
        dist.broadcast(buf.data, src=0)


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) with its gradient: each rank's input feeds every rank's output, so the
    gradient of an input is the sum of the output's gradients over ranks."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CpuSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the global batch, over every rank, on
    the CPU (gloo): PyTorch's ``SyncBatchNorm`` runs on GPUs only.

    In training the per-channel mean, then the variance about it, are summed over ranks with
    differentiable all-reduces, so gradients flow through the shared
    statistics as in ``SyncBatchNorm``; running statistics are updated from the global ones, alike
    on every rank. In evaluation, or without a process group, it is plain batch norm. Its
    parameters and buffers are those of the layer it replaces (the same state-dict keys).
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, channels] + [1] * (x.dim() - 2)
        local = torch.cat([x.sum(dims), x.new_tensor([x.numel() / channels])])
        total = _SumOverRanks.apply(local)
        n = total[-1]
        mean = total[:channels] / n
        var = _SumOverRanks.apply(((x - mean.view(shape)) ** 2).sum(dims)) / n  # about the global mean: stable
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                self.running_var.mul_(1 - momentum).add_(momentum * var.detach() * n / max(float(n) - 1, 1.0))
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


class GlobalMeanCrossEntropy(torch.nn.Module):
    """Class-weighted cross-entropy averaged over the global batch, for DDP: each process's
    weighted sum divided by the total weight of all processes' labelled pixels, times the number
    of processes (DDP averages the gradients over them). PyTorch's own mean divides each
    process's sum by its own total weight: with class weights (or ignored pixels) the processes'
    shares are then weighted unlike one process's batch, and the model learns another thing.

    Args:
        weights, ignore_index, label_smoothing: as ``torch.nn.CrossEntropyLoss``.
        world_size: the number of processes.
    """

    def __init__(self, weights: torch.Tensor | None, ignore_index: int, label_smoothing: float,
                 world_size: int) -> None:  # fmt: skip
        super().__init__()
        self.weights, self.ignore_index = weights, ignore_index
        self.label_smoothing, self.world_size = label_smoothing, world_size

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = F.cross_entropy(logits, target, weight=self.weights, ignore_index=self.ignore_index,
                                label_smoothing=self.label_smoothing, reduction="sum")  # fmt: skip
        labelled = target[target != self.ignore_index]
        weight = self.weights[labelled].sum() if self.weights is not None else labelled.new_tensor(labelled.numel())
        weight = weight.detach().float().reshape(1)
        dist.all_reduce(weight)  # the total weight of the global batch
        return total * self.world_size / weight.clamp_min(1e-12)[0]


def convert_sync_batchnorm(module: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """``module`` with its batch-norm layers synchronised over the ranks: PyTorch's
    ``SyncBatchNorm`` on GPUs, :class:`CpuSyncBatchNorm` on the CPU (the layers are replaced in
    place; the returned module is ``module`` unless it is a batch-norm layer itself)."""
    if ctx.device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, CpuSyncBatchNorm):
        new = CpuSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)  # fmt: skip
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, ctx))
    return module
