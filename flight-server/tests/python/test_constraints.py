"""Constraints and sequences over Flight SQL: every error keeps its SQLSTATE
and the statement has no effect."""

import pytest


def run(conn, sql):
    """Run `sql` to the end (a query's errors arrive while its rows stream)."""
    with conn.cursor() as cur:
        cur.execute(sql)
        if cur.description:
            cur.fetchall()


def scalar(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


@pytest.mark.parametrize(
    "sql, sqlstate, names",
    [
        ("INSERT INTO c_people VALUES (1, 'x@y', 'z', 30)", "23505", "c_people_pkey"),
        ("INSERT INTO c_people VALUES (9, 'ann@x', 'z', 30)", "23505", "c_people_email_key"),
        ("INSERT INTO c_people VALUES (9, 'new@x', NULL, 30)", "23502", "name"),
        ("INSERT INTO c_people VALUES (9, 'new@x', 'z', -1)", "23514", "c_people_age_check"),
        ("UPDATE c_people SET email = 'bob@x' WHERE id = 1", "23505", "c_people_email_key"),
        ("INSERT INTO c_ids (id, note) VALUES (5, 'explicit')", "428C9", "id"),
        ("SELECT nextval('c_tiny')", "2200H", "c_tiny"),
        ("SELECT currval('c_never')", "55000", "c_never"),
    ],
)
def test_constraint_errors_over_flight(conn, sql, sqlstate, names):
    run(conn, "CREATE TABLE IF NOT EXISTS c_people (id INT PRIMARY KEY, email TEXT UNIQUE, "
              "name TEXT NOT NULL, age INT CHECK (age >= 0))")
    run(conn, "CREATE TABLE IF NOT EXISTS c_ids (id INT GENERATED ALWAYS AS IDENTITY, note TEXT)")
    run(conn, "CREATE SEQUENCE IF NOT EXISTS c_tiny MAXVALUE 2")
    run(conn, "CREATE SEQUENCE IF NOT EXISTS c_never")
    if scalar(conn, "SELECT count(*) FROM c_people") == 0:
        run(conn, "INSERT INTO c_people VALUES (1, 'ann@x', 'ann', 30), (2, 'bob@x', 'bob', 40)")
    for _ in range(2):  # use up both values (later cases find them gone)
        try:
            scalar(conn, "SELECT nextval('c_tiny')")
        except Exception:  # noqa: BLE001 - used up by an earlier case
            pass
    before = scalar(conn, "SELECT count(*) FROM c_people")
    with pytest.raises(Exception) as error:
        run(conn, sql)
    assert sqlstate in str(error.value), error.value
    assert names in str(error.value), error.value
    assert scalar(conn, "SELECT count(*) FROM c_people") == before
    assert scalar(conn, "SELECT email FROM c_people WHERE id = 1") == "ann@x"


def test_serial_and_identity_over_flight(conn):
    run(conn, "CREATE TABLE c_orders (id BIGSERIAL PRIMARY KEY, item TEXT NOT NULL)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO c_orders (item) VALUES (?)", [("a",), ("b",), ("c",)])
    with conn.cursor() as cur:
        cur.execute("SELECT id, item FROM c_orders ORDER BY id")
        assert cur.fetchall() == [(1, "a"), (2, "b"), (3, "c")]
    assert scalar(conn, "SELECT currval('c_orders_id_seq')") == 3


def test_foreign_keys_over_flight(conn):
    run(conn, "CREATE TABLE fk_customers (id INT PRIMARY KEY, name TEXT)")
    run(conn, "CREATE TABLE fk_orders (id INT PRIMARY KEY, "
              "customer_id INT REFERENCES fk_customers ON DELETE CASCADE, total INT)")
    run(conn, "CREATE TABLE fk_notes (id INT PRIMARY KEY, customer_id INT REFERENCES fk_customers)")
    run(conn, "INSERT INTO fk_customers VALUES (1, 'ann'), (2, 'bob')")
    run(conn, "INSERT INTO fk_orders VALUES (10, 1, 5), (11, 1, 6), (12, 2, 7)")
    run(conn, "INSERT INTO fk_notes VALUES (1, 2)")
    # A missing parent: 23503 naming the constraint and the key; nothing inserted.
    with pytest.raises(Exception) as error:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO fk_orders VALUES (?, ?, ?)", [(20, 1, 1), (21, 99, 1)])
    assert "23503" in str(error.value) and "fk_orders_customer_id_fkey" in str(error.value)
    assert "(customer_id)=(99)" in str(error.value)
    assert scalar(conn, "SELECT count(*) FROM fk_orders") == 3
    # NO ACTION: still referenced; nothing deleted.
    with pytest.raises(Exception) as error:
        run(conn, "DELETE FROM fk_customers WHERE id = 2")
    assert "23503" in str(error.value) and "fk_notes_customer_id_fkey" in str(error.value)
    assert scalar(conn, "SELECT count(*) FROM fk_orders WHERE customer_id = 2") == 1
    # CASCADE: the orders go with their customer, in one commit.
    run(conn, "DELETE FROM fk_customers WHERE id = 1")
    assert scalar(conn, "SELECT count(*) FROM fk_orders") == 1
    assert scalar(conn, "SELECT kind FROM commits() ORDER BY seq DESC LIMIT 1") == "DELETE"


@pytest.mark.parametrize(
    "action, after",
    [
        ("ON DELETE CASCADE", []),
        ("ON DELETE SET NULL", [(1, None)]),
        ("ON DELETE SET DEFAULT", [(1, 0)]),
        ("ON DELETE RESTRICT", "23503"),
        ("ON DELETE NO ACTION", "23503"),
    ],
)
def test_delete_actions_over_flight(conn, action, after):
    suffix = action.split()[-1].lower()
    parent, child = f"fa_parent_{suffix}", f"fa_child_{suffix}"
    run(conn, f"CREATE TABLE {parent} (id INT PRIMARY KEY)")
    run(conn, f"CREATE TABLE {child} (id INT PRIMARY KEY, "
              f"parent_id INT DEFAULT 0 REFERENCES {parent} {action})")
    run(conn, f"INSERT INTO {parent} VALUES (0), (7)")
    run(conn, f"INSERT INTO {child} VALUES (1, 7)")
    if isinstance(after, str):
        with pytest.raises(Exception) as error:
            run(conn, f"DELETE FROM {parent} WHERE id = 7")
        assert after in str(error.value) and f"{child}_parent_id_fkey" in str(error.value)
        assert scalar(conn, f"SELECT count(*) FROM {parent}") == 2
        return
    run(conn, f"DELETE FROM {parent} WHERE id = 7")
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, parent_id FROM {child} ORDER BY id")
        assert cur.fetchall() == after


def test_update_cascade_and_definition_errors_over_flight(conn):
    run(conn, "CREATE TABLE fu_parent (code TEXT PRIMARY KEY)")
    run(conn, "CREATE TABLE fu_child (id INT PRIMARY KEY, "
              "code TEXT REFERENCES fu_parent ON UPDATE CASCADE)")
    run(conn, "INSERT INTO fu_parent VALUES ('a')")
    run(conn, "INSERT INTO fu_child VALUES (1, 'a'), (2, 'a')")
    run(conn, "UPDATE fu_parent SET code = 'b'")
    assert scalar(conn, "SELECT count(*) FROM fu_child WHERE code = 'b'") == 2
    for sql, sqlstate in [
        ("DROP TABLE fu_parent", "2BP01"),
        ("CREATE TABLE fu_bad (x INT REFERENCES fu_child (code))", "42830"),
        ("CREATE TABLE fu_bad (x INT REFERENCES fu_nowhere)", "42P01"),
    ]:
        with pytest.raises(Exception) as error:
            run(conn, sql)
        assert sqlstate in str(error.value), error.value


def test_ingest_replace_of_a_referenced_table_is_refused_over_flight(conn):
    import pyarrow as pa

    run(conn, "CREATE TABLE rp_parent (id BIGINT PRIMARY KEY)")
    run(conn, "CREATE TABLE rp_child (id BIGINT PRIMARY KEY, p BIGINT REFERENCES rp_parent (id))")
    run(conn, "INSERT INTO rp_parent VALUES (1)")
    run(conn, "INSERT INTO rp_child VALUES (10, 1)")
    with pytest.raises(Exception) as error:
        with conn.cursor() as cur:
            cur.adbc_ingest("rp_parent", pa.table({"id": pa.array([7], pa.int64())}), mode="replace")
    assert "2BP01" in str(error.value), error.value
    assert "rp_child" in str(error.value), error.value
    # No orphans: the child still finds its parent row.
    assert scalar(conn, "SELECT count(*) FROM rp_child JOIN rp_parent ON rp_child.p = rp_parent.id") == 1
