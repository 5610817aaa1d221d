//! Helpers shared by the suites.

use driftdb_engine::Session;

/// A query's answer as a pretty-printed table (panics naming the query on an error).
pub async fn text(session: &mut Session, sql: &str) -> String {
    let result = session
        .execute_one(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    arrow::util::pretty::pretty_format_batches(&result.batches)
        .expect("format")
        .to_string()
}
