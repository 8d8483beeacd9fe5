"""The hash a local upload is named by, shared by the SDK (which names an upload by it) and the
server (which checks that a recorded upload holds that content).

Seeded as Azure's CLI seeds it: a single file hashes its bytes; a folder hashes each file's
path relative to the folder, then its bytes, in :func:`upload_order`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

HASH_SEED = b"Initialize for october 2021 AML CLI version"


def upload_order(relative: str) -> tuple[str, str]:
    """The sort key of a folder's files in the hash: case-insensitive, then exact."""
    return (relative.lower(), relative)


def upload_hash(files: Iterable[tuple[str, Iterable[bytes]]], *, is_folder: bool) -> str:
    """The md5 hexdigest of an upload.

    Args:
        files: Each file's path relative to the uploaded folder and its bytes, in
            :func:`upload_order` (one file, for a single-file upload).
        is_folder: Whether the upload is a folder (paths are hashed) or one file (they are not).
    """
    digest = hashlib.md5(HASH_SEED, usedforsecurity=False)
    for relative, chunks in files:
        if is_folder:
            digest.update(relative.encode("utf-8"))
        for chunk in chunks:
            digest.update(chunk)
    return digest.hexdigest()
