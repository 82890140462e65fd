"""Administration pages: the audit log and users' roles."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ide.access import requires
from oktoscripts.roles import ROLES, Capability, assign_role, role_of
from oktoscripts.scripts import audit
from oktoscripts.scripts.models import AuditEvent

PAGE_SIZE = 100


@requires(Capability.ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    qs = AuditEvent.objects.all()
    action = request.GET.get("action", "").strip()
    actor = request.GET.get("actor", "").strip()
    target = request.GET.get("target", "").strip()
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(actor_name=actor)
    if target:
        qs = qs.filter(target__icontains=target)
    before = request.GET.get("before", "")
    if before.isdigit():
        qs = qs.filter(id__lt=int(before))
    rows = list(qs.order_by("-id")[: PAGE_SIZE + 1])
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "ide/audit.html",
        {
            "events": rows[:PAGE_SIZE],
            "next_before": rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None,
            "action": action,
            "actor": actor,
            "target": target,
            "query": query.urlencode(),
            "actions": [
                "script.",
                "run.",
                "role.",
                "credential.",
                "token.",
                "device.",
                "settings.",
                "sign-in",
            ],
        },
    )


@requires(Capability.ADMIN)
def users(request: HttpRequest) -> HttpResponse:
    people = (
        get_user_model()
        .objects.order_by("username")
        .prefetch_related("groups")
        .select_related("external_identity")
    )
    rows = [{"user": u, "role": role_of(u), "signs_in_with": _signs_in_with(u)} for u in people]
    return render(request, "ide/users.html", {"rows": rows, "roles": list(ROLES)})


def _signs_in_with(user: object) -> str:
    """ "OpenID Connect" or "LDAP" for accounts single sign-on made (their role
    is set again at each sign-in, README "Single sign-on"); "" for local ones."""
    identity = getattr(user, "external_identity", None)
    return identity.get_source_display() if identity else ""


@requires(Capability.ADMIN)
@require_POST
def set_role(request: HttpRequest, user_id: int) -> HttpResponse:
    person = get_object_or_404(get_user_model(), pk=user_id)
    role = request.POST.get("role", "")
    if role not in ROLES and role != "None":
        messages.error(request, f"Unknown role {role!r}.")
        return redirect("users")
    if person.is_superuser:
        messages.error(request, f"{person.username} is a superuser: always an Admin.")
        return redirect("users")
    before = role_of(person)
    assign_role(person, None if role == "None" else role)
    audit.record(request.user, "role.change", person.username, before=before, after=role)
    messages.success(request, f"{person.username} is now {role}.")
    return redirect("users")


@requires(Capability.ADMIN)
@require_POST
def create_user(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth.password_validation import ValidationError, validate_password

    username = request.POST.get("username", "").strip()
    password = request.POST.get("password", "")
    role = request.POST.get("role", "Viewer")
    User = get_user_model()
    if not username or User.objects.filter(username=username).exists():
        messages.error(request, "Choose a username that is not taken.")
        return redirect("users")
    try:
        User._meta.get_field(User.USERNAME_FIELD).run_validators(username)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("users")
    try:
        validate_password(password, User(username=username))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("users")
    person = User.objects.create_user(username=username, password=password)
    if role in ROLES:
        person.groups.add(Group.objects.get(name=role))
    audit.record(request.user, "role.change", username, before="(new user)", after=role)
    messages.success(request, f"Created {username} as {role}.")
    return redirect("users")
