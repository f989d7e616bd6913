"""Short real training runs for tests."""

import torch


def run_keeping_threads(cfg: dict):
    """``sceneparse.train.run_training(cfg)``, restoring torch's thread count afterwards (a run sets
    it for the whole process, and the tests after it must not inherit one thread)."""
    from sceneparse.train import run_training

    threads = torch.get_num_threads()
    try:
        return run_training(cfg)
    finally:
        torch.set_num_threads(threads)


def msconvnet_checkpoint(path, num_classes=5, seed=1, metrics=None, **args):
    """An ordinary msconvnet checkpoint (``args``: the model's, e.g. width, hidden) with a
    trained-looking (non-default, seeded) encoder, batch-norm and U/V statistics; classes c0, c1, ..."""
    from sceneparse.data.base import DatasetInfo
    from sceneparse.engine import save_checkpoint
    from sceneparse.registry import create_model

    torch.manual_seed(seed)
    model = create_model("msconvnet", num_classes=num_classes, **args)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # running statistics unlike a fresh model's
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    model.set_normalization([0.01, -0.02], [0.05, 0.06])
    info = DatasetInfo("x", tuple(f"c{i}" for i in range(num_classes)), ((0, 0, 0),) * num_classes)
    save_checkpoint(path, model, "msconvnet", {"num_classes": num_classes, **args}, info, metrics=metrics)
    return path
