"""Transactions over Flight SQL through ADBC's autocommit-off mode."""

import threading

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

from conftest import PASSWORD


def connect_tx(server):
    """A DB-API connection with autocommit off: every statement runs in a transaction."""
    return flight_sql.connect(
        server.uri,
        db_kwargs={"username": "driftdb", "password": PASSWORD},
        autocommit=False,
    )


def scalar(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def run(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)


def test_autocommit_off_commit_and_rollback(server, conn):
    run(conn, "CREATE TABLE tx_basic (id INT PRIMARY KEY, v INT)")
    tx = connect_tx(server)
    try:
        run(tx, "INSERT INTO tx_basic VALUES (1, 10), (2, 20)")
        assert scalar(tx, "SELECT count(*) FROM tx_basic") == 2, "reads its own writes"
        assert scalar(conn, "SELECT count(*) FROM tx_basic") == 0, "invisible elsewhere"
        tx.commit()
        assert scalar(conn, "SELECT count(*) FROM tx_basic") == 2
        run(tx, "UPDATE tx_basic SET v = 99")
        run(tx, "DELETE FROM tx_basic WHERE id = 2")
        assert scalar(tx, "SELECT sum(v) FROM tx_basic") == 99
        tx.rollback()
        assert scalar(conn, "SELECT sum(v) FROM tx_basic") == 30
        assert scalar(tx, "SELECT sum(v) FROM tx_basic") == 30
    finally:
        tx.close()


def test_failed_statement_aborts_the_transaction(server, conn):
    run(conn, "CREATE TABLE tx_abort (id INT PRIMARY KEY)")
    tx = connect_tx(server)
    try:
        run(tx, "INSERT INTO tx_abort VALUES (1)")
        with pytest.raises(Exception, match="23505"):
            run(tx, "INSERT INTO tx_abort VALUES (1)")
        with pytest.raises(Exception, match="25P02"):
            run(tx, "SELECT 1")
        with pytest.raises(Exception, match="25P02"):
            tx.commit()
        assert scalar(conn, "SELECT count(*) FROM tx_abort") == 0
    finally:
        tx.close()


def test_error_while_streaming_aborts_the_transaction(server, conn):
    """A query that fails during DoGet (after GetFlightInfo succeeded) aborts the block."""
    run(conn, "CREATE TABLE tx_stream (id INT PRIMARY KEY)")
    run(conn, "CREATE SEQUENCE tx_stream_tiny MAXVALUE 2")
    tx = connect_tx(server)
    try:
        run(tx, "INSERT INTO tx_stream VALUES (1)")
        with pytest.raises(Exception, match="2200H"):
            with tx.cursor() as cur:
                cur.execute("SELECT nextval('tx_stream_tiny') FROM generate_series(1, 5)")
                cur.fetchall()
        with pytest.raises(Exception, match="25P02"):
            run(tx, "INSERT INTO tx_stream VALUES (2)")
        with pytest.raises(Exception, match="25P02"):
            tx.commit()
        assert scalar(conn, "SELECT count(*) FROM tx_stream") == 0
    finally:
        tx.close()


def test_write_conflict_fails_the_second_committer(server, conn):
    run(conn, "CREATE TABLE tx_conflict (id INT PRIMARY KEY, v INT)")
    run(conn, "INSERT INTO tx_conflict VALUES (1, 0)")
    a, b = connect_tx(server), connect_tx(server)
    try:
        run(a, "UPDATE tx_conflict SET v = v + 1 WHERE id = 1")
        run(b, "UPDATE tx_conflict SET v = v + 1 WHERE id = 1")
        a.commit()
        with pytest.raises(Exception, match="40001"):
            b.commit()
        assert scalar(conn, "SELECT v FROM tx_conflict") == 1
    finally:
        a.close()
        b.close()


def test_serializable_write_skew_is_refused(server, conn):
    run(conn, "CREATE TABLE tx_oncall (name TEXT PRIMARY KEY, on_call BOOLEAN)")
    run(conn, "INSERT INTO tx_oncall VALUES ('alice', true), ('bob', true)")
    a, b = connect_tx(server), connect_tx(server)
    try:
        for c in (a, b):
            run(c, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            assert scalar(c, "SELECT count(*) FROM tx_oncall WHERE on_call") == 2
        run(a, "UPDATE tx_oncall SET on_call = false WHERE name = 'alice'")
        run(b, "UPDATE tx_oncall SET on_call = false WHERE name = 'bob'")
        a.commit()
        with pytest.raises(Exception, match="40001"):
            b.commit()
        assert scalar(conn, "SELECT count(*) FROM tx_oncall WHERE on_call") == 1
    finally:
        a.close()
        b.close()


def test_concurrent_transfers_keep_the_total(server, conn):
    """Four clients move money at once with retries; nothing is created or lost."""
    run(conn, "CREATE TABLE tx_bank (id INT PRIMARY KEY, balance BIGINT CHECK (balance >= 0))")
    run(conn, "INSERT INTO tx_bank SELECT x, 100 FROM generate_series(1, 10) AS g(x)")
    committed = []
    errors = []

    def transfer(c, src, dst):
        run(c, f"UPDATE tx_bank SET balance = balance - 7 WHERE id = {src}")
        run(c, f"UPDATE tx_bank SET balance = balance + 7 WHERE id = {dst}")
        c.commit()

    def worker(seed):
        c = connect_tx(server)
        try:
            for i in range(15):
                src, dst = (seed + i) % 10 + 1, (seed * 3 + i) % 10 + 1
                if src == dst:
                    continue
                while True:
                    try:
                        transfer(c, src, dst)
                        committed.append((src, dst))
                        break
                    except Exception as e:  # noqa: BLE001 - retry serialization failures only
                        if "40001" not in str(e):
                            raise
                        # ADBC's Flight SQL driver cannot go on after a failed
                        # COMMIT (its transaction handle is gone): reconnect.
                        c.close()
                        c = connect_tx(server)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert committed, "some transfers commit"
    assert scalar(conn, "SELECT sum(balance) FROM tx_bank") == 1000
    assert scalar(conn, "SELECT min(balance) FROM tx_bank") >= 0
