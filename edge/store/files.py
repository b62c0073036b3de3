"""All OS calls of the store: open, write, pread, fsync, rename, unlink, directories.

Owns: file descriptors (an LRU of open fds), ``Durability`` (what a flush made dirty) and its
``SyncToken``s, and the store's use of ``edge.durable`` (atomic replacement, directory fsync,
and the translation of OSError into edge errors: ENOSPC/EDQUOT -> DiskFullError, others ->
StorageIOError).
Must not: know about frames, entries or quotas; import trio. No other store module calls the OS.

Reads use os.pread so no shared file offset is ever moved; appends use O_APPEND + os.writev so
one syscall carries a whole batch of frames.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence, TypeVar

import psutil

from edge import durable
from edge.durable import DISK_FULL_MESSAGE, GONE_ERRNOS  # noqa: F401 - DISK_FULL_MESSAGE: used as files.DISK_FULL_MESSAGE
from edge.errors import StorageIOError


T = TypeVar("T")


def translate(exc: OSError) -> Exception:
    return durable.translate(exc)


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise translate(exc) from exc


def free_bytes(path: Path) -> int:
    with translate_errors():
        return psutil.disk_usage(str(path)).free


class DiskSpace(NamedTuple):
    total: int
    free: int


def disk_space(path: Path) -> DiskSpace:
    """Size and free bytes of the file system holding ``path``."""
    with translate_errors():
        du = psutil.disk_usage(str(path))
    return DiskSpace(du.total, du.free)


class CachedFreeBytes:
    """``free_bytes`` that asks the OS at most every ``max_age_s`` while the disk is roomy.

    A statvfs per record cost ~10 % of a 1 KB batch write. The check before a write is advisory
    (a write that still hits ENOSPC becomes DiskFullError through ``translate``); below
    ``exact_below`` free bytes every call asks the OS again, so the 507 near a full disk is exact.
    """

    def __init__(self, max_age_s: float = 0.25, exact_below: int = 1 << 30):
        self.max_age_s = max_age_s
        self.exact_below = exact_below
        self._cache: dict[str, tuple[float, int]] = {}

    def __call__(self, path: Path) -> int:
        key = str(path)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.max_age_s and hit[1] >= self.exact_below:
            return hit[1]
        free = free_bytes(path)
        self._cache[key] = (now, free)
        return free


FreeBytes = Callable[[Path], int]


# --- plain file operations -------------------------------------------------------------------


def read_file(path: Path) -> bytes | None:
    """Whole file, or None if it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise translate(exc) from exc


def file_size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise translate(exc) from exc


def fsync_dir(path: Path) -> None:
    # Without this a created/renamed/removed name may not survive a power loss.
    with translate_errors():
        durable.fsync_dir(path)


def atomic_write(path: Path, data: bytes) -> None:
    """tmp + fsync + rename + fsync(dir): readers and crashes see the old or the new file."""
    with translate_errors():
        durable.replace_file(path, data, mode=0o644, tmp=path.with_name(path.name + ".tmp"))


def write_state(path: Path, payload: bytes) -> None:
    """A checksummed state file (``edge.durable.seal``: bucket settings, entry markers), durably."""
    with translate_errors():
        durable.write_state(path, payload, mode=0o644, dir_mode=0o777, tmp=path.with_name(path.name + ".tmp"))


def load_state(path: Path, parse: Callable[[bytes], T], *, aside: bool = True
               ) -> tuple[T | None, durable.Damage | None, bool]:
    """``edge.durable.load_state``: (value, damage, checked); a damaged file is set aside."""
    return durable.load_state(path, parse, aside=aside)


def set_aside(path: Path, reason: str) -> durable.Damage:
    """``edge.durable.set_aside``: a damaged file renamed beside itself (kept, synced)."""
    return durable.set_aside(path, reason)


def replace_unsynced(path: Path, data: bytes) -> None:
    """tmp + rename without any fsync: for caches that are validated when read (block indexes).

    After a crash the file may be missing, empty or torn; its reader must detect that (the
    index carries a crc and the size of the data it describes) and rebuild. Costs no device
    flush, unlike ``atomic_write``'s two fsyncs.
    """
    with translate_errors():
        durable.replace_file(path, data, mode=0o644, tmp=path.with_name(path.name + ".tmp"), sync=False)


TRASH_SUFFIX = ".deleted"


def trash(path: Path) -> Path | None:
    """Rename ``path`` to ``<name>.deleted``; None if it does not exist.

    Unlinking a block file frees its extents, ~3 ms for 1 MB on the development VM (a rename:
    ~0.02 ms). Evictions rename inline and leave the unlink to the flusher's worker thread
    (``Durability.empty_trash``); start-up removes trash a crash left behind.
    """
    target = path.with_name(path.name + TRASH_SUFFIX)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise translate(exc) from exc
    return target


def unlink(path: Path) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise translate(exc) from exc


def rename(old: Path, new: Path) -> None:
    with translate_errors():
        os.rename(old, new)
    fsync_dir(new.parent)
    if old.parent != new.parent:
        fsync_dir(old.parent)


def make_dirs(path: Path) -> list[Path]:
    """mkdir -p, durably (``edge.durable.make_dirs``: the parent of each created folder is
    fsynced before this returns); returns the folders created."""
    with translate_errors():
        return durable.make_dirs(path)


def touch(path: Path) -> bool:
    """Create an empty file if missing; True if it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        raise translate(exc) from exc
    os.close(fd)
    return True


def remove_tree(path: Path) -> None:
    with translate_errors():
        shutil.rmtree(path, ignore_errors=False)
    fsync_dir(path.parent)


def list_dir(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise translate(exc) from exc


# --- descriptors -------------------------------------------------------------------------------


def append(fd: int, chunks: Sequence[bytes | memoryview]) -> int:
    """Append all chunks (O_APPEND fd) with as few writev calls as the kernel allows."""
    total = 0
    if len(chunks) <= 1024:
        # The common case: one writev takes everything (no per-chunk memoryviews).
        want = sum(map(len, chunks))
        with translate_errors():
            total = os.writev(fd, chunks)
        if total == want:
            return total
        skip = total
        pending = []
        for c in chunks:
            view = memoryview(c)
            if skip >= len(view):
                skip -= len(view)
                continue
            pending.append(view[skip:])
            skip = 0
    else:
        pending = [memoryview(c) for c in chunks if len(c)]
    with translate_errors():
        while pending:
            n = os.writev(fd, pending[:1024])  # IOV_MAX
            total += n
            while pending and n >= len(pending[0]):
                n -= len(pending[0])
                pending.pop(0)
            if n:
                pending[0] = pending[0][n:]
    return total


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range() if hasattr(os, "fdatasync") else None
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``[offset, offset + length)`` to the device now.

    A hint only (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``; a no-op elsewhere or on
    error): durability still comes from the fdatasync before the answer. While a 10 MB record
    streams in, the disk already works on its first megabytes, so that final fdatasync waits
    only for the tail instead of the whole record.
    """
    if _sync_file_range is not None and length > 0:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def pread(fd: int, offset: int, n: int) -> bytes:
    parts = []
    with translate_errors():
        while n > 0:
            b = os.pread(fd, n, offset)
            if not b:
                break
            parts.append(b)
            offset += len(b)
            n -= len(b)
    return b"".join(parts) if len(parts) != 1 else parts[0]


def pread_into(fd: int, offset: int, view: memoryview) -> int:
    """Fill ``view`` from ``offset`` (fewer bytes only at the end of the file); returns the count.
    No allocation: the caller reuses the buffer (a fresh 1 MiB bytes per pread costs page faults)."""
    got, n = 0, len(view)
    with translate_errors():
        while got < n:
            k = os.preadv(fd, [view[got:]], offset + got)
            if not k:
                break
            got += k
    return got


def truncate(fd: int, size: int) -> None:
    with translate_errors():
        os.ftruncate(fd, size)


def datasync(fd: int) -> None:
    with translate_errors():
        os.fdatasync(fd)


def fd_size(fd: int) -> int:
    with translate_errors():
        return os.fstat(fd).st_size


def dup(fd: int) -> int:
    with translate_errors():
        return os.dup(fd)


def close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


class FdCache:
    """LRU of open read-write fds keyed by path, so thousands of blocks never exhaust fds.

    An evicted fd is closed without fsync: every write already handed a dup of its fd to a
    Durability, which syncs through the dup, so closing ours loses nothing.
    """

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self._fds: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._fds)

    def get(self, path: str | Path, create: bool = False) -> tuple[int, bool]:
        """(fd, created): created is True when the file did not exist before."""
        key = str(path)
        fd = self._fds.get(key)
        if fd is not None:
            self._fds.move_to_end(key)
            return fd, False
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        created = False
        try:
            fd = os.open(key, flags)
        except FileNotFoundError:
            if not create:
                raise StorageIOError(f"Storage I/O error: {key} is missing") from None
            with translate_errors():
                fd = os.open(key, flags | os.O_CREAT, 0o644)
            created = True
        except OSError as exc:
            raise translate(exc) from exc
        self._fds[key] = fd
        while len(self._fds) > self.capacity:
            _, old = self._fds.popitem(last=False)
            close(old)
        return fd, created

    def drop(self, path: Path) -> None:
        fd = self._fds.pop(str(path), None)
        if fd is not None:
            close(fd)

    def drop_under(self, folder: Path) -> None:
        prefix = str(folder) + os.sep
        for key in [k for k in self._fds if k.startswith(prefix)]:
            close(self._fds.pop(key))

    def sync_all(self) -> None:
        for fd in self._fds.values():
            datasync(fd)

    def close_all(self) -> None:
        for fd in self._fds.values():
            close(fd)
        self._fds.clear()


class SyncToken:
    """Told when the Durability carrying it has been synced (or dropped without a sync).

    The store hangs a token on what must wait for a group commit: the blocks a flush published
    into (FIFO must not evict a record before its write is answered) and the folders whose
    removed names a flush promised to sync. ``Durability.sync()`` sets ``ok`` then ``done``
    from the worker thread; the store only reads them (two attribute stores, no lock needed).
    """

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = False
        self.ok = False


class UnsyncedFolders:
    """Removals not durable yet: folders holding removed or trashed names not yet synced, and
    the trash (evicted files renamed to ``<name>.deleted``, see ``trash``) not unlinked yet.

    One rule for every store removal: it is made durable by the group commit, not inline. Every
    Durability built from now on (``cover``) fsyncs these folders too, and a folder is forgotten
    once one of those has synced without error; the first Durability built after a removal also
    takes its trash and unlinks it in the flusher's worker thread, after the fdatasyncs and before
    that folder fsync (``Durability.sync``). So the write that needed the space, and the removal
    itself, are answered only after the names are gone from the disk and the extents are free,
    at the cost of one folder fsync per group commit while a removal is pending (none otherwise)
    and no unlink on the event loop. ``sync_now`` is for the rare callers that cannot wait (a
    compaction that drops a removed block's journal ops, renames, close, start-up).
    """

    def __init__(self) -> None:
        self._dirs: dict[str, list[SyncToken]] = {}   # folder -> tokens of Durabilities covering it
        self._trash: list[str] = []   # trashed files no Durability has taken yet

    def __bool__(self) -> bool:
        return bool(self._dirs)

    def __contains__(self, path: Path) -> bool:
        return str(path) in self._dirs

    def add(self, path: Path, trash: Sequence[Path] = ()) -> None:
        """A name under ``path`` was removed (or renamed to ``trash``, unlinked later)."""
        self._dirs[str(path)] = []   # covers taken before this removal do not count
        self._trash += map(str, trash)

    def cover(self, d: "Durability", token: SyncToken) -> None:
        for key, covers in list(self._dirs.items()):
            if any(t.ok for t in covers):
                del self._dirs[key]
                continue
            covers[:] = [t for t in covers if not t.done]
            d.add_dir(key)
            covers.append(token)
        if self._trash:
            d._trash += self._trash
            self._trash = []

    def sync_now(self, under: Path | None = None) -> None:
        """Unlink the trash and fsync (inline) the folders at or below ``under`` (all without
        it), then forget them."""
        prefix = None if under is None else str(under)

        def inside(key: str) -> bool:
            return prefix is None or key == prefix or key.startswith(prefix + os.sep)

        for t in [t for t in self._trash if inside(t)]:
            unlink(Path(t))
            self._trash.remove(t)
        for key in list(self._dirs):
            if inside(key):
                fsync_dir(Path(key))
                del self._dirs[key]

    def forget_under(self, under: Path) -> None:
        """A removed tree: its folders' names went with it (the removal synced their parent)."""
        prefix = str(under)

        def inside(key: str) -> bool:
            return key == prefix or key.startswith(prefix + os.sep)

        for key in [k for k in self._dirs if inside(k)]:
            del self._dirs[key]
        self._trash = [t for t in self._trash if not inside(t)]


class Durability:
    """What one or more flushes made dirty: dup'd fds to fdatasync and folders to fsync.

    The fds are dups taken at flush time, so a block that is evicted from the LRU, renamed or
    deleted meanwhile is still synced through its inode (or ignored if it is gone). sync() is the
    only method meant for a worker thread; it touches nothing but the fds and paths it holds,
    and its tokens (``SyncToken``: done once synced, ok when nothing failed). A Durability closed
    or dropped without a sync marks its tokens done, not ok.
    """

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self._dirs: set[str] = set()
        self._trash: list[str] = []  # renamed files to unlink before the folders are synced
        self._tokens: list[SyncToken] = []

    @property
    def empty(self) -> bool:
        return not self._fds and not self._dirs and not self._trash

    @property
    def has_trash(self) -> bool:
        return bool(self._trash)

    def add_trash(self, path: Path) -> None:
        self._trash.append(str(path))

    def take_trash(self) -> "Durability":
        """A Durability holding only this one's trash (which this one gives up)."""
        out = Durability()
        out._trash, self._trash = self._trash, []
        return out

    def empty_trash(self) -> None:
        """Unlink the trash (a worker thread may call this; errors are left to start-up's sweep)."""
        trash, self._trash = self._trash, []
        for path in trash:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def add_fd(self, key: str, fd: int) -> None:
        if key not in self._fds:
            self._fds[key] = dup(fd)

    def add_dir(self, path: Path | str) -> None:
        self._dirs.add(str(path))

    def add_token(self, token: SyncToken) -> None:
        self._tokens.append(token)

    def merge(self, other: "Durability") -> None:
        for key, fd in other._fds.items():
            if key in self._fds:
                close(fd)
            else:
                self._fds[key] = fd
        self._dirs |= other._dirs
        self._trash += other._trash
        self._tokens += other._tokens
        other._fds = {}
        other._dirs = set()
        other._trash = []
        other._tokens = []

    def sync(self) -> None:
        fds, dirs, tokens = self._fds, self._dirs, self._tokens
        self._fds, self._dirs, self._tokens = {}, set(), []
        error: Exception | None = None
        try:
            for fd in fds.values():
                try:
                    os.fdatasync(fd)
                except OSError as exc:
                    if exc.errno not in GONE_ERRNOS and error is None:
                        error = translate(exc)
            # Evicted files (renamed away) are unlinked here, off the event loop, and before
            # their folder's fsync below, which makes the rename and the unlink durable at once.
            self.empty_trash()
            for d in sorted(dirs):
                try:
                    fsync_dir(Path(d))
                except Exception as exc:  # noqa: BLE001 - keep syncing the rest, report the first
                    error = error or exc
        finally:
            self.empty_trash()  # (an error above: still never left for the event loop)
            for fd in fds.values():
                close(fd)
            for t in tokens:
                t.ok = error is None
                t.done = True
        if error is not None:
            raise error

    def close(self, ok: bool = False) -> None:
        """Give up without syncing (the trash is still unlinked). ``ok``: nothing here needs a
        sync (it is empty, or the sync policy is none), so its tokens count as synced."""
        for fd in self._fds.values():
            close(fd)
        self._fds = {}
        self.empty_trash()
        for t in self._tokens:
            t.ok = ok
            t.done = True
        self._tokens = []

    def __del__(self) -> None:
        self.close()
