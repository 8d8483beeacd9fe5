"""``s3``: a bucket in Amazon S3 or an S3-compatible server (``bucket``, ``endpoint_url``).

Credentials: ``access_key_id`` and ``secret_access_key`` (and ``session_token``), or none for
the server's ambient AWS credentials (environment, shared config, instance role). Read through
s3fs (extra ``s3``); writes use ``PutObject`` or a multipart upload whose completion carries
``If-None-Match: *`` when the file may not be replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sluiceway.errors import MissingExtraError, ValidationError
from sluiceway.storage.datastores.base import (
    ClientSettings,
    DatastoreType,
    contained_path,
    optional,
    required,
)

CONFIG_KEYS = ("bucket", "endpoint_url", "region")
CREDENTIAL_KEYS = ("access_key_id", "secret_access_key", "session_token")
PART_BYTES = 8 << 20  # S3's parts must be at least 5 MiB, but the last


def check_credentials(credentials: dict[str, Any] | None) -> None:
    creds = credentials or {}
    unknown = sorted(set(creds) - set(CREDENTIAL_KEYS))
    if unknown:
        raise ValidationError(
            f"credentials {', '.join(unknown)} are not accepted for an s3 datastore; give "
            "access_key_id and secret_access_key (and session_token), or none for the server's "
            "ambient AWS credentials.",
            target="credentials",
        )
    if bool(creds.get("access_key_id")) != bool(creds.get("secret_access_key")):
        raise ValidationError(
            "credentials: access_key_id and secret_access_key go together.", target="credentials"
        )


@dataclass
class S3Datastore:
    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    credentials: dict[str, Any] | None = field(default=None, repr=False)
    client: ClientSettings = field(default_factory=ClientSettings)
    type: DatastoreType = DatastoreType.S3
    _fs: Any = field(default=None, repr=False)

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any],
        credentials: dict[str, Any] | None,
        client: ClientSettings | None = None,
    ) -> S3Datastore:
        bucket = required(config, "bucket", "s3")
        if "/" in bucket:
            raise ValidationError(f"bucket {bucket!r} may not hold '/'.", target="bucket")
        check_credentials(credentials)
        return cls(
            bucket,
            optional(config, "endpoint_url"),
            optional(config, "region"),
            dict(credentials) if credentials else None,
            client or ClientSettings(),
        )

    def probing(self, timeout: float) -> S3Datastore:
        return replace(self, client=replace(self.client, timeout=timeout), _fs=None)

    @property
    def service_url(self) -> str | None:
        return self.endpoint_url

    @property
    def fs(self) -> Any:
        if self._fs is None:
            try:
                from s3fs import S3FileSystem
            except ImportError:
                raise MissingExtraError("s3", "s3fs") from None
            creds = self.credentials or {}
            client_kwargs: dict[str, Any] = {}
            if self.region:
                client_kwargs["region_name"] = self.region
            from sluiceway.storage.egress import guarded_s3_session

            # Every connection aiobotocore opens checks its addresses against the network
            # policy. botocore follows no redirects (it sends with allow_redirects=False).
            config: dict[str, Any] = {"http_session_cls": guarded_s3_session(self.client.network)}
            if self.client.timeout is not None:
                config |= {
                    "connect_timeout": self.client.timeout,
                    "read_timeout": self.client.timeout,
                    "retries": {"total_max_attempts": 1},
                }
            self._fs = S3FileSystem(
                key=creds.get("access_key_id"),
                secret=creds.get("secret_access_key"),
                token=creds.get("session_token"),
                endpoint_url=self.endpoint_url,
                client_kwargs=client_kwargs,
                config_kwargs=config,
                skip_instance_cache=True,
                use_listings_cache=False,
            )
            if self.client.timeout is not None:
                self._fs.retries = 1  # s3fs's own retries, besides botocore's
        return self._fs

    def full_path(self, path: str) -> str:
        return contained_path(self.bucket, path)

    def local_path(self, path: str) -> Path | None:
        return None

    def write_file(self, path: str, chunks: Iterable[bytes], *, overwrite: bool) -> int:
        key = self.full_path(path)[len(self.bucket) + 1 :]
        if not key:
            raise ValidationError("A file path inside the bucket is needed.", target="path")
        condition = {} if overwrite else {"IfNoneMatch": "*"}
        parts = _parts(chunks, PART_BYTES)
        first = next(parts, b"")
        second = next(parts, None)
        try:
            if second is None:
                self._call("put_object", Bucket=self.bucket, Key=key, Body=first, **condition)
                return len(first)
            return self._multipart(key, [first, second], parts, condition)
        except FileExistsError:
            raise FileExistsError(f"{self.bucket}/{key}") from None

    def _multipart(
        self,
        key: str,
        head: list[bytes],
        rest: Iterator[bytes],
        condition: dict[str, str],
    ) -> int:
        upload = self._call("create_multipart_upload", Bucket=self.bucket, Key=key)
        upload_id = upload["UploadId"]
        done: list[dict[str, Any]] = []
        size = 0
        try:
            for number, body in enumerate(_chain(head, rest), start=1):
                part = self._call(
                    "upload_part",
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                )
                done.append({"ETag": part["ETag"], "PartNumber": number})
                size += len(body)
            self._call(
                "complete_multipart_upload",
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
                **condition,
            )
        except BaseException:
            try:
                self._call(
                    "abort_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id
                )
            except Exception:  # the upload expires by the bucket's lifecycle rules anyway
                pass
            raise
        return size

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return self.fs.call_s3(method, **kwargs)
        except OSError as exc:
            if _precondition_failed(exc):
                raise FileExistsError(kwargs.get("Key")) from None
            raise


def _precondition_failed(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
                return True
        if "PreconditionFailed" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _parts(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Re-cut ``chunks`` into pieces of ``size`` bytes (the last may be shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _chain(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from rest
