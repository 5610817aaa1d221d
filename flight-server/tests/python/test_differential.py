"""Differential tests: the same statements on DriftDB (over ADBC, against a
real `driftdb serve`) and on a real PostgreSQL, answers compared.

Results are compared as multisets unless the statement has ORDER BY; numbers
to 9 significant digits; errors by SQLSTATE class. A statement PostgreSQL
refuses as unsupported (0A000) that DriftDB answers is counted apart, not
as a mismatch. The corpus is the
hand-written cases in differential/cases.sql plus queries generated from a
seed over the schema in differential/schema.sql ($DRIFTDB_DIFF_QUERIES
of them, default GENERATED_QUERIES). Every hand-written mismatch must be
listed with its reason in differential/allowlist.txt; generated ones may
not exceed the count recorded there. The pass counts are printed.
"""

import datetime
import decimal
import os
import pathlib
import random
import re

import adbc_driver_manager
import psycopg
import pytest

from postgres import Postgres

HERE = pathlib.Path(__file__).parent / "differential"
GENERATED_QUERIES = 3000
SEED = int(os.environ.get("DRIFTDB_DIFF_SEED", "20261201"))


def statements(text):
    """(name, statement) pairs of a corpus file."""
    name, lines, out = None, [], []
    for line in text.splitlines():
        if m := re.match(r"--\s*case:\s*(\S+)", line):
            name = m.group(1)
            continue
        if line.startswith("--") or not line.strip():
            continue
        lines.append(line)
        if line.rstrip().endswith(";"):
            sql = "\n".join(lines).rstrip().rstrip(";")
            out.append((name or f"stmt{len(out) + 1}", sql))
            name, lines = None, []
    return out


def allowlist():
    names, generated_max = {}, 0
    for line in (HERE / "allowlist.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, reason = line.partition(" ")
        if key == "generated-mismatches-max":
            generated_max = int(reason.split()[0])
        else:
            names[key] = reason.strip()
    return names, generated_max


def normalize(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        number = float(value)
        return float(f"{number:.9g}") if number == number else "NaN"
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def sort_key(row):
    return tuple((0, "") if v is None else (1, type(v).__name__, str(v)) for v in row)


def outcome(rows, ordered):
    rows = [tuple(normalize(v) for v in row) for row in rows]
    return rows if ordered else sorted(rows, key=sort_key)


def on_postgres(conn, sql):
    try:
        cur = conn.execute(sql)
        if not cur.description:
            return ("done", None)
        return ("rows", cur.fetchall(), [d.name for d in cur.description])
    except psycopg.Error as e:
        return ("error", e.sqlstate or "?????")


def on_driftdb(conn, sql):
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            if cur.description is None:
                return ("done", None)
            return ("rows", cur.fetchall(), [d[0] for d in cur.description])
    except adbc_driver_manager.Error as e:
        found = re.findall(r"\(SQLSTATE ([0-9A-Z]{5})\)", str(e))
        return ("error", found[-1] if found else "?????")


def top_level(sql):
    """`sql` without anything in parentheses (an OVER's ORDER BY orders nothing)."""
    previous = None
    while previous != sql:
        previous, sql = sql, re.sub(r"\([^()]*\)", "", sql)
    return sql


def beyond_postgres(pg, drift):
    """PostgreSQL refuses a feature (0A000) that DriftDB has: not a wrong
    answer (a FULL JOIN on a non-equality, for one)."""
    return pg[0] == "error" and pg[1].startswith("0A") and drift[0] == "rows"


def same(sql, pg, drift):
    if beyond_postgres(pg, drift):
        return True
    if pg[0] == "error" or drift[0] == "error":
        return pg[0] == drift[0] and pg[1][:2] == drift[1][:2]
    if re.search(r"\breturning\b", top_level(sql), re.IGNORECASE) and "done" in (pg[0], drift[0]):
        return False  # a write's RETURNING gives rows
    if pg[0] == "done" or drift[0] == "done":
        return True  # a write: both succeeded
    if pg[2] != drift[2]:
        return False  # the columns' names differ
    ordered = re.search(r"\border\s+by\b", top_level(sql), re.IGNORECASE) is not None
    return outcome(pg[1], ordered) == outcome(drift[1], ordered)


@pytest.fixture(scope="module")
def both(server):
    pg = Postgres()
    try:
        admin = pg.connect()
        admin.execute("CREATE DATABASE diff")
        admin.close()
        pg_conn = pg.connect("diff")
        drift = server.connect()
        for _, sql in statements((HERE / "schema.sql").read_text()):
            pg_conn.execute(sql)
            with drift.cursor() as cur:
                cur.execute(sql)
        yield pg_conn, drift
        drift.close()
        pg_conn.close()
    finally:
        pg.stop()


def run_corpus(both, corpus):
    pg_conn, drift = both
    mismatches, beyond = [], 0
    for name, sql in corpus:
        pg, dr = on_postgres(pg_conn, sql), on_driftdb(drift, sql)
        beyond += beyond_postgres(pg, dr)
        if not same(sql, pg, dr):
            mismatches.append((name, sql, pg, dr))
    if beyond:
        print(f"\n{beyond} statements PostgreSQL refuses as unsupported (0A000) and DriftDB answers")
    return mismatches


def report(title, corpus, mismatches):
    print(f"\n{title}: {len(corpus) - len(mismatches)} of {len(corpus)} statements answer as PostgreSQL does")
    for name, sql, pg, dr in mismatches:
        print(f"  {name}: {sql[:160]}\n    postgres {str(pg[:2])[:160]}\n    driftdb  {str(dr[:2])[:160]}")
        if len(pg) > 2 and len(dr) > 2 and pg[2] != dr[2]:
            print(f"    column names: postgres {pg[2]}, driftdb {dr[2]}")


def test_hand_written_cases_answer_as_postgresql(both):
    corpus = statements((HERE / "cases.sql").read_text())
    mismatches = run_corpus(both, corpus)
    report("hand-written", corpus, mismatches)
    allowed, _ = allowlist()
    unexplained = [m[0] for m in mismatches if m[0] not in allowed]
    assert not unexplained, f"mismatches not in the allowlist: {unexplained}"
    fixed = sorted(set(allowed) - {m[0] for m in mismatches} - {"generated-mismatches-max"})
    assert not fixed, f"allowlisted cases that now match PostgreSQL (remove them): {fixed}"


def test_generated_queries_answer_as_postgresql(both):
    count = int(os.environ.get("DRIFTDB_DIFF_QUERIES", GENERATED_QUERIES))
    rng = random.Random(SEED)
    corpus = [(f"gen{i}", Generator(rng).query()) for i in range(count)]
    mismatches = run_corpus(both, corpus)
    report(f"generated (seed {SEED})", corpus, mismatches)
    _, generated_max = allowlist()
    if count == GENERATED_QUERIES and SEED == 20261201:
        assert len(mismatches) <= generated_max, (
            f"{len(mismatches)} generated mismatches, more than the {generated_max} recorded"
        )


class Generator:
    """Random queries over d_a and d_b: projections, filters, joins, grouping,
    subqueries, set operations and window functions."""

    INT_COLUMNS = ["x", "y", "id"]

    def __init__(self, rng):
        self.r = rng

    def pick(self, *options):
        return self.r.choice(options)

    def int_expr(self, depth=0):
        leaf = [lambda: self.pick(*self.INT_COLUMNS), lambda: str(self.r.randint(-5, 9))]
        if depth >= 2:
            return self.r.choice(leaf)()
        shapes = leaf + [
            lambda: f"({self.int_expr(depth + 1)} {self.pick('+', '-', '*')} {self.int_expr(depth + 1)})",
            lambda: f"abs({self.int_expr(depth + 1)})",
            lambda: f"COALESCE({self.int_expr(depth + 1)}, {self.r.randint(-3, 3)})",
            lambda: f"CASE WHEN {self.predicate(depth + 1)} THEN {self.int_expr(depth + 1)} ELSE {self.int_expr(depth + 1)} END",
            lambda: f"({self.int_expr(depth + 1)} / {self.r.randint(1, 4)})",
            lambda: f"({self.int_expr(depth + 1)} % {self.r.randint(2, 5)})",
            lambda: f"CAST({self.pick('n', 'x')} AS BIGINT)",
        ]
        return self.r.choice(shapes)()

    def predicate(self, depth=0):
        shapes = [
            lambda: f"{self.int_expr(depth + 1)} {self.pick('=', '<>', '<', '<=', '>', '>=')} {self.int_expr(depth + 1)}",
            lambda: f"{self.pick(*self.INT_COLUMNS)} IS {self.pick('', 'NOT ')}NULL",
            lambda: f"{self.pick('b', 'NOT b', 'b IS NOT TRUE', 'b IS DISTINCT FROM true')}",
            lambda: f"s {self.pick('LIKE', 'NOT LIKE')} '{self.pick('a%', '%e%', '_a%', '')}'",
            lambda: f"x BETWEEN {self.r.randint(-3, 2)} AND {self.r.randint(2, 8)}",
            lambda: f"x IN ({', '.join(str(self.r.randint(-2, 8)) for _ in range(3))}{self.pick('', ', NULL')})",
            lambda: f"x IS {self.pick('', 'NOT ')}DISTINCT FROM {self.pick('y', '2', 'NULL')}",
            lambda: f"x {self.pick('IN', 'NOT IN')} (SELECT {self.pick('v', 'a_id')} FROM d_b WHERE v {self.pick('>', '<')} {self.r.randint(0, 400)})",
            lambda: f"x {self.pick('IN', 'NOT IN')} (SELECT a_id FROM d_b WHERE {self.correlation()})",
            lambda: f"{self.pick('', 'NOT ')}EXISTS (SELECT 1 FROM d_b WHERE {self.correlation()}{self.pick('', ' AND v > 100')})",
        ]
        if depth < 2:
            shapes.append(lambda: f"({self.predicate(depth + 1)} {self.pick('AND', 'OR')} {self.predicate(depth + 1)})")
            shapes.append(lambda: f"NOT ({self.predicate(depth + 1)})")
        return self.r.choice(shapes)()

    def correlation(self):
        """How a subquery over d_b refers to the d_a row: equalities, and
        conditions only a join with the outer row's domain answers."""
        return self.pick("d_b.a_id = d_a.id", "d_b.v > d_a.y", "d_b.a_id < d_a.x", "(d_b.a_id = d_a.id OR d_b.v < d_a.y)")

    def where(self):
        return f" WHERE {self.predicate()}" if self.r.random() < 0.7 else ""

    def query(self):
        shape = self.r.randrange(6)
        if shape == 0:
            exprs = [self.int_expr() for _ in range(self.r.randint(1, 3))]
            return f"SELECT id, {', '.join(exprs)} FROM d_a{self.where()}"
        if shape == 1:
            key = self.pick("b", "s", "x % 2", "y > 0")
            agg = self.pick("count(*)", "count(x)", "sum(x)", "min(y)", "max(s)", "sum(y)", "count(DISTINCT x)", "avg(x)")
            having = f" HAVING count(*) > {self.r.randint(0, 2)}" if self.r.random() < 0.3 else ""
            return f"SELECT {key}, {agg} FROM d_a{self.where()} GROUP BY {key}{having}"
        if shape == 2:
            join = self.pick("JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN")
            on = self.pick("d_b.a_id = d_a.id", "d_b.v > d_a.y", "d_b.a_id = d_a.x")
            return f"SELECT d_a.id, d_b.id, d_b.v FROM d_a {join} d_b ON {on}{self.where()}"
        if shape == 3:
            op = self.pick("UNION", "UNION ALL", "INTERSECT", "EXCEPT", "INTERSECT ALL", "EXCEPT ALL")
            return f"SELECT x FROM d_a{self.where()} {op} SELECT {self.pick('v', 'a_id')} FROM d_b"
        if shape == 4:
            fn = self.pick("sum(x)", "count(*)", "row_number()", "rank()", "max(y)", "lag(x)")
            order = self.pick("id", "x, id", "y DESC, id")
            return f"SELECT id, {fn} OVER (PARTITION BY {self.pick('b', 's', 'x % 2')} ORDER BY {order}) FROM d_a{self.where()}"
        return f"SELECT id, (SELECT {self.pick('max(v)', 'count(*)', 'min(t)', 'sum(v)')} FROM d_b WHERE {self.correlation()}) FROM d_a{self.where()}"
