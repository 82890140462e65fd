"""The ACS port faces the internet: what anonymous clients cost it. The ACS
runs as its own process (``manage.py acs``) so its memory is measured alone."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oktoscripts.config import BASE_DIR
from oktoscripts.launcher.embedded.ports import free_port, wait_for_port

CLIENTS = 300
BODY = 1024 * 1024
# What the ACS may keep after the clients are gone (allocator slack, caches).
ALLOWED_GROWTH_MB = 40


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def anonymous_upload(port: int, chunk: bytes) -> bytes:
    """Post a 1 MB body without credentials, reading the answer meanwhile as
    HTTP clients do; the answer's first bytes (b"" when there was none)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.ensure_future(reader.read(12))
    try:
        writer.write(
            b"POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\n"
            + f"Content-Length: {BODY}\r\n\r\n".encode()
        )
        for _ in range(BODY // len(chunk)):
            if answer.done():
                break
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 30)
        return await asyncio.wait_for(answer, 30)
    except (ConnectionError, OSError, TimeoutError):
        return answer.result() if answer.done() and not answer.exception() else b""
    finally:
        answer.cancel()
        writer.close()


@pytest.fixture
def acs_process(nats_url, mongo_uri, db_name, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "MONGO_URI": mongo_uri,
        "OKTOSCRIPTS_DATA_DIR": str(tmp_path),
        "OKTOSCRIPTS_ACS_HOST": "127.0.0.1",
        "OKTOSCRIPTS_ACS_PORT": str(port),
        "OKTOSCRIPTS_ACS_TLS_PORT": "off",
        "LOG_LEVEL": "ERROR",
    }
    proc = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), "acs"],
        env=env,
        cwd=BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for_port("127.0.0.1", port, 30), "the ACS did not start"
        yield proc.pid, port
    finally:
        proc.terminate()
        proc.wait(15)


async def test_anonymous_uploads_cost_no_lasting_memory(acs_process):
    pid, port = acs_process
    chunk = b"<" * 65536
    await asyncio.gather(*(anonymous_upload(port, chunk) for _ in range(5)))  # warm up
    before = rss_mb(pid)
    answers = await asyncio.gather(*(anonymous_upload(port, chunk) for _ in range(CLIENTS)))
    assert answers == [b"HTTP/1.1 401"] * CLIENTS
    time.sleep(3.0)  # connections closed on both sides, and a moment for the ACS
    after = rss_mb(pid)
    print(f"RSS {before:.0f} MB -> {after:.0f} MB")
    assert after - before < ALLOWED_GROWTH_MB, f"RSS {before:.0f} MB -> {after:.0f} MB"
