"""``python -m torch.distributed.run --nproc_per_node 2 tests/distributed/sync_bn_worker.py OUT``: each
rank passes its half of a fixed batch through :class:`CpuSyncBatchNorm` (gloo) and saves the output,
the input's gradient, the weight's gradient (summed over ranks, as DDP sums before averaging) and
the running statistics to ``OUT/rank{RANK}.pt`` (for tests/distributed/test_ddp.py)."""

import os
import sys

import torch
import torch.distributed as dist

from sceneparse.distributed import ddp


def batch() -> torch.Tensor:
    return torch.randn(4, 3, 5, 7, generator=torch.Generator().manual_seed(0)) * 3 + 1


if __name__ == "__main__":
    ctx = ddp.setup("cpu")
    bn = ddp.convert_sync_batchnorm(torch.nn.BatchNorm2d(3), ctx)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    x = batch()[2 * ctx.rank : 2 * ctx.rank + 2].clone().requires_grad_()
    y = bn(x)
    (y * torch.arange(y.numel()).reshape(y.shape).sin()).sum().backward()
    dist.all_reduce(bn.weight.grad)
    saved = {"y": y.detach(), "x_grad": x.grad, "w_grad": bn.weight.grad, "running_mean": bn.running_mean,
             "running_var": bn.running_var, "type": type(bn).__name__}  # fmt: skip
    torch.save(saved, os.path.join(sys.argv[1], f"rank{ctx.rank}.pt"))
    ddp.teardown(ctx)
