"""Files on object storage: `COPY`, `read_*`, `driftdb load` and `driftdb
export` with `s3://` paths, against a real S3-compatible server (moto on
loopback) and a real `driftdb serve`.

The reference is the objects themselves, read by pyarrow through boto3:
what DriftDB loads must be their rows, what it writes must read back as
the query's rows. Access is limited to the prefixes granted with
--file-access-dirs, on whole key segments; a key climbing out is refused
before anything is listed.
"""

import io
import os
import subprocess
import tempfile
import uuid

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from conftest import Server, driftdb_binary
from s3server import S3Server
from test_copy import rows, state_of, update


@pytest.fixture(scope="module")
def s3():
    return S3Server.shared()


@pytest.fixture(scope="module")
def prefix(s3):
    """A fresh granted prefix: s3://bucket/files-XXXX."""
    return f"s3://{s3.bucket}/files-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def s3_server(s3, prefix):
    # A granted bucket that does not exist: writes there must fail cleanly.
    s = Server("--file-access-dirs", f"{prefix},s3://no-such-bucket-driftdb", env=s3.env())
    yield s
    s.stop()


def put(s3, url, body):
    bucket, key = url.removeprefix("s3://").split("/", 1)
    s3.client().put_object(Bucket=bucket, Key=key, Body=body)


def get(s3, url):
    bucket, key = url.removeprefix("s3://").split("/", 1)
    return s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def parquet_bytes(table):
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def parts(n, rows_each):
    """n Parquet tables of consecutive ids."""
    return [
        pa.table(
            {
                "id": pa.array(range(i * rows_each, (i + 1) * rows_each), pa.int64()),
                "label": pa.array([f"p{i}-{j}" for j in range(rows_each)]),
                "amount": pa.array([j * 0.5 for j in range(rows_each)], pa.float64()),
            }
        )
        for i in range(n)
    ]


def test_copy_from_objects_loads_their_rows(s3_server, s3, prefix):
    tables = parts(3, 1000)
    for i, t in enumerate(tables):
        put(s3, f"{prefix}/sales/part-{i}.parquet", parquet_bytes(t))
    put(s3, f"{prefix}/sales/notes.txt", b"not matched by the pattern")
    put(s3, f"{prefix}/sales/deeper/part-9.parquet", parquet_bytes(tables[0]))
    csv = b'id,label,amount\n1,"a, b",1.5\n2,"say ""hi""",\n3,\xc3\xbcn\xc3\xafc\xc3\xb8d\xc3\xa9,-2\n'
    put(s3, f"{prefix}/one.csv", csv)
    with s3_server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE s3_sales (id BIGINT PRIMARY KEY, label TEXT, amount DOUBLE PRECISION)")
        # `*` stays within one segment: deeper/part-9 is no match.
        assert update(cur, f"COPY s3_sales FROM '{prefix}/sales/part-*.parquet'") == 3000
        got = cur.execute("SELECT id, label, amount FROM s3_sales ORDER BY id").fetch_arrow_table()
        assert got.to_pylist() == pa.concat_tables(tables).to_pylist()

        cur.execute("CREATE TABLE s3_csv (id INT PRIMARY KEY, label TEXT, amount NUMERIC(6,2))")
        assert update(cur, f"COPY s3_csv FROM '{prefix}/one.csv' WITH (FORMAT csv, HEADER true)") == 3
        assert rows(cur, "SELECT id, label, amount::text FROM s3_csv ORDER BY id") == [
            (1, "a, b", "1.50"),
            (2, 'say "hi"', None),
            (3, "ünïcødé", "-2.00"),
        ]


def test_bad_and_missing_objects_are_named_and_commit_nothing(s3_server, s3, prefix):
    good = parquet_bytes(parts(1, 10)[0])
    put(s3, f"{prefix}/mixed/a.parquet", good)
    put(s3, f"{prefix}/mixed/b.parquet", good[: len(good) // 2])
    put(s3, f"{prefix}/badrow.csv", b"1,5\n2,notanumber\n")
    with s3_server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE s3_bad (id BIGINT PRIMARY KEY, label TEXT, amount DOUBLE PRECISION)")
        message = state_of(cur, f"COPY s3_bad FROM '{prefix}/mixed/*.parquet'")
        assert "22P04" in message and f"{prefix}/mixed/b.parquet" in message, message
        assert rows(cur, "SELECT count(*) FROM s3_bad") == [(0,)]
        cur.execute("CREATE TABLE s3_bad2 (id INT, n INT)")
        message = state_of(cur, f"COPY s3_bad2 FROM '{prefix}/badrow.csv'")
        assert "22P02" in message and "row 2" in message and "badrow.csv" in message, message
        assert rows(cur, "SELECT count(*) FROM s3_bad2") == [(0,)]
        message = state_of(cur, f"COPY s3_bad2 FROM '{prefix}/nothing-here.csv'")
        assert "58P01" in message, message
        message = state_of(cur, f"SELECT * FROM read_parquet('{prefix}/none-*.parquet')")
        assert "58P01" in message, message


def test_read_functions_scan_objects_in_place(s3_server, s3, prefix):
    tables = parts(2, 500)
    for i, t in enumerate(tables):
        put(s3, f"{prefix}/scan/p{i}.parquet", parquet_bytes(t))
    put(s3, f"{prefix}/scan/x.csv", b"k|v\n1|NA\n2|20\n")
    put(s3, f"{prefix}/scan/x.jsonl", b'{"k": 1, "v": "a"}\n{"k": 2, "v": null}\n')
    whole = pa.concat_tables(tables)
    with s3_server.connect() as conn, conn.cursor() as cur:
        got = rows(cur, f"SELECT count(*), sum(id), sum(amount) FROM read_parquet('{prefix}/scan/p*.parquet')")
        assert got == [(whole.num_rows, sum(whole["id"].to_pylist()), sum(whole["amount"].to_pylist()))]
        got = rows(
            cur,
            f"SELECT k, v FROM read_csv('{prefix}/scan/x.csv', delim => '|', nullstr => 'NA') ORDER BY k",
        )
        assert got == [(1, None), (2, 20)]
        assert rows(cur, f"SELECT k, v FROM read_json('{prefix}/scan/x.jsonl') ORDER BY k") == [(1, "a"), (2, None)]
        # In INSERT … SELECT and joined with a table as of a past version.
        cur.execute("CREATE TABLE s3_keys (id BIGINT PRIMARY KEY, tag TEXT)")
        cur.execute(f"INSERT INTO s3_keys SELECT id, label FROM read_parquet('{prefix}/scan/p0.parquet') WHERE id < 5")
        version = rows(cur, "SELECT max(seq) FROM commits()")[0][0]
        cur.execute("DELETE FROM s3_keys")
        joined = rows(
            cur,
            f"SELECT count(*) FROM s3_keys VERSION AS OF {version} k "
            f"JOIN read_parquet('{prefix}/scan/p*.parquet') f ON f.id = k.id",
        )
        assert joined == [(5,)]
        # A path that is not a literal cannot be listed before planning.
        message = state_of(cur, f"SELECT * FROM read_parquet('{prefix}/scan/' || 'p0.parquet')")
        assert "22023" in message and "literal" in message, message


def test_copy_to_an_object_writes_the_query_rows(s3_server, s3, prefix):
    with s3_server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE s3_out (id INT PRIMARY KEY, name TEXT, at TIMESTAMPTZ)")
        cur.execute(
            "INSERT INTO s3_out VALUES (1, 'one, \"quoted\"', '2026-01-31 10:00:00+00'), "
            "(2, NULL, NULL), (3, 'ünï\nline', '1999-12-31 23:59:59.5+02')"
        )
        expected = cur.execute("SELECT * FROM s3_out ORDER BY id").fetch_arrow_table()
        assert update(cur, f"COPY (SELECT * FROM s3_out ORDER BY id) TO '{prefix}/out/t.parquet'") == 3
        assert pq.read_table(io.BytesIO(get(s3, f"{prefix}/out/t.parquet"))).to_pylist() == expected.to_pylist()
        assert update(cur, f"COPY s3_out TO '{prefix}/out/t.csv' WITH (FORMAT csv, HEADER true)") == 3
        back = pacsv.read_csv(
            io.BytesIO(get(s3, f"{prefix}/out/t.csv")),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
        )
        assert back.column("id").to_pylist() == [1, 2, 3]
        assert back.column("name").to_pylist() == ['one, "quoted"', None, "ünï\nline"]
        # Written objects read back through DriftDB too.
        cur.execute("CREATE TABLE s3_back (id INT PRIMARY KEY, name TEXT, at TIMESTAMPTZ)")
        assert update(cur, f"COPY s3_back FROM '{prefix}/out/t.parquet'") == 3
        assert cur.execute("SELECT * FROM s3_back ORDER BY id").fetch_arrow_table().to_pylist() == expected.to_pylist()
        # A pattern or a folder is not one object.
        assert "22023" in state_of(cur, f"COPY s3_out TO '{prefix}/out/*.csv'")
        assert "22023" in state_of(cur, f"COPY s3_out TO '{prefix}/out/'")


def test_object_access_stays_inside_the_granted_prefixes(s3_server, s3, prefix, server):
    put(s3, f"s3://{s3.bucket}/secret/s.csv", b"1,secret\n")
    put(s3, f"{prefix}-sibling/s.csv", b"1,secret\n")
    with s3_server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE s3_guard (id INT, label TEXT)")
        for path in [
            f"s3://{s3.bucket}/secret/s.csv",
            f"{prefix}-sibling/s.csv",  # a longer name, not a segment under the prefix
            f"s3://{s3.bucket}/*/s.csv",
            f"s3://other-bucket/{prefix.split('/')[-1]}/s.csv",
        ]:
            message = state_of(cur, f"COPY s3_guard FROM '{path}'")
            assert "42501" in message, (path, message)
            message = state_of(cur, f"SELECT * FROM read_csv('{path}')")
            assert "42501" in message, (path, message)
        for path in [f"{prefix}/../secret/s.csv", f"{prefix}//s.csv", f"{prefix}/./s.csv", f"{prefix}/s.csv#frag"]:
            message = state_of(cur, f"COPY s3_guard FROM '{path}'")
            assert "22023" in message, (path, message)
        assert "42501" in state_of(cur, f"COPY s3_guard TO 's3://{s3.bucket}/secret/out.csv'")
        # The prefix is a folder: the object named like it is outside.
        assert "42501" in state_of(cur, f"COPY s3_guard TO '{prefix}' WITH (FORMAT csv)")
        assert "0A000" in state_of(cur, f"COPY s3_guard FROM 'ftp://{s3.bucket}/x.csv'")
        assert rows(cur, "SELECT count(*) FROM s3_guard") == [(0,)]
    # A server granted no object prefix reaches no object.
    with server.connect() as conn, conn.cursor() as cur:
        assert "42501" in state_of(cur, f"SELECT * FROM read_csv('{prefix}/one.csv')")


def test_load_and_export_with_object_paths(s3):
    folder = tempfile.mkdtemp(prefix="driftdb-s3-load-")
    data = os.path.join(folder, "db")
    base = f"s3://{s3.bucket}/load-{uuid.uuid4().hex[:8]}"
    tables = parts(4, 2500)
    for i, t in enumerate(tables):
        put(s3, f"{base}/in/part-{i}.parquet", parquet_bytes(t))
    env = dict(os.environ, **s3.env())

    def cli(*args):
        done = subprocess.run([driftdb_binary(), *args], capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = cli("load", "--data", data, "--batch-rows", "3000", "loaded", f"{base}/in/part-*.parquet")
    # A chunk ends at a file's end too: the four objects, in key order.
    assert [line.split(" as ")[0] for line in out.splitlines() if line.startswith("committed")] == [
        f"committed rows 1..={n}" for n in (2500, 5000, 7500, 10000)
    ], out
    cli("export", "--data", data, "--query", "SELECT * FROM loaded ORDER BY id", f"{base}/out/all.parquet")
    back = pq.read_table(io.BytesIO(get(s3, f"{base}/out/all.parquet")))
    assert back.to_pylist() == pa.concat_tables(tables).to_pylist()
    # `driftdb sql` reaches objects with the user's own credentials.
    out = cli("sql", "--data", data, "-e", f"SELECT count(*) AS n FROM read_parquet('{base}/out/all.parquet')")
    assert "10000" in out, out


def test_keys_are_read_as_listed_never_reinterpreted(s3_server, s3, prefix):
    """A key is a name: `%2E%2E` in a planted key never climbs out, `%41`
    is not `A`, and unicode is not re-encoded; read_* and COPY agree."""
    bucket = s3.bucket
    put(s3, f"s3://{bucket}/private/payroll.csv", b"secret,1\n")
    folder = prefix.split(f"s3://{bucket}/", 1)[1]
    planted = f"{folder}/up/%2E%2E/%2E%2E/%2E%2E/private/payroll.csv"
    s3.client().put_object(Bucket=bucket, Key=planted, Body=b"planted,2\n")
    for name, body in [("x%41.csv", b"a,1\n"), ("xA.csv", b"b,2\n"), ("\u00fc.csv", b"c,3\n"), ("a%20b.csv", b"d,4\n")]:
        s3.client().put_object(Bucket=bucket, Key=f"{folder}/keys/{name}", Body=body)
    with s3_server.connect() as conn, conn.cursor() as cur:
        got = rows(cur, f"SELECT * FROM read_csv('{prefix}/up/%2E%2E/%2E%2E/%2E%2E/private/*.csv', header => false)")
        assert got == [("planted", 2)], got
        got = rows(cur, f"SELECT column_1 FROM read_csv('{prefix}/keys/*.csv', header => false) ORDER BY 1")
        assert got == [("a",), ("b",), ("c",), ("d",)], got
        assert rows(cur, f"SELECT column_2 FROM read_csv('{prefix}/keys/\u00fc.csv', header => false)") == [(3,)]
        cur.execute("CREATE TABLE s3_keys2 (k TEXT, v INT)")
        assert update(cur, f"COPY s3_keys2 FROM '{prefix}/keys/*.csv'") == 4
        cur.execute("CREATE TABLE s3_out2 (v INT)")
        cur.execute("INSERT INTO s3_out2 VALUES (7)")
        assert update(cur, f"COPY s3_out2 TO '{prefix}/written/\u00fc%41.csv'") == 1
        assert get(s3, f"{prefix}/written/\u00fc%41.csv") == b"7\n"
        # `?` matches one character, within a segment.
        assert rows(cur, f"SELECT count(*) FROM read_csv('{prefix}/keys/x?.csv', header => false)") == [(1,)]


def test_damaged_empty_and_unwritable_objects_fail_cleanly(s3_server, s3, prefix):
    footer = b"PAR1" + b"\0" * 100 + (0xFFFFFFF0).to_bytes(4, "little") + b"PAR1"
    put(s3, f"{prefix}/damaged/bad.parquet", footer)
    put(s3, f"{prefix}/damaged/empty.csv", b"")
    with s3_server.connect() as conn, conn.cursor() as cur:
        message = state_of(cur, f"SELECT count(*) FROM read_parquet('{prefix}/damaged/bad.parquet')")
        assert "22P04" in message and "bad.parquet" in message, message
        assert rows(cur, f"SELECT count(*) FROM read_csv('{prefix}/damaged/empty.csv', header => false)") == [(0,)]
        cur.execute("CREATE TABLE s3_unwritable (v INT)")
        cur.execute("INSERT INTO s3_unwritable VALUES (1)")
        message = state_of(cur, "COPY s3_unwritable TO 's3://no-such-bucket-driftdb/out.csv'")
        assert "SQLSTATE" in message and "out.csv" in message, message
        # The server is still there and answers.
        assert rows(cur, "SELECT count(*) FROM s3_unwritable") == [(1,)]
    assert "panicked" not in "".join(s3_server.output)
