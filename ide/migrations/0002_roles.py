"""Create the role groups (Viewer, Author, Operator, Admin) and their capabilities."""

from django.db import migrations


def create_roles(apps: object, schema_editor: object) -> None:
    from oktoscripts.roles import sync_groups

    sync_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("ide", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
