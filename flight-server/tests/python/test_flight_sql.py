"""DriftDB over Flight SQL, driven by clients nobody on the team wrote:
ADBC's Flight SQL driver (DB-API), pyarrow, pandas and polars."""

import datetime
import decimal
import threading
import time
import uuid

import adbc_driver_manager
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from conftest import PASSWORD, Server


def unique(name):
    return f"{name}_{uuid.uuid4().hex[:8]}"


def scalar(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


# --- connecting and authentication -------------------------------------------------


def test_select_one_returns_arrow(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT 1 AS one, 'x' AS s")
        table = cur.fetch_arrow_table()
    assert table.to_pylist() == [{"one": 1, "s": "x"}]
    assert table.schema.field("s").type == pa.string()


def test_wrong_password_is_refused_after_a_delay(server):
    started = time.monotonic()
    with pytest.raises(adbc_driver_manager.Error) as err:
        server.connect(password="wrong").cursor().execute("SELECT 1")
    assert "authentication failed" in str(err.value).lower() or "unauthenticated" in str(err.value).lower()
    assert time.monotonic() - started >= 0.5


def test_unknown_user_is_refused(server):
    with pytest.raises(adbc_driver_manager.Error):
        server.connect(username="mallory").cursor().execute("SELECT 1")


def test_missing_credentials_are_refused(server):
    import adbc_driver_flightsql.dbapi as flight_sql

    with pytest.raises(adbc_driver_manager.Error) as err:
        with flight_sql.connect(server.uri) as c:
            c.cursor().execute("SELECT 1")
    assert "28P01" in str(err.value) or "unauthenticated" in str(err.value).lower()


def test_password_is_stored_only_as_a_hash(server):
    users = server.read_stored("users.json")
    assert PASSWORD not in users
    assert "$argon2" in users


# --- statements ---------------------------------------------------------------------


def test_ddl_and_dml_with_row_counts(conn):
    t = unique("accounts")
    with conn.cursor() as cur:
        cur.adbc_statement.set_sql_query(f"CREATE TABLE {t} (id INT PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT)")
        cur.adbc_statement.execute_update()
        cur.adbc_statement.set_sql_query(f"INSERT INTO {t} VALUES (1, 'ada', 10), (2, 'bob', 20), (3, 'cy', 30)")
        assert cur.adbc_statement.execute_update() == 3
        cur.adbc_statement.set_sql_query(f"UPDATE {t} SET balance = balance + 1 WHERE id >= 2")
        assert cur.adbc_statement.execute_update() == 2
        cur.execute(f"DELETE FROM {t} WHERE id = 1")
        cur.execute(f"SELECT id, balance FROM {t} ORDER BY id")
        assert cur.fetchall() == [(2, 21), (3, 31)]


def test_prepared_statements_with_parameters(conn):
    t = unique("items")
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT, price DOUBLE)")
        cur.executemany(
            f"INSERT INTO {t} VALUES (?, ?, ?)",
            [(i, f"item {i}", i * 1.5) for i in range(1, 101)],
        )
        assert cur.rowcount == 100
        cur.execute(f"SELECT name, price FROM {t} WHERE id = ?", (42,))
        assert cur.fetchall() == [("item 42", 63.0)]
        cur.execute(f"SELECT count(*) FROM {t} WHERE price > ? AND name LIKE ?", (100.0, "item %"))
        assert cur.fetchone()[0] == 34
        cur.execute(f"UPDATE {t} SET name = ? WHERE id = ?", ("renamed", 7))
        cur.execute(f"SELECT name FROM {t} WHERE id = 7")
        assert cur.fetchone() == ("renamed",)


def test_executemany_is_one_atomic_commit(conn):
    t = unique("atomic")
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY)")
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.executemany(f"INSERT INTO {t} VALUES (?)", [(1,), (2,), (1,)])
        assert "23505" in str(err.value)
        cur.execute(f"SELECT count(*) FROM {t}")
        assert cur.fetchone()[0] == 0


# --- types through pandas and polars ------------------------------------------------


ALL_TYPES = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "b": pa.array([True, None, False], pa.bool_()),
        "i16": pa.array([-3, None, 32000], pa.int16()),
        "i32": pa.array([7, None, -2_000_000_000], pa.int32()),
        "i64": pa.array([2**62, None, -1], pa.int64()),
        "f32": pa.array([1.5, None, -0.25], pa.float32()),
        "f64": pa.array([3.141592653589793, None, -1e300], pa.float64()),
        "dec": pa.array([decimal.Decimal("12.34"), None, decimal.Decimal("-0.01")], pa.decimal128(10, 2)),
        "s": pa.array(["héllo", None, ""], pa.string()),
        "bin": pa.array([b"\x00\x01", None, b""], pa.binary()),
        "d": pa.array([datetime.date(2026, 1, 1), None, datetime.date(1970, 1, 1)], pa.date32()),
        "t": pa.array([datetime.time(12, 30, 1, 5), None, datetime.time(0, 0)], pa.time64("us")),
        "ts": pa.array(
            [datetime.datetime(2026, 1, 1, 12, 30, 0, 123456), None, datetime.datetime(1999, 12, 31)],
            pa.timestamp("us"),
        ),
        "tstz": pa.array(
            [datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc), None, None],
            pa.timestamp("us", tz="UTC"),
        ),
    }
)


def test_ingest_and_read_back_every_type(conn):
    t = unique("types")
    with conn.cursor() as cur:
        assert cur.adbc_ingest(t, ALL_TYPES, mode="create") == 3
        cur.execute(f"SELECT * FROM {t} ORDER BY id")
        back = cur.fetch_arrow_table()
    assert back.column_names == ALL_TYPES.column_names
    for name in ALL_TYPES.column_names:
        expected = ALL_TYPES.column(name)
        got = back.column(name)
        if got.type != expected.type:
            got = got.cast(expected.type)
        assert got.to_pylist() == expected.to_pylist(), name


def test_pandas_round_trip(conn):
    t = unique("pandas")
    df = ALL_TYPES.to_pandas()
    df.to_sql(t, conn, index=False)
    back = pd.read_sql(f"SELECT * FROM {t} ORDER BY id", conn)
    assert len(back) == 3
    assert back["s"].tolist()[0] == "héllo"
    assert pd.isna(back["i32"][1])
    assert back["i64"].tolist()[0] == 2**62
    assert back["dec"].tolist()[0] == decimal.Decimal("12.34")
    assert back["ts"][0] == pd.Timestamp("2026-01-01 12:30:00.123456")


def test_polars_round_trip(server, conn):
    t = unique("polars")
    df = pl.from_arrow(ALL_TYPES)
    df.write_database(t, connection=conn, engine="adbc")
    back = pl.read_database(f"SELECT * FROM {t} ORDER BY id", connection=conn)
    assert back.shape == df.shape
    assert back["s"].to_list() == ["héllo", None, ""]
    assert back["f64"].to_list()[0] == pytest.approx(3.141592653589793)
    assert back["bin"].to_list()[0] == b"\x00\x01"
    assert back["d"].to_list()[2] == datetime.date(1970, 1, 1)


def test_ingest_modes(conn):
    t = unique("modes")
    one = pa.table({"x": pa.array([1, 2], pa.int64())})
    with conn.cursor() as cur:
        cur.adbc_ingest(t, one, mode="create")
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.adbc_ingest(t, one, mode="create")
        assert "42P07" in str(err.value)
        cur.adbc_ingest(t, one, mode="append")
        assert scalar(conn, f"SELECT count(*) FROM {t}") == 4
        cur.adbc_ingest(t, pa.table({"y": pa.array(["a"])}), mode="replace")
        cur.execute(f"SELECT * FROM {t}")
        assert cur.fetch_arrow_table().to_pylist() == [{"y": "a"}]
        cur.adbc_ingest(unique("fresh"), one, mode="create_append")
        with pytest.raises(adbc_driver_manager.Error):
            cur.adbc_ingest(unique("missing"), one, mode="append")


def test_failed_ingest_leaves_nothing_behind(conn):
    t = unique("strict")
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v TEXT NOT NULL)")
        bad = pa.table({"id": pa.array([1, 2], pa.int32()), "v": pa.array(["ok", None])})
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.adbc_ingest(t, bad, mode="append")
        assert "23502" in str(err.value)
        assert scalar(conn, f"SELECT count(*) FROM {t}") == 0


def test_million_row_ingest_then_queries(conn):
    t = unique("lineitem")
    n = 1_000_000
    table = pa.table(
        {
            "orderkey": pa.array(range(n), pa.int64()),
            "quantity": pa.array([i % 50 + 1 for i in range(n)], pa.int32()),
            "price": pa.array([float(i % 1000) for i in range(n)], pa.float64()),
            "flag": pa.array(["A", "N", "R", "F"] * (n // 4)),
        }
    )
    with conn.cursor() as cur:
        started = time.monotonic()
        # The driver sends each batch as one gRPC message (its limit: 16 MiB),
        # so a large table goes as a stream of moderate batches.
        assert cur.adbc_ingest(t, table.to_reader(max_chunksize=100_000), mode="create") == n
        elapsed = time.monotonic() - started
        print(f"adbc_ingest of {n} rows: {n / elapsed:,.0f} rows/s")
        cur.execute(f"SELECT count(*), sum(quantity) FROM {t}")
        assert cur.fetchone() == (n, sum(i % 50 + 1 for i in range(n)))
        cur.execute(f"SELECT flag, count(*) FROM {t} GROUP BY flag ORDER BY flag")
        assert cur.fetchall() == [("A", n // 4), ("F", n // 4), ("N", n // 4), ("R", n // 4)]
        cur.execute(f"SELECT * FROM {t}")
        streamed = cur.fetch_arrow_table()
        assert streamed.num_rows == n


# --- metadata -----------------------------------------------------------------------


def test_metadata_calls(conn):
    t = unique("meta")
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, name TEXT NOT NULL, amount DECIMAL(10,2))")
        cur.execute(f"CREATE VIEW {t}_v AS SELECT id FROM {t}")
    schema = conn.adbc_get_table_schema(t)
    assert schema.names == ["id", "name", "amount"]
    assert schema.field("id").type == pa.int32()
    assert not schema.field("name").nullable
    assert schema.field("amount").type == pa.decimal128(10, 2)
    assert set(conn.adbc_get_table_types()) == {"TABLE", "VIEW"}
    objects = conn.adbc_get_objects(depth="all", table_name_filter=f"{t}%").read_all().to_pylist()
    assert [c["catalog_name"] for c in objects] == ["driftdb"]
    tables = {
        tb["table_name"]: tb
        for s in objects[0]["catalog_db_schemas"]
        for tb in s["db_schema_tables"]
    }
    assert set(tables) == {t, f"{t}_v"}
    assert tables[t]["table_type"] == "TABLE"
    assert [c["column_name"] for c in tables[t]["table_columns"]] == ["id", "name", "amount"]
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "DriftDB"


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql, sqlstate",
    [
        ("SELEC 1", "42601"),
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM (SELECT 1 AS a)", "42"),
    ],
)
def test_errors_carry_sqlstate(conn, sql, sqlstate):
    with pytest.raises(adbc_driver_manager.Error) as err:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
    assert sqlstate in str(err.value)


def test_constraint_errors(conn):
    t = unique("keys")
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v TEXT NOT NULL)")
        cur.execute(f"INSERT INTO {t} VALUES (1, 'a')")
        # gRPC AlreadyExists, which ADBC reports as a ProgrammingError.
        with pytest.raises(adbc_driver_manager.ProgrammingError) as dup:
            cur.execute(f"INSERT INTO {t} VALUES (1, 'b')")
        assert "23505" in str(dup.value)
        with pytest.raises(adbc_driver_manager.Error) as null:
            cur.execute(f"INSERT INTO {t} VALUES (2, NULL)")
        assert "23502" in str(null.value)
        with pytest.raises(adbc_driver_manager.Error) as exists:
            cur.execute(f"CREATE TABLE {t} (x INT)")
        assert "42P07" in str(exists.value)
        c = unique("checked")
        cur.execute(f"CREATE TABLE {c} (id INT, qty INT DEFAULT 1 CHECK (qty > 0))")
        with pytest.raises(adbc_driver_manager.Error) as check:
            cur.executemany(f"INSERT INTO {c} VALUES (?, ?)", [(1, 5), (2, -5)])
        assert "23514" in str(check.value) and f"{c}_qty_check" in str(check.value)
        assert "FailedPrecondition" in str(check.value)
        cur.execute(f"INSERT INTO {c} (id) VALUES (3)")
        assert scalar(cur.connection, f"SELECT sum(qty) FROM {c}") == 1


# --- time travel --------------------------------------------------------------------


def test_temporal_sql_over_flight(conn):
    t = unique("prices")
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (sku TEXT PRIMARY KEY, price INT)")
        cur.execute(f"INSERT INTO {t} VALUES ('a', 1)")
        cur.execute(f"SELECT max(seq) FROM commits()")
        version = cur.fetchone()[0]
        cur.execute(f"UPDATE {t} SET price = 2 WHERE sku = 'a'")
        cur.execute(f"SELECT price FROM {t} VERSION AS OF {version}")
        assert cur.fetchall() == [(1,)]
        cur.execute(f"SELECT price FROM {t}")
        assert cur.fetchall() == [(2,)]
        cur.execute(f"SET driftdb.as_of = {version}")
        cur.execute(f"SELECT price FROM {t}")
        assert cur.fetchall() == [(1,)]
        cur.execute("SET driftdb.as_of = DEFAULT")
        cur.execute(f"SELECT count(*) FROM history('{t}')")
        assert cur.fetchone()[0] == 2


def test_as_of_setting_is_per_session(server):
    t = unique("sessions")
    with server.connect() as a, server.connect() as b:
        with a.cursor() as cur:
            cur.execute(f"CREATE TABLE {t} (x INT)")
            cur.execute(f"SELECT max(seq) FROM commits()")
            empty_version = cur.fetchone()[0]
            cur.execute(f"INSERT INTO {t} VALUES (1)")
            cur.execute(f"SET driftdb.as_of = {empty_version}")
            assert scalar(a, f"SELECT count(*) FROM {t}") == 0
        assert scalar(b, f"SELECT count(*) FROM {t}") == 1


# --- cancellation and limits --------------------------------------------------------

LONG_QUERY = "SELECT count(*) FROM generate_series(1, 20000000000) AS g(x) WHERE x % 7 = 3"


def test_cancel_stops_a_running_query(server, conn):
    cur = conn.cursor()
    errors = []

    def run():
        try:
            cur.execute(LONG_QUERY)
            cur.fetchall()
        except Exception as e:  # noqa: BLE001 - we want whatever the driver raises
            errors.append(e)

    worker = threading.Thread(target=run)
    started = time.monotonic()
    worker.start()
    deadline = time.monotonic() + 10
    while server.metrics()["driftdb_running_queries"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.metrics()["driftdb_running_queries"] == 1, "the query is running on the server"
    cur.adbc_cancel()
    worker.join(timeout=30)
    assert not worker.is_alive(), "cancel must end the query"
    assert errors, "a cancelled query must raise"
    assert time.monotonic() - started < 30
    # The server dropped the query: nothing is running and it still answers.
    deadline = time.monotonic() + 10
    while server.metrics()["driftdb_running_queries"] > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.metrics()["driftdb_running_queries"] == 0
    assert scalar(conn, "SELECT 41 + 1") == 42


@pytest.fixture(scope="module")
def limited_server():
    s = Server(
        "--query-timeout-secs", "2",
        "--query-memory-mib", "8",
        "--max-message-bytes", "1048576",
        "--ingest-max-mib", "2",
    )
    yield s
    s.stop()


def test_query_timeout(limited_server):
    with limited_server.connect() as c:
        started = time.monotonic()
        with pytest.raises(adbc_driver_manager.Error) as err:
            with c.cursor() as cur:
                cur.execute(LONG_QUERY)
                cur.fetchall()
        assert "57014" in str(err.value)
        assert time.monotonic() - started < 20


def test_query_memory_limit(limited_server):
    with limited_server.connect() as c:
        with pytest.raises(adbc_driver_manager.Error) as err:
            with c.cursor() as cur:
                cur.execute(
                    "SELECT x % 1000 AS k, array_agg(x) FROM generate_series(1, 3000000) AS g(x) GROUP BY 1"
                )
                cur.fetchall()
        assert "53200" in str(err.value) or "resources exhausted" in str(err.value).lower()


def test_max_sessions():
    s = Server("--max-sessions", "2")
    try:
        first = s.connect()
        second = s.connect()
        for c in (first, second):
            scalar(c, "SELECT 1")
        with pytest.raises(adbc_driver_manager.Error) as err:
            with s.connect() as third:
                scalar(third, "SELECT 1")
        assert "53300" in str(err.value) or "too many sessions" in str(err.value).lower()
        first.close()
        second.close()
    finally:
        s.stop()


def test_ingest_size_limit(limited_server):
    t = unique("toolarge")
    chunks = pa.table({"s": pa.array(["y" * 100] * 40_000)}).to_reader(max_chunksize=4_000)
    with limited_server.connect() as c:
        with pytest.raises(adbc_driver_manager.Error) as err:
            with c.cursor() as cur:
                cur.adbc_ingest(t, chunks, mode="create")
        assert "54000" in str(err.value)
        with pytest.raises(adbc_driver_manager.Error):
            scalar(c, f"SELECT count(*) FROM {t}")


def test_tls(tmp_path):
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    s = Server("--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert s.uri.startswith("grpc+tls://")
        with s.connect(db_kwargs_extra={"adbc.flight.sql.client_option.tls_root_certs": cert.read_text()}) as c:
            assert scalar(c, "SELECT 40 + 2") == 42
        # A client that does not trust the certificate cannot connect.
        with pytest.raises(adbc_driver_manager.Error):
            with s.connect() as untrusted:
                scalar(untrusted, "SELECT 1")
    finally:
        s.stop()


def test_message_size_limit(limited_server):
    big = pa.table({"s": pa.array(["x" * 1000] * 5000)})
    with limited_server.connect() as c:
        with pytest.raises(adbc_driver_manager.Error):
            with c.cursor() as cur:
                cur.adbc_ingest(unique("big"), big, mode="create")


def test_no_auth_on_loopback():
    import adbc_driver_flightsql.dbapi as flight_sql

    s = Server("--no-auth")
    try:
        with flight_sql.connect(s.uri, autocommit=True) as c:
            assert scalar(c, "SELECT 6 * 7") == 42
    finally:
        s.stop()


def test_no_auth_clients_do_not_share_a_session():
    import adbc_driver_flightsql.dbapi as flight_sql

    s = Server("--no-auth")
    try:
        with flight_sql.connect(s.uri, autocommit=True) as a, flight_sql.connect(s.uri, autocommit=True) as b:
            with a.cursor() as cur:
                cur.execute("CREATE TABLE na (id INT)")
                cur.execute("BEGIN")
                cur.execute("INSERT INTO na VALUES (1)")
            # b sees neither a's open block nor its uncommitted row, and cannot end it.
            assert scalar(b, "SELECT count(*) FROM na") == 0
            with b.cursor() as cur:
                cur.execute("ROLLBACK")
                cur.execute("SET driftdb.as_of = 1")
            assert scalar(a, "SELECT count(*) FROM na") == 1
            with a.cursor() as cur:
                cur.execute("COMMIT")
            with b.cursor() as cur:
                cur.execute("SET driftdb.as_of = DEFAULT")
            assert scalar(b, "SELECT count(*) FROM na") == 1
    finally:
        s.stop()


def test_a_loop_of_statements_never_fetched_keeps_working(conn):
    t = unique("loop")
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT)")
        for i in range(150):
            cur.execute(f"INSERT INTO {t} VALUES ({i})")
        for _ in range(40):
            cur.execute("BEGIN")
            cur.execute("COMMIT")
    assert scalar(conn, f"SELECT count(*) FROM {t}") == 150


def test_time_bucket_and_first_last_are_served(conn):
    """The time-series functions every session has, over Flight SQL. The
    expected rows are PostgreSQL 15's answer to the same query written with
    date_trunc('hour', at) and (array_agg(price ORDER BY at [DESC]))[1]."""
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE ticks (sym TEXT, at TIMESTAMP, price DOUBLE)")
        cur.execute(
            "INSERT INTO ticks VALUES ('x', '2026-03-01 10:05:00', 1.0), ('x', '2026-03-01 10:55:00', 2.0),"
            " ('x', '2026-03-01 11:15:00', 3.0), ('y', '2026-03-01 10:30:00', 7.0)"
        )
        cur.execute(
            "SELECT sym, time_bucket('1 hour', at) AS h, first(price, at), last(price, at)"
            " FROM ticks GROUP BY sym, h ORDER BY sym, h"
        )
        got = cur.fetch_arrow_table().to_pylist()
    hour = lambda h: datetime.datetime(2026, 3, 1, h)
    assert [tuple(r.values()) for r in got] == [
        ("x", hour(10), 1.0, 2.0),
        ("x", hour(11), 3.0, 3.0),
        ("y", hour(10), 7.0, 7.0),
    ]
