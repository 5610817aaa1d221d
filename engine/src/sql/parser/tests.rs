use super::*;

fn one(sql: &str) -> ParsedStatement {
    parse_statement(sql).unwrap()
}

fn sql_of(parsed: &ParsedStatement) -> &Statement {
    parsed.sql().expect("a sqlparser statement")
}

#[test]
fn quoted_strings_stay_one_literal() {
    let parsed = one("DELETE FROM users WHERE name = 'nobody'' OR ''a''=''a'");
    let Statement::Delete(delete) = sql_of(&parsed) else {
        panic!("not a delete");
    };
    let Some(ast::Expr::BinaryOp { right, op, .. }) = &delete.selection else {
        panic!("selection is not one comparison: {:?}", delete.selection);
    };
    assert_eq!(*op, ast::BinaryOperator::Eq);
    let ast::Expr::Value(value) = right.as_ref() else {
        panic!("right side is not a literal");
    };
    assert_eq!(
        value.value,
        ast::Value::SingleQuotedString("nobody' OR 'a'='a".into())
    );
}

#[test]
fn history_clauses_are_keyed_by_their_table() {
    let parsed = one(
        "SELECT * FROM t FOR SYSTEM_TIME BETWEEN 2 AND 5 AS h JOIN u FOR SYSTEM_TIME ALL ON true, v",
    );
    assert_eq!(parsed.history.clauses.len(), 2);
    let Statement::Query(query) = sql_of(&parsed) else {
        panic!("not a query");
    };
    let ast::SetExpr::Select(select) = query.body.as_ref() else {
        panic!("not a select");
    };
    let table_name = |factor: &TableFactor| match factor {
        TableFactor::Table { name, .. } => name.clone(),
        other => panic!("not a table: {other}"),
    };
    let t = table_name(&select.from[0].relation);
    let u = table_name(&select.from[0].joins[0].relation);
    let v = table_name(&select.from[1].relation);
    let between = parsed.history.for_table(&t).unwrap();
    assert_eq!(between.kind, HistoryKind::Between);
    assert_eq!(between.from.as_ref().unwrap().to_string(), "2");
    assert_eq!(between.to.as_ref().unwrap().to_string(), "5");
    assert_eq!(parsed.history.for_table(&u).unwrap().kind, HistoryKind::All);
    assert!(parsed.history.for_table(&v).is_none());
}

#[test]
fn history_bounds_are_whole_expressions() {
    let parsed = one(
        "SELECT * FROM t FOR SYSTEM_TIME FROM TIMESTAMP '2026-01-01' TO now() - INTERVAL '1 day' WHERE x = 1",
    );
    let clause = &parsed.history.clauses[0].1;
    assert_eq!(clause.kind, HistoryKind::FromTo);
    assert_eq!(
        clause.to.as_ref().unwrap().to_string(),
        "now() - INTERVAL '1 day'"
    );
    let Statement::Query(query) = sql_of(&parsed) else {
        panic!("not a query");
    };
    let ast::SetExpr::Select(select) = query.body.as_ref() else {
        panic!("not a select");
    };
    assert_eq!(select.selection.as_ref().unwrap().to_string(), "x = 1");
}

#[test]
fn history_keywords_inside_strings_are_data() {
    let parsed = one("SELECT 'FOR SYSTEM_TIME ALL' FROM t");
    assert!(parsed.history.is_empty());
}

#[test]
fn history_clause_must_follow_a_table() {
    let err = parse_statement("SELECT * FROM (SELECT 1) AS x FOR SYSTEM_TIME ALL").unwrap_err();
    assert_eq!(err.sqlstate(), "42601", "{err}");
    let err = parse_statement("SELECT 1 FOR SYSTEM_TIME ALL").unwrap_err();
    assert_eq!(err.sqlstate(), "42601", "{err}");
}

#[test]
fn each_statement_keeps_its_own_text() {
    let statements = parse_statements("CREATE VIEW v AS SELECT 'a;b' AS x;\n  SELECT 2 ;").unwrap();
    assert_eq!(statements.len(), 2);
    assert_eq!(&*statements[0].text, "CREATE VIEW v AS SELECT 'a;b' AS x");
    assert_eq!(&*statements[1].text, "SELECT 2");
}

#[test]
fn statement_text_counts_characters_not_bytes() {
    let statements = parse_statements("SELECT 'é€'; SELECT 'ü'").unwrap();
    assert_eq!(&*statements[1].text, "SELECT 'ü'");
}

#[test]
fn alter_sequence_options_in_any_order() {
    let parsed = one("ALTER SEQUENCE IF EXISTS s CYCLE RESTART WITH 5 INCREMENT BY -2 NO MAXVALUE");
    let Body::AlterSequence(alter) = &parsed.body else {
        panic!("not ALTER SEQUENCE");
    };
    assert!(alter.if_exists);
    assert_eq!(alter.changes.increment, Some(-2));
    assert_eq!(alter.changes.restart, Some(Some(5)));
    assert_eq!(alter.changes.max, Some(None));
    assert_eq!(alter.changes.cycle, Some(true));
}

#[test]
fn create_sequence_options_in_any_order() {
    let parsed = one("CREATE SEQUENCE s START WITH 10 INCREMENT BY 5 AS INT OWNED BY NONE");
    let Statement::CreateSequence {
        sequence_options,
        data_type,
        owned_by,
        ..
    } = sql_of(&parsed)
    else {
        panic!("not CREATE SEQUENCE");
    };
    assert_eq!(sequence_options.len(), 2);
    assert!(data_type.is_some());
    assert!(owned_by.is_some());
}

#[test]
fn auto_increment_and_identity_options() {
    let parsed = one(
        "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, n BIGINT GENERATED ALWAYS AS IDENTITY (INCREMENT BY 2 START WITH 7))",
    );
    let Statement::CreateTable(create) = sql_of(&parsed) else {
        panic!("not CREATE TABLE");
    };
    let generated = |i: usize| {
        create.columns[i]
            .options
            .iter()
            .find_map(|o| match &o.option {
                ast::ColumnOption::Generated {
                    generated_as,
                    sequence_options,
                    ..
                } => Some((*generated_as, sequence_options.clone().unwrap_or_default())),
                _ => None,
            })
            .expect("an identity option")
    };
    assert_eq!(generated(0).0, ast::GeneratedAs::ByDefault);
    assert_eq!(generated(1).0, ast::GeneratedAs::Always);
    assert_eq!(generated(1).1.len(), 2);
}

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
    let columns = vec!["a + 1"; 5_000].join(", ");
    parse_statement(&format!("SELECT {columns} FROM t")).unwrap();
    let list = (0..50_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    parse_statement(&format!("SELECT * FROM t WHERE a IN ({list})")).unwrap();
}
