"""A private OpenLDAP server (Debian's ``slapd``) for the directory sign-in tests: a temp
config and database seeded offline with ``slapadd``, serving on a free loopback port in the
foreground (so the Popen PID is slapd's), stopped by that PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import pytest

from simulators.broker import free_port

BASE = "dc=plant,dc=example"
ROOT_DN, ROOT_PW = f"cn=admin,{BASE}", "root-secret"
SEARCH_DN, SEARCH_PW = f"cn=otwatch-search,{BASE}", "search secret"
PASSWORDS = {"qa.lee": "directory pass qa", "soc.kim": "directory pass soc",
             "no.role": "directory pass none"}
GROUPS = {"qa-approvers": ["qa.lee"], "soc": ["soc.kim"], "canteen": ["no.role"]}
GROUP_ROLES = {f"cn=qa-approvers,ou=groups,{BASE}": ["quality", "approver"],
               f"cn=soc,ou=groups,{BASE}": ["security", "approver"]}
NAMES = {"qa.lee": "Quinn Lee", "soc.kim": "Sam Kim", "no.role": "Nora Role"}

CONF = """include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{base}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {dir}/data
access to attrs=userPassword by anonymous auth by self read by * none
access to * by users read by anonymous none
"""


def person(uid: str) -> str:
    return f"uid={uid},ou=people,{BASE}"


def seed() -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Plant\ndc: plant",
        f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: {SEARCH_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject"
        f"\ncn: otwatch-search\nuserPassword: {SEARCH_PW}",
    ]
    for uid, password in PASSWORDS.items():
        name = NAMES[uid]
        entries.append(f"dn: {person(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                       f"cn: {name}\nsn: {name.split()[-1]}\ndisplayName: {name}\n"
                       f"userPassword: {password}")
    for group, members in GROUPS.items():
        lines = "\n".join(f"member: {person(m)}" for m in members)
        entries.append(f"dn: cn={group},ou=groups,{BASE}\nobjectClass: groupOfNames\n"
                       f"cn: {group}\n{lines}")
    return "\n\n".join(entries) + "\n"


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


class Slapd:
    """``with Slapd(tmp) as ldap: ldap.url``: a seeded directory on 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Slapd:
        slapd, slapadd = _tool("slapd"), _tool("slapadd")
        if slapd is None or slapadd is None or not Path("/usr/lib/ldap/back_mdb.so").exists():
            pytest.skip("Debian's slapd is not installed (make test installs it as root: "
                        "`make system-tools`)")
        (self.workdir / "data").mkdir(parents=True)
        conf = self.workdir / "slapd.conf"
        conf.write_text(CONF.format(dir=self.workdir, base=BASE, root_dn=ROOT_DN,
                                    root_pw=ROOT_PW))
        (self.workdir / "seed.ldif").write_text(seed())
        added = subprocess.run([slapadd, "-f", str(conf), "-l", str(self.workdir / "seed.ldif")],
                               capture_output=True, text=True, timeout=30)
        if added.returncode != 0:
            raise RuntimeError(f"slapadd failed: {added.stderr.strip()}")
        log = open(self.workdir / "slapd.log", "wb")
        self._log = log
        self.proc = subprocess.Popen(
            [slapd, "-d", "0", "-f", str(conf), "-h", f"{self.url}/"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LANG": "C"})
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited {self.proc.returncode}; see "
                                   f"{self.workdir / 'slapd.log'}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not listen within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        self._log.close()
