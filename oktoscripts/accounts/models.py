"""Which accounts an identity provider or a directory owns."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ExternalIdentity(models.Model):
    """The account a person of a provider signs in to.

    OpenID Connect users are found by (issuer, subject), never by username or
    e-mail: a provider that sends ``preferred_username: admin`` must not get
    the local break-glass ``admin``. An account without such a row is local,
    and neither OIDC nor LDAP signs anyone in to it.
    """

    OIDC = "oidc"
    LDAP = "ldap"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identity"
    )
    source = models.CharField(max_length=8, choices=[(OIDC, "OpenID Connect"), (LDAP, "LDAP")])
    issuer = models.CharField(max_length=500)  # the OIDC issuer URL; the LDAP server's URI
    subject = models.CharField(max_length=500)  # the OIDC ``sub``; the LDAP DN
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "issuer", "subject"], name="one_account_per_identity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.subject}"
