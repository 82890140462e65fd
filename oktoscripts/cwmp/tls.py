"""The ACS's TLS: what its HTTPS port presents, and what it trusts when it
makes a Connection Request to an https:// ConnectionRequestURL.

HTTPS (OKTOSCRIPTS_ACS_TLS_PORT, 7548) runs beside plain HTTP
(OKTOSCRIPTS_ACS_PORT, 7547) so that a fleet can move its ACS URL to https://
CPE by CPE; turn the plain port off once none uses it. The certificate is the
platform's (pki.py: the operator's OKTOSCRIPTS_TLS_CERT, else one issued by
the installation's own CA) unless OKTOSCRIPTS_ACS_TLS_CERT/_KEY name another.
CPEs authenticate with HTTP Basic or Digest inside TLS as over plain HTTP.

Connection Requests to https:// URLs check the CPE's certificate (chain and
host name, as any HTTPS client) against the system's CAs, the platform's CA
(it issues device certificates: ``manage.py devicecert``) and the bundle
OKTOSCRIPTS_ACS_CR_CA names (vendors' CAs); a CPE whose certificate none of
them vouches for is not woken.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from oktoscripts import pki
from oktoscripts.cwmp.config import AcsConfig

# A client that opens a connection and never finishes the handshake is dropped after this.
HANDSHAKE_TIMEOUT_S = 10.0


def server_context(config: AcsConfig) -> ssl.SSLContext:
    """The context of the ACS's HTTPS port (no client certificates asked)."""
    if config.tls_cert and config.tls_key:
        files = pki.TLSFiles(Path(config.tls_cert), Path(config.tls_key), Path(config.tls_cert))
    else:
        files = pki.tls_files()
    return files.server_context()


def connection_request_context(config: AcsConfig) -> ssl.SSLContext:
    """The context of Connection Requests to https:// URLs."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=pki.tls_files().ca)
    if config.cr_ca:
        context.load_verify_locations(cafile=config.cr_ca)
    return context
