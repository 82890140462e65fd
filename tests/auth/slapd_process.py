"""A real LDAP server for the LDAP sign-in tests: Debian's OpenLDAP slapd, on
a free port, with a directory of its own under a temporary folder."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.browser_site import free_port

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=net"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "directory-admin-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {data}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 67108864
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {data}/db
"""


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


class Directory:
    """slapd in the foreground (``-d 0``), stopped by ``stop()``; its entries
    are written over LDAP as the directory's administrator."""

    def __init__(self, data: Path) -> None:
        import ldap

        self._ldap = ldap
        (data / "db").mkdir(parents=True)
        conf = data / "slapd.conf"
        conf.write_text(
            CONFIG.format(data=data, suffix=SUFFIX, root_dn=ROOT_DN, root_password=ROOT_PASSWORD)
        )
        self.port = free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.log = data / "slapd.log"
        self.proc = subprocess.Popen(
            [SLAPD, "-f", str(conf), "-h", self.uri + "/", "-d", "0"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.conn = self._connect()
        self._add(SUFFIX, objectClass=["dcObject", "organization"], dc=["example"], o=["Example"])
        self._add(PEOPLE, objectClass=["organizationalUnit"], ou=["people"])
        self._add(GROUPS, objectClass=["organizationalUnit"], ou=["groups"])

    def _connect(self):  # noqa: ANN202 - an ldap connection
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = self._ldap.initialize(self.uri)
                conn.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
                return conn
            except self._ldap.SERVER_DOWN as exc:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(
                        "slapd did not start: " + self.log.read_text()[-2000:]
                    ) from exc
                time.sleep(0.1)

    def _add(self, dn: str, **attrs: list[str]) -> None:
        self.conn.add_s(dn, [(k, [v.encode() for v in vs]) for k, vs in attrs.items()])

    def person(self, uid: str, password: str) -> str:
        self._add(
            user_dn(uid),
            objectClass=["inetOrgPerson"],
            uid=[uid],
            cn=[uid.title()],
            sn=["Tester"],
            mail=[f"{uid}@example.net"],
            userPassword=[password],
        )
        return user_dn(uid)

    def group(self, cn: str, members: list[str]) -> None:
        """Create the group, or set its members (groupOfNames needs at least one:
        the directory's administrator stands in for an empty group)."""
        values = [m.encode() for m in members or [ROOT_DN]]
        try:
            self._add(
                group_dn(cn),
                objectClass=["groupOfNames"],
                cn=[cn],
                member=[v.decode() for v in values],
            )
        except self._ldap.ALREADY_EXISTS:
            self.conn.modify_s(group_dn(cn), [(self._ldap.MOD_REPLACE, "member", values)])

    def stop(self) -> None:
        self.conn.unbind_s()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def missing() -> str:
    """Why the LDAP tests cannot run here, or ''."""
    try:
        import django_auth_ldap  # noqa: F401
        import ldap  # noqa: F401
    except ImportError:
        return (
            "python-ldap/django-auth-ldap are not installed (make install adds them once "
            "libldap2-dev and libsasl2-dev are there; as root it installs those)"
        )
    if not Path(SLAPD).exists():
        return "slapd is not installed (make test installs it as root: apt-get install slapd)"
    return ""
