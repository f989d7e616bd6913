"""One shared multiscale encoder, a classifier head per label set, and the transfer regimes.

``sceneparse train`` comes here when the configuration names several ``datasets`` (one head
per dataset, batches of the datasets shuffled together within each epoch), or an ``init_from``
checkpoint whose encoder starts the run, or ``freeze: encoder`` (only the classifier learns):
the from-scratch / frozen-features / fine-tuned regimes of Zeiler & Fergus's transfer table.

Every head is an ordinary registered model (a :class:`~sceneparse.models.MultiscaleConvNet`)
whose ``pyramid`` and ``encoder`` are the same module objects as the other heads', so each is
saved as an ordinary checkpoint (``final_<dataset>.pt``; ``final.pt`` too for a single
dataset) that ``SceneParser.from_checkpoint``, ``sceneparse evaluate`` and
``tools/export_weights.py`` read as they are.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import torch
import yaml
from torch import nn
from tqdm import tqdm

from sceneparse.errors import ConfigError, InputError

__all__ = [
    "SHARED_PARTS",
    "MultiHeadModel",
    "build_multihead",
    "init_encoder",
    "init_classifier",
    "freeze_encoder",
    "frozen_parameters",
    "head_datasets",
    "run_multitask_training",
]

log = logging.getLogger(__name__)

#: The parts of a model that its heads share, that ``init_from`` copies and ``freeze`` fixes:
#: the input pyramid with its normalisation (buffers) and the encoder.
SHARED_PARTS = ("pyramid", "encoder")
_SHARED_PREFIXES = tuple(f"{p}." for p in SHARED_PARTS)


class MultiHeadModel(nn.Module):
    """Heads (registered segmentation models) that share one pyramid and encoder.

    Args:
        heads: name -> model; every model after the first is given the first one's
            ``pyramid`` and ``encoder`` modules.

    ``forward(x, head)`` returns the logits of head ``head``. Parts frozen by
    :func:`freeze_encoder` stay in eval mode (batch-norm statistics fixed) when the model
    trains.
    """

    def __init__(self, heads: dict[str, nn.Module]) -> None:
        super().__init__()
        if not heads:
            raise ConfigError("a multi-head model needs at least one head")
        first = next(iter(heads.values()))
        for part in SHARED_PARTS:
            if not isinstance(getattr(first, part, None), nn.Module):
                raise ConfigError(f"{type(first).__name__} has no {part!r} to share; heads need a multiscale model "
                                  "(msconvnet, msconvnet_paper, msconvnet_rgbd)")  # fmt: skip
        for model in list(heads.values())[1:]:
            for part in SHARED_PARTS:
                setattr(model, part, getattr(first, part))
        self.heads = nn.ModuleDict(heads)
        self.frozen: tuple[str, ...] = ()

    @property
    def shared(self) -> nn.Module:
        """The first head, whose pyramid and encoder every head uses."""
        return next(iter(self.heads.values()))

    def forward(self, x: torch.Tensor, head: str) -> torch.Tensor:
        return self.heads[head](x)

    def train(self, mode: bool = True):
        super().train(mode)
        for part in self.frozen:
            getattr(self.shared, part).eval()
        return self


def build_multihead(model_name: str, num_classes: dict[str, int], model_args: dict | None = None) -> MultiHeadModel:
    """A :class:`MultiHeadModel` of registered model ``model_name``, a head of ``num_classes[name]``
    classes per name."""
    from sceneparse.registry import create_model

    heads = {}
    for name, k in num_classes.items():
        try:
            heads[name] = create_model(model_name, **{"num_classes": k, **(model_args or {})})
        except TypeError as err:
            raise ConfigError(f"option model_args: {model_args!r} does not fit model {model_name!r} ({err})") from err
    return MultiHeadModel(heads)


def init_encoder(model: nn.Module, path: str | Path) -> list[str]:
    """Copy the pyramid (input normalisation) and encoder of checkpoint ``path`` into ``model``
    (a registered multiscale model, or a :class:`MultiHeadModel`); its classifier is left as it
    is. Returns the names of the copied tensors.

    Raises:
        InputError: a checkpoint of another architecture, or whose shared parts do not fit.
    """
    from sceneparse.engine import load_checkpoint

    target = model.shared if isinstance(model, MultiHeadModel) else model
    ckpt = load_checkpoint(path)
    if not any(k.startswith(_SHARED_PREFIXES) for k in ckpt["state_dict"]):
        raise InputError(f"{path}: holds no {' or '.join(SHARED_PARTS)} weights (model {ckpt['model']!r})")
    return _copy_part(target, ckpt, path, "encoder", shared=True)


def init_classifier(model: nn.Module, path: str | Path, class_names) -> list[str]:
    """Copy the classifier of checkpoint ``path`` into ``model`` (one head), whose classes
    ``class_names`` must be the checkpoint's, in the same order. Returns the copied tensors' names.

    Raises:
        InputError: a checkpoint of other classes, or whose classifier does not fit.
    """
    from sceneparse.engine import load_checkpoint

    ckpt = load_checkpoint(path)
    theirs = list(ckpt.get("meta", {}).get("class_names") or [])
    if theirs != list(class_names):
        raise InputError(f"{path}: its classes {theirs} are not this head's {list(class_names)}; without init_head "
                         "the classifier starts afresh")  # fmt: skip
    return _copy_part(model, ckpt, path, "classifier", shared=False)


def _copy_part(target: nn.Module, ckpt: dict, path, what: str, shared: bool) -> list[str]:
    """Load the tensors of checkpoint ``ckpt`` that belong to the shared parts (``shared``) or
    to the rest (the classifier) into ``target``, after checking that they fit it exactly.
    Returns their names."""

    def part(state: dict) -> dict:
        return {k: v for k, v in state.items() if k.startswith(_SHARED_PREFIXES) == shared}

    state, own = part(ckpt["state_dict"]), part(target.state_dict())
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    bad = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or extra or bad:
        raise InputError(
            f"{path}: its {what} (model {ckpt['model']!r}, arguments {ckpt['model_args']}) does not fit this "
            f"model: missing {missing[:3]}, unexpected {extra[:3]}, other shapes {bad[:3]}"
        )
    target.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=False)
    return sorted(state)


def freeze_encoder(model: MultiHeadModel) -> list[str]:
    """Freeze the shared pyramid and encoder: no gradients, batch-norm statistics fixed (eval
    mode while the model trains). Only the classifiers then learn. Returns the frozen
    parameters' names."""
    names = []
    for part in SHARED_PARTS:
        for name, p in getattr(model.shared, part).named_parameters():
            p.requires_grad_(False)
            names.append(f"{part}.{name}")
    model.frozen = SHARED_PARTS
    return names


def frozen_parameters(model: nn.Module) -> list[str]:
    """Names of ``model``'s parameters that do not learn."""
    return [n for n, p in model.named_parameters() if not p.requires_grad]


# ------------------------------------------------------------------------------ training


def head_datasets(cfg: dict) -> dict[str, dict]:
    """Per dataset of the run, the options its data is read and weighted with: the
    configuration's own fold, folds, target, crop, scale range, tuning split and class-weight
    scales for ``cfg["dataset"]``, each other dataset's defaults (its own folds, fold 0, default
    target, crop size and scale range; no tuning split, no scales)."""
    from sceneparse.config import train_defaults

    names = cfg["datasets"] or [cfg["dataset"]]
    out = {}
    for name in names:
        own = train_defaults(name)
        opts = {k: own.get(k) for k in ("target", "num_folds", "crop_size", "scale_range")}
        opts.update(fold=0, tuning=False, class_weight_scale={})
        if name == cfg["dataset"]:
            keys = ("target", "fold", "num_folds", "crop_size", "scale_range", "tuning", "class_weight_scale")
            opts.update({k: cfg[k] for k in keys})
        out[name] = opts
    return out


def _head_config(cfg: dict, name: str, opts: dict) -> dict:
    """The training configuration a head's checkpoint records: the run's, with this dataset's
    options, so that ``sceneparse evaluate`` reads the split the head was validated on."""
    return {**cfg, "dataset": name, **opts}


def _batch_input(batch: dict, device) -> torch.Tensor:
    x = batch["image"].to(device)
    if "depth" in batch:
        x = torch.cat([x, batch["depth"].to(device)], dim=1)
    return x


def _teacher(cfg: dict, class_names, device) -> nn.Module:
    """The frozen teacher of option ``distill_from`` for the run's own dataset (RGB, as these
    runs are), its predictions averaged over ``distill_tta``'s copies when that is set."""
    from sceneparse.distill import load_teacher
    from sceneparse.models.base import model_cfg

    teacher = load_teacher(cfg["distill_from"], class_names, device, cfg["distill_tta"])[0]
    if model_cfg(teacher).in_channels != 3:
        raise ConfigError(f"option distill_from: {cfg['distill_from']} takes depth; runs with datasets, init_from or "
                          "freeze train on RGB and take RGB teachers only")  # fmt: skip
    log.info("distillation from %s: weight %g, temperature %g", cfg["distill_from"], cfg["distill_weight"],
             cfg["distill_temperature"])  # fmt: skip
    return teacher


def run_multitask_training(cfg: dict) -> Path:
    """Train as ``cfg`` says, with one head per dataset of ``cfg["datasets"]`` (or the single
    ``cfg["dataset"]``), optionally from ``cfg["init_from"]``'s encoder, optionally frozen.

    Each epoch runs every dataset's loader once, their batches shuffled together (seeded), each
    batch through its own head with its own class-weighted loss. Writes ``config.yaml``,
    ``metrics.jsonl`` (a row per epoch: loss and, when validated, scores per dataset; wall-clock
    minutes and the CPU minutes the process spent training, validation excluded: the measure of
    equal training time on a shared machine), after every epoch ``last_<dataset>.pt`` per head, and
    once the schedule is done ``final_<dataset>.pt`` (``final.pt`` too when there is one dataset)
    from them. Runs of this kind do not resume.
    """
    from sceneparse.config import check_train_config
    from sceneparse.data import build_dataset
    from sceneparse.data.presets import eval_preset, train_preset
    from sceneparse.engine import (
        build_optimizer,
        build_scheduler,
        code_revision,
        evaluate,
        json_text,
        resolve_device,
        save_checkpoint,
        seed_everything,
        write_json,
    )
    from sceneparse.losses import build_loss, class_frequencies, distillation_loss, loss_class_weights

    cfg = check_train_config(cfg)
    if cfg["resume"]:
        raise ConfigError("option resume: runs with datasets, init_from or freeze cannot be resumed; start anew")
    out = Path(cfg["out"])
    if any(out.glob("final*.pt")) or any(out.glob("last*.pt")):
        raise ConfigError(f"option out: {out} already holds a run; choose another --out")
    revision = code_revision()
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    seed_everything(cfg["seed"])
    device = resolve_device(cfg["device"])
    from sceneparse.data import dataset_args_for_model

    heads = head_datasets(cfg)
    raw, train_sets, val_sets, kwargs = {}, {}, {}, {}
    for name, opts in heads.items():
        hc = _head_config(cfg, name, opts)
        kw = dataset_args_for_model(hc, in_channels=3, root=cfg["data_root"] if name == cfg["dataset"] else None)[1]
        kwargs[name] = kw
        split = "all" if (opts["num_folds"] or 2) <= 1 else "train"
        raw[name] = build_dataset(name, split=split, **kw)
        aug = train_preset(tuple(opts["crop_size"]), tuple(opts["scale_range"]), color_jitter=cfg["color_jitter"])
        train_sets[name] = build_dataset(name, split=split, transform=aug, **kw)
        val_sets[name] = None if split == "all" else build_dataset(name, split="val", transform=eval_preset(), **kw)
        if cfg["limit"]:
            for ds in (raw[name], train_sets[name], val_sets[name]):
                if ds is not None:
                    ds.ids = ds.ids[: cfg["limit"]]
        log.info("%s: train %d images, validation %d", name, len(train_sets[name]),
                 len(val_sets[name]) if val_sets[name] is not None else 0)  # fmt: skip
    infos = {name: raw[name].info for name in heads}

    model = build_multihead(cfg["model"], {n: i.num_classes for n, i in infos.items()}, cfg["model_args"])
    if getattr(model.shared, "in_channels", 3) != 3:
        raise ConfigError("multi-dataset and transfer training take RGB models (these datasets have no depth)")
    if cfg["init_from"]:
        copied = init_encoder(model, cfg["init_from"])
        log.info("encoder and input normalisation from %s (%d tensors)", cfg["init_from"], len(copied))
        from sceneparse.engine import load_checkpoint
        from sceneparse.train import teacher_saw_validation

        leak = teacher_saw_validation(cfg, load_checkpoint(cfg["init_from"])["meta"].get("train_config") or {})
        if leak:
            log.warning("the model of init_from %s has seen the validation images of this run: %s; the validation "
                        "figures overstate the model (start from one trained on the same fold)",
                        cfg["init_from"], leak)  # fmt: skip
        if cfg["init_head"]:
            copied = init_classifier(model.heads[cfg["dataset"]], cfg["init_from"], infos[cfg["dataset"]].class_names)
            log.info("%s's classifier from %s too (%d tensors)", cfg["dataset"], cfg["init_from"], len(copied))
    else:  # one normalisation for the shared pyramid, from all the training sets
        model.shared.fit_input_statistics(torch.utils.data.ConcatDataset(list(raw.values())))
    if cfg["freeze"] == "encoder":
        log.info("frozen: %d encoder parameters (only the classifiers learn)", len(freeze_encoder(model)))
    model = model.to(device)

    teacher = _teacher(cfg, infos[cfg["dataset"]].class_names, device) if cfg["distill_from"] else None

    losses = {}
    for name, info in infos.items():
        freqs = class_frequencies(raw[name], info.num_classes, info.ignore_index)
        w = loss_class_weights(freqs, info.class_names, cfg["balance_power"], heads[name]["class_weight_scale"])
        losses[name] = build_loss(None if w is None else w.to(device), info.ignore_index, cfg["label_smoothing"])

    g = torch.Generator().manual_seed(cfg["seed"])
    loaders = {
        n: torch.utils.data.DataLoader(ds, batch_size=cfg["batch_size"], shuffle=True, drop_last=True, generator=g,
                                       num_workers=cfg["workers"], persistent_workers=cfg["workers"] > 0)
        for n, ds in train_sets.items()
    }  # fmt: skip
    for n, loader in loaders.items():
        if len(loader) == 0:
            raise ConfigError(f"batch size {cfg['batch_size']} is larger than the {len(train_sets[n])} images of {n}")
    steps = sum(len(x) for x in loaders.values())
    optimizer = build_optimizer(model, cfg["optimizer"], cfg["lr"], cfg["weight_decay"], cfg["momentum"])
    scheduler = build_scheduler(optimizer, cfg["schedule"], cfg["epochs"] * steps, cfg["warmup_epochs"] * steps)

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(dict(cfg), sort_keys=False))
    log_path = out / "metrics.jsonl"
    log_path.write_text("")
    t0, train_cpu = time.perf_counter(), 0.0
    scores: dict[str, dict] = {}
    for epoch in range(cfg["epochs"]):
        order = [n for n, loader in loaders.items() for _ in range(len(loader))]
        order = [order[i] for i in torch.randperm(len(order), generator=g).tolist()]
        iters = {n: iter(loader) for n, loader in loaders.items()}
        model.train()
        c0 = time.process_time()
        total = {n: [0.0, 0] for n in loaders}
        bar = tqdm(order, desc=f"epoch {epoch}", leave=False, disable=not cfg["progress"], dynamic_ncols=True)
        for name in bar:
            batch = next(iters[name])
            x, y = _batch_input(batch, device), batch["label"].to(device)
            logits = model(x, name).float()
            loss = losses[name](logits, y)
            if teacher is not None and name == cfg["dataset"]:  # the teacher knows the run's own classes
                with torch.no_grad():
                    soft = teacher(x).float()
                loss = loss + cfg["distill_weight"] * distillation_loss(logits, soft, cfg["distill_temperature"])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch} ({name}); lower the lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg["grad_clip"])
            optimizer.step()
            scheduler.step()
            total[name][0] += loss.item() * x.shape[0]
            total[name][1] += x.shape[0]
            bar.set_postfix(dataset=name, loss=f"{loss.item():.3f}")
        train_cpu += time.process_time() - c0
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
               "train_loss": {n: s / max(k, 1) for n, (s, k) in total.items()}}  # fmt: skip
        last = epoch == cfg["epochs"] - 1
        over_time = cfg["time_limit_minutes"] and time.perf_counter() - t0 > 60 * cfg["time_limit_minutes"]
        if last or over_time or (epoch + 1) % max(cfg["eval_every"], 1) == 0:
            for name, ds in val_sets.items():
                if ds is None:
                    continue
                loader = torch.utils.data.DataLoader(ds, batch_size=1)
                info = infos[name]
                cm, _ = evaluate(model.heads[name], loader, info.num_classes, device, info.ignore_index,
                                 cfg["progress"], desc=f"validate {name}")  # fmt: skip
                scores[name] = cm.scores(info.class_names)
                row[name] = {k: scores[name][k] for k in ("pixel_accuracy", "mean_class_accuracy", "mean_iou")}
        row["elapsed_minutes"] = (time.perf_counter() - t0) / 60
        row["train_cpu_minutes"] = train_cpu / 60  # CPU time of the process in training, validation excluded
        with log_path.open("a") as f:
            f.write(json_text(row) + "\n")
        log.info("epoch %s", json_text(row))
        for name, info in infos.items():
            head = model.heads[name]
            args = {"num_classes": info.num_classes, **cfg["model_args"]}
            hc = _head_config(cfg, name, heads[name])
            metrics = scores.get(name, {})
            save_checkpoint(out / f"last_{name}.pt", head, cfg["model"], args, info, hc, metrics, revision=revision)
        if over_time:
            log.info("time limit of %.1f minutes reached after epoch %d", cfg["time_limit_minutes"], epoch)
            break
    for name in infos:  # the schedule is done: its last epoch's weights are the run's final ones
        last = out / f"last_{name}.pt"
        if len(infos) == 1:
            shutil.copyfile(last, out / "final.pt")
        last.replace(out / f"final_{name}.pt")
    if scores:
        write_json(out / "val_metrics.json", scores)
    return out
