"""``sceneparse train``: the whole training run from a resolved configuration."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from sceneparse.config import TRAIN_DEFAULTS, check_resume, check_train_config
from sceneparse.data import build_dataset
from sceneparse.data.presets import eval_preset, train_preset
from sceneparse.data.sampling import GlobalBatchSampler, SeededSamples
from sceneparse.distill import TeacherStudent, load_teacher
from sceneparse.distributed import ddp
from sceneparse.engine import (
    build_optimizer,
    build_scheduler,
    code_revision,
    evaluate,
    json_text,
    load_checkpoint,
    load_scheduler_state,
    replay_scheduler,
    save_checkpoint,
    seed_everything,
    train_one_epoch,
    write_json,
)
from sceneparse.errors import ConfigError, InputError
from sceneparse.io import output_folder
from sceneparse.losses import (
    DistillationLoss,
    build_loss,
    class_frequencies,
    loss_class_weights,
)
from sceneparse.models.base import model_cfg
from sceneparse.registry import create_model

__all__ = ["run_training", "recorded_train_config", "teacher_saw_validation"]

log = logging.getLogger(__name__)


def _create_model(cfg: dict, num_classes: int):
    """The configured model; arguments its factory does not take are a configuration error."""
    try:
        return create_model(cfg["model"], **{"num_classes": num_classes, **cfg["model_args"]})
    except TypeError as err:
        args, name = cfg["model_args"], cfg["model"]
        raise ConfigError(f"option model_args: {args!r} does not fit model {name!r} ({err})") from err


def _model_in_channels(cfg: dict) -> int:
    """Input channels of the configured model (3 RGB, 4 RGB-D), from a throw-away instance."""
    return getattr(_create_model(cfg, 2), "in_channels", 3)


def _resumable_config(ckpt: dict, path) -> dict:
    """The training options that a loaded checkpoint records, if it can be resumed."""
    if "optimizer" not in ckpt:
        raise InputError(f"{path}: holds weights only; resume needs a last.pt of a run")
    recorded = dict(ckpt["meta"].get("train_config") or {})
    if not recorded:
        raise InputError(f"{path}: records no training options, so its run cannot be continued")
    gone = sorted(set(recorded) - set(TRAIN_DEFAULTS))
    if gone:
        log.warning("%s: ignoring recorded option(s) this version does not have: %s", path, ", ".join(gone))
    return {k: v for k, v in recorded.items() if k in TRAIN_DEFAULTS}


def recorded_train_config(path: str | Path) -> dict:
    """The training options of the run whose resumable checkpoint (``last.pt``) is ``path``.

    Raises:
        NotFoundError: no such file.
        InputError: not a checkpoint, or one that cannot be resumed (weights only, no options).
    """
    return _resumable_config(load_checkpoint(path), path)


def _metric_rows(path: Path, before_epoch: int) -> str:
    """Lines of ``metrics.jsonl`` at ``path`` of the epochs before ``before_epoch`` (rows that an
    interruption left after the checkpoint are dropped: those epochs are trained again)."""
    if not path.is_file():
        return ""
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    return "".join(line + "\n" for line in rows if json.loads(line).get("epoch", -1) < before_epoch)


def _dataset_kwargs(cfg: dict) -> dict:
    """Options for :func:`build_dataset`: the rules by which a trained model finds its dataset again
    (:func:`sceneparse.data.dataset_args_for_model`), so training and evaluation read the same data.

    RGB-D datasets give depth only to models that take it (``modality`` follows the model).
    """
    from sceneparse.data import dataset_args_for_model

    return dataset_args_for_model(cfg, in_channels=_model_in_channels(cfg), root=cfg["data_root"])[1]


def teacher_saw_validation(cfg: dict, teacher_config: dict) -> str | None:
    """Why the teacher of a distillation run (or the model an ``init_from`` run starts from), whose
    training options are ``teacher_config``, has trained on the images that the run ``cfg``
    validates on (its validation figures then overstate), or None where it has not or cannot be told."""
    trained = [teacher_config.get("dataset"), *(teacher_config.get("datasets") or ())]
    if cfg["num_folds"] <= 1 or cfg["dataset"] not in trained:
        return None
    from sceneparse.data import dataset_args_for_model
    from sceneparse.data.registry import dataset_takes

    if teacher_config.get("dataset") != cfg["dataset"]:  # one of its other heads: that dataset's own folds
        teacher_config = {"dataset": cfg["dataset"]}
    if (teacher_config.get("num_folds") or 2) <= 1:
        return "it trained on every image (num_folds 1)"
    if not dataset_takes(cfg["dataset"], "fold"):
        return None
    mine, theirs = (dataset_args_for_model(c)[1] for c in (cfg, teacher_config))
    if (theirs["fold"], theirs["num_folds"]) != (mine["fold"], mine["num_folds"]):
        return (f"it held out fold {theirs['fold']} of {theirs['num_folds']}, so it trained on images of fold "
                f"{mine['fold']} of {mine['num_folds']}, which this run validates on")  # fmt: skip
    return None


def _distillation_teacher(cfg: dict, kw: dict, info, device) -> tuple[torch.nn.Module, dict]:
    """The frozen teacher of option ``distill_from`` and the dataset options of the training
    batches: with depth when the teacher takes it and the student does not (filled as option
    ``depth_fill`` says, else as the teacher was trained)."""
    teacher, teacher_config = load_teacher(cfg["distill_from"], info.class_names, device, cfg["distill_tta"])
    leak = teacher_saw_validation(cfg, teacher_config)
    if leak:
        log.warning("the teacher %s has seen the validation images of this run: %s; the validation figures "
                    "overstate the student (train the teacher on the same fold)",
                    cfg["distill_from"], leak)  # fmt: skip
    if model_cfg(teacher).in_channels == 4 and kw["modality"] != "rgbd":
        fill = cfg["depth_fill"] or teacher_config.get("depth_fill")
        kw = {**kw, "modality": "rgbd", "depth_fill": fill}
        log.info("the teacher takes depth: training batches carry it (depth_fill %s), the model sees RGB", fill)
    return teacher, kw


def run_training(cfg: dict) -> Path:
    """Train as ``cfg`` (see :data:`sceneparse.config.TRAIN_DEFAULTS`) says; returns the run folder.

    The folder receives ``config.yaml`` (resolved options), ``metrics.jsonl`` (one line per
    epoch), ``last.pt`` (resumable) and ``final.pt`` (weights and metadata only).

    Started by ``torchrun`` (several processes: :mod:`sceneparse.distributed.ddp`), it trains
    with DistributedDataParallel: ``batch_size`` is the global batch, shared out over the
    processes, each rank sees its own part of every epoch, validation figures are summed over
    ranks, and rank 0 alone logs and writes the folder. The checkpoints' training metadata
    (``meta["training"]``) records the number of processes as ``world_size``.
    """
    cfg = check_train_config(cfg)
    if cfg["init_from"]:  # a shipped model's name, as distill_from takes it, or a checkpoint path
        from sceneparse.pipeline import resolve_model

        path, shipped = resolve_model(cfg["init_from"])  # an unknown name lists the shipped models
        if shipped:
            log.info("init_from %s: the shipped model %s", shipped, path)
            cfg = {**cfg, "init_from": str(path)}
    _check_model_input(cfg)
    # --out is checked before any data is read (a file in the way, no permission); the folder is
    # removed again if the run fails before writing anything into it
    with output_folder(cfg["out"]):
        if cfg["datasets"] or cfg["init_from"] or cfg["freeze"]:  # a head per dataset; transfer regimes
            if ddp.launched():
                raise ConfigError("options datasets, init_from and freeze train in one process: start them "
                                  "without torchrun")  # fmt: skip
            return _multitask(cfg)
        return _single(cfg)


def _check_model_input(cfg: dict) -> None:
    """A model that takes depth (4 input channels) needs a dataset with depth, and a fold a dataset
    with folds: refused before any data is read, not at the first step from inside the model."""
    from sceneparse.data.registry import dataset_takes, list_datasets

    if cfg["fold"] and not dataset_takes(cfg["dataset"], "fold"):  # it would be ignored, and recorded as if held out
        folded = ", ".join(d for d in list_datasets() if dataset_takes(d, "fold"))
        raise ConfigError(
            f"option fold: {cfg['dataset']} has official train and validation splits, no folds; leave fold at 0 "
            f"(folds are for {folded})"
        )
    if cfg["fold"] and cfg["num_folds"] <= 1:
        raise ConfigError(
            f"option fold: num_folds {cfg['num_folds']} trains on every image and holds no fold out, so fold "
            f"{cfg['fold']} means nothing; leave fold at 0, or give num_folds above {cfg['fold']}"
        )
    if cfg["datasets"] or _model_in_channels(cfg) != 4 or dataset_takes(cfg["dataset"], "modality"):
        return  # multi-dataset and transfer runs refuse RGB-D models themselves
    rgbd = ", ".join(d for d in list_datasets() if dataset_takes(d, "modality"))
    raise ConfigError(
        f"option model: {cfg['model']} needs depth (RGB-D input, 4 channels); {cfg['dataset']} has none: train it "
        f"on a dataset with depth ({rgbd}) or choose an RGB model (sceneparse models)"
    )


def _multitask(cfg: dict) -> Path:
    """:func:`~sceneparse.multitask.run_multitask_training`, and on Ctrl-C a message that names what
    the run wrote: its checkpoints of the last finished epoch, ``last_*.pt`` (the ``final_*.pt``
    names are for finished runs), and that such runs cannot be resumed."""
    from sceneparse.multitask import run_multitask_training

    out = Path(cfg["out"])
    if any(out.glob("last_*.pt")):
        raise ConfigError(f"option out: {out} already holds an interrupted run (last_*.pt); choose another --out")
    try:
        return run_multitask_training(cfg)
    except KeyboardInterrupt:
        written = sorted(out.glob("last_*.pt"))  # each epoch's; final_*.pt only once the schedule is done
        epoch = _last_epoch(out / "metrics.jsonl")
        if written:
            log.error("interrupted after epoch %d (of 0 to %d): the weights of that epoch are in %s (named last_*, not "
                      "final_*: the schedule did not finish); runs with datasets, init_from or freeze cannot be "
                      "resumed: use them as they are (sceneparse evaluate --model %s) or train again with a new "
                      "--out", epoch, cfg["epochs"] - 1, ", ".join(map(str, written)), written[0])  # fmt: skip
        else:
            log.error("interrupted before the first epoch ended: no checkpoint was written (runs with datasets, "
                      "init_from or freeze cannot be resumed; train again)")  # fmt: skip
        raise


def _last_epoch(path: Path) -> int:
    """The last epoch that ``metrics.jsonl`` at ``path`` records (-1: none)."""
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return -1
    return rows[-1].get("epoch", -1) if rows else -1


def _single(cfg: dict) -> Path:
    """:func:`run_training` of one dataset and one model (resumable, and under torchrun)."""
    if cfg["distill_from"] and ddp.launched():
        raise ConfigError("option distill_from trains in one process: start it without torchrun")
    out = Path(cfg["out"])
    ckpt = None
    if cfg["resume"]:
        ckpt = load_checkpoint(cfg["resume"])
        recorded = _resumable_config(ckpt, cfg["resume"])
        changes = check_resume(recorded, cfg)
        done = ckpt["epoch"] + 1
        if cfg["epochs"] <= done:
            raise ConfigError(
                f"option epochs: the run of {cfg['resume']} has trained {done} epoch(s), so {cfg['epochs']} "
                f"leaves nothing to do; give more than {done} (--epochs) to train it further"
            )
        if (out / "last.pt").exists() and not (out / "last.pt").samefile(cfg["resume"]):
            raise ConfigError(f"option out: {out} holds another run (last.pt); resume into the checkpoint's folder")
        for key, (old, new) in changes.items():
            log.warning("resuming %s with %s changed from %r to %r", cfg["resume"], key, old, new)
    elif (out / "last.pt").exists():
        raise ConfigError(
            f"option out: {out} already holds a run (last.pt); continue it with --resume {out / 'last.pt'} "
            "or choose another --out"
        )
    # The newest checkpoint of the run, for the message on Ctrl-C: _train updates it.
    last_saved = {"path": cfg["resume"], "epoch": ckpt["epoch"]} if ckpt else {}
    ctx = ddp.setup(cfg["device"])
    try:
        with _quiet_unless_main(ctx):
            return _train(cfg, ckpt, last_saved, ctx)
    except KeyboardInterrupt:
        if last_saved:
            path = last_saved["path"]
            log.error("interrupted; the last checkpoint, after epoch %d, is %s; continue the run with: "
                      "sceneparse train --resume %s", last_saved["epoch"], path, path)  # fmt: skip
        else:
            log.error("interrupted before the first epoch ended: no checkpoint was written")
        raise
    finally:
        ddp.teardown(ctx)


@contextlib.contextmanager
def _quiet_unless_main(ctx: ddp.DistContext):
    """Ranks other than 0 log warnings and errors only: one log per run, not one per process."""
    logger = logging.getLogger("sceneparse")
    level = logger.level
    if not ctx.is_main:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}


def _train(cfg: dict, ckpt: dict | None, last_saved: dict, ctx: ddp.DistContext) -> Path:
    """The run of :func:`run_training` once its options are checked (``ckpt``: the loaded
    checkpoint it resumes, or None) on this process of the run (``ctx``); ``last_saved`` gets
    the path and epoch of each last.pt."""
    revision = code_revision()  # of the code the run starts with, not of the tree at its end
    out = Path(cfg["out"])
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    batch_size = ddp.per_rank_batch(cfg["batch_size"], ctx)
    # Each rank draws its own dropout masks (the augmentations are the samples' own, below); rank 0
    # draws those of a one-process run. The weights start alike everywhere: DistributedDataParallel
    # copies rank 0's to the others.
    seed_everything(cfg["seed"] + ctx.rank)
    device = ctx.device
    progress = cfg["progress"] and ctx.is_main

    kw = _dataset_kwargs(cfg)
    split = "all" if cfg["num_folds"] <= 1 else "train"
    raw_train = build_dataset(cfg["dataset"], split=split, **kw)
    info = raw_train.info
    teacher, train_kw = None, kw
    if cfg["distill_from"]:
        teacher, train_kw = _distillation_teacher(cfg, kw, info, device)
    train_set = build_dataset(
        cfg["dataset"], split=split,
        transform=train_preset(tuple(cfg["crop_size"]), tuple(cfg["scale_range"]), color_jitter=cfg["color_jitter"]),
        **train_kw,
    )  # fmt: skip
    val_set = None if split == "all" else build_dataset(cfg["dataset"], split="val", transform=eval_preset(), **kw)
    if cfg["limit"]:
        for ds in (raw_train, train_set, val_set):
            if ds is not None:
                ds.ids = ds.ids[: cfg["limit"]]
    log.info("train: %d images, validation: %d images", len(train_set), len(val_set) if val_set else 0)

    # One order and one augmentation per sample for any number of processes and workers: each
    # rank loads its slice of every global batch of a one-process run (sceneparse.data.sampling).
    g = torch.Generator().manual_seed(cfg["seed"])
    sampler = GlobalBatchSampler(len(train_set), cfg["batch_size"], ctx.rank, ctx.world_size, g)
    # Not persistent workers: a loader draws its workers' base seed from `g` when it starts its
    # workers, which persistent ones do once per run (once per resume), so a resumed run, or one
    # with workers, would go on with other orders than a run without them.
    train_loader = torch.utils.data.DataLoader(
        SeededSamples(train_set), batch_size=batch_size, sampler=sampler, generator=g, num_workers=cfg["workers"],
    )  # fmt: skip
    val_loader = None
    if val_set:
        shard = ddp.ShardSampler(len(val_set), ctx.rank, ctx.world_size) if ctx.distributed else None
        # its own generator: validating (on extra epochs: the last before a time limit) leaves the
        # global one, and so the dropout masks of the epochs after it, as they were
        val_loader = torch.utils.data.DataLoader(val_set, batch_size=1, sampler=shard, generator=torch.Generator())
    if len(train_loader) == 0:
        per = f" ({batch_size} on each of {ctx.world_size} processes)" if ctx.distributed else ""
        raise ConfigError(f"batch size {cfg['batch_size']}{per} is larger than the {len(train_set)} training images")

    model_args = {"num_classes": info.num_classes, **cfg["model_args"]}
    model = _create_model(cfg, info.num_classes)
    # Data-dependent input statistics (the multiscale nets' U/V mean and deviation) are the
    # model's own business; save_checkpoint stores what its pretrained_cfg() says it needs.
    model_cfg(model)  # fails early, and clearly, for a model that declares no metadata
    model.fit_input_statistics(raw_train)
    log.info("model %s, input normalisation %s", cfg["model"], model_cfg(model).normalization)
    model = model.to(device)
    # `model` is the registered model (checkpoints, validation); `net` what trains: the same
    # modules, wrapped for DistributedDataParallel when there are several processes.
    net = model
    if teacher is not None:  # the training net returns the student's and the teacher's logits
        net = TeacherStudent(model, teacher, model_cfg(model).in_channels, model_cfg(teacher).in_channels)
    if ctx.distributed:
        # batch statistics over the global batch, not each process's share of it
        model = ddp.convert_sync_batchnorm(model, ctx)
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        log.info("DistributedDataParallel over %d processes (%s), batch %d per process, %d in all",
                 ctx.world_size, ctx.backend, batch_size, cfg["batch_size"])  # fmt: skip

    freqs = class_frequencies(raw_train, info.num_classes, info.ignore_index)
    weights = loss_class_weights(freqs, info.class_names, cfg["balance_power"], cfg["class_weight_scale"])
    log.info("class frequencies %s; loss weights %s", freqs.round(4).tolist(),
             None if weights is None else weights.round(decimals=3).tolist())  # fmt: skip
    loss_fn = build_loss(None if weights is None else weights.to(device), info.ignore_index, cfg["label_smoothing"])
    if ctx.distributed:  # the mean over the global batch, as one process would take it
        loss_fn = ddp.GlobalMeanCrossEntropy(loss_fn.weight, info.ignore_index, cfg["label_smoothing"], ctx.world_size)
    if teacher is not None:
        loss_fn = DistillationLoss(loss_fn, info.num_classes, cfg["distill_weight"], cfg["distill_temperature"])
        log.info("distillation from %s: weight %g, temperature %g", cfg["distill_from"], cfg["distill_weight"],
                 cfg["distill_temperature"])  # fmt: skip

    optimizer = build_optimizer(model, cfg["optimizer"], cfg["lr"], cfg["weight_decay"], cfg["momentum"])
    steps_per_epoch = len(train_loader)
    scheduler = build_scheduler(
        optimizer, cfg["schedule"], cfg["epochs"] * steps_per_epoch, cfg["warmup_epochs"] * steps_per_epoch
    )
    amp_dtype = None
    scaler = None
    if device.type == "cuda" and cfg["amp"]:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if amp_dtype == torch.float16:
            scaler = torch.amp.GradScaler("cuda")

    start_epoch, elapsed = 0, 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        planned = ckpt["meta"]["train_config"].get("epochs", cfg["epochs"])
        if planned == cfg["epochs"]:
            load_scheduler_state(scheduler, ckpt["scheduler"])
        else:  # the saved schedule ends at the old length: replan it over the new one
            before = optimizer.param_groups[0]["lr"]
            replay_scheduler(scheduler, ckpt["scheduler"]["last_epoch"])
            now = optimizer.param_groups[0]["lr"]
            log.warning("the learning-rate schedule now spans %d epochs instead of %d: the rate goes on at "
                        "%.4g (it was %.4g)", cfg["epochs"], planned, now, before)  # fmt: skip
        start_epoch, elapsed = ckpt["epoch"] + 1, ckpt.get("elapsed", 0.0)
        torch.set_rng_state(ckpt["rng"]["torch"])
        g.set_state(ckpt["rng"]["loader"])
        ranks = ckpt["rng"].get("ranks") or []
        if len(ranks) == ctx.world_size:  # each rank's generators where it left them
            torch.set_rng_state(ranks[ctx.rank]["torch"])
            random.setstate(ranks[ctx.rank]["python"])
            np.random.set_state(ranks[ctx.rank]["numpy"])
        before = ckpt["meta"].get("training", {}).get("world_size", 1)
        if before != ctx.world_size:
            log.info("the run trained on %d process(es) and goes on with %d: the same global batches and "
                     "augmentations, other dropout masks", before, ctx.world_size)  # fmt: skip
        log.info("resumed from %s at epoch %d", cfg["resume"], start_epoch)

    # Nothing is written before the options, the data and the model have been checked; rank 0
    # alone writes the folder.
    log_path = out / "metrics.jsonl"
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(dict(cfg), sort_keys=False))
        # A resumed run keeps the rows of the epochs its checkpoint holds (copied when it goes on
        # in another folder); a new run starts the file.
        earlier = _metric_rows(Path(cfg["resume"]).parent / "metrics.jsonl", start_epoch) if ckpt else ""
        log_path.write_text(earlier)
    facts = {"world_size": ctx.world_size, "batch_per_process": batch_size, "backend": ctx.backend}
    scores = {}
    t0 = time.perf_counter() - elapsed
    for epoch in range(start_epoch, cfg["epochs"]):
        stats = train_one_epoch(
            net, train_loader, loss_fn, optimizer, scheduler, device, scaler, amp_dtype, epoch,
            cfg["grad_clip"], progress,
        )  # fmt: skip
        # every rank trains on as many images: the mean of the ranks' means is the mean loss
        train_loss = float(ddp.sum_over_ranks(np.array([stats["loss"]]), ctx)[0]) / ctx.world_size
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": train_loss,
               "epoch_seconds": stats["seconds"]}  # fmt: skip
        last = epoch == cfg["epochs"] - 1
        over_time = cfg["time_limit_minutes"] and time.perf_counter() - t0 > 60 * cfg["time_limit_minutes"]
        if ctx.distributed:  # rank 0's clock decides for all, or a rank would wait for the others forever
            over_time = bool(ddp.sum_over_ranks(np.array([int(bool(over_time) and ctx.is_main)]), ctx)[0])
        if val_loader and (last or over_time or (epoch + 1) % max(cfg["eval_every"], 1) == 0):
            # the registered model, not the DDP wrapper: ranks validate shards of different sizes
            ddp.sync_buffers(model, ctx)
            cm, timing = evaluate(model, val_loader, info.num_classes, device, info.ignore_index, progress)
            cm.matrix = ddp.sum_over_ranks(cm.matrix, ctx)
            scores = cm.scores(info.class_names)
            row.update({k: scores[k] for k in ("pixel_accuracy", "mean_class_accuracy", "mean_iou")})
            row["val_seconds_per_image"] = timing["seconds_per_image"]
        row["elapsed_minutes"] = (time.perf_counter() - t0) / 60
        rng = {"torch": torch.get_rng_state(), "loader": g.get_state(), "ranks": ddp.gather_objects(_rng_state(), ctx)}
        if ctx.is_main:
            with log_path.open("a") as f:
                f.write(json_text(row) + "\n")
            log.info("epoch %s", " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in row.items()))  # fmt: skip
            save_checkpoint(
                out / "last.pt", model, cfg["model"], model_args, info, dict(cfg), scores,
                extra={
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch,
                    "elapsed": time.perf_counter() - t0, "rng": rng,
                },
                revision=revision, training=facts,
            )  # fmt: skip
        last_saved.update(path=str(out / "last.pt"), epoch=epoch)
        if over_time:
            log.info("time limit of %.1f minutes reached after epoch %d", cfg["time_limit_minutes"], epoch)
            break
    if ctx.is_main:
        final_metrics = {k: v for k, v in scores.items() if k != "per_class"} | {"per_class": scores.get("per_class")}
        save_checkpoint(out / "final.pt", model.cpu(), cfg["model"], model_args, info, dict(cfg), final_metrics,
                        revision=revision, training=facts)  # fmt: skip
        if scores:
            write_json(out / "val_metrics.json", scores)
    return out
