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
