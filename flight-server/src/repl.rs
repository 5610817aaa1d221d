//! `driftdb sql`: run scripts or an interactive shell on the embedded engine.

use std::time::Duration;

use arrow::util::pretty::pretty_format_batches;
use driftdb_engine::{Error, Session, StatementResult};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

/// Render one result the way the shell prints it.
pub fn render(result: &StatementResult) -> String {
    let mut out = String::new();
    if result.schema.fields().is_empty() {
        out.push_str(&result.tag);
        if let Some(rows) = result.rows_affected {
            out.push_str(&format!(" {rows}"));
        }
        if let Some(seq) = result.seq {
            out.push_str(&format!(" (commit {seq})"));
        }
        out.push('\n');
        return out;
    }
    match pretty_format_batches(&result.batches) {
        Ok(table) if !result.batches.is_empty() => out.push_str(&format!("{table}\n")),
        _ => out.push_str(&header_only(result)),
    }
    let rows = result.row_count();
    out.push_str(&format!("({rows} row{})", if rows == 1 { "" } else { "s" }));
    out
}

fn header_only(result: &StatementResult) -> String {
    let names: Vec<&str> = result
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    format!("{}\n", names.join(" | "))
}

/// An error as the shell prints it: `ERROR <sqlstate>: message`.
pub fn render_error(error: &Error) -> String {
    format!("ERROR {}: {error}", error.sqlstate())
}

/// Run a script, printing each result; stops at the first error.
pub async fn run_script(session: &mut Session, sql: &str) -> Result<(), Error> {
    for statement in driftdb_engine::sql::parse_statements(sql)? {
        let result = session.execute_statement(statement).await?;
        println!("{}", render(&result));
    }
    Ok(())
}

/// A statement is complete once it ends with `;` (or is a backslash command).
fn is_complete(buffer: &str) -> bool {
    let trimmed = buffer.trim_end();
    trimmed.ends_with(';') || trimmed.starts_with('\\')
}

/// The interactive shell.
pub async fn run_shell(session: &mut Session) -> Result<(), Error> {
    let mut editor = DefaultEditor::new().map_err(|e| Error::internal_message(e.to_string()))?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".driftdb_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let mut timing = true;
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "driftdb> "
        } else {
            "     ..> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                buffer.push_str(&line);
                buffer.push('\n');
                if !is_complete(&buffer) {
                    continue;
                }
                let input = std::mem::take(&mut buffer);
                let _ = editor.add_history_entry(input.trim());
                match input.trim() {
                    "\\q" | "exit;" | "quit;" => break,
                    "\\timing" => {
                        timing = !timing;
                        println!("timing is {}", if timing { "on" } else { "off" });
                    }
                    "\\dt" => print_results(session, "SHOW TABLES", timing).await,
                    sql => print_results(session, sql, timing).await,
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Error::internal_message(e.to_string())),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

async fn print_results(session: &mut Session, sql: &str, timing: bool) {
    let statements = match driftdb_engine::sql::parse_statements(sql) {
        Ok(statements) => statements,
        Err(e) => return eprintln!("{}", render_error(&e)),
    };
    for statement in statements {
        match session.execute_statement(statement).await {
            Ok(result) => {
                println!("{}", render(&result));
                if timing {
                    println!("Time: {}", format_duration(result.elapsed));
                }
            }
            Err(e) => return eprintln!("{}", render_error(&e)),
        }
    }
}

fn format_duration(elapsed: Duration) -> String {
    format!("{:.3} ms", elapsed.as_secs_f64() * 1000.0)
}
