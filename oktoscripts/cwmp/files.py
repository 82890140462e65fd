"""The ACS's side of the file store: it serves stored files to CPEs under
signed URLs (filestore/signing.py) on its own HTTP(S) ports, and puts such a
URL, for the CPE at hand, in place of ``store:<name>`` in a Download.

A file goes out chunk by chunk as the CPE reads it (a 500 MiB image never
sits whole in the ACS's memory), from the chunk cache when another download
read it lately (a rollout sends one image to thousands of CPEs), and a CPE
may ask for a byte range (``Range: bytes=<from>-``, the rest of a download
that broke off): 206 with that part, 416 for a range outside the file.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from urllib.parse import quote

from oktoscripts.cwmp import answers
from oktoscripts.cwmp.backend import DeviceBackend
from oktoscripts.cwmp.config import AcsConfig
from oktoscripts.cwmp.http11 import HttpError, Request, Response
from oktoscripts.cwmp.session import Session
from oktoscripts.cwmp.soap import RpcRequest
from oktoscripts.filestore import ranges, signing
from oktoscripts.filestore.chunkcache import ChunkCache
from oktoscripts.filestore.store import CHUNK_BYTES, FileStore, StoredFile

log = logging.getLogger("oktoscripts.cwmp.acs")

# Chunks of stored files kept in memory by one ACS process.
CACHE_BYTES = 64 * 1024 * 1024


class FileServer:
    def __init__(self, store: FileStore, backend: DeviceBackend, config: AcsConfig) -> None:
        self.store = store
        self.backend = backend
        self.config = config
        self.cache = ChunkCache(CACHE_BYTES)

    async def serve(self, request: Request, peer_ip: str) -> Response:
        """A GET of a signed URL: the file, else 404 (nothing said about why)."""
        file_id = signing.verify(request.target)
        stored = await self.backend.run(self.store.by_id, file_id) if file_id else None
        if stored is None:
            log.warning(
                "CPE %s: refused a download of %s (bad, expired or unknown)",
                peer_ip,
                request.target.split("?", 1)[0],
            )
            return Response(404, [("Content-Type", "text/plain")], b"no such file\n")
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Disposition", f"attachment; filename={quote(stored.name)}"),
            ("Accept-Ranges", "bytes"),
        ]
        try:
            part = ranges.requested(request.headers.get("range", ""), stored.size)
        except ranges.Unsatisfiable:
            headers = [("Content-Range", f"bytes */{stored.size}")]
            return Response(416, headers)
        status, part = (206, part) if part else (200, ranges.ByteRange(0, stored.size - 1))
        if status == 206:
            headers.append(("Content-Range", f"bytes {part.start}-{part.end}/{stored.size}"))
        log.info(
            "CPE %s downloads %s (bytes %d-%d of %d)",
            peer_ip,
            stored.name,
            part.start,
            part.end,
            stored.size,
        )
        return Response(status, headers, stream=self._pieces(stored, part), length=part.length)

    async def _pieces(self, stored: StoredFile, part: ranges.ByteRange) -> AsyncIterator[bytes]:
        """The bytes of ``part``, one stored chunk at a time."""
        size = CHUNK_BYTES
        for n in range(part.start // size, part.end // size + 1):
            data = await self._chunk(stored.id, n)
            if data is None:  # deleted meanwhile: the CPE gets fewer bytes than announced
                log.warning("stored file %s lost its chunk %d while being served", stored.name, n)
                raise HttpError(f"stored file {stored.name} is gone")
            lo = max(part.start - n * size, 0)
            hi = min(part.end - n * size + 1, len(data))
            yield data[lo:hi]

    async def _chunk(self, file_id: str, n: int) -> bytes | None:
        data = self.cache.get(file_id, n)
        if data is None:
            data = await self.backend.run(self.store.chunk, file_id, n)
            if data is not None:
                self.cache.put(file_id, n, data)
        return data

    async def resolve(self, request: RpcRequest, session: Session) -> RpcRequest | dict:
        """``request`` with ``store:<name>`` replaced by a signed URL for this CPE;
        the error answer when no stored file has that name."""
        url = request.args.get("URL", "") if request.method == "Download" else ""
        if not url.startswith(signing.STORE_SCHEME):
            return request
        name = url[len(signing.STORE_SCHEME) :]
        stored = await self.backend.run(self.store.by_name, name)
        if stored is None:
            return answers.error("404", f"no stored file named {name!r}")
        path = signing.signed_path(
            stored.id, stored.name, session.serial, int(self.config.file_url_ttl)
        )
        args = {
            **request.args,
            "URL": session.base_url + path,
            "FileSize": request.args.get("FileSize") or str(stored.size),
        }
        if args["FileSize"] == "0":
            args["FileSize"] = str(stored.size)
        return dataclasses.replace(request, args=args)
