"""DriftDB on a real S3-compatible server (moto on loopback): commits kept
across restarts and kill -9, one writer per prefix, a writer whose lease
was taken over stops, and storage failures named with a SQLSTATE.
"""

import os
import signal
import subprocess
import threading
import time

import adbc_driver_manager
import pytest

from conftest import Server, driftdb_binary
from s3server import S3Server

# The lease of the writers these tests pause or kill: short, so a new
# server may take over soon. The servers that take over keep a longer one
# (an opener judges a lease by its holder's TTL), so a loaded machine
# cannot make them miss a renewal.
LEASE_MS = 1500
TAKEOVER_LEASE_MS = 20000


@pytest.fixture(scope="module")
def s3():
    return S3Server.shared()


def start_when_free(location, deadline_s=30, *args):
    """Start a server on `location`, retrying while the previous writer's lease holds."""
    deadline = time.time() + deadline_s
    while True:
        try:
            return Server("--writer-lease-ttl-ms", str(TAKEOVER_LEASE_MS), *args, data=location)
        except RuntimeError as e:
            if "55006" not in str(e) or time.time() > deadline:
                raise
            time.sleep(0.2)


def rows(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def execute(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)


def test_a_database_on_s3_keeps_its_commits_and_history_across_a_restart(s3):
    location = s3.new_location()
    server = Server(data=location)
    conn = server.connect()
    execute(conn, "CREATE TABLE orders (id BIGINT PRIMARY KEY, amount DECIMAL(10,2))")
    execute(conn, "INSERT INTO orders VALUES (1, 10.50), (2, 20.25)")
    execute(conn, "UPDATE orders SET amount = 99.99 WHERE id = 1")
    conn.close()
    assert server.stop() == 0
    keys = s3.keys(location)
    for folder in ("_log/", "_checkpoints/", "_lease/", "data/"):
        assert any(k.startswith(folder) for k in keys), (folder, keys)
    assert "users.json" in keys

    # The lease was released on shutdown: a new server starts at once.
    server = Server(data=location)
    conn = server.connect()
    assert rows(conn, "SELECT id, CAST(amount AS TEXT) FROM orders ORDER BY id") == [
        (1, "99.99"),
        (2, "20.25"),
    ]
    assert rows(conn, "SELECT CAST(amount AS TEXT) FROM orders VERSION AS OF 2 WHERE id = 1") == [
        ("10.50",)
    ]
    execute(conn, "INSERT INTO orders VALUES (3, 1.00)")
    assert rows(conn, "SELECT count(*) FROM orders") == [(3,)]
    conn.close()
    assert server.stop() == 0


def test_a_second_server_on_the_same_prefix_is_refused(s3):
    location = s3.new_location()
    first = Server(data=location)
    with pytest.raises(RuntimeError) as refused:
        Server(data=location)
    message = str(refused.value)
    assert "55006" in message and "holds it for writing" in message, message
    conn = first.connect()
    execute(conn, "CREATE TABLE t (k BIGINT)")
    execute(conn, "INSERT INTO t VALUES (1)")
    assert rows(conn, "SELECT count(*) FROM t") == [(1,)]
    conn.close()
    assert first.stop() == 0


def test_a_writer_whose_lease_was_taken_over_stops_writing(s3):
    location = s3.new_location()
    old = Server("--writer-lease-ttl-ms", str(LEASE_MS), data=location)
    old_conn = old.connect()
    execute(old_conn, "CREATE TABLE t (k BIGINT)")
    execute(old_conn, "INSERT INTO t VALUES (1)")
    # The old writer is paused past its lease (a long GC pause, a VM
    # migration); a new one takes the database over.
    os.kill(old.process.pid, signal.SIGSTOP)
    try:
        new = start_when_free(location)
    finally:
        os.kill(old.process.pid, signal.SIGCONT)
    new_conn = new.connect()
    execute(new_conn, "INSERT INTO t VALUES (2)")
    # The old writer wakes up: its next commit is refused, not forked.
    with pytest.raises(adbc_driver_manager.Error) as fenced:
        execute(old_conn, "INSERT INTO t VALUES (3)")
    assert "55006" in str(fenced.value) or "no longer owns" in str(fenced.value), fenced.value
    with pytest.raises(adbc_driver_manager.Error):
        execute(old_conn, "INSERT INTO t VALUES (4)")
    old_conn.close()
    old.stop()
    execute(new_conn, "INSERT INTO t VALUES (5)")
    assert rows(new_conn, "SELECT k FROM t ORDER BY k") == [(1,), (2,), (5,)]
    new_conn.close()
    assert new.stop() == 0
    # And a reopened database agrees: history has one line.
    again = Server(data=location)
    conn = again.connect()
    assert rows(conn, "SELECT k FROM t ORDER BY k") == [(1,), (2,), (5,)]
    assert [r[0] for r in rows(conn, "SELECT seq FROM commits() ORDER BY seq")] == [1, 2, 3, 4]
    conn.close()
    assert again.stop() == 0


def test_kill_9_during_commits_on_s3_loses_no_acknowledged_commit(s3):
    location = s3.new_location()
    server = Server("--writer-lease-ttl-ms", str(LEASE_MS), data=location)
    setup = server.connect()
    execute(setup, "CREATE TABLE events (writer INT, n INT, PRIMARY KEY (writer, n))")
    setup.close()
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()

    def write(writer):
        conn = server.connect()
        n = 0
        try:
            while not stop.is_set():
                execute(conn, f"INSERT INTO events VALUES ({writer}, {n})")
                with lock:
                    acknowledged.append((writer, n))
                n += 1
        except Exception:
            pass  # the server died under us: the last insert may or may not have landed

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while len(acknowledged) < 200 and time.time() < deadline:
        time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 50, "too few commits to mean anything"

    recovered = start_when_free(location)
    conn = recovered.connect()
    present = set(rows(conn, "SELECT writer, n FROM events"))
    missing = set(acknowledged) - present
    assert not missing, f"{len(missing)} acknowledged commits lost, e.g. {sorted(missing)[:5]}"
    # Each writer's rows are a prefix of its sequence: nothing after a gap.
    for writer in range(8):
        ns = sorted(n for w, n in present if w == writer)
        assert ns == list(range(len(ns))), (writer, ns[:10])
    conn.close()
    assert recovered.stop() == 0


def run_sql(location, sql, env):
    return subprocess.run(
        [driftdb_binary(), "sql", "--data", location, "-e", sql],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_storage_failures_are_named_with_a_sqlstate(s3):
    missing = run_sql("s3://no-such-bucket-here/db", "SELECT 1", s3.env())
    assert missing.returncode != 0
    assert "3D000" in missing.stderr, missing.stderr
    closed_port = dict(s3.env(), AWS_ENDPOINT_URL="http://127.0.0.1:9")
    unreachable = run_sql(s3.new_location(), "SELECT 1", closed_port)
    assert unreachable.returncode != 0
    assert "08006" in unreachable.stderr, unreachable.stderr
    bad_scheme = run_sql("ftp://host/db", "SELECT 1", {})
    assert bad_scheme.returncode != 0 and "0A000" in bad_scheme.stderr, bad_scheme.stderr


def test_driftdb_sql_on_s3_commits_and_releases_the_lease(s3):
    location = s3.new_location()
    first = run_sql(location, "CREATE TABLE t (k INT); INSERT INTO t VALUES (1), (2);", s3.env())
    assert first.returncode == 0, first.stderr
    second = run_sql(location, "INSERT INTO t VALUES (3); SELECT sum(k) FROM t;", s3.env())
    assert second.returncode == 0, second.stderr
    assert "6" in second.stdout, second.stdout


def cli(*args, env=None):
    return subprocess.run(
        [driftdb_binary(), *args],
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        timeout=300,
    )


def table_rows(conn, at=""):
    return rows(conn, f"SELECT id, note, CAST(amount AS TEXT) FROM ledger{at} ORDER BY id")


def test_online_backup_on_s3_and_point_in_time_restore(s3, tmp_path):
    """Backups of a server committing on S3 (into a bucket and into a
    folder), an incremental one, and restores at the newest commit, at a
    seq and at a time, each compared with the source read AS OF it."""
    location = s3.new_location()
    first = Server(data=location)
    conn = first.connect()
    execute(conn, "CREATE TABLE ledger (id BIGINT PRIMARY KEY, note TEXT, amount DECIMAL(12,2))")
    for i in range(20):
        execute(conn, f"INSERT INTO ledger VALUES ({i}, 'n''{i}', {i}.25)")
    conn.close()
    assert first.stop() == 0  # a checkpoint and data files on S3

    server = Server(data=location)
    conn = server.connect()
    stop = threading.Event()

    def write():
        writer = server.connect()
        i = 100
        while not stop.is_set():
            execute(writer, f"INSERT INTO ledger VALUES ({i}, NULL, -{i}.5)")
            execute(writer, f"UPDATE ledger SET amount = amount + 1 WHERE id = {i % 20}")
            i += 1
        writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    bucket_backup, folder_backup = s3.new_location(), str(tmp_path / "backup")
    try:
        time.sleep(0.5)
        for dest in (bucket_backup, folder_backup):
            taken = cli("backup", "--data", location, "--to", dest, env=s3.env())
            assert taken.returncode == 0, taken.stderr
            assert "backup 1 of" in taken.stdout, taken.stdout
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
    mid = rows(conn, "SELECT max(seq) FROM commits()")[0][0]
    mid_time = rows(conn, f"SELECT CAST(commit_time AS TEXT) FROM commits() WHERE seq = {mid}")[0][0]
    execute(conn, "DELETE FROM ledger WHERE id % 3 = 0")
    execute(conn, "INSERT INTO ledger VALUES (9999, 'last', 0)")
    latest = rows(conn, "SELECT max(seq) FROM commits()")[0][0]
    for dest in (bucket_backup, folder_backup):
        taken = cli("backup", "--data", location, "--to", dest, env=s3.env())
        assert taken.returncode == 0, taken.stderr
        assert "backup 2 of" in taken.stdout and f"through commit {latest} " in taken.stdout, taken.stdout

    points = [
        (bucket_backup, [], latest),
        (folder_backup, ["--seq", str(mid)], mid),
        (bucket_backup, ["--seq", "3"], 3),
        (folder_backup, ["--time", mid_time], mid),
    ]
    for dest, point, seq in points:
        target = s3.new_location()
        restored = cli("restore", "--from", dest, "--to", target, *point, env=s3.env())
        assert restored.returncode == 0, restored.stderr
        assert f"at commit {seq} " in restored.stdout, restored.stdout
        copy = Server(data=target)
        copy_conn = copy.connect()
        assert table_rows(copy_conn) == table_rows(conn, f" VERSION AS OF {seq}"), (dest, point)
        assert rows(copy_conn, "SELECT max(seq) FROM commits()") == [(seq,)]
        copy_conn.close()
        assert copy.stop() == 0

    # A non-empty target is refused; so is a backup with a damaged byte.
    refused = cli("restore", "--from", bucket_backup, "--to", location, env=s3.env())
    assert refused.returncode != 0 and "55000" in refused.stderr, refused.stderr
    keys = [k for k in s3.keys(bucket_backup) if k.startswith("data/")]
    prefix = bucket_backup.split(f"s3://{s3.bucket}/", 1)[1]
    client = s3.client()
    body = bytearray(client.get_object(Bucket=s3.bucket, Key=f"{prefix}/{keys[0]}")["Body"].read())
    body[len(body) // 2] ^= 0x10
    client.put_object(Bucket=s3.bucket, Key=f"{prefix}/{keys[0]}", Body=bytes(body))
    damaged = cli("restore", "--from", bucket_backup, "--to", s3.new_location(), env=s3.env())
    assert damaged.returncode != 0 and "XX001" in damaged.stderr, damaged.stderr
    assert keys[0] in damaged.stderr, damaged.stderr
    conn.close()
    assert server.stop() == 0


def test_refused_credentials_are_28000():
    refusing = S3Server(refuse_every_key=True)
    try:
        refused = run_sql(refusing.new_location(), "SELECT 1", refusing.env())
        assert refused.returncode != 0
        assert "28000" in refused.stderr, refused.stderr
    finally:
        refusing.stop()


def test_throttling_is_retried_and_named_53000_when_it_outlasts_the_retries(s3):
    from s3proxy import ThrottlingProxy

    proxy = ThrottlingProxy(s3.endpoint)
    try:
        env = dict(s3.env(), AWS_ENDPOINT_URL=proxy.endpoint)
        location = s3.new_location()
        # Every third request slowed down: the retries carry every commit.
        proxy.throttle_every = 3
        made = run_sql(
            location,
            "CREATE TABLE t (k INT); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);",
            env,
        )
        assert made.returncode == 0, made.stderr
        assert proxy.throttled > 0
        # Every request slowed down: the retries give up with 53000.
        proxy.throttle_every = 1
        before = proxy.throttled
        throttled = run_sql(location, "INSERT INTO t VALUES (3);", env)
        assert throttled.returncode != 0
        assert "53000" in throttled.stderr, throttled.stderr
        # The request was tried once and retried (8 times, with backoff) first.
        assert proxy.throttled - before >= 9, proxy.throttled - before
        proxy.throttle_every = 0
        again = run_sql(location, "SELECT sum(k) FROM t;", env)
        assert again.returncode == 0, again.stderr
        assert "| 3 " in again.stdout, again.stdout
    finally:
        proxy.stop()


def test_backup_of_an_s3_database_whose_log_objects_were_let_go(s3, tmp_path):
    """Each open fences the log and each close checkpoints, letting covered
    log objects go while the fences stay: the backup reads what is left."""
    location = s3.new_location()
    env = s3.env()
    made = run_sql(location, "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);", env)
    assert made.returncode == 0, made.stderr
    for i in range(2, 7):
        more = run_sql(location, f"INSERT INTO t VALUES ({i});", env)
        assert more.returncode == 0, more.stderr
    dest = str(tmp_path / "backup")
    taken = cli("backup", "--data", location, "--to", dest, env=env)
    assert taken.returncode == 0, taken.stderr
    for point, expected in (([], "21"), (["--seq", "6"], "15")):
        target = s3.new_location()
        restored = cli("restore", "--from", dest, "--to", target, *point, env=env)
        assert restored.returncode == 0, restored.stderr
        summed = run_sql(target, "SELECT sum(id) FROM t;", env)
        assert summed.returncode == 0, summed.stderr
        assert f"| {expected} " in summed.stdout, (point, summed.stdout)


def test_storage_settings_in_the_config_file_win_over_the_environment(s3, tmp_path):
    location = s3.new_location()
    settings = s3.env()
    config = tmp_path / "driftdb.toml"
    config.write_text("[storage]\n" + "".join(f'{k.lower()} = "{v}"\n' for k, v in settings.items()))
    blank = {name: "" for name in settings}  # the environment says nothing useful
    server = Server("--config", str(config), data=location, env=blank)
    conn = server.connect()
    execute(conn, "CREATE TABLE t (k INT)")
    execute(conn, "INSERT INTO t VALUES (7)")
    assert rows(conn, "SELECT k FROM t") == [(7,)]
    conn.close()
    assert server.stop() == 0
    assert any(k.startswith("_log/") for k in s3.keys(location))

    config.write_text('[storage]\naws_endpoint_urll = "http://127.0.0.1:9"\n')
    with pytest.raises(RuntimeError) as refused:
        Server("--config", str(config), data=s3.new_location())
    assert "22023" in str(refused.value) and "aws_endpoint_urll" in str(refused.value), refused.value
