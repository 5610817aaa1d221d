//! Protocol-level tests of `driftdb serve` with arrow-flight's Rust
//! `FlightSqlServiceClient`, following the call sequence the Flight SQL
//! JDBC driver makes: Handshake (again, even with a token), GetSqlInfo on
//! connect, GetTables with `include_schema`, and every statement — DDL,
//! DML and queries — as a prepared statement.

mod fuzz;
mod hardening;
mod harness;

use std::time::Duration;

use arrow::array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginSavepointResult, ActionEndSavepointRequest,
    CommandGetPrimaryKeys, CommandGetTables, EndTransaction, ProstMessageExt, SqlInfo,
    SqlSupportedTransaction,
};
use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus};
use futures::TryStreamExt;
use prost::Message;
use std::sync::Arc;
use tonic::Code;

use harness::{Server, collect, connect, status_of};

#[tokio::test]
async fn jdbc_style_session() {
    let server = Server::start(&[]).await;
    let mut client = connect(&server).await;

    // JDBC calls Handshake again with the token it already holds.
    let token = client.token().cloned().unwrap();
    let mut again = harness::raw_client(&server).await;
    again.set_token(token.clone());
    let mut request = tonic::Request::new(futures::stream::iter([
        arrow_flight::HandshakeRequest::default(),
    ]));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let response = again.inner_mut().handshake(request).await.unwrap();
    assert_eq!(
        response.metadata().get("authorization").unwrap(),
        &format!("Bearer {token}")
    );

    // GetSqlInfo on connect.
    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerReadOnly,
            SqlInfo::FlightSqlServerTransaction,
        ])
        .await
        .unwrap();
    let batches = collect(&mut client, &info).await;
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);

    // Every statement as a prepared statement: DDL, DML with parameters, queries.
    let mut create = client
        .prepare(
            "CREATE TABLE people (id INT PRIMARY KEY, name TEXT NOT NULL)".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(create.dataset_schema().unwrap().fields().len(), 0);
    assert_eq!(create.execute_update().await.unwrap(), 0);
    create.close().await.unwrap();

    let mut insert = client
        .prepare("INSERT INTO people VALUES (?, ?)".into(), None)
        .await
        .unwrap();
    assert_eq!(insert.parameter_schema().unwrap().fields().len(), 2);
    let params = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int32Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec!["ada", "bob", "cy"])),
        ],
    )
    .unwrap();
    insert.set_parameters(params).unwrap();
    assert_eq!(insert.execute_update().await.unwrap(), 3);
    insert.close().await.unwrap();

    let mut select = client
        .prepare("SELECT name FROM people WHERE id = ?".into(), None)
        .await
        .unwrap();
    assert_eq!(select.dataset_schema().unwrap().field(0).name(), "name");
    assert_eq!(
        select.parameter_schema().unwrap().field(0).data_type(),
        &DataType::Int32,
        "the parameter type is inferred from the column it is compared with"
    );
    let one = Int32Array::from(vec![2]);
    select
        .set_parameters(
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, false)])),
                vec![Arc::new(one)],
            )
            .unwrap(),
        )
        .unwrap();
    let info = select.execute().await.unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&info.app_metadata).unwrap();
    assert!(
        metadata["seq"].as_u64().unwrap() >= 2,
        "the snapshot seq is reported: {metadata}"
    );
    let schema_promised = info.clone().try_decode_schema().unwrap();
    let batches = collect(&mut client, &info).await;
    assert_eq!(batches[0].schema().as_ref(), &schema_promised);
    let names = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(names.value(0), "bob");

    // GetTables with include_schema, and with no catalog named.
    let tables = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: Some("peo%".into()),
            table_types: vec![],
            include_schema: true,
        })
        .await
        .unwrap();
    let batch = &collect(&mut client, &tables).await[0];
    assert_eq!(batch.num_rows(), 1);
    let schema_bytes = batch
        .column_by_name("table_schema")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::BinaryArray>()
        .unwrap()
        .value(0)
        .to_vec();
    let schema = arrow::ipc::convert::try_schema_from_ipc_buffer(&schema_bytes).unwrap();
    assert_eq!(schema.field(0).name(), "id");
    assert!(!schema.field(1).is_nullable());

    let keys = client
        .get_primary_keys(CommandGetPrimaryKeys {
            catalog: None,
            db_schema: None,
            table: "people".into(),
        })
        .await
        .unwrap();
    let batch = &collect(&mut client, &keys).await[0];
    let column = batch
        .column_by_name("column_name")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(column.value(0), "id");
    server.stop().await;
}

#[tokio::test]
async fn errors_map_to_grpc_codes_with_sqlstate() {
    let server = Server::start(&[]).await;
    let mut client = connect(&server).await;
    client
        .execute_update(
            "CREATE TABLE k (id INT PRIMARY KEY, v TEXT NOT NULL)".into(),
            None,
        )
        .await
        .unwrap();
    client
        .execute_update("INSERT INTO k VALUES (1, 'a')".into(), None)
        .await
        .unwrap();
    let cases = [
        ("SELEC 1", Code::InvalidArgument, "42601"),
        ("SELECT * FROM nope", Code::NotFound, "42P01"),
        (
            "INSERT INTO k VALUES (1, 'b')",
            Code::AlreadyExists,
            "23505",
        ),
        (
            "INSERT INTO k VALUES (2, NULL)",
            Code::FailedPrecondition,
            "23502",
        ),
        ("CREATE TABLE k (x INT)", Code::AlreadyExists, "42P07"),
        (
            "INSERT INTO k VALUES ('x', 'y')",
            Code::InvalidArgument,
            "22P02",
        ),
    ];
    for (sql, code, sqlstate) in cases {
        let err = client.execute_update(sql.into(), None).await.unwrap_err();
        let status = status_of(&err);
        assert_eq!(status.0, code, "{sql}: {err}");
        assert!(status.1.contains(sqlstate), "{sql}: {err}");
    }
    // A call without a token is refused.
    let mut anonymous = harness::raw_client(&server).await;
    let err = anonymous
        .execute("SELECT 1".into(), None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err).0, Code::Unauthenticated, "{err}");
    server.stop().await;
}

#[tokio::test]
async fn cancel_flight_info_stops_the_query() {
    let server = Server::start(&[]).await;
    let mut client = connect(&server).await;
    let (info, reading) = harness::start_long_read(&mut client).await;
    let body = CancelFlightInfoRequest {
        info: Some(info.clone()),
    }
    .encode_to_vec();
    let mut results = client
        .do_action(Action::new("CancelFlightInfo", body))
        .await
        .unwrap();
    let result =
        CancelFlightInfoResult::decode(results.try_next().await.unwrap().unwrap().body).unwrap();
    assert_eq!(result.status, CancelStatus::Cancelled as i32);
    let outcome = tokio::time::timeout(Duration::from_secs(20), reading)
        .await
        .expect("the cancelled query ends")
        .unwrap();
    let err = outcome.expect_err("a cancelled query does not finish");
    assert!(err.to_string().contains("57014"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn results_stream_in_bounded_batches() {
    let server = Server::start(&[]).await;
    let mut client = connect(&server).await;
    let info = client
        .execute(
            "SELECT x, x * 2 AS y FROM generate_series(1, 300000) AS g(x)".into(),
            None,
        )
        .await
        .unwrap();
    let batches = collect(&mut client, &info).await;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 300_000);
    assert!(batches.len() > 10, "a large result arrives as many batches");
    assert!(batches.iter().all(|b| b.num_rows() <= 65_536));
    // Row order is not promised without ORDER BY; the largest y is.
    let largest = batches
        .iter()
        .filter_map(|b| {
            let y = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            arrow::compute::max(y)
        })
        .max();
    assert_eq!(largest, Some(600_000));
    server.stop().await;
}

/// The rows of a foreign-key metadata answer as `(pk_table.pk_column, fk_table.fk_column, seq, fk_name, pk_name, update_rule, delete_rule)`.
fn foreign_key_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in batches {
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        let number = |name: &str| {
            arrow::compute::cast(batch.column_by_name(name).unwrap(), &DataType::Int64).unwrap()
        };
        let (pk_table, pk_column, fk_table, fk_column, fk_name, pk_name) = (
            text("pk_table_name"),
            text("pk_column_name"),
            text("fk_table_name"),
            text("fk_column_name"),
            text("fk_key_name"),
            text("pk_key_name"),
        );
        let (sequence, update, delete) = (
            number("key_sequence"),
            number("update_rule"),
            number("delete_rule"),
        );
        let int = |a: &arrow::array::ArrayRef, i: usize| {
            a.as_any().downcast_ref::<Int64Array>().unwrap().value(i)
        };
        for i in 0..batch.num_rows() {
            rows.push(format!(
                "{}.{} <- {}.{} #{} {} -> {} u{} d{}",
                pk_table.value(i),
                pk_column.value(i),
                fk_table.value(i),
                fk_column.value(i),
                int(&sequence, i),
                fk_name.value(i),
                pk_name.value(i),
                int(&update, i),
                int(&delete, i)
            ));
        }
    }
    rows
}

#[tokio::test]
async fn type_info_and_foreign_keys() {
    let server = Server::start(&[]).await;
    let mut client = connect(&server).await;
    let info = client
        .get_xdbc_type_info(arrow_flight::sql::CommandGetXdbcTypeInfo { data_type: None })
        .await
        .unwrap();
    let batch = &collect(&mut client, &info).await[0];
    let names = batch
        .column_by_name("type_name")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let names: Vec<&str> = names.iter().flatten().collect();
    for expected in ["BIGINT", "VARCHAR", "TIMESTAMP", "DECIMAL"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    for sql in [
        "CREATE TABLE region (country TEXT, code TEXT, PRIMARY KEY (country, code))",
        "CREATE TABLE parent (id INT PRIMARY KEY, email TEXT UNIQUE)",
        "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT REFERENCES parent ON DELETE CASCADE, \
         email TEXT REFERENCES parent (email) ON UPDATE SET NULL, country TEXT, code TEXT, \
         CONSTRAINT child_region FOREIGN KEY (country, code) REFERENCES region ON DELETE SET DEFAULT)",
    ] {
        client.execute_update(sql.into(), None).await.unwrap();
    }
    let imported = client
        .get_imported_keys(arrow_flight::sql::CommandGetImportedKeys {
            catalog: None,
            db_schema: None,
            table: "child".into(),
        })
        .await
        .unwrap();
    let promised = imported.clone().try_decode_schema().unwrap();
    assert_eq!(promised.field(2).name(), "pk_table_name");
    assert_eq!(promised.field(12).name(), "delete_rule");
    assert_eq!(
        foreign_key_rows(&collect(&mut client, &imported).await),
        [
            "parent.email <- child.email #1 child_email_fkey -> parent_email_key u2 d3",
            "parent.id <- child.parent_id #1 child_parent_id_fkey -> parent_pkey u3 d0",
            "region.country <- child.country #1 child_region -> region_pkey u3 d4",
            "region.code <- child.code #2 child_region -> region_pkey u3 d4",
        ]
    );
    let exported = client
        .get_exported_keys(arrow_flight::sql::CommandGetExportedKeys {
            catalog: None,
            db_schema: None,
            table: "region".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        foreign_key_rows(&collect(&mut client, &exported).await).len(),
        2
    );
    let cross = client
        .get_cross_reference(arrow_flight::sql::CommandGetCrossReference {
            pk_catalog: None,
            pk_db_schema: None,
            pk_table: "parent".into(),
            fk_catalog: None,
            fk_db_schema: None,
            fk_table: "child".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        foreign_key_rows(&collect(&mut client, &cross).await).len(),
        2
    );
    let none = client
        .get_cross_reference(arrow_flight::sql::CommandGetCrossReference {
            pk_catalog: None,
            pk_db_schema: None,
            pk_table: "child".into(),
            fk_catalog: None,
            fk_db_schema: None,
            fk_table: "parent".into(),
        })
        .await
        .unwrap();
    assert!(foreign_key_rows(&collect(&mut client, &none).await).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn idle_sessions_expire() {
    let server = Server::start(&["--session-idle-secs", "1"]).await;
    let mut client = connect(&server).await;
    client.execute("SELECT 1".into(), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let err = client.execute("SELECT 1".into(), None).await.unwrap_err();
    assert_eq!(status_of(&err).0, Code::Unauthenticated, "{err}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_cancels_running_queries_and_exits_cleanly() {
    let server = Server::start(&[]).await;
    let mut client = connect(&server).await;
    let (_, reading) = harness::start_long_read(&mut client).await;
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(20));
    let outcome = reading.await.unwrap();
    assert!(
        outcome.is_err(),
        "the running query was cancelled, not finished"
    );
}

/// Count the rows of `table` through `client` (outside any transaction).
async fn count_rows(client: &mut harness::Client, table: &str) -> i64 {
    let info = client
        .execute(format!("SELECT count(*) AS n FROM {table}"), None)
        .await
        .unwrap();
    let batches = collect(client, &info).await;
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

/// Run a Flight SQL action and decode its one result message as `R`.
async fn action<Req: ProstMessageExt, R: ProstMessageExt + Default>(
    client: &mut harness::Client,
    kind: &str,
    request: Req,
) -> Result<Option<R>, tonic::Status> {
    let action = Action {
        r#type: kind.into(),
        body: request.as_any().encode_to_vec().into(),
    };
    let mut stream = client
        .do_action(action)
        .await
        .map_err(|e| tonic::Status::unknown(e.to_string()))?;
    let Some(message) = stream
        .try_next()
        .await
        .map_err(|e| tonic::Status::unknown(e.to_string()))?
    else {
        return Ok(None);
    };
    let any = arrow_flight::sql::Any::decode(&*message.body).unwrap();
    Ok(any.unpack::<R>().unwrap())
}

#[tokio::test]
async fn transactions_and_savepoints() {
    let server = Server::start(&[]).await;
    let mut client = connect(&server).await;
    let mut other = connect(&server).await;

    // GetSqlInfo advertises transactions with savepoints.
    let info = client
        .get_sql_info(vec![SqlInfo::FlightSqlServerTransaction])
        .await
        .unwrap();
    let batches = collect(&mut client, &info).await;
    let values = batches[0]
        .column(1)
        .as_any()
        .downcast_ref::<arrow::array::UnionArray>()
        .unwrap()
        .value(0);
    let level = values
        .as_any()
        .downcast_ref::<arrow::array::Int32Array>()
        .unwrap();
    assert_eq!(level.value(0), SqlSupportedTransaction::Savepoint as i32);

    client
        .execute_update("CREATE TABLE tx (id INT PRIMARY KEY)".into(), None)
        .await
        .unwrap();
    let txn = client.begin_transaction().await.unwrap();
    client
        .execute_update("INSERT INTO tx VALUES (1)".into(), Some(txn.clone()))
        .await
        .unwrap();
    let savepoint: ActionBeginSavepointResult = action(
        &mut client,
        "BeginSavepoint",
        ActionBeginSavepointRequest {
            transaction_id: txn.clone(),
            name: "before two".into(),
        },
    )
    .await
    .unwrap()
    .unwrap();
    client
        .execute_update("INSERT INTO tx VALUES (2)".into(), Some(txn.clone()))
        .await
        .unwrap();
    // Own writes are visible inside, invisible outside.
    let inside = client
        .execute("SELECT id FROM tx".into(), Some(txn.clone()))
        .await
        .unwrap();
    let rows: usize = collect(&mut client, &inside)
        .await
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 2);
    assert_eq!(count_rows(&mut other, "tx").await, 0);
    // Roll back to the savepoint: row 2 goes, row 1 stays.
    let none: Option<ActionBeginSavepointResult> = action(
        &mut client,
        "EndSavepoint",
        ActionEndSavepointRequest {
            savepoint_id: savepoint.savepoint_id,
            action: 2,
        },
    )
    .await
    .unwrap();
    assert!(none.is_none());
    // A statement naming another transaction is refused.
    let err = client
        .execute_update("INSERT INTO tx VALUES (3)".into(), Some("999999".into()))
        .await
        .unwrap_err();
    assert_eq!(status_of(&err).0, Code::NotFound, "{err}");
    client
        .end_transaction(txn, EndTransaction::Commit)
        .await
        .unwrap();
    assert_eq!(count_rows(&mut other, "tx").await, 1);

    // A write-write conflict: the second committer gets Aborted with 40001.
    let first = client.begin_transaction().await.unwrap();
    let second = other.begin_transaction().await.unwrap();
    client
        .execute_update(
            "UPDATE tx SET id = 10 WHERE id = 1".into(),
            Some(first.clone()),
        )
        .await
        .unwrap();
    other
        .execute_update(
            "UPDATE tx SET id = 20 WHERE id = 1".into(),
            Some(second.clone()),
        )
        .await
        .unwrap();
    client
        .end_transaction(first, EndTransaction::Commit)
        .await
        .unwrap();
    let err = other
        .end_transaction(second, EndTransaction::Commit)
        .await
        .unwrap_err();
    let (code, message) = status_of(&err);
    assert_eq!(code, Code::Aborted, "{err}");
    assert!(message.contains("40001"), "{err}");
    let info = other
        .execute("SELECT id FROM tx".into(), None)
        .await
        .unwrap();
    let batches = collect(&mut other, &info).await;
    let ids = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int32Array>()
        .unwrap();
    assert_eq!(ids.values().to_vec(), vec![10]);
    server.stop().await;
}
