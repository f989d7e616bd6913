"""A folder of frames: its images in the order of the (last) number in their names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sceneparse.errors import InputError
from sceneparse.io import IMAGE_EXTENSIONS as IMAGE_EXTS
from sceneparse.io import read_image
from sceneparse.sources.base import Frame, Source, frame_number, register_source

__all__ = ["FolderSource"]


@register_source
class FolderSource(Source):
    """Images of a folder as a video, in the order of the last number in their names; the
    timestamp is that number over ``fps`` (or the number itself)."""

    kind = "folder"
    priority = 90  # after the sequence layouts, which are folders too

    @classmethod
    def accepts(cls, spec) -> bool:
        return Path(str(spec)).is_dir()

    def __init__(self, folder: str | Path, fps: float | None = None) -> None:
        super().__init__()
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: not a folder of frames")
        self.files = sorted((p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_EXTS),
                            key=lambda p: frame_number(p.stem))  # fmt: skip
        if not self.files:
            raise InputError(f"{self.folder}: no images ({', '.join(IMAGE_EXTS)})")
        self.fps = fps

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.files):
            number = frame_number(path.stem)[0]
            ts = number / self.fps if self.fps and number >= 0 else float(number if number >= 0 else index)
            yield Frame(read_image(path), index, ts, name=path.stem)
