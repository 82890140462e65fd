"""Users of every role, and clients signed in as them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

PASSWORD = "correct-horse-battery-staple"


def make_user(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    """Hashing passwords for real costs 0.3 s per user; tests need no strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def users(db) -> dict[str, User]:
    people = {
        role.lower(): make_user(role.lower(), role)
        for role in ("Viewer", "Author", "Operator", "Admin")
    }
    people["nobody"] = make_user("nobody", None)
    people["superuser"] = User.objects.create_superuser("root", "", PASSWORD)
    return people


@pytest.fixture
def client_for(users):
    def signed_in(role: str, enforce_csrf: bool = False) -> Client:
        client = Client(enforce_csrf_checks=enforce_csrf)
        client.force_login(users[role])
        return client

    return signed_in
