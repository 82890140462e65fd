"""What identifies a device, and which identities this process wrote lately.

Most messages from a known device repeat its identity (vendor, model,
hardware version, OUI, product class, the CWMP DeviceId, the USP endpoint id)
word for word. On the embedded database every field of an update costs
server time (each path is checked against every other one, then applied), so
the registry writes these facts in full only when this process has not
written the same ones for that device within ``REFRESH_S``, and otherwise
leaves them as they are: an Inform of a known device then writes what
changes (times, state, IP, connection-request URL, events, versions, the
periodic interval...), about half the fields.

Why this loses nothing: identity facts are the same whoever reports them
(they name the device), and a device deleted since is noticed (the update
matches nothing and is written again in full, as an insert). What a reader
can see differ from writing every field every time:

- a device deleted and registered again by another process that did not
  report some fact (a USP agent's Boot! for a device the ACS knows) misses
  it until this process's next full write, at most ``REFRESH_S`` later;
- a device both protocols report with different spellings of a shared fact
  ("Huawei" in the CWMP DeviceId, "Huawei Technologies" in USP DeviceInfo)
  shows the spelling of the last full write rather than of the last write,
  for at most ``REFRESH_S`` when the writers are different processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Top-level facts and, per protocol, its own (dotted names in the document).
SHARED = frozenset({"vendor", "model", "hw_version", "product_class", "oui"})
OWN = {
    "cwmp": frozenset({"cwmp.serial_number", "cwmp.oui", "cwmp.product_class"}),
    "usp": frozenset({"usp.endpoint_id"}),
}
# A full write of every device at least this often, whatever this process remembers.
REFRESH_S = 3600.0
# Devices remembered at most (about 300 bytes each, 30 MB in all); beyond
# that the ones written in full longest ago are forgotten (then written in full).
MAX_DEVICES = 100_000


def facts_of(protocol: str, fields: dict[str, object]) -> dict[str, object]:
    """The identity facts among the dotted ``fields`` of an update."""
    own = OWN.get(protocol, frozenset())
    return {name: value for name, value in fields.items() if name in SHARED or name in own}


class WrittenIdentities:
    """Per device and protocol: a digest of the identity facts this process
    last wrote in full, and until when it trusts the document to hold them."""

    def __init__(
        self,
        refresh_s: float = REFRESH_S,
        max_devices: int = MAX_DEVICES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._refresh_s = refresh_s
        self._max = max_devices
        self._clock = clock
        self._lock = threading.Lock()
        self._written: dict[tuple[str, str], tuple[int, float]] = {}

    @staticmethod
    def _digest(facts: dict[str, object]) -> int:
        return hash(tuple(sorted(facts.items())))

    def written(self, serial: str, protocol: str, facts: dict[str, object]) -> bool:
        """True if the document holds ``facts`` as this process wrote them."""
        with self._lock:
            known = self._written.get((serial, protocol))
        if known is None or self._clock() >= known[1]:
            return False
        try:
            return known[0] == self._digest(facts)
        except TypeError:  # an unhashable value: never skipped
            return False

    def remember(self, serial: str, protocol: str, facts: dict[str, object]) -> None:
        """``facts`` are now in the document, as of this full write."""
        try:
            digest = self._digest(facts)
        except TypeError:
            return
        key = (serial, protocol)
        with self._lock:
            for other in OWN:  # the shared facts may now be another protocol's spelling
                self._written.pop((serial, other), None)
            # Re-inserted last: the oldest go first.
            self._written[key] = (digest, self._clock() + self._refresh_s)
            while len(self._written) > self._max:
                del self._written[next(iter(self._written))]

    def forget(self, serial: str) -> None:
        """The device was deleted: its next write is in full."""
        with self._lock:
            for protocol in OWN:
                self._written.pop((serial, protocol), None)
