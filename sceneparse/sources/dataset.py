"""The samples of a labelled dataset as frames carrying their true labels, for the sinks that
score (``metrics``): evaluation is the frame loop with this source and that sink."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sceneparse.errors import ConfigError
from sceneparse.sources.base import Frame, Source, register_source

__all__ = ["DatasetFrames"]


@register_source
class DatasetFrames(Source):
    """Samples ``{"image", "label", "depth"?, "name"?}`` of ``dataset`` as :class:`Frame`.

    Args:
        dataset: a :class:`sceneparse.data.SegmentationDataset` (raw samples, no transform).
        sequences: read it as videos, in frame order, each frame's ``sequence`` set to its
            video's name (the dataset's ``sequences()``: {name: sample indices}), so that the
            temporal memory starts afresh at each video.
    """

    kind = "dataset"
    priority = 1000  # never opened from a path

    def __init__(self, dataset, sequences: bool = False) -> None:
        super().__init__()
        self.dataset = dataset
        if sequences:
            groups = getattr(dataset, "sequences", None)
            if not callable(groups):
                raise ConfigError(f"{type(dataset).__name__} has no video sequences (use a video dataset: camvid)")
            self.order = [(name, i) for name, idx in groups().items() for i in idx]
        else:
            self.order = [(None, i) for i in range(len(dataset))]

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[Frame]:
        for index, (sequence, i) in enumerate(self.order):
            s = self.dataset[i]
            label = np.asarray(s["label"]).astype(np.int64)
            name = str(s.get("name", f"{i:06d}"))
            yield Frame(s["image"], index, float(index), s.get("depth"), name=name, label=label, sequence=sequence)
