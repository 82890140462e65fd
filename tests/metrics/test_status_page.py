"""The Status page: Admins only; the figures every process reports over NATS."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

from oktoscripts.metrics import series, status
from tests.ide.conftest import client_for, fast_passwords, users  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def signed_in_superuser() -> Client:
    """A client of an Admin (superusers are; the role groups may be flushed here)."""
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "", "not-used-here"))
    return client


@pytest.mark.parametrize("role", ["viewer", "author", "operator", "nobody"])
def test_only_admins_see_the_status_page(client_for, role):  # noqa: F811
    response = client_for(role).get("/status/")
    assert response.status_code == 403
    assert "figure" not in response.content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/status/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.django_db(transaction=True)
async def test_processes_answer_over_nats_and_the_page_adds_them_up(nc):
    worker = status.StatusReporter(nc, "worker", "worker-under-test")
    acs = status.StatusReporter(nc, "acs", "acs-under-test")
    await worker.start()
    await acs.start()
    try:
        # Two samples ten seconds apart in each: 20 runs and 50 Informs in between.
        worker.history.extend([(1000.0, {"runs_started": 5.0}), (1010.0, {"runs_started": 25.0})])
        acs.history.extend([(1000.0, {"acs_informs": 0.0}), (1010.0, {"acs_informs": 50.0})])
        reports = await status.gather(nc)
        mine = [r for r in reports if r["name"] in ("worker-under-test", "acs-under-test")]
        assert sorted(r["kind"] for r in mine) == ["acs", "worker"]
        summary = status.summarize(mine)
        assert summary["charts"]["runs_started"] == [(1010.0, 2.0)]
        assert summary["charts"]["acs_informs"] == [(1010.0, 5.0)]

        series.run_submitted("user")  # this (web) process's own figure
        admin = await sync_to_async(signed_in_superuser)()
        response = await sync_to_async(admin.get)("/status/")
        page = response.content.decode()
        assert response.status_code == 200
        assert "<td>worker-under-test</td>" in page and "<td>acs-under-test</td>" in page
        # The page adds up every process that answers on the session's bus: a
        # process another test left running a moment longer adds its own (seen
        # once in CI), so ours must be in the sum (the exact sum of these two is
        # checked on `summarize` above).
        informs = re.search(r'data-figure="acs_informs".*?latest ([\d.]+) per second', page, re.S)
        assert informs and float(informs.group(1)) >= 5
    finally:
        await worker.stop()
        await acs.stop()
