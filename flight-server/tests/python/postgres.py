"""A throwaway PostgreSQL cluster, the reference for SQL answers.

`initdb` from Debian's postgresql package (any version under
/usr/lib/postgresql/*/bin, or on PATH) makes a cluster in a temp folder; the
server listens only on a Unix socket in that folder. PostgreSQL refuses to
run as root, so as root the cluster belongs to (and runs as) the `postgres`
user the package creates.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import psycopg


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {name} not found (install Debian's postgresql package)")
    return path


def ensure_postgres_user():
    """The `postgres` user Debian's package makes; made here if missing."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)


class Postgres:
    def __init__(self, durable=False):
        """`durable`: fsync on, as in production (benchmarks); tests run with it off."""
        self.dir = tempfile.mkdtemp(prefix="driftdb-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = 5432
        as_root = os.geteuid() == 0
        if as_root:
            ensure_postgres_user()
            shutil.chown(self.dir, "postgres")
            os.chmod(self.dir, 0o755)
        self._run([pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"], as_root)
        fsync = "on" if durable else "off"
        options = f"-k {self.dir} -c listen_addresses='' -c fsync={fsync} -p {self.port}"
        self._run([pg_bin("pg_ctl"), "-D", self.data, "-o", options, "-l", os.path.join(self.dir, "log"), "-w", "start"], as_root)
        self.as_root = as_root

    def _run(self, argv, as_root):
        if as_root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def connect(self, dbname="postgres"):
        deadline = time.time() + 10
        while True:
            try:
                return psycopg.connect(host=self.dir, port=self.port, user="postgres", dbname=dbname, autocommit=True)
            except psycopg.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self):
        self._run([pg_bin("pg_ctl"), "-D", self.data, "-m", "immediate", "stop"], self.as_root)
        shutil.rmtree(self.dir, ignore_errors=True)
