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

Each dataset module declares where its files are and how they install (its
:class:`DatasetSource`, with an ``install`` function built from :class:`Archive`,
:func:`top_folder` and :func:`require_members`); this module is the machinery that every one
of them shares, and looks the source up in the registry by name.

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
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from tqdm import tqdm

from sceneparse.data.base import data_root
from sceneparse.data.registry import DatasetSource, RemoteFile, get_dataset_spec, list_datasets
from sceneparse.errors import InputError, NotFoundError
from sceneparse.io import ensure_writable

__all__ = [
    "RemoteFile",
    "DatasetSource",
    "SOURCES",
    "Archive",
    "top_folder",
    "require_members",
    "download",
    "prepare",
    "fetch",
    "sha256_of",
    "status",
    "DatasetState",
    "inventory",
]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- archives


class Archive:
    """Read-only view of a zip or tar archive, or of a folder, with safe member names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path if path.is_dir() else None
        self.zip = self.tar = None
        if self.folder is None:
            if zipfile.is_zipfile(path):
                try:
                    self.zip = zipfile.ZipFile(path)
                except (zipfile.BadZipFile, OSError, EOFError) as err:
                    raise InputError(f"{path}: not a readable zip archive ({err})") from err
            else:
                try:
                    self.tar = tarfile.open(path, "r:*")
                except (tarfile.TarError, OSError, EOFError) as err:
                    raise InputError(f"{path}: not a readable zip or tar archive ({err})") from err
        self.names = self._names()

    def _names(self) -> list[str]:
        if self.folder is not None:
            return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())
        try:
            if self.zip is not None:
                names = [i.filename for i in self.zip.infolist() if not i.is_dir()]
            else:
                names = [m.name for m in self.tar.getmembers() if m.isfile()]
                # tarfile ends its listing quietly at a damaged header: read the compressed stream to
                # its checksum, or a damaged archive would be listed as a smaller one
                while self.tar.fileobj.read(1 << 20):
                    pass
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
            raise InputError(f"{self.path}: truncated or corrupt archive ({err})") from err
        for name in names:
            p = PurePosixPath(name)
            if p.is_absolute() or ".." in p.parts:
                raise InputError(f"{self.path}: unsafe member path {name!r} (absolute or with '..')")
        return names

    def verify(self, progress: bool = True) -> None:
        """Read every member through, so that a truncated or corrupt archive fails now."""
        if self.folder is not None:
            return
        try:
            if self.zip is not None:
                bad = self.zip.testzip()
                if bad is not None:
                    raise InputError(f"{self.path}: corrupt archive member {bad} (CRC mismatch)")
            else:
                for m in tqdm(self.tar, desc=f"checking {self.path.name}", unit="file", disable=not progress):
                    if m.isfile():
                        f = self.tar.extractfile(m)
                        while f.read(1 << 20):
                            pass
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
            raise InputError(f"{self.path}: truncated or corrupt archive ({err})") from err

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
                raise InputError(f"{self.path}: truncated or corrupt archive at {name} ({err})") from err


def top_folder(archive: Archive, marker: str, what: str) -> str:
    """The archive folder (with trailing '/', or '') that holds ``marker``."""
    hits = archive.find(marker)
    if not hits:
        raise InputError(f"{archive.path}: no {marker} inside: not the {what} layout")
    return hits[0][: -len(marker)]


def require_members(archive: Archive, prefix: str, checks: dict[str, Callable[[str], bool]], what: str) -> None:
    for label, ok in checks.items():
        if not any(ok(n[len(prefix) :]) for n in archive.names if n.startswith(prefix)):
            raise InputError(f"{archive.path}: no {label} under {prefix or 'the top'}: not the {what} layout")


class _Sources(Mapping):
    """{name: DatasetSource} of every registered dataset, read from the registry on each use."""

    def __getitem__(self, name: str) -> DatasetSource:
        if name not in list_datasets():
            raise KeyError(name)
        return get_dataset_spec(name).source

    def __iter__(self) -> Iterator[str]:
        return iter(list_datasets())

    def __len__(self) -> int:
        return len(list_datasets())


#: Download sources by dataset name: a view of the registry (each dataset module declares its own).
SOURCES: Mapping[str, DatasetSource] = _Sources()


def _source(name: str) -> DatasetSource:
    return get_dataset_spec(name).source


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
    the part and raises InputError, a ValueError); the file appears at ``dest`` only complete and verified.
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
        raise InputError(f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {digest}; "
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
        raise NotFoundError(f"source not found: {source}")
    root = Path(root) if root else data_root()
    dest = root / src.dest
    if dest.exists() and not force:
        raise FileExistsError(f"{dest} already exists; pass force (--force) to replace it")
    ensure_writable(root)  # one clear OutputError now, not a traceback after reading the archive
    if sha256 and source.is_file():
        digest = sha256_of(source)
        if digest != sha256.lower():
            raise InputError(f"checksum mismatch for {source}: expected sha256 {sha256.lower()}, got {digest}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=root))
    # mkdtemp makes a private (0700) folder, and the rename would keep that: give the dataset
    # the mode any folder made here gets, so that others can read it as the umask allows.
    os.chmod(tmp, 0o777 & ~_umask())
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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_with_loader(name: str, path: Path) -> None:
    """The installed copy must read with the dataset's own loader."""
    spec = get_dataset_spec(name)
    ds = spec.source.check(path) if spec.source.check else spec.reader(root=path, split="all")
    ds[0]  # the first sample decodes
    log.info("%s: %d samples in split %r", path, len(ds), ds.split)


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
    ensure_writable(root)
    cache = root / ".downloads" / name
    paths, reused = [], []
    for i, f in enumerate(src.files):
        file_url, file_sha = (url or f.url, sha256 or f.sha256) if i == 0 else (f.url, f.sha256)
        target = cache / f.filename
        origin = target.with_name(target.name + ".url")  # the address the cached file and its part came from
        recorded = origin.read_text().strip() if origin.is_file() else f.url  # older caches: the official one
        same = recorded == file_url
        if not same:  # another address: neither the file nor a part of it is that address's
            target.unlink(missing_ok=True)
            target.with_name(target.name + ".part").unlink(missing_ok=True)
        if target.is_file() and file_sha and sha256_of(target) == file_sha.lower():
            log.info("using %s from an earlier download (sha256 verified)", target)
            reused.append(target)
        elif target.is_file() and not file_sha and not force:
            log.info("using %s from an earlier download of %s (--force downloads it again)", target, file_url)
            reused.append(target)
        else:
            target.unlink(missing_ok=True)
            cache.mkdir(parents=True, exist_ok=True)
            origin.write_text(file_url + "\n")
            download(file_url, target, file_sha, progress=progress, resume=same)
        paths.append(target)
    try:
        return prepare(name, paths[0] if len(paths) == 1 else cache, root, progress=progress, force=force)
    except InputError as err:  # an archive that does not open or has the wrong layout: not kept for next time
        bad = [p for p in paths if str(p) in str(err)] or (paths if len(paths) == 1 else [])
        if not bad:
            raise
        moved = []
        for p in bad:
            aside = p.with_name(p.name + ".bad")
            os.replace(p, aside)
            moved.append(f"{p} -> {aside}")
        what = "cached download" if set(bad) & set(reused) else "download"
        raise InputError(
            f"{err}; the {what} was moved aside ({', '.join(moved)}): run the command again to "
            "download it anew, or give --url of another mirror"
        ) from err


def status(root: str | Path | None = None) -> list[tuple[str, str, bool, str]]:
    """(name, url, installed?, folder) of every known dataset; :func:`inventory` says more."""
    return [(d.name, d.url, d.state == "installed", d.path) for d in inventory(root)]


class DatasetState(NamedTuple):
    """What is installed of one dataset under the data root.

    ``state`` is "installed" (what the reader reads is there), "partial" (the dataset's folder
    holds something else, e.g. NYU's per-frame copy without the labelled set) or "missing";
    ``present`` lists the entries of its folder, ``missing`` what the reader looks for and lacks.
    """

    name: str
    url: str
    state: str
    path: str
    present: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def inventory(root: str | Path | None = None) -> list[DatasetState]:
    """The :class:`DatasetState` of every known dataset under ``root`` (default: the data root)."""
    root = Path(root) if root else data_root()
    out = []
    for name, s in SOURCES.items():
        folder = root / s.dest
        found = sorted(folder.glob(s.marker)) if folder.is_dir() else []
        url = s.files[0].url
        if found:
            out.append(DatasetState(name, url, "installed", str(found[0])))
            continue
        present = tuple(
            p.name + ("/" if p.is_dir() else "")
            for p in sorted(folder.iterdir() if folder.is_dir() else ())
            if not p.name.startswith(".")
        )
        state = "partial" if present else "missing"
        out.append(DatasetState(name, url, state, str(folder), present, (s.marker,)))
    return out
