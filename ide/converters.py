"""URL path converters of the IDE and the REST API."""

from __future__ import annotations

from django.urls import register_converter


class SerialConverter:
    """A device serial in a URL path: any text at all, ``/`` and newlines
    included, because devices chose their serials and some stored before
    serials were checked hold such characters. The rest of the path after
    ``devices/`` is the serial, so a URL can always be written for one
    (``reverse``) and read back, and clients may send a ``/`` in it
    percent-encoded (``encodeURIComponent``) or not."""

    regex = r"(?s:.+)"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


# Registered on import: the page URLs and the REST routes both use "<serial:...>".
register_converter(SerialConverter, "serial")
