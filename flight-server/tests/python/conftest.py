"""Start a real `driftdb serve` for the tests and connect to it with ADBC.

The binary comes from $DRIFTDB_BIN, else $CARGO_TARGET_DIR/debug/driftdb.
Each server gets a fresh data folder and a free port (the server is told
to listen on port 0 and prints the address it got).
"""

import os
import re
import subprocess
import tempfile
import time
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

PASSWORD = "test-password-1"


def driftdb_binary():
    if os.environ.get("DRIFTDB_BIN"):
        return os.environ["DRIFTDB_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/driftdb-target"))
    return os.path.join(target, "debug", "driftdb")


class Server:
    """A running `driftdb serve` process."""

    def __init__(self, *extra_args, password=PASSWORD):
        self.data = tempfile.mkdtemp(prefix="driftdb-pytest-")
        env = dict(os.environ, DRIFTDB_PASSWORD=password, DRIFTDB_LOG="warn")
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
            raise RuntimeError("driftdb serve did not start:\n" + "".join(self.output))

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
