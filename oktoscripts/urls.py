"""URL routes of the web process."""

from django.urls import include, path

from oktoscripts.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", include("oktoscripts.accounts.urls")),  # sign-in, sign-out, single sign-on
    path("", include("ide.urls")),
]
