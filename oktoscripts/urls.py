"""URL routes of the web process."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from oktoscripts.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("ide.urls")),
]
