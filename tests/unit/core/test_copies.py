"""Local copies of stored objects: one download per object's bytes, however many chunks read it."""

from __future__ import annotations

from emofactory.core.copies import LocalCopies
from emofactory.core.store import FileStore


class CountingStore(FileStore):
    def __init__(self, root):
        super().__init__(root)
        self.downloads = 0

    def get_file(self, ref, path):
        self.downloads += 1
        return super().get_file(ref, path)


def test_an_object_is_downloaded_once_until_its_bytes_change(tmp_path):
    store = CountingStore(tmp_path / "store")
    store.ensure_bucket()
    ref = store.put_bytes("v/ingest/source.mp4", b"first", "video/mp4")
    copies = LocalCopies(store, tmp_path / "copies")
    for _ in range(3):
        with copies.local_copy(ref) as path:
            assert path.read_bytes() == b"first"
    assert store.downloads == 1
    store.put_bytes("v/ingest/source.mp4", b"other bytes", "video/mp4")  # the same key, written again
    with copies.local_copy(ref) as path:
        assert path.read_bytes() == b"other bytes"
    assert store.downloads == 2


def test_copies_beyond_keep_are_removed_but_never_one_in_use(tmp_path):
    store = CountingStore(tmp_path / "store")
    store.ensure_bucket()
    refs = [store.put_bytes(f"v{i}/audio/audio.wav", bytes([i]) * 10, "audio/wav") for i in range(4)]
    copies = LocalCopies(store, tmp_path / "copies", keep=1)
    with copies.local_copy(refs[0]) as held:
        for ref in refs[1:]:
            with copies.local_copy(ref) as path:
                assert path.exists()
        assert held.read_bytes() == bytes([0]) * 10  # in use throughout
    assert len(list((tmp_path / "copies").iterdir())) == 1  # only the last one used is kept
