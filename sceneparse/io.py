"""Reading images and writing labellings, with errors that name the file and the problem."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from sceneparse.errors import InputError, NotFoundError, OutputError

log = logging.getLogger(__name__)

# FFmpeg prints its own errors while OpenCV opens a video ("moov atom not found" for a cut file)
# or probes for an H.264 encoder ("h264_v4l2m2m: can't configure encoder" without a hardware
# one); sceneparse says what went wrong in its own words, so keep only FFmpeg's fatal messages,
# unless the user chose a level. Read when OpenCV first uses FFmpeg.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")

__all__ = [
    "IMAGE_EXTENSIONS",
    "opencv_quiet",
    "atomic_write",
    "per_file_version",
    "read_image",
    "list_images",
    "unique_names",
    "ensure_writable",
    "output_folder",
    "label_image",
    "write_label_png",
    "write_image",
    "write_npz",
]

#: The endings of the files labelling writes for an image (NAME_labels.png, NAME_overlay.jpg).
LABEL_OUTPUT_SUFFIXES = ("_labels.png", "_overlay.jpg")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@contextlib.contextmanager
def opencv_quiet():
    """OpenCV's own log silenced for the block: its warnings while it tries backends and codecs
    ("can't open camera by index", a missing encoder) are not errors; the caller checks the
    result and raises one that names the input."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def unopenable_name(path) -> str | None:
    """Why OpenCV cannot open ``path``, None if it can: a name that is not valid UTF-8 (bytes of
    another encoding, from an old archive or a Windows share), on which OpenCV's Python bindings
    crash the process outright. The reason shows the name with its bad bytes escaped."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
        return f"{shown}: the name is not valid UTF-8 (bytes of another encoding), which OpenCV cannot open: rename it"
    return None


def per_file_version(maxsize: int = 8):
    """Decorator: ``read(path, *args)`` runs once per version of the file (its resolved path and
    modification time) and ``args``, then answers from a cache of ``maxsize`` entries. For files
    that every call would otherwise read again (a parse() with refiner names builds its refiners
    every call); an edited file is read anew. ``cache_info``/``cache_clear`` as functools'."""

    def wrap(read):
        @functools.lru_cache(maxsize=maxsize)
        def cached(path: str, mtime_ns: int, *args):
            return read(path, *args)

        @functools.wraps(read)
        def reader(path, *args):
            path = Path(path).resolve()
            return cached(str(path), path.stat().st_mtime_ns, *args)

        reader.cache_info, reader.cache_clear = cached.cache_info, cached.cache_clear
        return reader

    return wrap


def read_image(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB image from ``path`` (grey and alpha images are converted).

    Raises:
        NotFoundError: no such file.
        InputError: not a file, not an image, or a truncated JPEG or PNG (libjpeg would fill the
            missing part with grey and the image would be labelled as if whole).
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"image not found: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    truncated = _truncation(path)  # before decoding: libjpeg would warn and fill the rest with grey
    if truncated:
        raise InputError(f"{path}: {truncated}: the file is cut short (an interrupted copy or download?)")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        img = _float_image(path)
    if img is None:
        raise InputError(f"{path}: not a readable image (unknown format or corrupt file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _float_image(path: Path) -> np.ndarray | None:
    """A floating-point image (a 32-bit TIFF) with values in [0, 1] as HxWx3 uint8 BGR, which
    ``IMREAD_COLOR`` does not decode; None if it is not one."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype.kind != "f":
        return None
    finite = raw[np.isfinite(raw)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise InputError(f"{path}: a floating-point image with values in [{finite.min():g}, {finite.max():g}]: "
                         "read as colours only in [0, 1]; save it as an 8- or 16-bit image")  # fmt: skip
    img = np.round(np.nan_to_num(raw) * 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR) if img.shape[2] == 4 else img[..., :3]


_JPEG_START, _JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"
_PNG_START, _PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


def _truncation(path: Path) -> str | None:
    """Why the JPEG or PNG at ``path`` is truncated, or None if it is whole (or another format).

    Cheap for whole files: their first and last bytes only (the end-of-image marker, JPEG's
    EOI or PNG's IEND chunk). Files with data after the image (camera trailers) lack the marker
    at the end; for those a decoder that reports truncation (Pillow's) decides.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(max(0, f.seek(0, os.SEEK_END) - 64))
        tail = f.read().rstrip(b"\x00\r\n\t ")
    if head.startswith(_JPEG_START):
        kind, ends = "JPEG", tail.endswith(_JPEG_END)
    elif head.startswith(_PNG_START):
        kind, ends = "PNG", tail.endswith(_PNG_END)
    else:
        return None
    if ends:
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, SyntaxError, ValueError) as err:
        return f"truncated {kind} ({err})"
    return None


def list_images(inputs, exclude: str | Path | None = None) -> list[tuple[Path, Path]]:
    """Expand files and folders (recursively) into (image path, output name) pairs.

    An image's output name is its path relative to the folder given, without the extension
    (``photos/a/0001.jpg`` in ``photos`` -> ``a/0001``), or its stem for a file given by
    itself. Names that clash between inputs are made unique by :func:`unique_names` (parent
    folders are added: ``x/clip``, ``y/clip``), so no output overwrites another, and no renamed
    output can land on the name of another input. A file given twice is labelled once.
    ``exclude``: a folder inside a folder given whose files are left out (the output folder of a
    labelling, so that a second run does not label the first run's outputs).
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if skip is not None and skip == p.resolve():  # labelled into itself: not its own outputs again
                files = [f for f in files if not f.name.endswith(LABEL_OUTPUT_SUFFIXES)]
            elif skip is not None and skip.is_relative_to(p.resolve()):
                files = [f for f in files if not f.resolve().is_relative_to(skip)]
            # an RGB-D frame folder's depth maps (NAME.depth.png beside NAME.jpg) are not photos
            photos = [f for f in files if f.name.lower().split(".")[-2:-1] != ["depth"]]
            if photos and len(photos) < len(files):
                log.info("%s: %d depth image(s) (*.depth.*) left out; give --depth or --stream for RGB-D",
                         p, len(files) - len(photos))  # fmt: skip
                files = photos
            if not files:
                raise InputError(f"{p}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            pairs = [(f, f.relative_to(p).with_suffix("")) for f in files]
        elif p.is_file():
            pairs = [(p, Path(p.stem))]
        else:
            raise NotFoundError(f"input not found: {p}")
        for f, name in pairs:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                found.append((f, name))
    names = unique_names([(f, name) for f, name in found])
    return [(f, Path(n)) for (f, _), n in zip(found, names)]


def unique_names(items: list[tuple[Path, Path]]) -> list[str]:
    """Output names for (path, natural name) pairs, none equal to another.

    Natural names that clash keep their extension where they lie in one folder (``x.jpg``,
    ``x.png``), and get the parent folders of their paths prepended, one at a time, until they
    differ (``a/same``, ``b/same``); a last clash gets ``~N``. Every new name
    is checked against all names, so a renamed output never lands on another input's name.

    Example:
        >>> unique_names([(Path("a/same.jpg"), Path("same")), (Path("b/same.jpg"), Path("same")),
        ...               (Path("c/same_1.jpg"), Path("same_1"))])
        ['a/same', 'b/same', 'same_1']
    """
    names = [n.as_posix() for _, n in items]
    added = [0] * len(items)

    def parents(i: int) -> tuple[str, ...]:
        path, natural = items[i]
        parent = Path(path).absolute().parent
        parts = [q for q in parent.parts if q != parent.anchor]  # never the root: names stay relative
        return tuple(parts[: len(parts) - (len(natural.parts) - 1)]) if len(natural.parts) > 1 else tuple(parts)

    def clashes() -> list[list[int]]:
        groups: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            groups.setdefault(n, []).append(i)
        return [g for g in groups.values() if len(g) > 1]

    for group in clashes():  # same folder, same stem: the extension tells them apart
        dirs = [Path(items[i][0]).absolute().parent for i in group]
        for i, d in zip(group, dirs):
            if dirs.count(d) > 1:
                names[i] += Path(items[i][0]).suffix.lower()
    while groups := clashes():
        grew = False
        for group in groups:
            for i in group:
                up = parents(i)
                if added[i] < len(up):
                    added[i] += 1
                    names[i] = "/".join([*up[-added[i] :], *items[i][1].parts])
                    grew = True
        if not grew:
            break
    taken = set()
    for group in clashes():
        for i in group[1:]:
            n = 1
            while f"{names[i]}~{n}" in names or f"{names[i]}~{n}" in taken:
                n += 1
            names[i] = f"{names[i]}~{n}"
            taken.add(names[i])
    return names


def file_destination(path: str | Path, what: str, suffix: str) -> Path:
    """``path`` as a file to write, checked before any work: an OutputError naming it where a
    folder of that name is in the way (``what`` names the file, ``suffix`` the name to give)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: a folder of that name is in the way of the {what}; give a file name ({suffix})")
    return path


def atomic_write(path: str | Path, write) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``: a
    failed or interrupted write leaves the old file (if any) and no temporary one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def label_image(labels: np.ndarray, palette: np.ndarray):
    """Class indices as an 8-bit palette PIL image: the pixel values are the class indices and
    viewers show the class colours (what :func:`write_label_png` writes; the service sends it)."""
    from PIL import Image

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be HxW, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("labels must lie in [0, 255] to be written as a palette PNG")
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    pal = np.zeros((256, 3), np.uint8)
    pal[: len(palette)] = palette
    img.putpalette(pal.ravel().tolist())
    return img


def write_label_png(path: str | Path, labels: np.ndarray, palette: np.ndarray) -> Path:
    """Write class indices as an 8-bit palette PNG (:func:`label_image`), atomically."""
    img = label_image(labels, palette)
    return atomic_write(path, lambda p: img.save(p, format="PNG"))


def write_image(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image; the format follows the suffix."""
    path = Path(path)

    def write(p):
        if not cv2.imwrite(str(p), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise ValueError(f"could not write {path} (unsupported suffix?)")

    return atomic_write(path, write)


def write_npz(path: str | Path, **arrays) -> Path:
    """Write arrays to a compressed ``.npz``."""
    return atomic_write(path, lambda p: np.savez_compressed(p, **arrays))


@contextlib.contextmanager
def output_folder(folder: str | Path):
    """:func:`ensure_writable` for the length of a command: the folders it had to create are removed
    again if the command leaves nothing in them, so a run that fails (a corrupt input, a model that
    does not load) leaves no empty output folder behind; a folder that was there stays."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    ensure_writable(folder)
    try:
        yield folder
    finally:
        for path in created:
            try:
                path.rmdir()
            except OSError:  # not empty (or gone): keep it and everything above it
                break


def ensure_writable(folder: str | Path) -> Path:
    """Create ``folder`` (and its parents) and check that files can be written in it: one clear
    error before any work, instead of a failure after the model has loaded.

    Raises:
        OutputError: the folder cannot be created or written (permissions, a file in the way,
            a read-only file system).
    """
    import tempfile

    folder = Path(folder)
    reason = unopenable_name(folder)
    if reason:  # every file written in it would go through OpenCV, which crashes on the name
        raise OutputError(f"cannot write to {reason}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sceneparse-write-check-"):
            pass
    except FileExistsError as err:
        raise OutputError(f"cannot write to {folder}: a file of that name is in the way") from err
    except OSError as err:
        raise OutputError(f"cannot write to {folder}: {err.strerror or err}") from err
    return folder
