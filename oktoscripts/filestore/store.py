"""The file store: files in MongoDB, in 1 MiB chunks, so that every ACS
process (on any machine) serves the same files without a shared disk.

Collection ``files`` holds one document per file (name, size, SHA-256, file
type, who uploaded it and when); ``file_chunks`` its content. A name is
unique: uploading under a name that exists replaces that file.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from pymongo import ASCENDING
from pymongo.database import Database

FILES = "files"
CHUNKS = "file_chunks"
CHUNK_BYTES = 1024 * 1024
MAX_BYTES = 512 * 1024 * 1024
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FILE_TYPES = (
    "1 Firmware Upgrade Image",
    "2 Web Content",
    "3 Vendor Configuration File",
    "4 Tone File",
    "5 Ringer File",
)


class FileStoreError(ValueError):
    pass


@dataclass(frozen=True)
class StoredFile:
    id: str
    name: str
    size: int
    sha256: str
    file_type: str
    uploaded_by: str
    uploaded_at: datetime

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> StoredFile:
        return cls(
            doc["_id"],
            doc["name"],
            doc["size"],
            doc["sha256"],
            doc["file_type"],
            doc.get("uploaded_by", ""),
            doc["uploaded_at"],
        )


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise FileStoreError(
            "a file name is 1-128 letters, digits, dots, dashes or "
            "underscores, starting with a letter or digit"
        )
    return name


class FileStore:
    def __init__(self, db: Database) -> None:
        self.files = db[FILES]
        self.chunks = db[CHUNKS]

    def ensure_indexes(self) -> None:
        self.files.create_index("name", unique=True, name="name")
        self.chunks.create_index([("file_id", ASCENDING), ("n", ASCENDING)], name="file_n")

    def put(
        self, name: str, data: bytes | BinaryIO, file_type: str, uploaded_by: str
    ) -> StoredFile:
        """Store ``data`` (bytes, or a binary file read CHUNK_BYTES at a time, so a
        large image never sits whole in memory) as ``name``, replacing a file of
        that name."""
        check_name(name)
        if file_type not in FILE_TYPES:
            raise FileStoreError(f"file type must be one of: {', '.join(FILE_TYPES)}")
        source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
        file_id = secrets.token_hex(12)
        digest, size = hashlib.sha256(), 0
        # Content first, the document last: a file is listed only once it is whole.
        for n, piece in enumerate(_whole_chunks(source)):
            size += len(piece)
            if size > MAX_BYTES:
                self.chunks.delete_many({"file_id": file_id})
                raise FileStoreError(f"files are at most {MAX_BYTES // (1024 * 1024)} MiB")
            digest.update(piece)
            self.chunks.insert_one({"file_id": file_id, "n": n, "data": piece})
        if not size:
            raise FileStoreError("the file is empty")
        doc = {
            "_id": file_id,
            "name": name,
            "size": size,
            "sha256": digest.hexdigest(),
            "file_type": file_type,
            "uploaded_by": uploaded_by,
            "uploaded_at": datetime.now(UTC),
        }
        old = self.files.find_one_and_replace({"name": name}, doc, upsert=True)
        if old is not None:
            self.chunks.delete_many({"file_id": old["_id"]})
        return StoredFile.from_doc(doc)

    def list(self) -> list[StoredFile]:
        return [StoredFile.from_doc(d) for d in self.files.find().sort("name", ASCENDING)]

    def by_name(self, name: str) -> StoredFile | None:
        doc = self.files.find_one({"name": name})
        return StoredFile.from_doc(doc) if doc else None

    def by_id(self, file_id: str) -> StoredFile | None:
        doc = self.files.find_one({"_id": file_id})
        return StoredFile.from_doc(doc) if doc else None

    def chunk(self, file_id: str, n: int) -> bytes | None:
        """The ``n``-th CHUNK_BYTES of a file (None: no such chunk)."""
        doc = self.chunks.find_one({"file_id": file_id, "n": n}, {"data": 1})
        return bytes(doc["data"]) if doc else None

    def content(self, file_id: str) -> bytes:
        chunks = self.chunks.find({"file_id": file_id}).sort("n", ASCENDING)
        return b"".join(bytes(c["data"]) for c in chunks)

    def delete(self, name: str) -> bool:
        doc = self.files.find_one_and_delete({"name": name})
        if doc is None:
            return False
        self.chunks.delete_many({"file_id": doc["_id"]})
        return True


def _whole_chunks(source: BinaryIO) -> Iterator[bytes]:
    """CHUNK_BYTES at a time (the last may be shorter), however the source's
    reads come: chunk n must hold bytes n x CHUNK_BYTES onwards (the ACS serves
    ranges by that rule)."""
    buffer = b""
    while piece := source.read(CHUNK_BYTES - len(buffer)):
        buffer += piece
        if len(buffer) == CHUNK_BYTES:
            yield buffer
            buffer = b""
    if buffer:
        yield buffer
