//! Statement depth limits, from outside: statements built to be too deep
//! (long operator chains, nested parentheses, calls, subqueries, set
//! operations, CASE) are refused with 54001 before they can overflow a
//! stack or take exponential time; wide but shallow statements parse.

use driftdb_engine::limits::CALL_NESTING_MAX;
use driftdb_engine::sql::{parse_statement, parse_statements};

#[test]
fn deep_expressions_are_refused_before_parsing() {
    let terms = vec!["1"; 100_000].join("+");
    let err = parse_statement(&format!("SELECT {terms}")).unwrap_err();
    assert_eq!(err.sqlstate(), "54001", "{err}");
    let nested = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let err = parse_statement(&nested).unwrap_err();
    assert_eq!(err.sqlstate(), "54001", "{err}");
    let subqueries = format!(
        "SELECT {}1{}",
        "(SELECT ".repeat(10_000),
        ")".repeat(10_000)
    );
    let err = parse_statement(&subqueries).unwrap_err();
    assert_eq!(err.sqlstate(), "54001", "{err}");
    // Set operations chain across SELECT clauses: each is a plan level.
    let unions = |n: usize| vec!["SELECT a, b FROM t WHERE a = 1"; n].join(" UNION ALL ");
    parse_statement(&unions(1_000)).unwrap();
    let err = parse_statement(&unions(1_100)).unwrap_err();
    assert_eq!(err.sqlstate(), "54001", "{err}");
    // Separate statements and closed parentheses start afresh.
    parse_statements(&format!("{}; {}", unions(1_000), unions(1_000))).unwrap();
    parse_statement(&format!(
        "SELECT * FROM ({}) AS x, ({}) AS y",
        unions(1_000),
        unions(20)
    ))
    .unwrap();
}

#[test]
fn function_calls_and_subqueries_nest_at_most_sixteen_deep() {
    let calls = |n: usize| format!("SELECT {}1{}", "abs(".repeat(n), ")".repeat(n));
    let subqueries = |n: usize| format!("SELECT {}1{}", "(SELECT ".repeat(n), ")".repeat(n));
    for n in [1, CALL_NESTING_MAX] {
        parse_statement(&calls(n)).unwrap();
        parse_statement(&subqueries(n)).unwrap();
    }
    for statement in [
        calls(CALL_NESTING_MAX + 1),
        subqueries(CALL_NESTING_MAX + 1),
    ] {
        let err = parse_statement(&statement).unwrap_err();
        assert_eq!(err.sqlstate(), "54001", "{err}");
        assert!(
            err.to_string().contains("function calls and subqueries"),
            "{err}"
        );
    }
    // Side by side is not nested; plain parentheses are not calls.
    let wide = vec!["abs(abs(abs(1)))"; 200].join(" + ");
    parse_statement(&format!("SELECT {wide}")).unwrap();
    parse_statement(&format!("SELECT {}1{}", "(".repeat(40), ")".repeat(40))).unwrap();
}

/// Found by fuzzing: operators the depth check did not count (`IN (…)`,
/// `~~`, `#`, `AT TIME ZONE`) overflowed the stack thousands deep, and
/// nested keywords that fail (`CAST(`, `ARRAY[`) made the parse take
/// exponential time.
#[test]
fn every_chained_operator_counts_and_failing_nesting_stays_linear() {
    for (first, then) in [
        ("1", " IN (1)"),
        ("'a'", " ~~ 'a'"),
        ("'a'", " !~ 'a'"),
        ("1", " # 1"),
        ("1", " @> 1"),
        ("now()", " AT TIME ZONE 'UTC'"),
        ("'a'", " COLLATE \"C\""),
        ("1", " UNION ALL SELECT 1"),
    ] {
        let sql = format!("SELECT {first}{}", then.repeat(5_000));
        let err = parse_statement(&sql).unwrap_err();
        assert_eq!(err.sqlstate(), "54001", "{then}: {err}");
    }
    // Within the call limit, a failing statement still doubles the parse
    // work per `CAST(` level: 2^15 readings of 800 terms, refused once the
    // budget is spent (it ran for minutes before).
    let failing = format!(
        "SELECT {}{}1 AS{}",
        "CAST(".repeat(15),
        "1 + ".repeat(800),
        " AS BIGINT)".repeat(15)
    );
    let err = parse_statement(&failing).unwrap_err();
    assert_eq!(err.sqlstate(), "54001", "{err}");
    assert!(err.to_string().contains("steps"), "{err}");
    // CASE nests as deep as the parser follows, no deeper; a deep nest
    // with one WHEN missing took 35 s to refuse before.
    let cases = |n: usize| {
        format!(
            "SELECT {}1{}",
            "CASE WHEN true THEN ".repeat(n),
            " END".repeat(n)
        )
    };
    parse_statement(&cases(20)).expect("20 nested CASEs");
    let unbalanced = cases(25_000).replacen("WHEN", "LIMIT -1", 1);
    let err = parse_statement(&unbalanced).unwrap_err();
    assert_eq!(err.sqlstate(), "54001", "{err}");
    let unions = format!("SELECT 1{}", " UNION ALL SELECT 1".repeat(500));
    parse_statement(&unions).expect("500 set operations are within the limit");
}

#[test]
fn wide_statements_are_not_deep() {
    let columns = vec!["a + 1"; 1_664].join(", ");
    parse_statement(&format!("SELECT {columns} FROM t")).unwrap();
    // Wider than PostgreSQL's 1,664 entries is its 54011, not 54001.
    let columns = vec!["a + 1"; 5_000].join(", ");
    let err = parse_statement(&format!("SELECT {columns} FROM t")).unwrap_err();
    assert_eq!(err.sqlstate(), "54011", "{err}");
    let union = format!("SELECT 1 UNION ALL SELECT {columns}");
    assert_eq!(parse_statement(&union).unwrap_err().sqlstate(), "54011");
    let list = (0..50_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    parse_statement(&format!("SELECT * FROM t WHERE a IN ({list})")).unwrap();
}

/// Comparisons joined by AND or OR nest one level per connective, not two:
/// a WHERE clause of 1,000 ANDed comparisons plans and runs (PostgreSQL
/// takes it), twice that is refused.
#[test]
fn long_and_chains_of_comparisons_run() {
    let where_clause = |n: usize| {
        (0..n)
            .map(|i| format!("a <> {}", i + 10))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let err =
        parse_statement(&format!("SELECT * FROM t WHERE {}", where_clause(2_000))).unwrap_err();
    assert_eq!(err.sqlstate(), "54001", "{err}");
    let sql = format!("SELECT count(*) FROM t WHERE {}", where_clause(1_000));
    let counted = std::thread::Builder::new()
        .stack_size(driftdb_engine::limits::STATEMENT_THREAD_STACK_BYTES)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let db = driftdb_engine::Database::open("memory://")
                    .await
                    .expect("open");
                let mut session = driftdb_engine::Session::new(&db);
                session
                    .execute("CREATE TABLE t (a INT); INSERT INTO t VALUES (1), (2), (10), (500)")
                    .await
                    .expect("setup");
                let result = session.execute_one(&sql).await.expect("1,000 ANDs");
                use arrow::array::AsArray;
                result.batches[0]
                    .column(0)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .value(0)
            })
        })
        .expect("thread")
        .join()
        .expect("no overflow");
    assert_eq!(counted, 2, "1 and 2 differ from every 10..=1009");
}

/// Operators that bind tighter than AND are counted in full, also when
/// XOR, `BETWEEN … AND` or a CASE sits between them: each of these builds
/// a chain thousands deep that the parser does not recurse for.
#[test]
fn chains_broken_by_xor_between_or_case_are_still_counted() {
    let chain = |unit: &str| format!("SELECT 1{}", unit.repeat(100));
    for unit in [
        &format!("{} XOR 1", " = 1".repeat(100)),
        &format!("{} BETWEEN 0 AND 1", " = 1".repeat(100)),
        " + CASE WHEN 1 = 1 THEN 1 END".repeat(20).as_str(),
        &format!("{} IS DISTINCT FROM 1", " = 1".repeat(100)),
    ] {
        let err = parse_statement(&chain(unit)).unwrap_err();
        assert_eq!(err.sqlstate(), "54001", "{err}");
    }
    // A CASE closes what it opened: many side by side are shallow.
    let cases = vec!["CASE WHEN a = 1 THEN 1 ELSE 2 END"; 500].join(", ");
    parse_statement(&format!("SELECT {cases} FROM t")).unwrap();
}

/// Prefix operators in a row are one parser level each: more than the
/// parser follows is 54001 before parsing (1,017 NOTs made it retry for
/// longer than 10 s), a few parse.
#[test]
fn long_runs_of_prefix_operators_are_refused_before_parsing() {
    parse_statement(&format!("SELECT {}true", "NOT ".repeat(10))).unwrap();
    parse_statement("SELECT 1 - -1, - - 2").unwrap();
    for statement in [
        format!("SELECT {}true", "NOT ".repeat(1_017)),
        format!("SELECT {}1", "- ".repeat(100)),
    ] {
        let started = std::time::Instant::now();
        let err = parse_statement(&statement).unwrap_err();
        assert_eq!(err.sqlstate(), "54001", "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
