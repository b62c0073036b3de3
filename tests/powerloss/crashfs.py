"""A FUSE file system that forgets, at a power cut, everything that was not synced.

What it models (POSIX's promise, and no more): a file's bytes and size are on the device after
``fsync``/``fdatasync`` of that file; a name in a folder (create, mkdir, rename, link, unlink,
rmdir) is on the device after ``fsync`` of that folder. Everything else lives in the "page
cache" and is lost at the cut. That is stricter than ext4 with its journal, and it is exactly
what edge promises to survive on any POSIX file system (f2fs, exFAT on SD cards).

Why FUSE rather than a recorded trace of system calls replayed up to a cut point: the kernel
resolves paths, ``*at()`` calls, dup'd descriptors, ``O_APPEND`` offsets and renames over open
files for us, so nothing edge (or a library it uses) does can slip past the model unrecorded;
a trace would have to re-implement all of that and would silently miss what it does not parse.
The cost (every call crosses into Python) is fine for tests.

How it is used (``harness.CrashDisk``): ``python -m tests.powerloss.crashfs IMAGE MOUNT`` loads
the folder IMAGE (the "device": everything in it is durable) into memory and mounts it at
MOUNT. It then reads commands on stdin, one a line, and answers on stdout:

    cut OUT [SEED]   freeze: from now on every call fails with EIO (the power is gone), write
                     what was durable to the folder OUT (the device after the cut) -> "cut N"
                     (N: files written). With SEED, "torn" mode: each file that had unsynced
                     appends keeps a random part of them (the kernel had written some pages
                     back), the way a real device tears a file; names stay strict.
    stats            -> "stats <json>" (calls counted by kind)
    quit             unmount and exit

It is single-threaded (``nothreads``): the kernel queues calls, so the state at the cut is one
consistent moment. Hard links keep one inode for several names (``link.key`` is made by link).
"""

from __future__ import annotations

import errno
import json
import os
import random
import stat
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import mfusepy as fuse


class Inode:
    __slots__ = ("ino", "mode", "uid", "gid", "atime", "mtime", "ctime", "data", "synced", "entries",
                 "synced_entries", "synced_seq", "target", "nlink")

    def __init__(self, ino: int, mode: int):
        self.ino, self.mode = ino, mode
        self.uid = self.gid = 0
        self.atime = self.mtime = self.ctime = time.time()
        self.data = bytearray()                 # files: live bytes
        self.synced = b""                       # files: bytes on the device
        self.entries: dict[str, int] = {}       # folders: live names
        self.synced_entries: dict[str, int] = {}  # folders: names on the device
        self.synced_seq = 0                     # when the folder was last synced (order of fsyncs)
        self.target = ""                        # symlinks
        self.nlink = 1

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


def _err(code: int) -> fuse.FuseOSError:
    return fuse.FuseOSError(code)


class CrashFS(fuse.Operations):
    use_ns = True
    flag_nopath = True        # calls on an open file come by handle (the name may be gone)
    flag_nullpath_ok = True

    def __init__(self, image: Path):
        self.lock = threading.RLock()
        self.inodes: dict[int, Inode] = {}
        self.handles: dict[int, int] = {}       # fh -> ino
        self.next_ino = 1
        self.next_fh = 1
        self.seq = 0
        self.dead = False
        self.calls: Counter[str] = Counter()
        self.root = self._new(stat.S_IFDIR | 0o755)
        self._load(Path(image), self.root)

    # --- loading the device image (everything in it is durable) -------------------------

    def _new(self, mode: int) -> Inode:
        node = Inode(self.next_ino, mode)
        self.inodes[node.ino] = node
        self.next_ino += 1
        return node

    def _load(self, folder: Path, into: Inode) -> None:
        seen: dict[tuple[int, int], int] = {}
        for path in sorted(folder.iterdir()):
            st = path.lstat()
            key = (st.st_dev, st.st_ino)
            if key in seen and not stat.S_ISDIR(st.st_mode):
                ino = seen[key]
                self.inodes[ino].nlink += 1
            else:
                node = self._new(st.st_mode)
                node.mtime = st.st_mtime
                if stat.S_ISDIR(st.st_mode):
                    self._load(path, node)
                elif stat.S_ISLNK(st.st_mode):
                    node.target = os.readlink(path)
                else:
                    node.data = bytearray(path.read_bytes())
                    node.synced = bytes(node.data)
                ino = seen[key] = node.ino
            into.entries[path.name] = ino
        into.synced_entries = dict(into.entries)

    # --- the device after a cut -----------------------------------------------------------

    def cut(self, out: Path, seed: int | None) -> int:
        with self.lock:
            self.dead = True
            rng = random.Random(seed) if seed is not None else None
            chosen = self._durable_places()
            written: dict[int, Path] = {}
            count = 0
            for rel, ino in sorted(chosen.items(), key=lambda kv: kv[0]):
                node = self.inodes[ino]
                dst = out / rel
                if node.is_dir:
                    dst.mkdir(parents=True, exist_ok=True)
                    continue
                dst.parent.mkdir(parents=True, exist_ok=True)
                if stat.S_ISLNK(node.mode):
                    os.symlink(node.target, dst)
                elif ino in written:
                    os.link(written[ino], dst)
                else:
                    dst.write_bytes(self._device_bytes(node, rng))
                    os.chmod(dst, stat.S_IMODE(node.mode))
                    written[ino] = dst
                count += 1
            out.mkdir(parents=True, exist_ok=True)
            return count

    def _durable_places(self) -> dict[str, int]:
        """Relative path -> inode of everything reachable through synced names.

        A folder renamed between two folders and synced in only one of them would be reachable
        twice in this model (no real device can show one folder under two names): the place
        whose parent was synced last wins.
        """
        places: dict[str, int] = {}
        dir_place: dict[int, tuple[int, str]] = {}

        def walk(node: Inode, rel: str) -> None:
            for name, ino in sorted(node.synced_entries.items()):
                child = self.inodes.get(ino)
                if child is None:
                    continue
                path = f"{rel}/{name}" if rel else name
                if child.is_dir:
                    prev = dir_place.get(ino)
                    if prev is not None:
                        if prev[0] >= node.synced_seq:
                            continue
                        for p in [p for p in places if p == prev[1] or p.startswith(prev[1] + "/")]:
                            del places[p]
                    dir_place[ino] = (node.synced_seq, path)
                    places[path] = ino
                    walk(child, path)
                else:
                    places[path] = ino

        walk(self.root, "")
        return places

    def _device_bytes(self, node: Inode, rng: random.Random | None) -> bytes:
        synced = node.synced
        if rng is None or len(node.data) <= len(synced) or node.data[:len(synced)] != synced:
            return synced
        if rng.random() < 0.5:   # some of the unsynced appended pages reached the device
            return bytes(node.data[:rng.randrange(len(synced), len(node.data) + 1)])
        return synced

    # --- helpers ----------------------------------------------------------------------------

    def _check(self, kind: str) -> None:
        self.calls[kind] += 1
        if self.dead:
            raise _err(errno.EIO)

    def _lookup(self, path: str) -> Inode:
        node = self.root
        for part in filter(None, path.split("/")):
            if not node.is_dir:
                raise _err(errno.ENOTDIR)
            ino = node.entries.get(part)
            if ino is None:
                raise _err(errno.ENOENT)
            node = self.inodes[ino]
        return node

    def _parent(self, path: str) -> tuple[Inode, str]:
        head, _, name = path.rstrip("/").rpartition("/")
        parent = self._lookup(head or "/")
        if not parent.is_dir:
            raise _err(errno.ENOTDIR)
        return parent, name

    def _node(self, path: str | None, fh: int | None) -> Inode:
        if fh is not None and fh in self.handles:
            return self.inodes[self.handles[fh]]
        if path is None:
            raise _err(errno.EBADF)
        return self._lookup(path)

    def _open_handle(self, node: Inode) -> int:
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = node.ino
        return fh

    def _drop_name(self, parent: Inode, name: str) -> None:
        ino = parent.entries.pop(name)
        node = self.inodes[ino]
        node.nlink -= 1
        node.ctime = time.time()

    # --- FUSE operations ------------------------------------------------------------------

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        with self.lock:
            self._check("getattr")
            node = self._node(path, fh)
            size = len(node.data) if not node.is_dir else 4096
            if stat.S_ISLNK(node.mode):
                size = len(node.target)
            ns = lambda t: int(t * 1e9)   # noqa: E731
            return {"st_mode": node.mode, "st_nlink": node.nlink + (1 if node.is_dir else 0), "st_size": size,
                    "st_uid": node.uid, "st_gid": node.gid, "st_atime": ns(node.atime),
                    "st_mtime": ns(node.mtime), "st_ctime": ns(node.ctime), "st_ino": node.ino,
                    "st_blocks": (size + 511) // 512, "st_blksize": 4096}

    def readdir(self, path: str | None, fh: int) -> list[str]:
        with self.lock:
            self._check("readdir")
            node = self._node(path, fh)
            return [".", "..", *node.entries]

    def opendir(self, path: str) -> int:
        with self.lock:
            self._check("opendir")
            node = self._lookup(path)
            if not node.is_dir:
                raise _err(errno.ENOTDIR)
            return self._open_handle(node)

    def releasedir(self, path: str | None, fh: int) -> int:
        with self.lock:
            self.handles.pop(fh, None)
            return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        with self.lock:
            self._check("fsyncdir")
            node = self._node(path, fh)
            self.seq += 1
            node.synced_entries = dict(node.entries)
            node.synced_seq = self.seq
            return 0

    def mkdir(self, path: str, mode: int) -> int:
        with self.lock:
            self._check("mkdir")
            parent, name = self._parent(path)
            if name in parent.entries:
                raise _err(errno.EEXIST)
            node = self._new(stat.S_IFDIR | (mode & 0o7777))
            parent.entries[name] = node.ino
            parent.mtime = time.time()
            return 0

    def rmdir(self, path: str) -> int:
        with self.lock:
            self._check("rmdir")
            parent, name = self._parent(path)
            node = self._lookup(path)
            if not node.is_dir:
                raise _err(errno.ENOTDIR)
            if node.entries:
                raise _err(errno.ENOTEMPTY)
            self._drop_name(parent, name)
            return 0

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        with self.lock:
            self._check("create")
            parent, name = self._parent(path)
            if name in parent.entries:
                node = self.inodes[parent.entries[name]]
            else:
                node = self._new(stat.S_IFREG | (mode & 0o7777))
                parent.entries[name] = node.ino
                parent.mtime = time.time()
            return self._open_handle(node)

    def open(self, path: str, flags: int) -> int:
        with self.lock:
            self._check("open")
            node = self._lookup(path)
            if flags & os.O_TRUNC:
                node.data = bytearray()
            return self._open_handle(node)

    def release(self, path: str | None, fh: int) -> int:
        with self.lock:
            self.handles.pop(fh, None)
            return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0   # close() is not a sync

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        with self.lock:
            self._check("read")
            node = self._node(path, fh)
            return bytes(node.data[offset:offset + size])

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        with self.lock:
            self._check("write")
            node = self._node(path, fh)
            if offset > len(node.data):
                node.data.extend(b"\0" * (offset - len(node.data)))
            node.data[offset:offset + len(data)] = data
            node.mtime = time.time()
            return len(data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        with self.lock:
            self._check("truncate")
            node = self._node(path, fh)
            if length < len(node.data):
                del node.data[length:]
            else:
                node.data.extend(b"\0" * (length - len(node.data)))
            node.mtime = time.time()
            return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        with self.lock:
            self._check("fsync")
            node = self._node(path, fh)
            node.synced = bytes(node.data)
            return 0

    def unlink(self, path: str) -> int:
        with self.lock:
            self._check("unlink")
            parent, name = self._parent(path)
            if name not in parent.entries:
                raise _err(errno.ENOENT)
            if self.inodes[parent.entries[name]].is_dir:
                raise _err(errno.EISDIR)
            self._drop_name(parent, name)
            parent.mtime = time.time()
            return 0

    def rename(self, old: str, new: str) -> int:
        with self.lock:
            self._check("rename")
            op, oname = self._parent(old)
            np_, nname = self._parent(new)
            if oname not in op.entries:
                raise _err(errno.ENOENT)
            moving = self.inodes[op.entries[oname]]
            if moving.is_dir and (new + "/").startswith(old.rstrip("/") + "/"):
                raise _err(errno.EINVAL)
            if nname in np_.entries:
                target = self.inodes[np_.entries[nname]]
                if target.ino == moving.ino:
                    return 0
                if target.is_dir:
                    if not moving.is_dir:
                        raise _err(errno.EISDIR)
                    if target.entries:
                        raise _err(errno.ENOTEMPTY)
                elif moving.is_dir:
                    raise _err(errno.ENOTDIR)
                self._drop_name(np_, nname)
            del op.entries[oname]
            np_.entries[nname] = moving.ino
            op.mtime = np_.mtime = moving.ctime = time.time()
            return 0

    def link(self, target: str, source: str) -> int:
        with self.lock:
            self._check("link")
            node = self._lookup(source)
            parent, name = self._parent(target)
            if name in parent.entries:
                raise _err(errno.EEXIST)
            parent.entries[name] = node.ino
            node.nlink += 1
            return 0

    def symlink(self, target: str, source: str) -> int:
        with self.lock:
            self._check("symlink")
            parent, name = self._parent(target)
            if name in parent.entries:
                raise _err(errno.EEXIST)
            node = self._new(stat.S_IFLNK | 0o777)
            node.target = source
            parent.entries[name] = node.ino
            return 0

    def readlink(self, path: str) -> str:
        with self.lock:
            self._check("readlink")
            return self._lookup(path).target

    def chmod(self, path: str | None, mode: int) -> int:
        with self.lock:
            self._check("chmod")
            node = self._lookup(path or "/")
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
            return 0

    def chown(self, path: str | None, uid: int, gid: int) -> int:
        with self.lock:
            self._check("chown")
            node = self._lookup(path or "/")
            if uid != -1 & 0xFFFFFFFF and uid >= 0:
                node.uid = uid
            if gid != -1 & 0xFFFFFFFF and gid >= 0:
                node.gid = gid
            return 0

    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> int:
        with self.lock:
            self._check("utimens")
            node = self._lookup(path or "/")
            now = time.time()
            node.atime, node.mtime = (times[0] / 1e9, times[1] / 1e9) if times else (now, now)
            return 0

    def access(self, path: str, amode: int) -> int:
        with self.lock:
            self._check("access")
            self._lookup(path)
            return 0

    def statfs(self, path: str) -> dict[str, int]:
        used = sum(len(n.data) for n in self.inodes.values()) // 4096
        total = 1 << 22   # 16 GiB of 4 KiB blocks
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": total, "f_bfree": total - used,
                "f_bavail": total - used, "f_files": 1 << 20, "f_ffree": (1 << 20) - len(self.inodes),
                "f_namemax": 255}


def _control(fs: CrashFS, mountpoint: str) -> None:
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "cut":
            n = fs.cut(Path(words[1]), int(words[2]) if len(words) > 2 else None)
            print(f"cut {n}", flush=True)
        elif words[0] == "stats":
            with fs.lock:
                print("stats " + json.dumps(dict(fs.calls)), flush=True)
        elif words[0] == "quit":
            break
    fs.dead = True
    os.system(f"fusermount3 -u -z {mountpoint} >/dev/null 2>&1 || fusermount -u -z {mountpoint} >/dev/null 2>&1")


def main() -> None:
    image, mountpoint = Path(sys.argv[1]), sys.argv[2]
    fs = CrashFS(image)
    threading.Thread(target=_control, args=(fs, mountpoint), daemon=True).start()
    print("ready", flush=True)
    fuse.FUSE(fs, mountpoint, foreground=True, nothreads=True, hard_remove=True)


if __name__ == "__main__":
    main()
