"""The web process's /metrics: the same rule as every process's, no sign-in."""

from __future__ import annotations

from oktoscripts.metrics import series

from .scrape import samples, value


def test_loopback_may_scrape_without_signing_in(client):
    series.run_submitted("api")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert (
        value(
            samples(response.content.decode()), "oktoscripts_runs_submitted_total", started_by="api"
        )
        >= 1
    )


def test_other_networks_need_the_token(client, monkeypatch):
    outside = {"REMOTE_ADDR": "192.0.2.7"}
    response = client.get("/metrics", **outside)
    assert response.status_code == 403 and b"oktoscripts_" not in response.content
    monkeypatch.setenv("OKTOSCRIPTS_METRICS_TOKEN", "s3cret-token")
    response = client.get("/metrics", **outside)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **outside).status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", **outside)
    assert response.status_code == 200 and b"oktoscripts_runs_submitted" in response.content
    monkeypatch.setenv("OKTOSCRIPTS_METRICS_ALLOW", "192.0.2.0/24")
    assert client.get("/metrics", **outside).status_code == 200


def test_a_malformed_network_setting_is_named(client, monkeypatch):
    monkeypatch.setenv("OKTOSCRIPTS_METRICS_ALLOW", "10.0.0.0/33")
    response = client.get("/metrics")
    assert response.status_code == 500
    assert b"OKTOSCRIPTS_METRICS_ALLOW" in response.content and b"10.0.0.0/33" in response.content


def test_metrics_off_serves_nothing(client, monkeypatch):
    monkeypatch.setenv("OKTOSCRIPTS_METRICS", "off")
    response = client.get("/metrics")
    assert response.status_code == 404 and b"oktoscripts_" not in response.content
