"""A real S3-compatible server for the tests: moto in server mode on a
free loopback port, started once per test session.

moto implements conditional writes (`If-None-Match: *` answers 412 when
the key exists), which the commit log's fencing relies on; `check_conditional_put`
proves it before any test trusts it.
"""

import atexit
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import boto3
import botocore.exceptions

REGION = "us-east-1"
ACCESS_KEY = "driftdb-test"
SECRET_KEY = "driftdb-test-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_command():
    beside = os.path.join(os.path.dirname(sys.executable), "moto_server")
    if os.path.exists(beside):
        return [beside]
    found = shutil.which("moto_server")
    if found:
        return [found]
    return [sys.executable, "-m", "moto.server"]


class S3Server:
    """A moto server process and a bucket in it."""

    _shared = None

    @classmethod
    def shared(cls):
        if cls._shared is None:
            cls._shared = cls()
            atexit.register(cls._shared.stop)
        return cls._shared

    def __init__(self, refuse_every_key=False):
        """`refuse_every_key`: moto checks credentials and, knowing none,
        refuses every request as S3 refuses an unknown key (403
        InvalidAccessKeyId); no bucket is made."""
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0") if refuse_every_key else None
        self.process = subprocess.Popen(
            moto_command() + ["-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2)
                break
            except Exception:
                if time.time() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.1)
        self.bucket = "driftdb-tests"
        if not refuse_every_key:
            self.client().create_bucket(Bucket=self.bucket)
            self.check_conditional_put()

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def check_conditional_put(self):
        """Fail loudly if the server ignores If-None-Match (fencing would be untested)."""
        key = f"conditional-put-probe/{uuid.uuid4().hex}"
        s3 = self.client()
        s3.put_object(Bucket=self.bucket, Key=key, Body=b"one", IfNoneMatch="*")
        try:
            s3.put_object(Bucket=self.bucket, Key=key, Body=b"two", IfNoneMatch="*")
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "PreconditionFailed", e
        else:
            raise AssertionError("the S3 server ignores If-None-Match: fencing cannot be tested")

    def env(self):
        """The variables that point DriftDB (object_store) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def new_location(self):
        """A fresh, empty database location in the bucket."""
        return f"s3://{self.bucket}/db-{uuid.uuid4().hex[:12]}"

    def keys(self, location):
        prefix = location.split(f"s3://{self.bucket}/", 1)[1] + "/"
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"][len(prefix):] for page in pages for o in page.get("Contents", []))

    def read(self, location, name):
        prefix = location.split(f"s3://{self.bucket}/", 1)[1]
        got = self.client().get_object(Bucket=self.bucket, Key=f"{prefix}/{name}")
        return got["Body"].read().decode()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def main(argv):
    """`python s3server.py -- COMMAND…`: run COMMAND with a moto server up,
    the `AWS_*` variables pointing at it, and `DRIFTDB_SLT_DATA` and
    `DRIFTDB_BENCH_STORE` naming prefixes in its bucket (the sqllogictest
    suite and the benchmarks on S3)."""
    if "--" not in argv:
        print("usage: s3server.py -- COMMAND [ARG…]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    server = S3Server()
    try:
        env = dict(os.environ, **server.env())
        env["DRIFTDB_SLT_DATA"] = f"s3://{server.bucket}/slt"
        env.setdefault("DRIFTDB_BENCH_STORE", f"s3://{server.bucket}/bench")
        return subprocess.call(command, env=env)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
