"""URL routes of the web process."""

from django.urls import include, path

from oktoscripts.health import healthz
from oktoscripts.metrics.views import metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),  # the token or an allowed network, no sign-in
    path("", include("oktoscripts.accounts.urls")),  # sign-in, sign-out, single sign-on
    path("", include("ide.urls")),
]
