"""The objects a worker read last, kept on its disk. The stages after vad read a video's media (the
video, its WAVs) once per chunk, and a worker usually gets a video's chunks one after another: it
downloads each object once, not once per chunk. A copy is known by its bucket, key and ETag, so an
object written again with other bytes is fetched again; a copy in use is never removed."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emofactory.v1 import common_pb2


class LocalCopies:
    def __init__(self, store, folder: Path | str, keep: int = 4):
        """`keep`: copies kept beyond those in use (a video and its two WAVs, and one more)."""
        self.store, self.folder, self.keep = store, Path(folder), keep
        self._lock = threading.Lock()
        self._copies: OrderedDict[tuple[str, str, str], Path] = OrderedDict()  # oldest use first
        self._users: dict[Path, int] = {}

    @contextmanager
    def local_copy(self, ref: common_pb2.ObjectRef) -> Iterator[Path]:
        """A local file with the object's bytes, for the duration of the block."""
        ident = (ref.bucket, ref.key, self.store.etag(ref))
        with self._lock:
            path = self._copies.get(ident)
            if path is not None:
                self._copies.move_to_end(ident)
                self._users[path] = self._users.get(path, 0) + 1
        if path is None:
            path = self._fetch(ref, ident)
        try:
            yield path
        finally:
            with self._lock:
                self._users[path] -= 1
                self._evict()

    def _fetch(self, ref: common_pb2.ObjectRef, ident: tuple[str, str, str]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.store.get_file(ref, self.folder / f"{uuid.uuid4().hex}{Path(ref.key).suffix}")
        with self._lock:
            if ident in self._copies:  # another thread fetched it meanwhile: use theirs
                path.unlink()
                path = self._copies[ident]
            self._copies[ident] = path
            self._users[path] = self._users.get(path, 0) + 1
        return path

    def _evict(self) -> None:
        """Removes the least recently used copies beyond `keep` that nobody uses (under the lock)."""
        idle = [ident for ident, path in self._copies.items() if not self._users.get(path)]
        for ident in idle[: max(0, len(self._copies) - self.keep)]:
            path = self._copies.pop(ident)
            self._users.pop(path, None)
            path.unlink(missing_ok=True)
