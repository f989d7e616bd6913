"""Scaling out: training on several processes, GPUs or nodes (:mod:`~sceneparse.distributed.ddp`,
PyTorch's DistributedDataParallel under ``torchrun``) and labelling large collections on a Ray
cluster (:mod:`~sceneparse.distributed.ray_label`, the ``ray`` extra, imported lazily).

See docs/SCALING.md.
"""
