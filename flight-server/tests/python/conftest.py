"""Start a real `driftdb serve` for the tests and connect to it with ADBC.

The binary comes from $DRIFTDB_BIN, else $CARGO_TARGET_DIR/debug/driftdb.
Each server gets a fresh data folder and a free port (the server is told
to listen on port 0 and prints the address it got).

With DRIFTDB_TEST_STORAGE=s3 every server keeps its database in a bucket
of a real S3-compatible server (moto, started on loopback for the session)
instead of a local folder: the same suite, on object storage.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

from s3server import S3Server

PASSWORD = "test-password-1"
ON_S3 = os.environ.get("DRIFTDB_TEST_STORAGE") == "s3"


def driftdb_binary():
    if os.environ.get("DRIFTDB_BIN"):
        return os.environ["DRIFTDB_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/driftdb-target"))
    return os.path.join(target, "debug", "driftdb")


class Server:
    """A running `driftdb serve` process."""

    def __init__(self, *extra_args, password=PASSWORD, data=None, env=None):
        if data is None and ON_S3:
            data = S3Server.shared().new_location()
        # A folder made here is removed when the server stops.
        self.owns_data = data is None and not ON_S3
        self.data = data or tempfile.mkdtemp(prefix="driftdb-pytest-")
        base = dict(os.environ, DRIFTDB_PASSWORD=password, DRIFTDB_LOG="warn")
        if self.data.startswith("s3://"):
            base.update(S3Server.shared().env())
        env = dict(base, **(env or {}))
        self.process = subprocess.Popen(
            [
                driftdb_binary(),
                "serve",
                "--data",
                self.data,
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                *extra_args,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.uri = None
        self.http = None
        self.output = []
        deadline = time.time() + 60
        while time.time() < deadline and self.uri is None:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if m := re.search(r"http://([0-9.:]+)/health", line):
                self.http = "http://" + m.group(1)
            if m := re.search(r"serving Flight SQL on (grpc\S*)", line):
                self.uri = m.group(1)
        if self.uri is None:
            self.process.kill()
            self.process.wait()
            raise RuntimeError("driftdb serve did not start:\n" + "".join(self.output))

    def read_stored(self, name):
        """The text of a file the server keeps beside its data (folder or bucket)."""
        if self.data.startswith("s3://"):
            return S3Server.shared().read(self.data, name)
        with open(os.path.join(self.data, name)) as f:
            return f.read()

    def connect(self, username="driftdb", password=PASSWORD, db_kwargs_extra=None, **kwargs):
        db_kwargs = {"username": username, "password": password, **(db_kwargs_extra or {})}
        return flight_sql.connect(self.uri, db_kwargs=db_kwargs, autocommit=True, **kwargs)

    def metrics(self):
        with urllib.request.urlopen(self.http + "/metrics", timeout=5) as r:
            text = r.read().decode()
        return {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }

    def stop(self):
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        finally:
            if self.owns_data:
                shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    assert s.stop() == 0, "the server must exit cleanly on SIGTERM"


@pytest.fixture()
def conn(server):
    c = server.connect()
    yield c
    c.close()
