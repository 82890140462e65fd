"""The ACS's side of the file store: it serves stored files to CPEs under
signed URLs (filestore/signing.py) on its own HTTP(S) ports, and puts such a
URL, for the CPE at hand, in place of ``store:<name>`` in a Download."""

from __future__ import annotations

import dataclasses
import logging
from urllib.parse import quote

from oktoscripts.cwmp import answers
from oktoscripts.cwmp.backend import DeviceBackend
from oktoscripts.cwmp.config import AcsConfig
from oktoscripts.cwmp.http11 import Request, Response
from oktoscripts.cwmp.session import Session
from oktoscripts.cwmp.soap import RpcRequest
from oktoscripts.filestore import signing
from oktoscripts.filestore.store import FileStore

log = logging.getLogger("oktoscripts.cwmp.acs")


class FileServer:
    def __init__(self, store: FileStore, backend: DeviceBackend, config: AcsConfig) -> None:
        self.store = store
        self.backend = backend
        self.config = config

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
        data = await self.backend.run(self.store.content, stored.id)
        log.info("CPE %s downloads %s (%d bytes)", peer_ip, stored.name, len(data))
        disposition = f"attachment; filename={quote(stored.name)}"
        return Response(
            200,
            [("Content-Type", "application/octet-stream"), ("Content-Disposition", disposition)],
            data,
        )

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
