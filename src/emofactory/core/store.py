"""Object store on the `minio` client. Keys are deterministic (`<video_id>/<stage>/<name>`) and
validated so that no id or name can escape its prefix."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError

from emofactory.core.config import StoreConfig
from emofactory.core.errors import InvalidRequest, PermanentError, TransientError
from emofactory.v1 import common_pb2

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")


def key_part(value: str, field: str = "key") -> str:
    """One path component: letters, digits, '.', '_', '-'; never '..' or empty."""
    if not _PART.fullmatch(value or "") or ".." in value:
        raise InvalidRequest(field, f"{value!r} is not a safe key component (letters, digits, . _ -)")
    return value


def object_key(video_id: str, stage: str, *names: str) -> str:
    """`<video_id>/<stage>/<name>[/<name>...]`, each part checked."""
    parts = [key_part(video_id, "video_id"), key_part(stage, "stage")]
    return "/".join(parts + [key_part(name, "name") for name in names])


def check_key(key: str, field: str = "key") -> str:
    """A stored key: safe components joined by '/'."""
    for part in (key or "").split("/"):
        key_part(part, field)
    return key


def check_ref(ref: common_pb2.ObjectRef, field: str, what: str) -> None:
    """A request's reference to a stored object: present, and a safe key (`field` names it in errors)."""
    if not ref.key:
        raise InvalidRequest(f"{field}.key", f"required: {what}")
    check_key(ref.key, f"{field}.key")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri or "")
    if not match:
        raise InvalidRequest("s3_uri", f"{uri!r} is not of the form s3://bucket/key")
    return match["bucket"], check_key(match["key"], "s3_uri")


def readable_bucket(bucket: str, own: str, others: tuple[str, ...], field: str = "bucket") -> str:
    """Services read their own bucket, and other buckets only where the operator listed them."""
    if bucket != own and bucket not in others:
        raise InvalidRequest(field, f"bucket {bucket[:64]!r} is not readable here (store.bucket, store.read_buckets)")
    return bucket


class ObjectStore:
    def __init__(self, config: StoreConfig):
        if not (config.access_key and config.secret_key):
            raise ValueError("store.access_key and store.secret_key are not set (EMO_STORE__ACCESS_KEY, __SECRET_KEY)")
        self.config = config
        self.bucket = config.bucket
        self.read_buckets = config.read_buckets
        self.client = Minio(
            config.endpoint,
            access_key=config.access_key,
            secret_key=config.secret_key,
            secure=config.secure,
            region=config.region,
        )

    def ensure_bucket(self) -> None:
        with _errors("create bucket", self.bucket):
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

    def ref(self, key: str, content_type: str = "", size: int = 0) -> common_pb2.ObjectRef:
        return common_pb2.ObjectRef(bucket=self.bucket, key=key, content_type=content_type, size_bytes=size)

    def put_file(self, key: str, path: Path | str, content_type: str) -> common_pb2.ObjectRef:
        check_key(key)
        with _errors("upload", key):
            self.client.fput_object(self.bucket, key, str(path), content_type=content_type)
        return self.ref(key, content_type, Path(path).stat().st_size)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> common_pb2.ObjectRef:
        check_key(key)
        with _errors("upload", key):
            self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type)
        return self.ref(key, content_type, len(data))

    def get_file(self, ref: common_pb2.ObjectRef, path: Path | str) -> Path:
        bucket, key = self._locate(ref)
        with _errors("download", f"{bucket}/{key}"):
            self.client.fget_object(bucket, key, str(path))
        return Path(path)

    def get_bytes(self, ref: common_pb2.ObjectRef) -> bytes:
        bucket, key = self._locate(ref)
        with _errors("download", f"{bucket}/{key}"):
            response = self.client.get_object(bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def etag(self, ref: common_pb2.ObjectRef) -> str:
        bucket, key = self._locate(ref)
        with _errors("stat", f"{bucket}/{key}"):
            return self.client.stat_object(bucket, key).etag

    def exists(self, key: str) -> bool:
        try:
            self.client.stat_object(self.bucket, check_key(key))
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return False
            raise TransientError(f"stat {key}: {exc}") from exc

    def list_keys(self, prefix: str) -> list[str]:
        with _errors("list", prefix):
            return sorted(o.object_name for o in self.client.list_objects(self.bucket, prefix, recursive=True))

    def _locate(self, ref: common_pb2.ObjectRef) -> tuple[str, str]:
        if not ref.key:
            raise InvalidRequest("key", "an object reference needs a key")
        return readable_bucket(ref.bucket or self.bucket, self.bucket, self.read_buckets), check_key(ref.key)


class _errors:
    """Maps S3 answers to our errors: a missing object is permanent, a server problem transient."""

    def __init__(self, action: str, what: str):
        self.action, self.what = action, what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None:
            return False
        if isinstance(exc, S3Error):
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject", "AccessDenied"):
                raise PermanentError(f"{self.action} {self.what}: {exc.code}: {exc.message}") from exc
            raise TransientError(f"{self.action} {self.what}: {exc.code}: {exc.message}") from exc
        if isinstance(exc, (HTTPError, OSError)) and not isinstance(exc, FileNotFoundError):
            raise TransientError(f"{self.action} {self.what}: object store unreachable: {exc}") from exc
        return False


class FileStore:
    """The object store on a local folder (`<root>/<bucket>/<key>`): what the in-process runner uses.
    Same keys, refs and errors as ObjectStore; writes are atomic (a temporary file renamed)."""

    def __init__(self, root: Path | str, bucket: str = "emofactory", read_buckets: tuple[str, ...] = ()):
        self.root = Path(root)
        self.bucket = key_part(bucket, "bucket")
        self.read_buckets = read_buckets

    def ensure_bucket(self) -> None:
        (self.root / self.bucket).mkdir(parents=True, exist_ok=True)

    def ref(self, key: str, content_type: str = "", size: int = 0) -> common_pb2.ObjectRef:
        return common_pb2.ObjectRef(bucket=self.bucket, key=key, content_type=content_type, size_bytes=size)

    def _path(self, bucket: str, key: str) -> Path:
        readable_bucket(bucket, self.bucket, self.read_buckets)
        return self.root / key_part(bucket, "bucket") / check_key(key)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> common_pb2.ObjectRef:
        path = self._path(self.bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        partial.replace(path)
        return self.ref(key, content_type, len(data))

    def put_file(self, key: str, path: Path | str, content_type: str) -> common_pb2.ObjectRef:
        return self.put_bytes(key, Path(path).read_bytes(), content_type)

    def get_bytes(self, ref: common_pb2.ObjectRef) -> bytes:
        path = self._path(ref.bucket or self.bucket, ref.key)
        if not path.is_file():
            raise PermanentError(f"download {ref.bucket or self.bucket}/{ref.key}: NoSuchKey")
        return path.read_bytes()

    def get_file(self, ref: common_pb2.ObjectRef, path: Path | str) -> Path:
        Path(path).write_bytes(self.get_bytes(ref))
        return Path(path)

    def etag(self, ref: common_pb2.ObjectRef) -> str:
        return hashlib.md5(self.get_bytes(ref), usedforsecurity=False).hexdigest()

    @contextmanager
    def local_copy(self, ref: common_pb2.ObjectRef) -> Iterator[Path]:
        """The object's own file, read in place (as `LocalCopies.local_copy`, without a copy): a write
        replaces it by a rename, so a reader keeps the bytes it opened."""
        path = self._path(ref.bucket or self.bucket, ref.key)
        if not path.is_file():
            raise PermanentError(f"download {ref.bucket or self.bucket}/{ref.key}: NoSuchKey")
        yield path

    def exists(self, key: str) -> bool:
        return self._path(self.bucket, key).is_file()

    def list_keys(self, prefix: str) -> list[str]:
        base = self.root / self.bucket
        keys = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not k.rsplit("/", 1)[-1].startswith("."))
