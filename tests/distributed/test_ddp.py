"""DistributedDataParallel training (sceneparse/distributed/ddp.py, sceneparse/train.py):
``torchrun --nproc_per_node 2`` on the CPU (gloo), on real Stanford Background images."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sceneparse.data import StanfordBackground
from sceneparse.data.presets import eval_preset
from sceneparse.distributed import ddp
from sceneparse.engine import evaluate, load_checkpoint, model_from_checkpoint
from sceneparse.errors import ConfigError

SPY = Path(__file__).with_name("ddp_spy.py")


def _torchrun(args: list[str], spy_dir: Path, port: int) -> subprocess.CompletedProcess:
    """``sceneparse train ARGS`` on two gloo processes (through the spy that records each rank's images)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), str(SPY), *args]  # fmt: skip
    env = {**os.environ, "DDP_SPY_DIR": str(spy_dir), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _seen(spy_dir: Path, rank: int) -> list[list[str]]:
    return [json.loads(x) for x in (spy_dir / f"rank{rank}.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_feature_two_gloo_processes_train_one_run_on_disjoint_samples_and_resume(tmp_path, stanford_path):
    run, spy = tmp_path / "run", tmp_path / "spy"
    spy.mkdir()
    args = ["--model", "msconvnet", "--model-args", '{"width": 8, "hidden": 8}', "--data-root", str(stanford_path),
            "--limit", "8", "--batch-size", "4", "--crop-size", "48", "64", "--epochs", "2", "--device", "cpu",
            "--threads", "1", "--no-progress", "--out", str(run)]  # fmt: skip
    # Two epochs planned, stopped by the time limit after the first (rank 0's clock decides for both).
    first = _torchrun([*args, "--time-limit-minutes", "1e-9"], spy, 29611)
    assert first.stdout.count("run written to") == 1  # rank 0 alone reports (and logs)
    assert first.stderr.count("INFO sceneparse.train: epoch epoch=0") == 1
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0]  # one row: rank 0 alone writes
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "final.pt", "last.pt", "metrics.jsonl",
                                                     "val_metrics.json"]  # fmt: skip
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["meta"]["training"]["world_size"] == 2 and ckpt["meta"]["training"]["batch_per_process"] == 2
    assert ckpt["meta"]["training"]["backend"] == "gloo" and ckpt["epoch"] == 0
    assert len(ckpt["rng"]["ranks"]) == 2
    # Each rank saw 4 of the 8 training images (2 batches of 2), none seen by the other.
    r0, r1 = _seen(spy, 0), _seen(spy, 1)
    assert len(r0) == len(r1) == 1 and len(r0[0]) == len(r1[0]) == 4
    assert not set(r0[0]) & set(r1[0]) and len(set(r0[0]) | set(r1[0])) == 8
    # Validation over both ranks (each half of the 8 held-out images, the confusion matrices
    # summed) gives the figures of one process validating the saved model on all of them.
    val = StanfordBackground(stanford_path, split="val", fold=0, transform=eval_preset())
    val.ids = val.ids[:8]
    model, info = model_from_checkpoint(ckpt)
    cm, _ = evaluate(model, torch.utils.data.DataLoader(val, batch_size=1), info.num_classes, torch.device("cpu"),
                     progress=False)  # fmt: skip
    alone, recorded = cm.scores(), ckpt["meta"]["metrics"]
    assert recorded["pixels"] == alone["pixels"] == int(cm.matrix.sum())
    assert recorded["pixel_accuracy"] == pytest.approx(alone["pixel_accuracy"], abs=1e-4)
    assert recorded["mean_iou"] == pytest.approx(alone["mean_iou"], abs=1e-4)

    # Resumed under DDP: the second epoch, from the checkpoint's optimizer and schedule.
    _torchrun([*args, "--resume", str(run / "last.pt")], spy, 29612)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1] and rows[1]["lr"] < rows[0]["lr"]
    final = load_checkpoint(run / "last.pt")
    assert final["epoch"] == 1 and final["meta"]["training"]["world_size"] == 2
    r0, r1 = _seen(spy, 0), _seen(spy, 1)
    assert len(r0) == len(r1) == 2 and not set(r0[1]) & set(r1[1]) and len(set(r0[1]) | set(r1[1])) == 8
    assert r0[1] != r0[0]  # set_epoch: another order in the second epoch


@pytest.mark.slow
def test_feature_two_processes_train_on_the_global_batches_of_one_and_reach_its_weights(tmp_path, stanford_path):
    """The same global batches, augmented alike (sceneparse.data.sampling), the synchronised batch
    norm and the global-mean loss: without dropout two processes end where one does, up to the
    float rounding of the sums."""
    args = ["--model", "msconvnet", "--model-args", '{"width": 8, "hidden": 8, "dropout": 0}', "--data-root",
            str(stanford_path), "--limit", "16", "--batch-size", "4", "--crop-size", "48", "64", "--epochs", "2",
            "--color-jitter", "0.2", "--device", "cpu", "--threads", "1", "--no-progress"]  # fmt: skip
    spy_one, spy_two = tmp_path / "spy1", tmp_path / "spy2"
    spy_one.mkdir(), spy_two.mkdir()
    env = {**os.environ, "DDP_SPY_DIR": str(spy_one), "RANK": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SPY), *args, "--out", str(tmp_path / "one")], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    _torchrun([*args, "--out", str(tmp_path / "two")], spy_two, 29614)
    one, r0, r1 = _seen(spy_one, 0), _seen(spy_two, 0), _seen(spy_two, 1)
    assert len(one) == len(r0) == len(r1) == 2 and one[0] != one[1]
    for epoch in range(2):  # rank 0 the first half of each global batch of 4, rank 1 the second
        assert one[epoch] == [n for k in range(0, 8, 2) for n in (*r0[epoch][k : k + 2], *r1[epoch][k : k + 2])]
    a, b = (load_checkpoint(tmp_path / run / "final.pt")["state_dict"] for run in ("one", "two"))
    for key, value in a.items():
        if value.is_floating_point():
            assert torch.allclose(value, b[key], rtol=1e-3, atol=1e-4), key


def test_feature_cpu_sync_batchnorm_over_two_gloo_ranks_equals_batchnorm_over_the_whole_batch(tmp_path):
    worker = Path(__file__).with_name("sync_bn_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", "29613", str(worker), str(tmp_path)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert ranks[0]["type"] == "CpuSyncBatchNorm"
    # The same layer on one process over the whole batch, the same loss (the sum of the ranks' losses).
    sys.path.insert(0, str(worker.parent))
    from sync_bn_worker import batch

    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    x = batch().requires_grad_()
    y = bn(x)
    sum((part * torch.arange(part.numel()).reshape(part.shape).sin()).sum() for part in (y[:2], y[2:])).backward()
    assert torch.allclose(torch.cat([r["y"] for r in ranks]), y, atol=1e-5)
    assert torch.allclose(torch.cat([r["x_grad"] for r in ranks]), x.grad, atol=1e-5)
    assert torch.allclose(ranks[0]["w_grad"], bn.weight.grad, atol=1e-4)
    for r in ranks:  # running statistics of the global batch, alike on both ranks
        assert torch.allclose(r["running_mean"], bn.running_mean, atol=1e-6)
        assert torch.allclose(r["running_var"], bn.running_var, atol=1e-6)


def test_cardinality_shard_sampler_counts_every_index_once():
    shards = [list(ddp.ShardSampler(11, r, 3)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(11)) and [len(s) for s in shards] == [4, 4, 3]


def test_exception_global_batch_must_divide_among_processes():
    ctx = ddp.DistContext(rank=0, world_size=3)
    assert ddp.per_rank_batch(9, ctx) == 3
    with pytest.raises(ConfigError, match="global batch 8 does not divide among 3 processes"):
        ddp.per_rank_batch(8, ctx)


def test_feature_teardown_frees_the_finished_runs_ddp_wrapper_before_leaving_the_group(tmp_path):
    """A DDP wrapper outlives the function that made it (reference cycles) and holds the group
    through its reducer; teardown collects it while the interpreter is whole (left to the
    interpreter's shutdown, gloo aborted a finished run now and then)."""
    import gc
    import weakref

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    ctx = ddp.DistContext(rank=0, world_size=2, backend="gloo", joined_here=True)

    def one_step():
        net = torch.nn.parallel.DistributedDataParallel(torch.nn.Conv2d(3, 4, 3))
        net(torch.randn(2, 3, 8, 8)).sum().backward()
        held = {"net": net}
        held["self"] = held  # a cycle of its own: in a fresh process one of DDP.__init__'s frames keeps it, not always
        return weakref.ref(net)

    was = gc.isenabled()
    gc.disable()  # only teardown may collect
    try:
        wrapper = one_step()
        assert wrapper() is not None  # still alive after its function returned
        ddp.teardown(ctx)
    finally:
        if was:
            gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()
    assert wrapper() is None and not dist.is_initialized()


def test_smoke_one_process_without_torchrun_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = ddp.setup("cpu")
    assert not ctx.distributed and ctx.is_main and ctx.device == torch.device("cpu")
    assert ddp.sum_over_ranks(torch.ones(2), ctx).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("weighted", [False, True])
def test_feature_global_mean_loss_is_one_process_mean(tmp_path, weighted):
    """Over one process the global-batch loss is PyTorch's weighted mean (ignored pixels, class
    weights and label smoothing included): the same normalisation, taken over all processes."""
    import torch.distributed as dist

    torch.manual_seed(0)
    logits = torch.randn(2, 5, 6, 7, requires_grad=True)
    target = torch.randint(0, 5, (2, 6, 7))
    target[0, :2] = 255
    weights = torch.rand(5) + 0.5 if weighted else None
    plain = torch.nn.CrossEntropyLoss(weight=weights, ignore_index=255, label_smoothing=0.1)(logits, target)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ours = ddp.GlobalMeanCrossEntropy(weights, 255, 0.1, world_size=1)(logits, target)
    finally:
        dist.destroy_process_group()
    assert torch.allclose(ours, plain, atol=1e-6)
    (g1,) = torch.autograd.grad(ours, logits)
    (g2,) = torch.autograd.grad(plain, logits)
    assert torch.allclose(g1, g2, atol=1e-7)
