"""Sign-in routes: the page, and OpenID Connect's start and callback.

The provider must know the callback's full URL: ``https://HOST/oidc/callback/``.
The OIDC routes answer 404 while OpenID Connect is not configured.
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from oktoscripts.accounts import oidc
from oktoscripts.accounts.views import SignInView

urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/authenticate/", oidc.StartView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", oidc.CallbackView.as_view(), name="oidc_authentication_callback"),
]
