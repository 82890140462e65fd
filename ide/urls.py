from django.urls import path

from ide import (
    converters,  # noqa: F401 - registers the "serial" converter
    views,
)
from ide.api import app as rest
from ide.pages import (
    account,
    admin,
    automations,
    credentials,
    devices,
    reference,
    runs,
    scripts,
    settings,
)

urlpatterns = [
    path("", views.home, name="home"),
    path("scripts/", scripts.script_list, name="scripts"),
    path("scripts/new", scripts.script_create, name="script_create"),
    path("scripts/<int:script_id>/", scripts.editor, name="editor"),
    path("scripts/<int:script_id>/settings", scripts.script_settings, name="script_settings"),
    path("scripts/<int:script_id>/delete", scripts.script_delete, name="script_delete"),
    path("scripts/<int:script_id>/undelete", scripts.script_undelete, name="script_undelete"),
    path("scripts/<int:script_id>/versions/", scripts.versions, name="versions"),
    path("scripts/<int:script_id>/versions/<int:number>/", scripts.version_detail,
         name="version"),
    path("scripts/<int:script_id>/versions/<int:number>/restore", scripts.version_restore,
         name="version_restore"),
    path("scripts/<int:script_id>/diff", scripts.version_diff, name="diff"),
    path("runs/", runs.run_list, name="runs"),
    path("runs/<uuid:run_id>/", runs.run_detail, name="run"),
    path("runs/<uuid:run_id>/rerun", runs.rerun, name="rerun"),
    path("runs/<uuid:run_id>/apply", runs.apply_plan, name="apply_plan"),
    path("devices/", devices.device_list, name="devices"),
    path("devices/<serial:serial>/", devices.device_detail, name="device"),
    path("reference/", reference.reference, name="reference"),
    path("automations/", automations.index, name="automations"),
    path("automations/schedules/<int:schedule_id>/", automations.schedule_detail,
         name="automation_schedule"),
    path("automations/bulk/<int:bulk_id>/", automations.bulk_detail, name="automation_bulk"),
    path("automations/deployments/<int:deployment_id>/", automations.deployment_detail,
         name="automation_deployment"),
    path("audit/", admin.audit_log, name="audit"),
    path("users/", admin.users, name="users"),
    path("users/new", admin.create_user, name="create_user"),
    path("users/<int:user_id>/role", admin.set_role, name="set_role"),
    path("credentials/", credentials.credential_list, name="credentials"),
    path("credentials/set", credentials.credential_set, name="credential_set"),
    path("credentials/delete", credentials.credential_delete, name="credential_delete"),
    path("settings/", settings.settings_page, name="settings"),
    path("account/tokens/", account.tokens, name="tokens"),
    path("account/tokens/new", account.create_token, name="create_token"),
    path("account/tokens/<int:token_id>/revoke", account.revoke_token, name="revoke_token"),
    *rest.urlpatterns(),
]
