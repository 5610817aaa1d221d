"""Every statement means what it says, over ADBC against a real `driftdb serve`:
quotes and bound parameters are data, never SQL, and no statement a client
sends can take the server down."""

import uuid

import adbc_driver_manager
import pytest


def unique(name):
    return f"{name}_{uuid.uuid4().hex[:8]}"


def users(cur):
    t = unique("users")
    cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, name TEXT NOT NULL)")
    cur.execute(f"INSERT INTO {t} VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')")
    return t


def names(cur, t):
    cur.execute(f"SELECT name FROM {t} ORDER BY id")
    return [row[0] for row in cur.fetchall()]


def test_doubled_quotes_stay_in_the_literal(conn):
    with conn.cursor() as cur:
        t = users(cur)
        cur.execute(f"DELETE FROM {t} WHERE name = 'nobody'' OR ''a''=''a'")
        assert names(cur, t) == ["ann", "bob", "cy"]
        cur.execute(f"UPDATE {t} SET name = 'O''Brien' WHERE id = 1")
        assert names(cur, t) == ["O'Brien", "bob", "cy"]


def test_parameters_cannot_change_a_statement(conn):
    with conn.cursor() as cur:
        t = users(cur)
        cur.execute(f"DELETE FROM {t} WHERE name = ?", parameters=("nobody') OR ('a'='a",))
        assert names(cur, t) == ["ann", "bob", "cy"]
        hostile = "a'; DROP TABLE people; --"
        cur.execute(f"UPDATE {t} SET name = ? WHERE id = ?", parameters=(hostile, 2))
        cur.execute(f"INSERT INTO {t} VALUES (?, ?)", parameters=(4, "it's ''quoted'' \\ $1 ?"))
        assert names(cur, t) == ["ann", hostile, "cy", "it's ''quoted'' \\ $1 ?"]
        cur.execute(f"SELECT count(*) FROM {t} WHERE name = ?", parameters=(hostile,))
        assert cur.fetchone()[0] == 1
        cur.executemany(
            f"INSERT INTO {t} VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            [(1, "x' OR '1'='1"), (5, "'); DELETE FROM users; --")],
        )
        assert names(cur, t) == ["x' OR '1'='1", hostile, "cy", "it's ''quoted'' \\ $1 ?",
                                 "'); DELETE FROM users; --"]


def test_parameter_type_mismatch_is_an_error(conn):
    with conn.cursor() as cur:
        t = users(cur)
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.execute(f"SELECT name FROM {t} WHERE id = ?", parameters=("two",))
            cur.fetchall()
        assert "22P02" in str(err.value)


def test_deep_statements_are_refused_and_the_server_stays_up(conn):
    with conn.cursor() as cur:
        for sql in (
            "SELECT " + "+".join(["1"] * 2000),
            "SELECT " + "(SELECT " * 5000 + "1" + ")" * 5000,
            "SELECT " + "(" * 10000 + "1" + ")" * 10000,
        ):
            with pytest.raises(adbc_driver_manager.Error) as err:
                cur.execute(sql)
                cur.fetchall()
            assert "54001" in str(err.value)
        cur.execute("SELECT 1")
        assert cur.fetchone()[0] == 1


def latest_seq(cur):
    cur.execute("SELECT max(seq) FROM commits()")
    return cur.fetchone()[0]


def test_parameters_name_points_and_ranges_in_history(conn):
    with conn.cursor() as cur:
        t = users(cur)
        loaded = latest_seq(cur)
        cur.execute(f"UPDATE {t} SET name = 'ann2' WHERE id = 1")
        updated = latest_seq(cur)
        as_of = f"SELECT name FROM {t} VERSION AS OF ? WHERE id = ?"
        cur.execute(as_of, parameters=(loaded, 1))
        assert cur.fetchall() == [("ann",)]
        cur.execute(as_of, parameters=(updated, 1))
        assert cur.fetchall() == [("ann2",)]
        cur.execute(
            f"SELECT name FROM {t} FOR SYSTEM_TIME BETWEEN ? AND ? WHERE id = ? ORDER BY name",
            parameters=(loaded, updated, 1),
        )
        assert cur.fetchall() == [("ann",), ("ann2",)]
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.execute(as_of, parameters=("1; DROP TABLE " + t, 1))
            cur.fetchall()
        assert "22008" in str(err.value)
        cur.execute(f"SELECT count(*) FROM {t}")
        assert cur.fetchone()[0] == 3


def test_a_statement_that_plans_for_seconds_does_not_stall_other_clients(server, conn):
    """DataFusion's analysis of a large arithmetic predicate is CPU work that
    does not yield; it runs off the server's async workers, so other
    connections keep being answered meanwhile."""
    import threading
    import time

    with conn.cursor() as cur:
        t = unique("heavy")
        cur.execute(f"CREATE TABLE {t} (a INT)")
        cur.execute(f"INSERT INTO {t} VALUES (1), (2)")
        heavy = f"SELECT count(*) FROM {t} WHERE " + " AND ".join(
            "(a" + f" + {j + 1}" * 128 + f") > {j}" for j in range(8)
        )
        finished = {}

        def run_heavy():
            started = time.perf_counter()
            cur.execute(heavy)
            finished["rows"] = cur.fetchall()
            finished["seconds"] = time.perf_counter() - started

        thread = threading.Thread(target=run_heavy)
        thread.start()
        time.sleep(0.2)
        other = server.connect()
        latencies = []
        try:
            with other.cursor() as cur2:
                while thread.is_alive():
                    started = time.perf_counter()
                    cur2.execute("SELECT 1")
                    assert cur2.fetchall() == [(1,)]
                    latencies.append(time.perf_counter() - started)
        finally:
            thread.join()
            other.close()
        assert finished["rows"] == [(2,)]
        if finished["seconds"] > 1.0:  # long enough to tell
            assert latencies and max(latencies) < 0.5, (finished, max(latencies, default=None))


def test_queries_whose_types_settle_at_planning_run_over_adbc(conn):
    """ADBC prepares every statement: the columns announced at PREPARE must be
    the ones it returns, also where a function or a UNION decides them."""
    with conn.cursor() as cur:
        t = unique("dec")
        cur.execute(f"CREATE TABLE {t} (i INT, d DECIMAL(10,2))")
        cur.execute(f"INSERT INTO {t} VALUES (1, 1.25), (2, 2.55)")
        cur.execute(f"SELECT CAST(round(d, 1) AS DOUBLE) FROM {t} ORDER BY i")
        assert [row[0] for row in cur.fetchall()] == [1.3, 2.6]
        cur.execute("SELECT 1 AS id UNION ALL SELECT 'k' ORDER BY id")
        assert sorted(row[0] for row in cur.fetchall()) == ["1", "k"]
        cur.executemany(f"INSERT INTO {t} VALUES (?, ?)", [(3, 1), (4, None)])
        cur.execute(f"SELECT count(*) FROM {t}")
        assert cur.fetchone()[0] == 4


def test_returning_gives_the_written_rows_over_adbc(conn):
    with conn.cursor() as cur:
        t = unique("ret")
        cur.execute(f"CREATE TABLE {t} (id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v INT DEFAULT 7, s TEXT)")
        cur.execute(f"INSERT INTO {t} (s) VALUES ('a'), ('b') RETURNING id, v, s")
        assert sorted(cur.fetchall()) == [(1, 7, "a"), (2, 7, "b")]
        # Bound parameters, and a prepared statement run twice.
        cur.execute(f"INSERT INTO {t} (v, s) VALUES ($1, $2) RETURNING id, v * 2 AS dbl", parameters=(5, "c"))
        assert cur.fetchall() == [(3, 10)]
        cur.execute(f"UPDATE {t} SET v = v + 1 WHERE id <= $1 RETURNING id, v", parameters=(2,))
        assert sorted(cur.fetchall()) == [(1, 8), (2, 8)]
        cur.execute(f"DELETE FROM {t} WHERE s = $1 RETURNING *", parameters=("a",))
        assert cur.fetchall() == [(1, 8, "a")]
        # A RETURNING that fails writes nothing.
        with pytest.raises(adbc_driver_manager.Error):
            cur.execute(f"DELETE FROM {t} RETURNING 1 / (v - v)")
        cur.execute(f"SELECT count(*) FROM {t}")
        assert cur.fetchall() == [(2,)]
        # An upsert lists the rows it wrote in the order they were proposed
        # (ORMs match returned keys to their rows by position).
        cur.execute(
            f"INSERT INTO {t} (id, v, s) OVERRIDING SYSTEM VALUE VALUES (10, 1, 'p'), (2, 2, 'q'), (11, 3, 'r'), (3, 4, 's') "
            "ON CONFLICT (id) DO UPDATE SET s = excluded.s RETURNING id, s"
        )
        assert cur.fetchall() == [(10, "p"), (2, "q"), (11, "r"), (3, "s")]
        # Sent as an update, it reports the rows changed.
        assert cur.adbc_statement.set_sql_query(f"UPDATE {t} SET v = 0 RETURNING id") is None
        assert cur.adbc_statement.execute_update() == 4
