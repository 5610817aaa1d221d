"""`driftdb load` and `driftdb export`, the command line on a local database.

The reference is the source file itself: what a load commits must be its
rows, chunk by chunk, and an export AS OF the load's last version must
give them back. A load killed with SIGKILL midway keeps every chunk it
acknowledged and no part of another; resumed with --skip-rows it ends
with every row once.
"""

import os
import shutil
import signal
import subprocess
import tempfile

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from conftest import driftdb_binary

ROWS = 5_000_000
CHUNK = 250_000


@pytest.fixture()
def work():
    folder = tempfile.mkdtemp(prefix="driftdb-load-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def cli(*args, check=True):
    done = subprocess.run([driftdb_binary(), *args], capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def sql(data, statement):
    return cli("sql", "--data", data, "-e", statement).stdout


def big_table(rows):
    ids = pa.array(range(1, rows + 1), pa.int64())
    labels = pc.binary_join_element_wise("L", pc.cast(ids, pa.string()), "")
    return pa.table({"id": ids, "v": pc.multiply(ids, 3), "label": labels})


def count(data, table):
    out = sql(data, f"SELECT count(*) AS n, coalesce(sum(id), 0) AS s FROM {table}")
    numbers = [int(x) for x in out.replace("|", " ").split() if x.isdigit()]
    return numbers[-2], numbers[-1]


def test_a_killed_load_keeps_whole_chunks_and_resumes(work):
    data = os.path.join(work, "db")
    source = os.path.join(work, "big.parquet")
    pq.write_table(big_table(ROWS), source, row_group_size=100_000)
    load = subprocess.Popen(
        [driftdb_binary(), "load", "--data", data, "--batch-rows", str(CHUNK), "big", source],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    acknowledged = 0
    for line in load.stdout:
        if line.startswith("committed rows 1..="):
            acknowledged = int(line.split("=")[1].split()[0])
            if acknowledged >= 3 * CHUNK:
                load.send_signal(signal.SIGKILL)
                break
    load.wait(timeout=60)
    assert acknowledged >= 3 * CHUNK, load.stderr.read()
    rows, total = count(data, "big")
    assert rows >= acknowledged, "an acknowledged chunk was lost"
    assert rows < ROWS, "the kill came after the load had finished"
    assert rows % CHUNK == 0, f"a partial chunk: {rows} rows"
    assert total == rows * (rows + 1) // 2, "the chunks are the file's first rows, once each"
    done = cli("load", "--data", data, "--batch-rows", str(CHUNK), "--skip-rows", str(rows), "big", source)
    assert f"loaded {ROWS - rows} rows" in done.stdout, done.stdout
    assert count(data, "big") == (ROWS, ROWS * (ROWS + 1) // 2)


def test_load_csv_and_json_then_export_as_of_the_loaded_version(work):
    data = os.path.join(work, "db")
    table = big_table(1_000)
    csv_path, json_path = os.path.join(work, "t.csv"), os.path.join(work, "t.jsonl")
    pacsv.write_csv(table.slice(0, 600), csv_path)
    with open(json_path, "w") as out:
        for row in table.slice(600).to_pylist():
            out.write('{"id": %d, "v": %d, "label": "%s"}\n' % (row["id"], row["v"], row["label"]))
    done = cli("load", "--data", data, "small", csv_path, json_path)
    assert "loaded 1000 rows" in done.stdout, done.stdout
    version = int(done.stdout.strip().splitlines()[-2].split()[-1])
    sql(data, "UPDATE small SET label = 'changed' WHERE id <= 10; DELETE FROM small WHERE id > 900")
    for name in ["then.parquet", "then.csv", "then.jsonl"]:
        out = os.path.join(work, name)
        done = cli("export", "--data", data, "--as-of", str(version), "small", out)
        assert "exported 1000 rows" in done.stdout, done.stdout
        if name.endswith(".parquet"):
            back = pq.read_table(out)
        elif name.endswith(".csv"):
            back = pacsv.read_csv(out)
        else:
            import pyarrow.json as pajson
            back = pajson.read_json(out)
        back = back.select(["id", "v", "label"]).sort_by("id")
        assert back.column("id").to_pylist() == table.column("id").to_pylist(), name
        assert back.column("v").to_pylist() == table.column("v").to_pylist(), name
        assert [str(x) for x in back.column("label").to_pylist()] == table.column("label").to_pylist(), name
    # A query, now: the update and the delete show. A bare file name is
    # the working folder's.
    done = subprocess.run(
        [driftdb_binary(), "export", "--data", data, "--query", "SELECT id, label FROM small WHERE id <= 10", "now.parquet"],
        capture_output=True, text=True, timeout=600, cwd=work,
    )
    assert done.returncode == 0 and "exported 10 rows" in done.stdout, done.stderr
    assert set(pq.read_table(os.path.join(work, "now.parquet")).column("label").to_pylist()) == {"changed"}
    # Bad input names the file and commits nothing.
    bad = os.path.join(work, "bad.csv")
    with open(bad, "w") as f:
        f.write("id,v,label\n1,2,x\n2,notanumber,y\n")
    failed = cli("load", "--data", data, "small", bad, check=False)
    assert failed.returncode != 0 and "bad.csv" in failed.stderr, failed.stderr
    assert count(data, "small")[0] == 900
