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


#: azure-ai-ml's content hash (``_asset_utils.get_object_hash``) starts from the same seed.
AZUREML_HASH_SEED = HASH_SEED


def azureml_object_hash(files: Iterable[tuple[str, Iterable[bytes]]], *, is_folder: bool) -> str:
    """The hash azure-ai-ml uploads a file or folder under (``LocalUpload/<hash>/<name>``).

    A folder's files (relative paths, with their bytes) are hashed as the SDK walks the folder:
    in each folder, entries in the order of their lower-cased names, each entry's name, then a
    file's bytes or the entries of a subfolder.

    Args:
        files: ``(relative path, chunks)`` of every file, in any order.
        is_folder: whether the upload is a folder (else exactly one file).
    """
    digest = hashlib.sha256(AZUREML_HASH_SEED)
    if not is_folder:
        for _, chunks in files:
            for chunk in chunks:
                digest.update(chunk)
        return digest.hexdigest()
    tree: dict[str, object] = {}
    for relative, chunks in files:
        parts = relative.split("/")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            assert isinstance(child, dict)
            node = child
        node[parts[-1]] = chunks

    def walk(node: dict[str, object]) -> None:
        for name in sorted(node, key=str.lower):
            digest.update(name.encode())
            value = node[name]
            if isinstance(value, dict):
                walk(value)
            else:
                assert not isinstance(value, str | bytes)
                for chunk in value:  # type: ignore[attr-defined]
                    digest.update(chunk)

    walk(tree)
    return digest.hexdigest()
