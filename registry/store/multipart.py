"""Uploads to an S3-protocol server straight to the final key: one ``PUT``, or a multipart upload sent in parallel.

The remote store (:mod:`registry.store.remote`) knows a blob's digest, and so
its final key, only once the serializer has written every byte into the
local staging file (hashed while written). Uploading then to the final key
directly costs one pass over the bytes; uploading under a temporary key
first, as the store did, cost a server-side copy of every byte on top (about
a quarter of a 100 MB registration on moto's server).

That is safe because an S3 object becomes visible only whole: a ``PUT`` when
its body is complete, a multipart upload only at
``CompleteMultipartUpload``, which names every part and its ETag. The bytes
sent are read from the staged file the store opened without following a
link and checked (regular, of the hashed size), in order, once. A failure
or interruption (an exception, ``KeyboardInterrupt``) sends no further part,
waits for those in flight and aborts the upload, so the server keeps neither
an object nor parts (s3rver, which cannot abort, keeps the parts but never
an object). A process killed outright leaves an unfinished upload:
no object under any name, but parts the server stores until they are
aborted; :func:`unfinished_uploads` lists them for ``gc`` (and a bucket
lifecycle rule ``AbortIncompleteMultipartUpload`` does the same server-side).

"Visible only whole" is what S3 and moto do. s3rver writes a completed
upload (and a PUT) into the object's file in place, so a reader of an object
that a second writer is uploading again at that moment can get a broken
stream; it never gets other bytes undetected, because every load checks the
digest, and the content is the same bytes anyway.

Everything goes through s3fs's own client (``_call_s3``: its retries, its
error translation to ``OSError``, the user's ``s3_additional_kwargs`` such
as server-side encryption); only the scheduling of parts is here. This
module imports neither fsspec nor s3fs: it is handed the filesystem object.

Downloads are not split the same way: on moto's server, ranged GETs of a
107 MB object in parallel were slower than the one sequential read the
store does (medians: 8 MiB x 4 at once 1.58 s, 16 MiB x 4 1.08 s, 32 MiB x 4
0.81 s, one stream 0.79 s), and a first load already takes 0.78x s3fs's
``get_file`` plus ``joblib.load`` of the same bytes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

#: A multipart upload sends parts of this size (S3's smallest is 5 MiB; only the last may be smaller).
PART_SIZE = 8 * 2**20
#: Parts in flight at once (boto3's transfers use 8 MiB parts, 10 at once); PART_SIZE × this bytes are held.
PART_CONCURRENCY = 8
#: S3 allows at most this many parts: a larger blob gets larger parts.
MAX_PARTS = 10_000

__all__ = [
    "MAX_PARTS",
    "PART_CONCURRENCY",
    "PART_SIZE",
    "Unfinished",
    "abort",
    "part_size",
    "speaks_s3",
    "unfinished_uploads",
    "upload",
]


def speaks_s3(fs: Any) -> bool:
    """Whether ``fs`` is s3fs's filesystem, whose client this module drives (other backends keep fsspec's path)."""
    protocol = getattr(fs, "protocol", ())
    names = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    return "s3" in names and callable(getattr(fs, "_call_s3", None)) and getattr(fs, "loop", None) is not None


def part_size(size: int) -> int:
    """The part size for a blob of ``size`` bytes: :data:`PART_SIZE`, grown so no upload needs over 10,000 parts."""
    return max(PART_SIZE, -(-size // MAX_PARTS))


def _call(fs: Any, method: str, **kwargs: Any) -> concurrent.futures.Future[Any]:
    """Run one S3 call on s3fs's event loop (its thread); the caller waits on the future it gets."""
    return asyncio.run_coroutine_threadsafe(fs._call_s3(method, **kwargs), fs.loop)


def upload(fs: Any, key: str, source: IO[bytes], size: int, advance: Callable[[int], None]) -> None:
    """Send ``size`` bytes read from ``source`` to ``key``: one ``PUT`` below two parts, else a parallel multipart.

    On any failure the multipart upload is aborted before the error
    propagates; the object under ``key`` is then whatever it was before
    (absent, or the same bytes by content address).
    """
    bucket, name, _ = fs.split_path(key)
    part = part_size(size)
    if size < 2 * part:
        body = source.read(size)
        _check_length(body, size, 0)
        _call(fs, "put_object", Bucket=bucket, Key=name, Body=body).result()
        advance(size)
        return
    upload_id = _call(fs, "create_multipart_upload", Bucket=bucket, Key=name).result()["UploadId"]
    try:
        etags = _send_parts(fs, bucket, name, upload_id, source, size, part, advance)
        parts = [{"PartNumber": number, "ETag": etag} for number, etag in sorted(etags.items())]
        _call(
            fs,
            "complete_multipart_upload",
            Bucket=bucket,
            Key=name,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        ).result()
    except BaseException:
        abort(fs, key, upload_id)
        raise


def _check_length(data: bytes, expected: int, offset: int) -> None:
    if len(data) != expected:
        raise OSError(
            errno.EIO,
            f"the staged file ended at byte {offset + len(data)}, {offset + expected} were hashed; "
            "it was truncated while uploading",
        )


def _send_parts(
    fs: Any,
    bucket: str,
    name: str,
    upload_id: str,
    source: IO[bytes],
    size: int,
    part: int,
    advance: Callable[[int], None],
) -> dict[int, str]:
    """Upload every part, :data:`PART_CONCURRENCY` at a time; return each part's ETag by part number.

    Parts are read in order, so the staged file is read once, sequentially,
    and at most ``PART_CONCURRENCY`` parts are held in memory. If anything
    fails, the parts still in flight are waited for (not cancelled: a part
    a cancelled request had already sent might land after the abort and
    be kept), so the caller's abort is the last word.
    """
    pending: dict[concurrent.futures.Future[Any], tuple[int, int]] = {}
    etags: dict[int, str] = {}
    try:
        for number, offset in enumerate(range(0, size, part), start=1):
            while len(pending) >= PART_CONCURRENCY:
                _collect(pending, etags, advance)
            length = min(part, size - offset)
            body = source.read(length)
            _check_length(body, length, offset)
            call = _call(fs, "upload_part", Bucket=bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=body)
            pending[call] = (number, length)
        while pending:
            _collect(pending, etags, advance)
    finally:
        concurrent.futures.wait(pending)
    return etags


def _collect(
    pending: dict[concurrent.futures.Future[Any], tuple[int, int]],
    etags: dict[int, str],
    advance: Callable[[int], None],
) -> None:
    """Wait for at least one part in flight; record its ETag (or raise its failure)."""
    done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
    for call in done:
        number, length = pending.pop(call)
        etags[number] = call.result()["ETag"]
        advance(length)


def abort(fs: Any, key: str, upload_id: str) -> None:
    """Abort an unfinished upload, best effort: a server that cannot (s3rver) keeps its parts, never an object."""
    bucket, name, _ = fs.split_path(key)
    with contextlib.suppress(Exception):
        _call(fs, "abort_multipart_upload", Bucket=bucket, Key=name, UploadId=upload_id).result()


@dataclass(frozen=True)
class Unfinished:
    """A multipart upload begun under ``key`` and neither completed nor aborted.

    ``size`` is what its parts hold; ``mtime`` the later of its start and its
    last part, so an upload still sending parts looks as young as it is
    (moto, for one, reports every upload as started in 2010). An upload with
    no part listed yet is dated now: its start may be such a date, and its
    writer may be sending the first part this moment. It holds no bytes, so
    keeping it costs nothing; a bucket lifecycle rule
    (``AbortIncompleteMultipartUpload``) ends one whose writer died.
    """

    key: str
    upload_id: str
    size: int
    mtime: float


def unfinished_uploads(fs: Any, prefix: str) -> Iterator[Unfinished]:
    """Every unfinished multipart upload under ``prefix`` (``bucket/path``), as the server lists them now.

    A server that does not list them (s3rver answers ``NotImplemented``)
    or a principal not allowed to yields nothing: such parts can only be
    cleaned by the server itself (a lifecycle rule).
    """
    bucket, path, _ = fs.split_path(prefix)
    listing: dict[str, Any] = {"Bucket": bucket, "Prefix": path.strip("/") + "/" if path.strip("/") else ""}
    while True:
        try:
            page = _call(fs, "list_multipart_uploads", **listing).result()
        except (PermissionError, NotImplementedError):
            return
        except OSError as exc:
            if exc.errno in (errno.ENOSYS, errno.EPERM, errno.EACCES):
                return
            raise
        for entry in page.get("Uploads") or []:
            key = f"{bucket}/{entry['Key']}"
            size, last = _parts_of(fs, bucket, entry["Key"], entry["UploadId"])
            mtime = max(_seconds(entry.get("Initiated")), last) if last else time.time()
            yield Unfinished(key, entry["UploadId"], size, mtime)
        if not page.get("IsTruncated"):
            return
        listing["KeyMarker"] = page.get("NextKeyMarker", "")
        listing["UploadIdMarker"] = page.get("NextUploadIdMarker", "")


def _parts_of(fs: Any, bucket: str, name: str, upload_id: str) -> tuple[int, float]:
    """The bytes an unfinished upload's parts hold, and when its last part arrived (0 when it has none)."""
    size, last = 0, 0.0
    listing: dict[str, Any] = {"Bucket": bucket, "Key": name, "UploadId": upload_id}
    while True:
        try:
            page = _call(fs, "list_parts", **listing).result()
        except (FileNotFoundError, PermissionError):  # finished or aborted since it was listed, or not ours to list
            return size, last
        for entry in page.get("Parts") or []:
            size += int(entry.get("Size", 0))
            last = max(last, _seconds(entry.get("LastModified")))
        if not page.get("IsTruncated"):
            return size, last
        listing["PartNumberMarker"] = page.get("NextPartNumberMarker", 0)


def _seconds(moment: object) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else 0.0
