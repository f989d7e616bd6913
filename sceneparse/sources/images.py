"""Image files and folders of them (searched recursively), as frames named by their path
relative to the folder given, so that two ``0001.png`` in different folders stay apart.

An unreadable image is reported, kept in ``failed`` and skipped: the other images are still
labelled. An image whose depth map is missing or unreadable comes without depth and the reason
in ``extra["depth_error"]``: RGB-D models skip and report it, RGB models parse it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from sceneparse.errors import InputError, NotFoundError
from sceneparse.io import IMAGE_EXTENSIONS, list_images
from sceneparse.sources.base import Frame, Source, check_name, read_frame_depth, read_frame_image, register_source
from sceneparse.sources.sevenscenes import register_7scenes_file

__all__ = ["ImageFiles", "find_depth", "without_depth_maps"]

log = logging.getLogger(__name__)


def find_depth(image: Path, depth_dir: Path, name: str | Path | None = None) -> Path:
    """The depth map of ``image`` in ``depth_dir``: same stem (``0001.jpg`` -> ``0001.png``), or
    the 7-Scenes naming (``frame-000000.color.jpg`` -> ``frame-000000.depth.png``). ``name``: the
    image's output name (``scene1/0001`` for ``photos/scene1/0001.jpg``): its depth map is looked
    for in the same sub-folder of ``depth_dir`` first (``depth/scene1/0001.png``), so that two
    ``0001.jpg`` of two folders do not share one depth map."""
    stem = image.stem
    parent = Path(name).parent if name is not None else Path()
    folders = [depth_dir / parent, depth_dir] if parent != Path() else [depth_dir]
    for folder in folders:
        for cand in (stem, stem.replace(".color", ".depth"), stem.replace("color", "depth")):
            for ext in (".png", ".tif", ".tiff"):
                if (folder / f"{cand}{ext}").is_file():
                    return folder / f"{cand}{ext}"
    raise NotFoundError(f"{image}: no depth map named like it in {depth_dir}")


def without_depth_maps(items: list[tuple[Path, Path]], depth: str | Path, inputs=()) -> list[tuple[Path, Path]]:
    """``items`` (image path, output name) less the images inside the folder of depth maps
    ``depth`` where it lies inside a folder of ``inputs`` (NYU's ``frames/rgb`` and
    ``frames/depth`` with ``frames`` given): those are depth maps, not photos. A depth folder that
    is a folder given itself (7-Scenes' colour and depth side by side) leaves ``items`` as they are.

    Raises:
        InputError: every image is a depth map.
    """
    inside = Path(depth).resolve()
    roots = [Path(i).resolve() for i in inputs if isinstance(i, (str, Path)) and Path(i).is_dir()]
    if not any(inside != root and inside.is_relative_to(root) for root in roots):
        return items
    photos = [(p, n) for p, n in items if not Path(p).resolve().is_relative_to(inside)]
    if items and not photos:
        raise InputError(f"the images given are all in the depth folder {depth}: give the colour images")
    if len(photos) < len(items):
        log.info("%s: its %d depth map(s) are not labelled as images", depth, len(items) - len(photos))
    return photos


@register_source
class ImageFiles(Source):
    """Still images: files and folders of them, each image a frame of its own (``sequence`` is
    its name, so no temporal memory links two images).

    Args:
        inputs: an image file, a folder (searched recursively) or a list of them.
        depth: RGB-D models: a folder of 16-bit depth PNGs named like the images (see
            :func:`find_depth`), in units of 1/``depth_scale`` metres (millimetres by default).
        exclude: a folder inside a folder given that is not searched (the labelling's output).
    """

    kind = "images"
    priority = 5

    @classmethod
    def accepts(cls, spec) -> bool:
        return Path(str(spec)).suffix.lower() in IMAGE_EXTENSIONS and Path(str(spec)).is_file()

    def __init__(self, inputs, depth: str | Path | None = None, depth_scale: float = 1000.0,
                 exclude: str | Path | None = None) -> None:  # fmt: skip
        super().__init__()
        inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        self.items = list_images(inputs, exclude)
        if depth is not None:
            check_name(depth)
            if not Path(depth).is_dir():
                raise NotFoundError(f"depth folder not found: {depth}")
            self.items = without_depth_maps(self.items, depth, inputs)
        self.depth, self.depth_scale = depth, depth_scale

    @classmethod
    def from_items(cls, items, depth: str | Path | None = None, depth_scale: float = 1000.0) -> ImageFiles:
        """Images already named: (image path, output name) pairs, as :func:`list_images` gives
        them for a whole collection (a distributed worker labels a part of it under the names of
        the whole)."""
        source = cls([], depth, depth_scale)
        source.items = [(Path(path), Path(name)) for path, name in items]
        return source

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Frame]:
        for index, (path, stem) in enumerate(self.items):
            try:
                rgb = read_frame_image(path)
            except (ValueError, FileNotFoundError) as err:
                self.skip(path, err)
                continue
            depth, extra = None, {}
            if self.depth:  # a missing or unreadable depth map is reported by the parse step
                try:
                    depth_path = find_depth(Path(path), Path(self.depth), stem)
                except FileNotFoundError:  # the frame's reports name the image already
                    missing = f"no depth map named like it in {self.depth}"
                    depth, extra = read_frame_depth(None, self.depth_scale, missing)
                else:
                    depth, extra = read_frame_depth(depth_path, self.depth_scale)
            rgb, registered = register_7scenes_file(path, rgb, depth)  # as the 7-Scenes sequence source does
            if registered:
                extra["color_registered"] = True
            name = stem.as_posix()
            yield Frame(rgb, index, float(index), depth, name=name, sequence=name, extra={"path": str(path), **extra})
