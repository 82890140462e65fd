"""Device pages, over the devices helper's registry on MongoDB."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from ide.access import requires
from ide.paging import page_number
from oktoscripts.roles import Capability
from oktoscripts.runs.models import Run

PAGE_SIZE = 50
STATUS_NAMES = {0: "offline", 1: "associating", 2: "online"}


def _registry():  # noqa: ANN202 - oktoscripts.devices.registry.DeviceRegistry
    from oktoscripts.devices.client import default_registry

    return default_registry()


@requires(Capability.READ)
def device_list(request: HttpRequest) -> HttpResponse:
    from oktoscripts.devices.registry import DeviceFilter

    g = request.GET
    status = g.get("status", "")
    page = page_number(g)
    filters = DeviceFilter(
        status=int(status) if status in ("0", "1", "2") else None,
        vendor=g.get("vendor") or None,
        product_class=g.get("product_class") or None,
        protocol=g.get("protocol") if g.get("protocol") in ("cwmp", "usp") else None,
        text=g.get("q") or None,
    )
    error = ""
    try:
        registry = _registry()
        devices, total = registry.list(filters, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        counts = registry.counts()
    except Exception as exc:  # noqa: BLE001 - MongoDB down: say so, keep the page
        devices, total, counts = [], 0, {"vendor": {}, "product_class": {}, "status": {}}
        error = f"The device database cannot be reached: {exc}"
    from oktoscripts.devices.documents import lua_table

    rows = []
    for doc in devices:
        d = lua_table(doc)
        rows.append(
            {
                "serial": d["sn"],
                "alias": d["alias"],
                "vendor": d["vendor"],
                "model": d["model"],
                "product_class": d["product_class"],
                "version": d["version"],
                "status": STATUS_NAMES.get(d["status"], "offline"),
                "protocols": [p for p in ("cwmp", "usp") if d[p]],
                "twin": d["twin"],
                "last_seen": parse_datetime(d["last_seen"]) if d["last_seen"] else None,
            }
        )
    query = g.copy()
    query.pop("page", None)
    return render(
        request,
        "ide/device_list.html",
        {
            "devices": rows,
            "total": total,
            "page": page,
            "error": error,
            "has_next": page * PAGE_SIZE < total,
            "query": query.urlencode(),
            "vendors": sorted(k for k in counts.get("vendor", {}) if k),
            "product_classes": sorted(k for k in counts.get("product_class", {}) if k),
            "status_counts": {
                STATUS_NAMES[int(k)]: v
                for k, v in counts.get("status", {}).items()
                if k.isdigit() and int(k) in STATUS_NAMES
            },
            "f": {k: g.get(k, "") for k in ("q", "status", "vendor", "product_class", "protocol")},
        },
    )


@requires(Capability.READ)
def device_detail(request: HttpRequest, serial: str) -> HttpResponse:
    from oktoscripts.devices.documents import api_json

    try:
        doc = _registry().get(serial)
    except ValueError:
        raise Http404("not a device serial") from None
    if doc is None:
        raise Http404("no such device")
    device = api_json(doc)
    params = sorted((device.get("params") or {}).items())
    runs = list(
        Run.objects.filter(trigger__contains=serial).only(
            "id", "script_name", "status", "created", "trigger"
        )[:20]
    )
    cwmp = device.get("cwmp_details") or {}
    twin = _twin_of(serial) if device["twin"] else None
    return render(
        request,
        "ide/device.html",
        {
            "twin": twin,
            "twins": [] if device["twin"] else _twins_of(serial),
            "device": device,
            "params": params,
            "runs": runs,
            "status": STATUS_NAMES.get(device.get("status"), "offline"),
            "events": cwmp.get("last_events") or [],
            "record_json": json.dumps(device, indent=2, default=str),
            "serial": serial,
            "firmware": _firmware_names() if device.get("cwmp") else [],
        },
    )


def _firmware_names() -> list[str]:
    """Stored firmware images, for the page's Download firmware form."""
    from oktoscripts.filestore.store import FileStore

    try:
        files = FileStore(_registry().db).list()
    except Exception:  # noqa: BLE001 - the page works without them
        return []
    return [f.name for f in files if f.file_type.startswith("1 ")]


def _twin_of(serial: str) -> dict | None:
    """The twin record of twin device ``serial`` (None when it is gone)."""
    from oktoscripts.devices.client import mongo_database
    from oktoscripts.twins import store

    try:
        return store.get(mongo_database(), serial)
    except store.TwinNotFound:
        return None


def _twins_of(serial: str) -> list[dict]:
    from oktoscripts.devices.client import mongo_database
    from oktoscripts.twins import store

    docs = mongo_database()[store.TWINS].find({"source": serial}).sort("_id", 1)
    return [{"serial": d["_id"], "state": d["state"]} for d in docs]


@requires(Capability.RUN)
@require_POST
def device_operation(request: HttpRequest, serial: str) -> HttpResponse:
    """Reboot, factory reset or firmware download: a run of its own (operations.py)
    acting for the person who asked; the page goes to its console."""
    from oktoscripts.devices.documents import lua_table
    from oktoscripts.devices.operations import OPERATIONS, OperationError, script
    from oktoscripts.runs.submit import RunQueueError
    from oktoscripts.scripts.start import Origin, Source, start_run

    doc = _registry().get(serial)
    if doc is None:
        raise Http404("no such device")
    operation = request.POST.get("operation", "")
    args = {"serial": serial}
    if operation == "download":
        args["file"] = request.POST.get("file", "")
    try:
        code = script(operation, lua_table({**doc, "serial": serial}))
        run = start_run(
            Source.file(f"{OPERATIONS[operation]} {serial}", code),
            user=request.user,
            args=args,
            origin=Origin(Run.StartedBy.USER, f"device {serial}: {OPERATIONS[operation].lower()}"),
        )
    except (OperationError, ValueError, RunQueueError) as exc:
        messages.error(request, str(exc))
        return redirect("device", serial=serial)
    return redirect("run", run_id=run.pk)
