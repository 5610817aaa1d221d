//! The commit pipeline is all or nothing: a commit that fails validation
//! changes nothing, `Database::commit` refuses what a statement would, and
//! a definition change racing a data write over two sessions never leaves
//! rows that break the definition.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use driftdb_engine::sql::IngestMode;
use driftdb_engine::txn::{KeyColumn, Write, WriteSet};
use driftdb_engine::{Database, Error, Session};

/// A fresh on-disk database (the temp dir lives as long as the value).
struct Db {
    _dir: tempfile::TempDir,
    path: String,
    db: Database,
}

impl Db {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("db").to_str().expect("utf-8").to_owned();
        let db = Database::open(&path).await.expect("open");
        Self {
            _dir: dir,
            path,
            db,
        }
    }

    async fn reopen(self) -> Self {
        self.db.close().await.expect("close");
        let db = Database::open(&self.path).await.expect("reopen");
        Self { db, ..self }
    }

    fn session(&self) -> Session {
        Session::new(&self.db)
    }

    async fn run(&self, sql: &str) {
        self.session()
            .execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        let result = self.session().execute_one(&sql).await.expect("count");
        result.batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("BIGINT")
            .value(0)
    }

    fn table_id(&self, name: &str) -> u64 {
        let catalog = self.db.catalog();
        catalog
            .table_at(name, self.db.visible_seq())
            .expect("table")
            .id
    }
}

async fn expect_sqlstate(session: &mut Session, sql: &str, sqlstate: &str) -> Error {
    match session.execute(sql).await {
        Ok(_) => panic!("{sql}: expected {sqlstate}, it succeeded"),
        Err(e) => {
            assert_eq!(e.sqlstate(), sqlstate, "{sql}: {e}");
            e
        }
    }
}

/// Rows `(id, bal)` for a table `(id BIGINT PRIMARY KEY, bal BIGINT)`, as `Database::commit` takes them.
fn account_rows(db: &Db, table: &str, rows: &[(i64, i64)]) -> Write {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0)));
    let bals: ArrayRef = Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1)));
    let keys = KeyColumn::encode(std::slice::from_ref(&ids)).expect("keys");
    let schema = Schema::new(vec![
        Field::new("c0", DataType::Int64, true),
        Field::new("c1", DataType::Int64, true),
    ]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![ids, bals]).expect("batch");
    Write::Insert {
        table_id: db.table_id(table),
        batch,
        keys,
    }
}

#[tokio::test]
async fn add_check_racing_an_insert_is_a_conflict() {
    let db = Db::new().await;
    db.run("CREATE TABLE acct (id BIGINT PRIMARY KEY, bal BIGINT)")
        .await;
    db.run("INSERT INTO acct VALUES (1, 100)").await;
    let mut alter = db.session();
    alter.execute("BEGIN").await.expect("begin");
    alter
        .execute("ALTER TABLE acct ADD CONSTRAINT bal_ok CHECK (bal >= 0)")
        .await
        .expect("alter validates the rows it sees");
    db.run("INSERT INTO acct VALUES (2, -500)").await;
    expect_sqlstate(&mut alter, "COMMIT", "40001").await;
    // The constraint did not land over the violating row; adding it now is refused.
    let mut again = db.session();
    expect_sqlstate(
        &mut again,
        "ALTER TABLE acct ADD CONSTRAINT bal_ok CHECK (bal >= 0)",
        "23514",
    )
    .await;
    assert_eq!(db.count("acct").await, 2);
}

#[tokio::test]
async fn an_insert_from_before_a_committed_check_is_a_conflict() {
    let db = Db::new().await;
    db.run("CREATE TABLE acct (id BIGINT PRIMARY KEY, bal BIGINT)")
        .await;
    let mut writer = db.session();
    writer.execute("BEGIN").await.expect("begin");
    writer
        .execute("INSERT INTO acct VALUES (2, -500)")
        .await
        .expect("insert");
    db.run("ALTER TABLE acct ADD CONSTRAINT bal_ok CHECK (bal >= 0)")
        .await;
    expect_sqlstate(&mut writer, "COMMIT", "40001").await;
    assert_eq!(db.count("acct").await, 0);
}

#[tokio::test]
async fn add_not_null_column_racing_an_insert_is_a_conflict_and_the_table_stays_readable() {
    let db = Db::new().await;
    db.run("CREATE TABLE e (id BIGINT)").await;
    let mut alter = db.session();
    alter.execute("BEGIN").await.expect("begin");
    alter
        .execute("ALTER TABLE e ADD COLUMN c INT NOT NULL")
        .await
        .expect("the table is empty in this snapshot");
    db.run("INSERT INTO e VALUES (1)").await;
    expect_sqlstate(&mut alter, "COMMIT", "40001").await;
    assert_eq!(db.count("e").await, 1);
    let db = db.reopen().await;
    db.run("SELECT * FROM e").await;
    assert_eq!(db.count("e").await, 1);
}

#[tokio::test]
async fn relaxing_a_definition_under_concurrent_writes_is_not_a_conflict() {
    let db = Db::new().await;
    db.run("CREATE TABLE acct (id BIGINT PRIMARY KEY, bal BIGINT CONSTRAINT bal_ok CHECK (bal >= 0), note TEXT)")
        .await;
    let mut alter = db.session();
    alter.execute("BEGIN").await.expect("begin");
    alter
        .execute("ALTER TABLE acct DROP CONSTRAINT bal_ok")
        .await
        .expect("drop constraint");
    alter
        .execute("ALTER TABLE acct DROP COLUMN note")
        .await
        .expect("drop column");
    db.run("INSERT INTO acct VALUES (1, 5, 'x')").await;
    alter.execute("COMMIT").await.expect("commit");
    db.run("INSERT INTO acct VALUES (2, -5)").await;
    assert_eq!(db.count("acct").await, 2);
}

#[tokio::test]
async fn database_commit_enforces_check_constraints() {
    let db = Db::new().await;
    db.run("CREATE TABLE acct (id BIGINT PRIMARY KEY, bal BIGINT CHECK (bal >= 0))")
        .await;
    let before = db.db.visible_seq();
    let mut writes = WriteSet::new("INSERT");
    writes.push(account_rows(&db, "acct", &[(1, 10), (2, -1)]));
    let e = db.db.commit(writes).await.expect_err("CHECK");
    assert_eq!(e.sqlstate(), "23514", "{e}");
    assert_eq!(db.db.visible_seq(), before);
    assert_eq!(db.count("acct").await, 0);
    let mut writes = WriteSet::new("INSERT");
    writes.push(account_rows(&db, "acct", &[(1, 10)]));
    let outcome = db.db.commit(writes).await.expect("valid rows commit");
    assert_eq!(outcome.seq, before + 1, "seqs stay contiguous");
}

#[tokio::test]
async fn a_commit_failing_validation_changes_nothing() {
    let db = Db::new().await;
    db.run("CREATE TABLE acct (id BIGINT PRIMARY KEY, bal BIGINT)")
        .await;
    let before = db.db.visible_seq();
    let commits_before = db.db.commits().len();
    // Good rows first, then rows with one column too few: the second write fails validation.
    let mut writes = WriteSet::new("INSERT");
    writes.push(account_rows(&db, "acct", &[(1, 10), (2, 20)]));
    let short = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("c0", DataType::Int32, true)])),
        vec![Arc::new(Int32Array::from(vec![3])) as ArrayRef],
    )
    .expect("batch");
    writes.push(Write::Insert {
        table_id: db.table_id("acct"),
        batch: short,
        keys: KeyColumn::encode(&[Arc::new(Int64Array::from(vec![3])) as ArrayRef]).expect("keys"),
    });
    let e = db.db.commit(writes).await.expect_err("shape");
    assert_eq!(e.sqlstate(), "XX000", "{e}");
    assert_eq!(db.db.visible_seq(), before);
    assert_eq!(db.db.commits().len(), commits_before);
    assert_eq!(db.count("acct").await, 0);
    // Not poisoned, and the keys of the failed commit were never taken.
    db.run("INSERT INTO acct VALUES (1, 1), (2, 2)").await;
    let db = db.reopen().await;
    assert_eq!(db.count("acct").await, 2);
}

#[tokio::test]
async fn dropping_a_referenced_table_through_database_commit_is_refused() {
    let db = Db::new().await;
    db.run("CREATE TABLE parent (id BIGINT PRIMARY KEY)").await;
    db.run("CREATE TABLE child (id BIGINT PRIMARY KEY, p BIGINT REFERENCES parent (id))")
        .await;
    let mut writes = WriteSet::new("DROP TABLE");
    writes.push(Write::DropTable {
        table_id: db.table_id("parent"),
    });
    let e = db.db.commit(writes).await.expect_err("dependents");
    assert_eq!(e.sqlstate(), "2BP01", "{e}");
    db.run("INSERT INTO parent VALUES (1)").await;
    db.run("INSERT INTO child VALUES (1, 1)").await;
}

#[tokio::test]
async fn ingest_replace_of_a_referenced_table_is_refused() {
    let db = Db::new().await;
    db.run("CREATE TABLE parent (id BIGINT PRIMARY KEY)").await;
    db.run("CREATE TABLE child (id BIGINT PRIMARY KEY, p BIGINT REFERENCES parent (id))")
        .await;
    db.run("INSERT INTO parent VALUES (1)").await;
    db.run("INSERT INTO child VALUES (10, 1)").await;
    let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
    let batch = RecordBatch::try_new(
        Arc::new(schema.clone()),
        vec![Arc::new(Int64Array::from(vec![7])) as ArrayRef],
    )
    .expect("batch");
    let mut session = db.session();
    let e = session
        .ingest("parent", IngestMode::Replace, &schema, &[batch])
        .await
        .expect_err("referenced");
    assert_eq!(e.sqlstate(), "2BP01", "{e}");
    // The parent keeps its row, so the child's reference still holds.
    let mut check = db.session();
    let result = check
        .execute_one("SELECT count(*) FROM child JOIN parent ON child.p = parent.id")
        .await
        .expect("join");
    let joined = result.batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("BIGINT")
        .value(0);
    assert_eq!(joined, 1);
}

async fn parent_and_child(db: &Db) {
    db.run("CREATE TABLE parent (id BIGINT PRIMARY KEY)").await;
    db.run("INSERT INTO parent VALUES (1), (2)").await;
    db.run("CREATE TABLE child (id BIGINT PRIMARY KEY, p BIGINT)")
        .await;
    db.run("INSERT INTO child VALUES (1, 1), (2, 2)").await;
}

#[tokio::test]
async fn a_delete_planned_before_a_foreign_key_was_added_is_a_conflict() {
    let db = Db::new().await;
    parent_and_child(&db).await;
    let mut delete = db.session();
    delete.execute("BEGIN").await.expect("begin");
    delete
        .execute("DELETE FROM parent WHERE id = 2")
        .await
        .expect("no foreign key in this snapshot");
    db.run("ALTER TABLE child ADD CONSTRAINT child_p FOREIGN KEY (p) REFERENCES parent (id)")
        .await;
    expect_sqlstate(&mut delete, "COMMIT", "40001").await;
    let orphans = db
        .count("child WHERE p NOT IN (SELECT id FROM parent)")
        .await;
    assert_eq!(orphans, 0);
}

#[tokio::test]
async fn a_foreign_key_to_a_table_dropped_meanwhile_is_a_conflict() {
    let db = Db::new().await;
    parent_and_child(&db).await;
    let mut alter = db.session();
    alter.execute("BEGIN").await.expect("begin");
    alter
        .execute("ALTER TABLE child ADD CONSTRAINT child_p FOREIGN KEY (p) REFERENCES parent (id)")
        .await
        .expect("add");
    let mut create = db.session();
    create.execute("BEGIN").await.expect("begin");
    create
        .execute("CREATE TABLE other (id BIGINT PRIMARY KEY, p BIGINT REFERENCES parent (id))")
        .await
        .expect("create");
    db.run("DROP TABLE parent").await;
    expect_sqlstate(&mut alter, "COMMIT", "40001").await;
    expect_sqlstate(&mut create, "COMMIT", "40001").await;
    db.run("INSERT INTO child VALUES (3, 99)").await;
}

#[tokio::test]
async fn dropping_a_table_a_concurrent_commit_made_referenced_is_refused() {
    let db = Db::new().await;
    parent_and_child(&db).await;
    let mut drop = db.session();
    drop.execute("BEGIN").await.expect("begin");
    drop.execute("DROP TABLE parent")
        .await
        .expect("nothing references it yet");
    db.run("CREATE TABLE other (id BIGINT PRIMARY KEY, p BIGINT REFERENCES parent (id))")
        .await;
    expect_sqlstate(&mut drop, "COMMIT", "2BP01").await;
    db.run("INSERT INTO other VALUES (1, 1)").await;
}
