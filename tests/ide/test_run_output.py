"""A run's output over REST beyond paging: search and the text download."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from oktoscripts.runs.models import Run, RunOutputLine


@pytest.fixture
def run(db):
    now = timezone.now()
    run = Run.objects.create(
        script_name="big/one", code="--", started_by="user", status="succeeded"
    )
    RunOutputLine.objects.bulk_create(
        RunOutputLine(
            run=run,
            seq=n,
            text=f"Row {n}",
            time=now + timedelta(seconds=n),
            stream="log" if n == 7 else "stdout",
            level="warn" if n == 7 else None,
        )
        for n in range(1, 31)
    )
    return run


def test_search_gives_the_matching_lines_in_any_case(client_for, run):
    client = client_for("viewer")
    body = client.get(f"/api/runs/{run.pk}/output/search", {"q": "row 2"}).json()
    assert body == {"seqs": [2, *range(20, 30)], "more": False}
    limited = client.get(f"/api/runs/{run.pk}/output/search", {"q": "ROW", "limit": 5}).json()
    assert limited == {"seqs": [1, 2, 3, 4, 5], "more": True}
    assert client.get(f"/api/runs/{run.pk}/output/search", {"q": ""}).status_code == 400
    assert (
        client_for("nobody").get(f"/api/runs/{run.pk}/output/search", {"q": "x"}).status_code == 403
    )


def test_the_whole_output_downloads_as_text(client_for, run):
    response = client_for("viewer").get(f"/api/runs/{run.pk}/output/text")
    assert response.status_code == 200
    assert f'filename="big_one-{run.pk}.log"' in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 30
    assert lines[0].endswith("  [stdout]  Row 1") and "[log/warn]  Row 7" in lines[6]
