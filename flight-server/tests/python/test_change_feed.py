"""The change feed against a reference: delta-rs's change data feed.

The same inserts, updates, deletes and upserts run on `driftdb serve`
(over ADBC) and on a Delta table with `delta.enableChangeDataFeed` (through
the `deltalake` package); `table_changes` must list the same changes as
`load_cdf`, commit for commit (Delta's version v is DriftDB's v-th commit
after the CREATE TABLE). Then the feed's bounds (versions and times) and
its refusals. Over Flight SQL, a feed with no end is followed live: it
streams new commits until the client stops reading.
"""

import queue
import threading
import time

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from conftest import Server

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("v", pa.int64()),
    ]
)

# (DriftDB statement, the same change on a delta-rs table)
STEPS = [
    (
        "INSERT INTO cf VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30), (4, 'd', 40)",
        lambda t: write_deltalake(t, rows([(1, "a", 10), (2, "b", 20), (3, "c", 30), (4, "d", 40)]), mode="append"),
    ),
    ("UPDATE cf SET v = 25 WHERE id = 2", lambda t: DeltaTable(t).update(predicate="id = 2", updates={"v": "25"})),
    ("DELETE FROM cf WHERE id = 3", lambda t: DeltaTable(t).delete(predicate="id = 3")),
    (
        "INSERT INTO cf VALUES (5, 'e', 50)",
        lambda t: write_deltalake(t, rows([(5, "e", 50)]), mode="append"),
    ),
    ("UPDATE cf SET v = v + 1 WHERE v >= 25", lambda t: DeltaTable(t).update(predicate="v >= 25", updates={"v": "v + 1"})),
    (
        "INSERT INTO cf VALUES (1, 'a2', 11), (6, 'f', 60) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, v = EXCLUDED.v",
        lambda t: DeltaTable(t)
        .merge(rows([(1, "a2", 11), (6, "f", 60)]), predicate="t.id = s.id", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute(),
    ),
    ("DELETE FROM cf WHERE v > 40", lambda t: DeltaTable(t).delete(predicate="v > 40")),
    ("UPDATE cf SET name = NULL WHERE id = 1", lambda t: DeltaTable(t).update(predicate="id = 1", updates={"name": "NULL"})),
]


def rows(values):
    return pa.Table.from_pylist([dict(zip(["id", "name", "v"], r)) for r in values], schema=SCHEMA)


def normalized(table, version_column, offset):
    """(version, id, change type, name, v) tuples, sorted."""
    out = []
    for r in table.to_pylist():
        out.append((r[version_column] - offset, r["id"], r["_change_type"], r["name"], r["v"]))
    order = {"update_preimage": 0, "delete": 0, "insert": 1, "update_postimage": 1}
    return sorted(out, key=lambda x: (x[0], x[1], order[x[2]]))


def scalar(cur, sql):
    cur.execute(sql)
    return cur.fetchone()[0]


@pytest.fixture()
def feed(conn, tmp_path):
    """Run STEPS on both engines; the seq of DriftDB's CREATE TABLE and the delta folder."""
    cur = conn.cursor()
    cur.execute("CREATE TABLE cf (id BIGINT PRIMARY KEY, name TEXT, v BIGINT)")
    created = scalar(cur, "SELECT max(seq) FROM commits()")
    delta = str(tmp_path / "cf")
    DeltaTable.create(delta, schema=SCHEMA, configuration={"delta.enableChangeDataFeed": "true"})
    for statement, on_delta in STEPS:
        cur.execute(statement)
        on_delta(delta)
    yield cur, created, delta
    cur.execute("DROP TABLE cf")
    cur.close()


def test_changes_match_delta_change_data_feed(feed):
    cur, created, delta = feed
    # No end: over Flight SQL that follows the feed live, unless the query
    # needs all its input (here a sort), which reads up to the latest commit.
    cur.execute(f"SELECT id, name, v, _change_type, _seq FROM table_changes('cf', {created + 1}) ORDER BY _seq")
    ours = normalized(cur.fetch_arrow_table(), "_seq", created)
    theirs = normalized(pa.table(DeltaTable(delta).load_cdf(starting_version=1).read_all()), "_commit_version", 0)
    assert ours == theirs
    # A window of commits, both ends included.
    cur.execute(f"SELECT id, name, v, _change_type, _seq FROM table_changes('cf', {created + 2}, {created + 5})")
    window = normalized(cur.fetch_arrow_table(), "_seq", created)
    assert window == [c for c in theirs if 2 <= c[0] <= 5]


def test_changes_by_time_and_their_columns(feed):
    cur, created, _ = feed
    cur.execute(f"SELECT commit_time FROM commits() WHERE seq IN ({created + 2}, {created + 4}) ORDER BY seq")
    second, fourth = [r[0] for r in cur.fetchall()]
    cur.execute(
        "SELECT _seq, _commit_time FROM table_changes('cf', "
        f"TIMESTAMPTZ '{second.isoformat()}', TIMESTAMPTZ '{fourth.isoformat()}')"
    )
    got = cur.fetchall()
    assert {r[0] for r in got} == {created + 2, created + 3, created + 4}
    cur.execute(f"SELECT seq, commit_time FROM commits() WHERE seq BETWEEN {created + 2} AND {created + 4}")
    times = dict(cur.fetchall())
    assert all(times[seq] == time for seq, time in got), "each change carries its commit's time"
    cur.execute(f"SELECT * FROM table_changes('cf', {created + 1}, {created + 1}) LIMIT 0")
    names = [d[0] for d in cur.description]
    assert names == ["id", "name", "v", "_change_type", "_seq", "_commit_time"]


def test_diff_between_two_versions(feed):
    cur, created, _ = feed
    cur.execute(f"SELECT * FROM table_diff('cf', {created + 1}, {created + 8})")
    names = [d[0] for d in cur.description]
    assert names == ["diff_type", "from_id", "from_name", "from_v", "to_id", "to_name", "to_v"]
    got = sorted(cur.fetchall(), key=lambda r: r[1] if r[1] is not None else r[4])
    cur.execute(f"SELECT id, name, v FROM cf VERSION AS OF {created + 1}")
    before = {r[0]: r for r in cur.fetchall()}
    cur.execute("SELECT id, name, v FROM cf")
    after = {r[0]: r for r in cur.fetchall()}
    expected = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        kind = "added" if old is None else "removed" if new is None else "modified"
        expected.append((kind, *(old or (None,) * 3), *(new or (None,) * 3)))
    assert got == expected


def test_feed_refusals(feed):
    cur, created, _ = feed
    import adbc_driver_manager

    for sql, state in [
        ("SELECT * FROM table_changes('nope', 1)", "42P01"),
        ("SELECT * FROM table_changes('cf')", "22023"),
        (f"SELECT * FROM table_changes('cf', {created + 5}, {created + 2})", "22008"),
        ("SELECT * FROM table_changes('cf', NULL)", "22023"),
        ("SELECT * FROM table_diff('cf', 1)", "22023"),
        (f"SELECT * FROM table_diff('cf', {created - 1}, {created + 1})", "42P01"),
        ("SELECT * FROM table_diff('cf', 1, 999999)", "22008"),
    ]:
        with pytest.raises(adbc_driver_manager.Error) as failure:
            cur.execute(sql)
            cur.fetchall()
        assert state in str(failure.value), (sql, str(failure.value))


@pytest.fixture(scope="module")
def short_deadline_server():
    """A server whose queries time out after 2 s (a live feed has no deadline)."""
    s = Server("--query-timeout-secs", "2")
    yield s
    s.stop()


def test_a_live_feed_streams_new_commits_until_the_client_stops(short_deadline_server):
    server = short_deadline_server
    writer = server.connect()
    cur = writer.cursor()
    cur.execute("CREATE TABLE lf (id BIGINT PRIMARY KEY, v BIGINT)")
    created = scalar(cur, "SELECT max(seq) FROM commits()")
    cur.execute("INSERT INTO lf VALUES (1, 10), (2, 20)")

    follower = server.connect()
    feed = follower.cursor()
    feed.execute(
        f"SELECT id, v, _change_type, _seq FROM table_changes('lf', {created + 1}) WHERE id <> 99"
    )
    reader = feed.fetch_record_batch()
    arrived = queue.Queue()
    wanted = 2 + 2 + 1 + 1  # two inserted, an update (pre- and postimage), an insert, a delete

    def follow():
        seen = 0
        try:
            while seen < wanted:
                batch = reader.read_next_batch()
                for row in batch.to_pylist():
                    arrived.put(row)
                    seen += 1
        except Exception as e:  # noqa: BLE001 - reported to the test thread
            arrived.put(e)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()

    def take(n, timeout=30):
        rows, deadline = [], time.monotonic() + timeout
        while len(rows) < n:
            row = arrived.get(timeout=max(0.1, deadline - time.monotonic()))
            assert not isinstance(row, Exception), row
            rows.append((row["id"], row["v"], row["_change_type"], row["_seq"]))
        return rows

    first = take(2)
    # Past the 2 s query deadline: a live feed keeps going.
    time.sleep(3)
    cur.execute("UPDATE lf SET v = 21 WHERE id = 2")
    cur.execute("INSERT INTO lf VALUES (99, 0)")  # filtered out by the feed's WHERE
    cur.execute("INSERT INTO lf VALUES (3, 30)")
    cur.execute("DELETE FROM lf WHERE id = 1")
    later = take(4)
    thread.join(timeout=30)
    last = scalar(cur, "SELECT max(seq) FROM commits()")

    live = first + later
    assert [r[3] for r in live] == sorted(r[3] for r in live), "commit order"
    cur.execute(
        f"SELECT id, v, _change_type, _seq FROM table_changes('lf', {created + 1}, {last}) WHERE id <> 99"
    )
    finite = [tuple(r) for r in cur.fetchall()]
    assert sorted(live) == sorted(finite), "the live feed equals the bounded feed"

    # The client stops reading: the server drops the query and still answers.
    reader.close()
    feed.close()
    deadline = time.monotonic() + 10
    while server.metrics()["driftdb_running_queries"] > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.metrics()["driftdb_running_queries"] == 0
    with follower.cursor() as again:
        assert scalar(again, "SELECT count(*) FROM lf") == 3
    # A query that needs all its input still ends, without a bound.
    assert scalar(cur, f"SELECT count(*) FROM table_changes('lf', {created + 1})") == len(finite) + 1
    follower.close()
    cur.close()
    writer.close()


def test_a_live_feed_never_crosses_to_a_table_created_again_under_its_name(short_deadline_server):
    server = short_deadline_server
    writer = server.connect()
    cur = writer.cursor()
    cur.execute("CREATE TABLE lr (id BIGINT PRIMARY KEY, v BIGINT)")
    created = scalar(cur, "SELECT max(seq) FROM commits()")
    cur.execute("INSERT INTO lr VALUES (1, 10)")

    follower = server.connect()
    feed = follower.cursor()
    feed.execute(f"SELECT id, v, _change_type FROM table_changes('lr', {created + 1})")
    reader = feed.fetch_record_batch()
    assert reader.read_next_batch().to_pylist() == [{"id": 1, "v": 10, "_change_type": "insert"}]

    # One commit drops the table and creates another under its name.
    cur.execute("BEGIN")
    cur.execute("DROP TABLE lr")
    cur.execute("CREATE TABLE lr (id BIGINT PRIMARY KEY, v BIGINT)")
    cur.execute("INSERT INTO lr VALUES (7, 70)")
    cur.execute("COMMIT")
    with pytest.raises(Exception) as failure:
        while True:
            batch = reader.read_next_batch()
            assert 7 not in batch.column("id").to_pylist(), "rows of the new table"
    assert "55000" in str(failure.value) and "created again" in str(failure.value), str(failure.value)
    feed.close()
    follower.close()
    cur.close()
    writer.close()
