"""Evaluation as an output of the frame loop: accuracy against the true labels that frames of a
labelled dataset carry (one confusion matrix), accuracy near class boundaries, temporal
consistency of the labels (flicker against the truth; for unlabelled video the change left
after motion compensation), and the time the parse step took per frame."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from sceneparse.engine import write_json
from sceneparse.metrics import ConfusionMatrix, TemporalConsistency, boundary_band
from sceneparse.sinks.base import Sink, register_sink

__all__ = ["MetricsSink"]


@register_sink
class MetricsSink(Sink):
    """Scores of the labels, in :meth:`summary` (the keys of :func:`sceneparse.evaluate.evaluate`).

    Args:
        boundary_width: the band around true class boundaries whose accuracy is reported.
        temporal: also measure temporal consistency over consecutive frames of each sequence
            (flicker where frames carry labels, the raw change rate always).
        compensate: measure the change after motion compensation by optical flow (unlabelled
            video; costs two flows per frame).
        out: a folder to write the scores to as ``metrics.json`` when the stream ends (``sceneparse
            label --sink metrics``); None: :meth:`summary` only.
    """

    name = "metrics"

    def __init__(self, boundary_width: int = 4, temporal: bool = False, compensate: bool = False,
                 out: str | Path | None = None) -> None:  # fmt: skip
        self.boundary_width, self.temporal, self.compensate = boundary_width, temporal, compensate
        self.out = None if out is None else Path(out)
        self.written: Path | None = None
        self.cm = None
        self.band_correct = self.band_total = 0
        self.seconds: list[float] = []
        self.smoothing_seconds: list[float] = []
        self.sequences: set = set()
        self._sequence = object()
        self.tc = None

    def open(self, info) -> None:
        super().open(info)
        self.cm = ConfusionMatrix(len(info.class_names), info.ignore_index)
        if self.temporal or self.compensate:
            self.tc = TemporalConsistency(info.ignore_index, compensate=self.compensate)

    def write(self, frame, result) -> None:
        if result.seconds is not None:
            self.seconds.append(result.seconds)
            self.smoothing_seconds.append(result.smoothing_seconds or 0.0)
        if frame.sequence != self._sequence:
            self._sequence = frame.sequence
            self.sequences.add(frame.sequence)
            if self.tc is not None:
                self.tc.reset()
        label = frame.label
        if label is not None:
            self.cm.update(torch.from_numpy(result.labels), torch.from_numpy(label))
            band = boundary_band(label, self.boundary_width, self.info.ignore_index)
            self.band_correct += int((result.labels[band] == label[band]).sum())
            self.band_total += int(band.sum())
        if self.tc is not None:
            self.tc.update(result.labels, label, frame.image if self.compensate else None)

    def close(self) -> None:
        if self.out is None or self.cm is None or self.written is not None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / "metrics.json", self.summary())
        self.written = self.out / "metrics.json"

    def summary(self) -> dict:
        nan = math.nan
        out = {
            "images": len(self.seconds),
            "seconds_per_image": float(np.mean(self.seconds)) if self.seconds else nan,
            "seconds_per_image_median": float(np.median(self.seconds)) if self.seconds else nan,
            "device": self.info.device,
        }
        if self.written is not None:
            out["file"] = str(self.written)
        if self.cm is not None and self.cm.matrix.sum():
            out = self.cm.scores(self.info.class_names) | out
            out.update({
                "boundary_accuracy": self.band_correct / self.band_total if self.band_total else nan,
                "boundary_width": self.boundary_width,
                "confusion_matrix": self.cm.matrix.tolist(),
            })  # fmt: skip
        if self.tc is not None:
            tc = self.tc.scores()
            out.update({
                "sequences": len(self.sequences),
                "flicker": tc["flicker"],
                "change_rate": tc["change_rate"],
                "stable_pixels": tc["stable_pixels"],
                "smoother_ms_per_frame": 1000 * float(np.median(self.smoothing_seconds))
                if self.smoothing_seconds else nan,
            })  # fmt: skip
            if self.compensate:
                out["compensated_change"] = tc["compensated_change"]
                out["compensated_pixels"] = self.tc.comp_pixels / self.tc.pixels if self.tc.pixels else nan
        return out
