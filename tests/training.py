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
