"""A backup as one file: a tar of the database copy, the keys and the config, and a manifest that vouches for them.

Written whole or not at all: to a hidden name beside the target, synced,
then renamed; any failure (a full disk above all) removes what was begun, and
an existing target is never overwritten. The manifest, the last member, names
every other member with its size and sha256, so a restore reads the archive
through once, checking each member as it is unpacked, and refuses a truncated
or altered file before anything of the backend is touched. Only the names a
backup writes are accepted (no paths, links or devices from a stranger's tar).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..errors import Conflict, Invalid, StorageFull

FORMAT = "pika-backend-backup"
VERSION = 1
MANIFEST = "manifest.json"
DATABASES = {"sqlite": "backend.sqlite3", "postgresql": "database.pgdump"}
CONFIG = "config.json"
KEY_NAME = re.compile(r"keys/[A-Za-z0-9_-]{1,100}\.pem")
MANIFEST_MAX = 1 << 20
CHUNK = 1 << 20


def allowed(name: str) -> bool:
    return name in DATABASES.values() or name == CONFIG or bool(KEY_NAME.fullmatch(name))


SYNC_EVERY = 8 << 20  # bytes written between two flushes of the archive


class _Hashing(io.RawIOBase):
    """A file read through once, its sha256 taken on the way (so the database copy is read once); every
    SYNC_EVERY bytes the archive is flushed to disk, so its writeback is spread out, not one flush of a
    gigabyte at the end that the served backend's own commits would queue behind."""

    def __init__(self, fh, archive):
        self.fh, self.sha, self.archive, self.unsynced = fh, hashlib.sha256(), archive, 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.sha.update(data)
        self.unsynced += len(data)
        if self.unsynced >= SYNC_EVERY:
            self.archive.flush()
            os.fdatasync(self.archive.fileno())
            self.unsynced = 0
        return data


def is_full(exc: BaseException) -> bool:
    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or \
        "disk is full" in str(exc) or "disk I/O error" in str(exc)


def scratch(out: Path, suffix: str) -> Path:
    """A hidden name beside `out`, on its disk, for a part of the backup being made."""
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=suffix)
    os.close(fd)
    os.unlink(name)
    return Path(name)


def check_target(out: Path) -> None:
    if out.exists() or out.is_symlink():
        raise Conflict("backup_exists", f"{out} exists: a backup never overwrites a file")
    if not out.parent.is_dir():
        raise Invalid("invalid_value", f"no folder {out.parent} for --out")


def write(out: Path, manifest: dict, members: dict[str, Path]) -> dict:
    """The archive at `out` (0600) holding `members` (archive name → file) and the manifest; the manifest.

    StorageFull if the disk filled (nothing left behind), Conflict if `out` appeared meanwhile."""
    part = scratch(out, ".part")
    listed: dict[str, dict] = {}
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:", format=tarfile.PAX_FORMAT) as tar:
                tar.copybufsize = CHUNK  # tarfile's 16 KiB would be 75,000 Python round trips a gigabyte
                for name, path in members.items():
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = path.stat().st_size, 0o600, int(os.path.getmtime(path))
                    with open(path, "rb") as fh:
                        hashing = _Hashing(fh, raw)
                        tar.addfile(info, hashing)
                    listed[name] = {"bytes": info.size, "sha256": hashing.sha.hexdigest()}
                manifest = dict(manifest, format=FORMAT, version=VERSION, members=listed)
                data = json.dumps(manifest, indent=1, sort_keys=True).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode, info.mtime = len(data), 0o600, int(manifest.get("taken_at") or 0)
                tar.addfile(info, io.BytesIO(data))
            raw.flush()
            os.fsync(raw.fileno())
        _publish(part, out)
        _sync_folder(out.parent)
    except FileExistsError:
        raise Conflict("backup_exists", f"{out} exists: a backup never overwrites a file") from None
    except OSError as exc:
        if is_full(exc):
            raise StorageFull("storage_full", f"the disk holding {out} is full: no backup was written") from None
        raise
    finally:
        part.unlink(missing_ok=True)
    return manifest


def _publish(part: Path, out: Path) -> None:
    """`part` becomes `out`: a hard link, which unlike a rename never replaces a file that appeared since
    check_target; a rename where the filesystem has no links (a USB stick's FAT)."""
    try:
        os.link(part, out)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        if out.exists():
            raise FileExistsError(str(out)) from None
        os.replace(part, out)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unpack(archive: Path, into: Path) -> dict:
    """Every member of `archive` unpacked into the empty folder `into` and checked; the manifest.

    Invalid (`backup_unreadable`, `backup_altered`, `backup_format`) if the file is not a whole backup of
    ours; the caller removes `into` then."""
    if not archive.is_file():
        raise Invalid("invalid_value", f"no backup file {archive}")
    found: dict[str, dict] = {}
    manifest = None
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for info in tar:
                if info.name in found or (info.name == MANIFEST and manifest is not None):
                    raise Invalid("backup_altered", f"{archive} names {info.name} twice")
                if not info.isreg() or not (allowed(info.name) or info.name == MANIFEST):
                    raise Invalid("backup_format", f"{archive} holds {info.name!r}, which no backup holds")
                source = tar.extractfile(info)
                if info.name == MANIFEST:
                    if info.size > MANIFEST_MAX:
                        raise Invalid("backup_format", "the backup's manifest is too large")
                    manifest = _manifest(source.read(), archive)
                    continue
                found[info.name] = _unpack_one(source, into / info.name, info.size)
    except (tarfile.TarError, EOFError, UnicodeDecodeError) as exc:
        raise Invalid("backup_unreadable", f"{archive} is not a whole backup (truncated or damaged): {exc}") \
            from None
    except OSError as exc:
        if is_full(exc):
            raise StorageFull("storage_full", f"no room to unpack {archive}: nothing was changed") from None
        raise
    if manifest is None:
        raise Invalid("backup_unreadable", f"{archive} has no manifest: truncated, or not a backup")
    if manifest["members"] != found:
        raise Invalid("backup_altered", f"{archive} does not match its manifest (altered or damaged): "
                      + ", ".join(sorted(n for n in set(found) | set(manifest["members"])
                                         if found.get(n) != manifest["members"].get(n))))
    return manifest


def _unpack_one(source, target: Path, size: int) -> dict:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    sha = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    written = 0
    with os.fdopen(fd, "wb") as fh:
        while chunk := source.read(CHUNK):
            sha.update(chunk)
            fh.write(chunk)
            written += len(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    if written != size:
        raise tarfile.ReadError(f"{target.name} ends early")
    return {"bytes": written, "sha256": sha.hexdigest()}


def _manifest(data: bytes, archive: Path) -> dict:
    try:
        manifest = json.loads(data)
    except ValueError:
        raise Invalid("backup_altered", f"{archive}'s manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise Invalid("backup_format", f"{archive} is not a Pika backend backup")
    if manifest.get("version") != VERSION:
        raise Invalid("backup_format", f"{archive} is a backup of format {manifest.get('version')!r}; this "
                      f"program reads format {VERSION}")
    members = manifest.get("members")
    engine = manifest.get("engine")
    if engine not in DATABASES or not isinstance(members, dict) or DATABASES[engine] not in members \
            or not all(allowed(n) and isinstance(m, dict) for n, m in members.items()):
        raise Invalid("backup_altered", f"{archive}'s manifest does not list a backup's members")
    for name in ("backend_id", "epoch"):
        if not isinstance(manifest.get(name), str) or not re.fullmatch(r"[0-9a-f]{1,64}", manifest[name]):
            raise Invalid("backup_altered", f"{archive}'s manifest has no {name}")
    for name in ("taken_at", "schema_version", "feed_head", "attempts"):
        value = manifest.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e15:
            raise Invalid("backup_altered", f"{archive}'s manifest has no {name}")
    return manifest


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
