"""COPY and files as relations, over Flight SQL against a real `driftdb serve`.

The reference for reading CSV is a real PostgreSQL: the same bytes go to
its `COPY … FROM STDIN` with the same options, and the tables must hold
the same values. Files DriftDB writes are read back by DriftDB (every
format) and by PostgreSQL (CSV), and must give the rows they came from.
Bad files must fail with the SQLSTATE and the place named, committing
nothing; paths outside --file-access-dirs must be refused (42501).
"""

import datetime
import decimal
import os
import pathlib
import shutil
import tempfile

import adbc_driver_manager
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import Server
from postgres import Postgres

COLUMNS = """(
    id INT PRIMARY KEY,
    name TEXT,
    amount NUMERIC(12,2),
    ratio DOUBLE PRECISION,
    big BIGINT,
    flag BOOLEAN,
    day DATE,
    at TIMESTAMPTZ
)"""

# Quotes, delimiters and newlines inside values, unicode, NULLs (an
# unquoted empty field), negative and large numbers, time zones.
CSV_ROWS = "".join(
    line + "\n"
    for line in [
        "1,plain,12.50,0.25,9007199254740993,true,2026-01-31,2026-01-31 10:00:00+00",
        '2,"with, comma",-0.01,-1.5e10,-42,false,1999-12-31,2026-06-30 23:59:59.123456+02',
        '3,"say ""hi""",,,,,,',
        '4,"two\nlines",99999.99,3.0,0,t,2024-02-29,2026-03-29 01:30:00-05:30',
        "5,ünïcødé ✓ 日本,0.00,1e-300,1,f,0001-01-01,1970-01-01 00:00:00+00",
    ]
)


@pytest.fixture(scope="module")
def files():
    folder = tempfile.mkdtemp(prefix="driftdb-copy-")
    yield pathlib.Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def copy_server(files):
    s = Server("--file-access-dirs", str(files))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def pg():
    p = Postgres()
    yield p
    p.stop()


def rows(cur, sql):
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


def update(cur, sql):
    """Run `sql` as an update; the row count the server reports."""
    cur.adbc_statement.set_sql_query(sql)
    return cur.adbc_statement.execute_update()


def scalar(cur, sql):
    cur.execute(sql)
    return cur.fetchone()[0]


def normalized(value):
    """A value as both clients can give it, for comparison."""
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc)
    if isinstance(value, decimal.Decimal):
        return value.normalize()
    return value


def same(a, b):
    return [tuple(normalized(v) for v in r) for r in a] == [tuple(normalized(v) for v in r) for r in b]


def pg_copy_in(pg_cur, table, data, options):
    with pg_cur.copy(f"COPY {table} FROM STDIN WITH ({options})") as copy:
        copy.write(data)


def state_of(cur, sql):
    with pytest.raises(adbc_driver_manager.Error) as failure:
        cur.execute(sql)
        cur.fetchall()
    return str(failure.value)


def test_copy_from_csv_reads_what_postgresql_reads(copy_server, files, pg):
    cases = [
        ("plain.csv", CSV_ROWS, "FORMAT csv"),
        ("header.csv", "id,name,amount,ratio,big,flag,day,at\n" + CSV_ROWS, "FORMAT csv, HEADER"),
        ("pipes.csv", CSV_ROWS.replace(",", "|").replace('with| comma', 'with, comma'), "FORMAT csv, DELIMITER '|'"),
        ("na.csv", CSV_ROWS.replace("3,\"say \"\"hi\"\"\",,,,,,", "3,NA,NA,NA,NA,NA,NA,NA"), "FORMAT csv, NULL 'NA'"),
    ]
    with copy_server.connect() as conn, pg.connect() as pconn:
        cur, pcur = conn.cursor(), pconn.cursor()
        for i, (name, data, options) in enumerate(cases):
            (files / name).write_text(data, encoding="utf-8")
            table = f"c{i}"
            cur.execute(f"CREATE TABLE {table} {COLUMNS}")
            pcur.execute(f"CREATE TABLE {table} {COLUMNS}")
            assert update(cur, f"COPY {table} FROM '{files / name}' WITH ({options})") == 5, name
            pg_copy_in(pcur, table, data.encode(), options)
            ours = rows(cur, f"SELECT * FROM {table} ORDER BY id")
            pcur.execute(f"SELECT * FROM {table} ORDER BY id")
            theirs = [tuple(r) for r in pcur.fetchall()]
            assert same(ours, theirs), (name, ours, theirs)


def test_copy_to_and_back_in_every_format(copy_server, files, pg):
    with copy_server.connect() as conn, pg.connect() as pconn:
        cur, pcur = conn.cursor(), pconn.cursor()
        (files / "src.csv").write_text(CSV_ROWS, encoding="utf-8")
        cur.execute(f"CREATE TABLE rt {COLUMNS}")
        cur.execute(f"COPY rt FROM '{files / 'src.csv'}' WITH (FORMAT csv)")
        original = rows(cur, "SELECT * FROM rt ORDER BY id")
        for i, (name, options) in enumerate(
            [("out.parquet", ""), ("out.jsonl", ""), ("out.csv", " WITH (FORMAT csv, HEADER)"), ("out.txt", " WITH (FORMAT csv)")]
        ):
            assert update(cur, f"COPY rt TO '{files / name}'{options}") == 5, name
            cur.execute(f"CREATE TABLE rt{i} {COLUMNS}")
            cur.execute(f"COPY rt{i} FROM '{files / name}'{options}")
            assert rows(cur, f"SELECT * FROM rt{i} ORDER BY id") == original, name
        # PostgreSQL reads the CSV DriftDB wrote as the same rows.
        pcur.execute(f"CREATE TABLE rt {COLUMNS}")
        pg_copy_in(pcur, "rt", (files / "out.csv").read_bytes(), "FORMAT csv, HEADER")
        pcur.execute("SELECT * FROM rt ORDER BY id")
        assert same(original, [tuple(r) for r in pcur.fetchall()])
        # A query, a column list.
        assert update(cur, f"COPY (SELECT id, name FROM rt WHERE id > 2) TO '{files / 'q.parquet'}'") == 3
        assert pq.read_table(files / "q.parquet").to_pylist() == [
            {"id": r[0], "name": r[1]} for r in original if r[0] > 2
        ]
        assert update(cur, f"COPY rt (id, flag) TO '{files / 'cols.jsonl'}'") == 5
        # No temporary file is left beside the outputs.
        assert not [p for p in os.listdir(files) if p.startswith(".")]


def test_export_as_of_a_past_version_equals_the_query_then(copy_server, files):
    with copy_server.connect() as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE hist (id INT PRIMARY KEY, v TEXT)")
        cur.execute("INSERT INTO hist VALUES (1, 'one'), (2, 'two')")
        then = scalar(cur, "SELECT max(seq) FROM commits()")
        cur.execute("UPDATE hist SET v = 'changed' WHERE id = 1")
        cur.execute("DELETE FROM hist WHERE id = 2")
        cur.execute(f"COPY (SELECT * FROM hist VERSION AS OF {then}) TO '{files / 'then.parquet'}'")
        expected = rows(cur, f"SELECT * FROM hist VERSION AS OF {then} ORDER BY id")
        got = pq.read_table(files / "then.parquet").to_pylist()
        assert [(r["id"], r["v"]) for r in sorted(got, key=lambda r: r["id"])] == expected
        assert expected == [(1, "one"), (2, "two")]


def test_bad_files_name_the_place_and_commit_nothing(copy_server, files):
    with copy_server.connect() as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE bad (id INT PRIMARY KEY, n INT NOT NULL, t TEXT)")
        cur.execute("INSERT INTO bad VALUES (0, 0, 'kept')")
        commits = scalar(cur, "SELECT count(*) FROM commits()")
        (files / "count.csv").write_text("1,1,a\n2,2,b,extra\n")
        (files / "number.csv").write_text("1,1,a\n2,2,b\n3,x3,c\n")
        (files / "null.csv").write_text("1,1,a\n2,,b\n")
        (files / "dup.csv").write_text("1,1,a\n1,2,b\n")
        good = pa.table({"id": [1, 2], "n": [1, 2], "t": ["a", "b"]})
        pq.write_table(good, files / "good.parquet")
        whole = (files / "good.parquet").read_bytes()
        (files / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
        pq.write_table(pa.table({"id": [1]}), files / "narrow.parquet")
        (files / "float.jsonl").write_text('{"id": 1, "n": 1.5, "t": "a"}\n')
        (files / "keys.jsonl").write_text('{"ID": 1, "n": 1}\n')
        for sql, state, where in [
            (f"COPY bad FROM '{files / 'float.jsonl'}'", "22P02", "row 1"),
            (f"COPY bad FROM '{files / 'keys.jsonl'}'", "22P04", "ID"),
            (f"COPY bad FROM '{files / 'keys.jsonl'}' WITH (HEADER)", "22023", "csv only"),
            (f"COPY bad FROM '{files / 'count.csv'}' WITH (FORMAT csv)", "22P04", "line 2"),
            (f"COPY bad FROM '{files / 'number.csv'}' WITH (FORMAT csv)", "22P02", "row 3"),
            (f"COPY bad FROM '{files / 'null.csv'}' WITH (FORMAT csv)", "23502", '"n"'),
            (f"COPY bad FROM '{files / 'dup.csv'}' WITH (FORMAT csv)", "23505", "id"),
            (f"COPY bad FROM '{files / 'truncated.parquet'}'", "22P04", "truncated.parquet"),
            (f"COPY bad FROM '{files / 'narrow.parquet'}'", "22P04", "1 columns"),
            (f"COPY bad FROM '{files / 'missing.csv'}'", "58P01", "missing.csv"),
            (f"COPY bad FROM '{files / 'count.csv'}' WITH (FORMAT text)", "0A000", "text"),
            (f"COPY bad FROM '{files / 'noext'}'", "22023", "FORMAT"),
            ("COPY bad FROM STDIN", "0A000", "STDIN"),
            ("COPY bad TO STDOUT", "0A000", "STDOUT"),
        ]:
            message = state_of(cur, sql)
            assert state in message and where in message, (sql, message)
        assert scalar(cur, "SELECT count(*) FROM commits()") == commits, "nothing committed"
        assert rows(cur, "SELECT * FROM bad") == [(0, 0, "kept")]


def test_files_read_as_relations(copy_server, files):
    with copy_server.connect() as conn:
        cur = conn.cursor()
        part = files / "parts"
        part.mkdir(exist_ok=True)
        pq.write_table(pa.table({"k": [1, 2], "label": ["a", "b"]}), part / "p1.parquet")
        pq.write_table(pa.table({"k": [3], "label": ["c"]}), part / "p2.parquet")
        (files / "labels.csv").write_text("k|label\n1|uno\n3|tres\n")
        (files / "labels.jsonl").write_text('{"k": 2, "label": "dos"}\n{"k": 3, "label": "tres"}\n')
        assert rows(cur, f"SELECT k, label FROM read_parquet('{part}/*.parquet') ORDER BY k") == [
            (1, "a"), (2, "b"), (3, "c"),
        ]
        assert rows(cur, f"SELECT * FROM read_csv('{files / 'labels.csv'}', delim => '|') ORDER BY k") == [
            (1, "uno"), (3, "tres"),
        ]
        (files / "na.csv").write_text("a,b\nNA,2\n3,NA\n")
        assert rows(cur, f"SELECT a, b FROM read_csv('{files / 'na.csv'}', nullstr => 'NA') ORDER BY a") == [
            (3, None), (None, 2),
        ]
        assert rows(cur, f"SELECT k, label FROM read_json('{files / 'labels.jsonl'}') ORDER BY k") == [
            (2, "dos"), (3, "tres"),
        ]
        # Loaded with INSERT … SELECT, joined with the table's own past.
        cur.execute("CREATE TABLE lab (k BIGINT PRIMARY KEY, label TEXT)")
        assert update(cur, f"INSERT INTO lab SELECT k, label FROM read_parquet('{part}/*.parquet')") == 3
        before = scalar(cur, "SELECT max(seq) FROM commits()")
        cur.execute("UPDATE lab SET label = upper(label)")
        joined = rows(
            cur,
            f"""SELECT f.k, f.label, old.label, now.label
                FROM read_csv('{files / 'labels.csv'}', delim => '|') f
                JOIN lab VERSION AS OF {before} old ON old.k = f.k
                JOIN lab now ON now.k = f.k ORDER BY f.k""",
        )
        assert joined == [(1, "uno", "a", "A"), (3, "tres", "c", "C")]
        for sql, state in [
            (f"SELECT * FROM read_csv('{files / 'labels.csv'}', bogus => 1)", "22023"),
            (f"SELECT * FROM read_parquet('{files / 'nothing'}/*.parquet')", "58P01"),
            (f"SELECT * FROM read_parquet('{files / 'labels.csv'}')", "22P04"),
            (f"SELECT * FROM read_parquet('{part}')", "22023"),
        ]:
            assert state in state_of(cur, sql), sql
        # CREATE EXTERNAL TABLE is refused, never an empty table.
        message = state_of(cur, f"CREATE EXTERNAL TABLE ext STORED AS PARQUET LOCATION '{part / 'p1.parquet'}'")
        assert "0A000" in message and "read_parquet" in message
        assert "42P01" in state_of(cur, "SELECT count(*) FROM ext")


def test_file_access_is_limited_to_the_folders_granted(copy_server, files, server):
    outside = pathlib.Path(tempfile.mkdtemp(prefix="driftdb-outside-"))
    try:
        (outside / "secret.csv").write_text("1,secret\n")
        (files / "link.csv").unlink(missing_ok=True)
        os.symlink(outside / "secret.csv", files / "link.csv")
        (files / "ok.csv").write_text("1,ok\n")
        with copy_server.connect() as conn:
            cur = conn.cursor()
            cur.execute("CREATE TABLE acc (id INT PRIMARY KEY, v TEXT)")
            for sql in [
                f"COPY acc FROM '{outside / 'secret.csv'}'",
                f"COPY acc FROM '{files}/../{outside.name}/secret.csv'",
                f"COPY acc FROM '{files / 'link.csv'}'",
                f"COPY acc TO '{outside / 'stolen.csv'}'",
                f"COPY acc TO '{files / 'link.csv'}'",
                f"SELECT * FROM read_csv('{outside / 'secret.csv'}')",
                "COPY acc FROM '/etc/passwd' WITH (FORMAT csv)",
                # Outside, even a missing file is only "denied" (no probing).
                "COPY acc FROM '/etc/no-such-file.csv'",
                "SELECT * FROM read_csv('/root/*')",
            ]:
                assert "42501" in state_of(cur, sql), sql
            # A glob's match that leads outside is no match at all.
            assert "58P01" in state_of(cur, f"SELECT * FROM read_csv('{files}/lin*.csv')")
            assert "22023" in state_of(cur, f"SELECT * FROM read_csv('{files}/*/../../*.csv')")
            assert not (outside / "stolen.csv").exists()
            # A file swapped for a link after the query was planned is not read.
            (files / "swap.csv").write_text("k,v\n1,inside\n")
            cur.execute(f"SELECT * FROM read_csv('{files / 'swap.csv'}')")
            (files / "swap.csv").unlink()
            os.symlink(outside / "secret.csv", files / "swap.csv")
            with pytest.raises(adbc_driver_manager.Error) as failure:
                cur.fetchall()
            # Refused: as no longer the checked file, or (when the scan opens
            # it without following links) as not found; never read.
            message = str(failure.value)
            assert "replaced" in message or "not found" in message, message
            (files / "swap.csv").unlink()
            assert (outside / "secret.csv").read_text() == "1,secret\n"
        # A server started without --file-access-dirs grants no file access.
        with server.connect() as conn:
            cur = conn.cursor()
            message = state_of(cur, f"SELECT * FROM read_csv('{files / 'ok.csv'}')")
            assert "42501" in message and "--file-access-dirs" in message
    finally:
        (files / "link.csv").unlink(missing_ok=True)
        shutil.rmtree(outside, ignore_errors=True)
