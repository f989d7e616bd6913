"""``python -m torch.distributed.run ... tests/distributed/ddp_spy.py ARGS``: ``sceneparse train
ARGS``, with the names of the training images each rank was given written, one epoch a line, to
``$DDP_SPY_DIR/rank{RANK}.jsonl`` (for tests/distributed/test_ddp.py)."""

import json
import os
import sys
from pathlib import Path

import sceneparse.train
from sceneparse.cli import main
from sceneparse.engine import train_one_epoch as _train_one_epoch


def spying_train_one_epoch(model, loader, *args, **kwargs):
    names = []

    def batches():
        for batch in loader:
            names.extend(batch["name"])
            yield batch

    stats = _train_one_epoch(model, batches(), *args, **kwargs)
    with (Path(os.environ["DDP_SPY_DIR"]) / f"rank{os.environ['RANK']}.jsonl").open("a") as f:
        f.write(json.dumps(names) + "\n")
    return stats


if __name__ == "__main__":
    sceneparse.train.train_one_epoch = spying_train_one_epoch
    sys.exit(main(["train", *sys.argv[1:]]))
