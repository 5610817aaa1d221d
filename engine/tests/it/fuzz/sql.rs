//! Fuzzing the SQL front end: every statement of `tests/slt/*.slt` as a
//! corpus, mutated at the token and byte level (tokens deleted, doubled,
//! swapped, spliced from other statements; DriftDB's temporal keywords,
//! quotes, placeholders, NUL, huge numbers inserted), statements nested
//! thousands of levels deep, and random token soups and text.
//!
//! Each case runs in a new session of a database that holds the corpus's
//! tables, or (one case in seven) of an empty one where everything the
//! statement names is missing; both are made again every
//! [`CASES_PER_DATABASE`] cases, since cases may drop what they hold. The
//! runtime's threads have the server's stack size and are watched for panics.
//! Every case must: finish within [`CASE_TIMEOUT`]; panic nowhere (not in
//! a task, not in the log writer); and give every error a SQLSTATE of five
//! digits or capitals that is not XX000 (the internal-error class). A
//! query's rows are read for [`BATCHES_READ_MAX`] batches, then dropped.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use datafusion::execution::SendableRecordBatchStream;
use driftdb_engine::sql::{Output, parse_statements};
use driftdb_engine::{Database, Error, Session};
use futures::StreamExt;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use super::{cases, passed, runner, timed};

/// Cases in CI (see the module page of `fuzz` for longer runs).
const SQL_CASES_CI: u32 = 5_000;
/// A case still running after this long is a hang.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);
/// Cases run against one database before a fresh one is set up.
const CASES_PER_DATABASE: u32 = 500;
/// Batches of a query's result read before the rest is dropped.
const BATCHES_READ_MAX: usize = 4;
/// The share of cases run against a database without the corpus's schema.
const EMPTY_DATABASE_SHARE: f64 = 0.15;
/// Memory each query of a case may use.
const QUERY_MEMORY_BYTES: usize = 256 << 20;
/// The largest commit a fuzz database takes, in bytes: a mutation that
/// writes tens of millions of rows (`generate_series(1, 50005000)`) is
/// refused (54000) as its rows are read, not run past the case timeout.
const COMMIT_BYTES_MAX: usize = 32 << 20;
/// Statements of one case run at most (a mutation can split one into many).
const STATEMENTS_MAX: usize = 8;
/// The name of the fuzz runtime's threads; panics on them (or on any
/// `driftdb-` thread, such as the log writer) fail the case.
const THREAD_PREFIX: &str = "driftdb-";
const RUNTIME_THREAD_NAME: &str = "driftdb-fuzz-sql";
/// The SQLSTATE of internal errors, which no input may cause.
const INTERNAL_ERROR: &str = "XX000";

/// Tokens inserted into statements or strung into random ones.
const TOKENS: &[&str] = &[
    "FOR SYSTEM_TIME ALL",
    "FOR SYSTEM_TIME AS OF",
    "FOR SYSTEM_TIME BETWEEN 0 AND 1",
    "FOR SYSTEM_TIME FROM now() TO now()",
    "AS OF",
    "VERSION",
    "SYSTEM_TIME",
    "(",
    ")",
    "'",
    "''",
    "'it''s'",
    "\"",
    "$1",
    "$0",
    "$65536",
    "$99999999999999999999",
    "?",
    "\0",
    "'\0'",
    "NULL",
    "DEFAULT",
    "0",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "340282366920938463463374607431768211456",
    "1e308",
    "1e-400",
    "'NaN'",
    "'infinity'",
    "TIMESTAMP '2000-01-01 00:00:00'",
    "TIMESTAMP 'garbage'",
    "INTERVAL '1' DAY",
    "now()",
    ";",
    ",",
    ".",
    "*",
    "[",
    "]",
    "{",
    "}",
    "::",
    "::INT",
    "::TEXT",
    "--",
    "/*",
    "*/",
    "E'\\x00'",
    "U&'\\0000'",
    "x'ff'",
    "'\u{1F600}'",
    "SELECT",
    "FROM",
    "WHERE",
    "JOIN",
    "LATERAL",
    "UNION ALL SELECT 1",
    "GROUP BY 1",
    "ORDER BY 1",
    "LIMIT -1",
    "OFFSET 9223372036854775807",
    "DISTINCT",
    "RETURNING *",
    "ON CONFLICT DO NOTHING",
    "ON CONFLICT (id) DO UPDATE SET id = excluded.id",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT s",
    "ROLLBACK TO s",
    "CREATE TABLE",
    "DROP TABLE",
    "ALTER TABLE",
    "ADD COLUMN",
    "VIEW",
    "SEQUENCE",
    "PRIMARY KEY",
    "REFERENCES",
    "CHECK (",
    "UNIQUE",
    "NOT NULL",
    "GENERATED ALWAYS AS IDENTITY",
    "SET driftdb.as_of =",
    "EXPLAIN",
    "ANALYZE",
    "WITH RECURSIVE",
    "CASE WHEN",
    "THEN",
    "ELSE",
    "END",
    "IS NOT DISTINCT FROM",
    "BETWEEN",
    "IN (",
    "ANY (",
    "ARRAY[",
    "ROW(",
    "CAST(",
    "AS",
    "history(",
    "commits()",
    "nextval('s')",
    "setval('s', -1)",
    "generate_series(1, 3)",
    "1/0",
    "%",
    "~",
    "@",
    "#",
    "->",
    "->>",
    "||",
    "=",
    "<>",
];

/// Statements nested `depth` levels: `prefix`, `open` × depth, `middle`, `close` × depth.
const NESTINGS: &[(&str, &str, &str, &str)] = &[
    ("SELECT ", "(", "1", ")"),
    ("SELECT ", "- ", "1", ""),
    ("SELECT ", "NOT ", "true", ""),
    ("SELECT ", "", "1", " + 1"),
    ("SELECT ", "", "'x'", " || 'x'"),
    ("SELECT ", "", "1", " IN (1)"),
    ("SELECT ", "", "1", " IS NULL"),
    ("SELECT ", "", "1", "::BIGINT"),
    ("SELECT ", "", "1", " = 1"),
    ("SELECT ", "", "'a'", " ~~ 'a'"),
    ("SELECT ", "", "'a'", " !~ 'a'"),
    ("SELECT ", "", "1", " # 1"),
    ("SELECT ", "", "'a'", " COLLATE \"C\""),
    ("SELECT ", "", "now()", " AT TIME ZONE 'UTC'"),
    ("SELECT ", "", "make_array(1)", "[1]"),
    ("SELECT ", "", "1", " UNION ALL SELECT 1"),
    ("SELECT ", "(SELECT ", "1", ")"),
    ("SELECT ", "CASE WHEN true THEN ", "1", " END"),
    ("SELECT ", "abs(", "1", ")"),
    ("SELECT ", "CAST(", "1", " AS BIGINT)"),
    ("SELECT ", "CAST(", "1 AS", " AS BIGINT)"),
    ("SELECT ", "ARRAY[", "1,", "]"),
    ("SELECT ", "", "1", " @> 1"),
    ("SELECT ", "coalesce(", "NULL", ", 1)"),
    ("SELECT ", "ARRAY[", "1", "]"),
    ("SELECT ", "ROW(", "1", ")"),
    ("SELECT * FROM ", "(SELECT * FROM ", "dept", ") AS d"),
    (
        "SELECT id FROM dept WHERE id IN ",
        "(SELECT id FROM dept WHERE id IN ",
        "(1)",
        ")",
    ),
    (
        "SELECT * FROM dept FOR SYSTEM_TIME AS OF ",
        "(",
        "now()",
        ")",
    ),
    ("SELECT ", "", "1", ", 1"),
    (
        "INSERT INTO emp (id, salary) VALUES ",
        "",
        "(1, 1)",
        ", (1, 1)",
    ),
];

/// Depths worth trying: shallow, around the parser's nesting limit (64),
/// around the expression limit (1024), and far beyond.
fn depth() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..64, 60usize..70, 1000usize..1100, 2000usize..30_000]
}

/// Where a case's text comes from.
#[derive(Debug, Clone)]
enum Source {
    Corpus(Index),
    Nested { shape: Index, depth: usize },
    Tokens(Vec<&'static str>),
    Text(String),
}

/// One edit of a statement's tokens or bytes.
#[derive(Debug, Clone)]
enum Edit {
    Delete(Index),
    Duplicate(Index),
    Swap(Index, Index),
    Insert(Index, &'static str),
    Replace(Index, &'static str),
    /// Tokens `start..start + len` of another corpus statement, inserted.
    Splice {
        at: Index,
        from: Index,
        start: Index,
        len: u8,
    },
    FlipBit(Index, u8),
    Truncate(Index),
}

#[derive(Debug, Clone)]
struct Case {
    source: Source,
    edits: Vec<Edit>,
    /// Run against a database without the corpus's schema (everything it
    /// names is missing, some of it only noticed while rows stream).
    empty: bool,
}

fn token() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(TOKENS)
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![
        8 => any::<Index>().prop_map(Source::Corpus),
        2 => (any::<Index>(), depth()).prop_map(|(shape, depth)| Source::Nested { shape, depth }),
        2 => proptest::collection::vec(token(), 1..24).prop_map(Source::Tokens),
        1 => "(?s).{0,120}".prop_map(Source::Text),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => any::<Index>().prop_map(Edit::Delete),
        2 => any::<Index>().prop_map(Edit::Duplicate),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap(a, b)),
        4 => (any::<Index>(), token()).prop_map(|(at, t)| Edit::Insert(at, t)),
        3 => (any::<Index>(), token()).prop_map(|(at, t)| Edit::Replace(at, t)),
        2 => (any::<Index>(), any::<Index>(), any::<Index>(), 1u8..12)
            .prop_map(|(at, from, start, len)| Edit::Splice { at, from, start, len }),
        1 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Edit::FlipBit(at, bit)),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let edits = proptest::collection::vec(edit(), 0..4);
    (
        source(),
        edits,
        proptest::bool::weighted(EMPTY_DATABASE_SHARE),
    )
        .prop_map(|(source, edits, empty)| Case {
            source,
            edits,
            empty,
        })
}

/// The SQL of every `statement` and `query` record in `tests/slt`.
fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    let statements: Vec<String> = files
        .iter()
        .flat_map(|f| statements_of(&std::fs::read_to_string(f).expect("read slt")))
        .collect();
    assert!(statements.len() > 100, "a corpus of {}", statements.len());
    statements
}

/// The SQL lines of each record: from the line after `statement …` or
/// `query …` to a blank line or `----`. The harness's own commands are skipped.
fn statements_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if !(line.starts_with("statement ") || line.starts_with("query")) {
            continue;
        }
        let sql: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.trim().is_empty() && l.trim() != "----")
            .collect();
        let sql = sql.join("\n");
        let command = sql.trim().trim_end_matches(';');
        if !sql.is_empty() && command != "REOPEN" && command != "PERSIST" {
            out.push(sql);
        }
    }
    out
}

/// Split SQL into tokens that keep their text: whitespace runs, quoted
/// strings and identifiers, words, operator runs, other single characters.
fn tokenize(sql: &str) -> Vec<String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let end = match c {
            '\'' | '"' => quoted_end(&chars, i),
            c if c.is_whitespace() => run_end(&chars, i, char::is_whitespace),
            c if is_word(c) => run_end(&chars, i, is_word),
            c if is_operator(c) => run_end(&chars, i, is_operator),
            _ => i + 1,
        };
        tokens.push(chars[i..end].iter().collect());
        i = end;
    }
    tokens
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

fn is_operator(c: char) -> bool {
    "<>=!|:&+-*/%^~@#?".contains(c)
}

fn run_end(chars: &[char], start: usize, class: fn(char) -> bool) -> usize {
    (start..chars.len())
        .find(|&j| !class(chars[j]))
        .unwrap_or(chars.len())
}

/// The end of the quoted token at `start` (a doubled quote stays inside).
fn quoted_end(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut j = start + 1;
    while j < chars.len() {
        if chars[j] == quote {
            if chars.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    chars.len()
}

/// The text of `case`.
fn render(case: &Case, corpus: &[String]) -> String {
    let text = match &case.source {
        Source::Corpus(index) => corpus[index.index(corpus.len())].clone(),
        Source::Nested { shape, depth } => {
            let (prefix, open, middle, close) = NESTINGS[shape.index(NESTINGS.len())];
            format!(
                "{prefix}{}{middle}{}",
                open.repeat(*depth),
                close.repeat(*depth)
            )
        }
        Source::Tokens(tokens) => tokens.join(" "),
        Source::Text(text) => text.clone(),
    };
    case.edits
        .iter()
        .fold(text, |text, edit| apply(&text, edit, corpus))
}

fn apply(text: &str, edit: &Edit, corpus: &[String]) -> String {
    let mut tokens = tokenize(text);
    if tokens.is_empty() {
        tokens.push(String::new());
    }
    let n = tokens.len();
    match edit {
        Edit::Delete(at) => {
            tokens.remove(at.index(n));
        }
        Edit::Duplicate(at) => {
            let token = tokens[at.index(n)].clone();
            tokens.insert(at.index(n), token);
        }
        Edit::Swap(a, b) => tokens.swap(a.index(n), b.index(n)),
        Edit::Insert(at, token) => tokens.insert(at.index(n + 1), format!(" {token} ")),
        Edit::Replace(at, token) => tokens[at.index(n)] = format!(" {token} "),
        Edit::Splice {
            at,
            from,
            start,
            len,
        } => {
            let other = tokenize(&corpus[from.index(corpus.len())]);
            let first = start.index(other.len().max(1)).min(other.len());
            let last = (first + usize::from(*len)).min(other.len());
            let at = at.index(n + 1);
            tokens.splice(at..at, other[first..last].iter().cloned());
        }
        Edit::FlipBit(at, bit) => {
            let mut bytes = text.as_bytes().to_vec();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        Edit::Truncate(at) => {
            let cut = at.index(text.len() + 1);
            return String::from_utf8_lossy(&text.as_bytes()[..cut]).into_owned();
        }
    }
    tokens.concat()
}

/// Panics seen on `driftdb-` threads since the hook was installed.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Record every panic on a `driftdb-` thread (then report it as before).
fn watch_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if name.starts_with(THREAD_PREFIX) {
                let message = format!("panic on thread {name}: {info}");
                PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(message);
            }
            previous(info);
        }));
    });
}

fn panics_seen() -> Vec<String> {
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A database holding the tables, views and sequences `corpus` creates.
async fn corpus_database(corpus: &[String]) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let limits = driftdb_engine::Limits {
        log_frame_bytes_max: COMMIT_BYTES_MAX,
        ..Default::default()
    };
    let db = Database::open_with(path.to_str().expect("utf-8"), limits)
        .await
        .expect("open");
    let mut session = Session::new(&db);
    for sql in corpus.iter().filter(|s| creates_or_fills(s)) {
        // Some are meant to fail (the corpus tests errors); the rest build the schema.
        let _ = session.execute(sql).await;
        session = Session::new(&db);
    }
    (dir, db)
}

fn creates_or_fills(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or("");
    first.eq_ignore_ascii_case("CREATE") || first.eq_ignore_ascii_case("INSERT")
}

/// Run every statement of `sql` (up to [`STATEMENTS_MAX`]) in a new
/// session of `db`; the errors they gave.
async fn run_case(db: Database, sql: String) -> Vec<Error> {
    let mut session = Session::new(&db);
    session.set_query_memory_limit(Some(QUERY_MEMORY_BYTES));
    let statements = match parse_statements(&sql) {
        Ok(statements) => statements,
        Err(e) => return vec![e],
    };
    let mut errors = Vec::new();
    for statement in statements.into_iter().take(STATEMENTS_MAX) {
        match session.execute_streaming(statement).await {
            Ok(Output::Rows { stream, .. }) => {
                if let Err(e) = read_some(stream).await {
                    errors.push(e);
                }
            }
            Ok(Output::Done(_)) => {}
            Err(e) => errors.push(e),
        }
    }
    errors
}

/// Read up to [`BATCHES_READ_MAX`] batches of a query's rows.
async fn read_some(mut stream: SendableRecordBatchStream) -> Result<(), Error> {
    for _ in 0..BATCHES_READ_MAX {
        match stream.next().await {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => break,
        }
    }
    Ok(())
}

/// Whether `sqlstate` is five digits or capital letters.
fn well_formed(sqlstate: &str) -> bool {
    sqlstate.len() == 5
        && sqlstate
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// The fuzzing state carried from case to case.
struct State {
    runtime: tokio::runtime::Runtime,
    corpus: Vec<String>,
    /// The corpus's database and an empty one, with their folders.
    databases: Option<[(tempfile::TempDir, Database); 2]>,
    cases_on_databases: u32,
    sqlstates: BTreeMap<&'static str, u64>,
}

impl State {
    fn new(runtime: tokio::runtime::Runtime) -> Self {
        Self {
            runtime,
            corpus: corpus(),
            databases: None,
            cases_on_databases: 0,
            sqlstates: BTreeMap::new(),
        }
    }

    /// The database for the next case (the empty one if `empty`); fresh
    /// ones every [`CASES_PER_DATABASE`] cases.
    fn database(&mut self, empty: bool) -> Database {
        if self.databases.is_none() || self.cases_on_databases >= CASES_PER_DATABASE {
            for (_dir, db) in self.databases.take().into_iter().flatten() {
                let _ = self.runtime.block_on(db.close());
            }
            let filled = self.runtime.block_on(corpus_database(&self.corpus));
            let empty = self.runtime.block_on(corpus_database(&[]));
            self.databases = Some([filled, empty]);
            self.cases_on_databases = 0;
        }
        self.cases_on_databases += 1;
        self.databases.as_ref().expect("just set")[usize::from(empty)]
            .1
            .clone()
    }

    /// Run `sql` as one case (against the empty database if `empty`) and check what it did.
    fn check(&mut self, sql: &str, empty: bool) -> Result<(), TestCaseError> {
        let db = self.database(empty);
        let panics_before = panics_seen().len();
        let (sender, receiver) = std::sync::mpsc::channel();
        let text = sql.to_string();
        self.runtime.spawn(async move {
            let _ = sender.send(run_case(db, text).await);
        });
        // Waited for on this thread, so a wedged runtime still times out.
        let errors = match receiver.recv_timeout(CASE_TIMEOUT) {
            Ok(errors) => errors,
            Err(RecvTimeoutError::Timeout) => {
                eprintln!("fuzz sql: HANG after {CASE_TIMEOUT:?}: {sql:?}");
                return Err(TestCaseError::fail(format!("hang: {sql:?}")));
            }
            Err(RecvTimeoutError::Disconnected) => Vec::new(), // the task panicked: below
        };
        let panics = panics_seen();
        if panics.len() > panics_before {
            eprintln!(
                "fuzz sql: PANIC: {sql:?}\n{}",
                panics[panics_before..].join("\n")
            );
            return Err(TestCaseError::fail(format!(
                "panic: {sql:?}: {}",
                panics[panics_before]
            )));
        }
        for error in &errors {
            let sqlstate = error.sqlstate();
            *self.sqlstates.entry(sqlstate).or_default() += 1;
            prop_assert!(well_formed(sqlstate), "SQLSTATE {sqlstate:?}: {error}");
            prop_assert!(!error.to_string().is_empty(), "an empty message: {sql:?}");
            if sqlstate == INTERNAL_ERROR {
                eprintln!("fuzz sql: XX000 {error}\n  from {sql:?}");
            }
            prop_assert!(sqlstate != INTERNAL_ERROR, "XX000 {error} from {sql:?}");
        }
        Ok(())
    }
}

#[test]
fn fuzz_sql_front_end() {
    watch_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(RUNTIME_THREAD_NAME)
        // As the server's and the shell's statement threads have.
        .thread_stack_size(driftdb_engine::limits::STATEMENT_THREAD_STACK_BYTES)
        .enable_all()
        .build()
        .expect("runtime");
    let corpus = corpus();
    let state = RefCell::new(State::new(runtime));
    let target = "sql front end";
    timed(target, || {
        let result = runner(target, cases(SQL_CASES_CI)).run(&case(), |case| {
            let sql = render(&case, &corpus);
            state.borrow_mut().check(&sql, case.empty)
        });
        let state = state.borrow();
        eprintln!("fuzz {target}: errors by SQLSTATE {:?}", state.sqlstates);
        passed(target, result);
    });
}

#[test]
fn the_corpus_tokenizer_keeps_every_character() {
    for sql in corpus() {
        assert_eq!(tokenize(&sql).concat(), sql);
    }
    assert_eq!(
        tokenize("SELECT 'it''s', \"a b\" FROM t::int"),
        [
            "SELECT", " ", "'it''s'", ",", " ", "\"a b\"", " ", "FROM", " ", "t", "::", "int"
        ]
    );
}
