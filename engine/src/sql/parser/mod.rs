//! DriftDB's SQL parser: one pass from text to syntax trees.
//!
//! The text is tokenized once and every statement is parsed from those
//! tokens by sqlparser's PostgreSQL grammar ([`DriftDialect`]), with
//! DriftDB's additions parsed by our own functions over the same parser:
//!
//! | written | parsed into |
//! | --- | --- |
//! | `t FOR SYSTEM_TIME ALL / BETWEEN a AND b / FROM a TO b` | a [`HistoryClause`] keyed by where `t` is written ([`ParsedStatement::history`]) |
//! | `ALTER SEQUENCE …` (options in any order) | [`AlterSequence`] |
//! | `CREATE SEQUENCE …` (options in any order) | sqlparser's `Statement::CreateSequence` |
//! | `AUTO_INCREMENT`, `GENERATED … AS IDENTITY (options in any order)` | sqlparser's `ColumnOption::Generated` (in the dialect) |
//!
//! Nothing here or after it turns a tree back into SQL text: the planner
//! reads history clauses from [`HistoryClauses`], DML builds logical plans,
//! parameters are bound to plans as values. A statement keeps its own
//! source text only so `CREATE VIEW` can store what the user wrote.
//!
//! Statements too deeply nested to plan without exhausting the stack are
//! refused here with 54001 before any tree is built.

use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{self, ObjectName, SequenceOptions, Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::{Dialect, Precedence};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use super::dialect::DriftDialect;
use crate::error::{Error, Result};
use crate::limits::{
    CALL_NESTING_MAX, EXPRESSION_DEPTH_MAX, PARSE_STEPS_MIN, PARSE_STEPS_PER_TOKEN_MAX,
    SELECT_ITEMS_MAX, STATEMENT_NESTING_MAX,
};

/// One statement as DriftDB parsed it.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    pub body: Body,
    /// The statement's history clauses, by the table reference they follow.
    pub history: Arc<HistoryClauses>,
    /// The statement's own text, as written (for `CREATE VIEW`).
    pub text: Arc<str>,
    /// `INSERT … OVERRIDING SYSTEM VALUE | USER VALUE`.
    pub overriding: Option<Overriding>,
}

/// `INSERT … OVERRIDING SYSTEM VALUE` (explicit values for `GENERATED
/// ALWAYS` identity columns are taken) or `OVERRIDING USER VALUE` (values
/// given for identity columns are ignored). sqlparser 0.62 has no node for
/// it, so the words are taken out before parsing, like history clauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overriding {
    System,
    User,
}

/// What a statement is.
#[derive(Debug, Clone)]
pub enum Body {
    /// Anything sqlparser has a node for.
    Sql(Box<Statement>),
    /// `ALTER SEQUENCE` (sqlparser 0.62 has no node for it).
    AlterSequence(AlterSequence),
    /// `COMPACT TABLE name`: rewrite the table's files into a current and a
    /// history tier now (see `db::compact`).
    Compact(Box<ast::ObjectName>),
    /// `RESTORE TABLE name TO {VERSION | TIMESTAMP} AS OF point`.
    RestoreTable(Box<crate::sql::restore::RestoreTable>),
    /// `VACUUM [TABLE] name [RETAIN n {DAYS | HOURS}]`.
    Vacuum(Box<Vacuum>),
    /// `CREATE TAG`, `DROP TAG`, `CREATE TABLE … CLONE` (see `sql::versions`).
    Version(Box<crate::sql::versions::VersionStatement>),
}

/// `[VERSION | TIMESTAMP] AS OF expr`: a point in history. `TIMESTAMP`
/// reads `expr` as a time; otherwise a whole number is a version, a string
/// naming a tag that tag's version, anything else a time.
#[derive(Debug, Clone)]
pub struct AsOf {
    pub by_time: bool,
    pub expr: ast::Expr,
}

/// A parsed `VACUUM`: remove versions retired before the retention window.
#[derive(Debug, Clone)]
pub struct Vacuum {
    pub name: ast::ObjectName,
    /// `RETAIN n {DAYS | HOURS}`, in µs (None: the table's `history_retention`).
    pub retain_us: Option<i64>,
}

impl ParsedStatement {
    /// The sqlparser tree, when the statement has one.
    pub fn sql(&self) -> Option<&Statement> {
        match &self.body {
            Body::Sql(statement) => Some(statement),
            _ => None,
        }
    }

    /// A statement with no DriftDB additions (for callers that build trees).
    pub fn from_statement(statement: Statement) -> Self {
        Self {
            body: Body::Sql(Box::new(statement)),
            history: Arc::default(),
            text: Arc::from(""),
            overriding: None,
        }
    }
}

/// `FOR SYSTEM_TIME ALL | BETWEEN a AND b | FROM a TO b` after a table name.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryClause {
    pub kind: HistoryKind,
    pub from: Option<ast::Expr>,
    pub to: Option<ast::Expr>,
}

/// Which history clause: SQL:2011's three forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    All,
    /// Both ends inclusive.
    Between,
    /// End exclusive.
    FromTo,
}

/// The history clauses of one statement, each keyed by where the last part
/// of its table name starts in the text (a position only that table
/// reference has).
#[derive(Debug, Clone, Default)]
pub struct HistoryClauses {
    clauses: Vec<(Location, HistoryClause)>,
    /// Every CTE of the statement: its name (normalized as the planner
    /// normalizes identifiers) and the text of the query it belongs to.
    ctes: Vec<CteScope>,
}

/// Where a CTE name means the CTE rather than a table: the query whose
/// `WITH` defines it, from `start` to `end`.
#[derive(Debug, Clone)]
struct CteScope {
    name: String,
    start: Location,
    end: Location,
}

impl HistoryClauses {
    /// The clause following the table reference named `name`, if any.
    pub fn for_table(&self, name: &ObjectName) -> Option<&HistoryClause> {
        let at = name_location(name)?;
        self.clauses
            .iter()
            .find(|(location, _)| *location == at)
            .map(|(_, clause)| clause)
    }

    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// The bounds of every clause, in the order the clauses were written.
    pub fn bounds(&self) -> impl Iterator<Item = &ast::Expr> {
        self.clauses
            .iter()
            .flat_map(|(_, clause)| [clause.from.as_ref(), clause.to.as_ref()])
            .flatten()
    }

    /// [`HistoryClauses::bounds`], to change them.
    pub fn bounds_mut(&mut self) -> impl Iterator<Item = &mut ast::Expr> {
        self.clauses
            .iter_mut()
            .flat_map(|(_, clause)| [clause.from.as_mut(), clause.to.as_mut()])
            .flatten()
    }

    /// Whether the table reference `name` is written where a CTE of that
    /// name is in scope (the CTE wins over a table, as in PostgreSQL).
    pub fn names_cte(&self, name: &ObjectName) -> bool {
        let [part] = name.0.as_slice() else {
            return false;
        };
        let Some(ident) = part.as_ident() else {
            return false;
        };
        let normalized = normalize(ident);
        let at = ident.span.start;
        self.ctes
            .iter()
            .any(|c| c.name == normalized && c.start <= at && at <= c.end)
    }
}

/// An identifier as the planner resolves it: unquoted ones in lower case.
fn normalize(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The CTEs `statement` defines, each with the query it is visible in.
fn cte_scopes(statement: &Statement) -> Vec<CteScope> {
    struct Scopes(Vec<CteScope>);
    impl Visitor for Scopes {
        type Break = ();
        fn pre_visit_query(&mut self, query: &ast::Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                let span = sqlparser::ast::Spanned::span(query);
                for cte in &with.cte_tables {
                    self.0.push(CteScope {
                        name: normalize(&cte.alias.name),
                        start: span.start,
                        end: span.end,
                    });
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut scopes = Scopes(Vec::new());
    let _ = statement.visit(&mut scopes);
    scopes.0
}

pub(crate) fn name_location(name: &ObjectName) -> Option<Location> {
    let ident = name.0.last()?.as_ident()?;
    Some(ident.span.start).filter(|l| l.line > 0)
}

/// `ALTER SEQUENCE [IF EXISTS] name option…`.
#[derive(Debug, Clone)]
pub struct AlterSequence {
    pub if_exists: bool,
    pub name: ObjectName,
    pub changes: SequenceChanges,
}

/// What an `ALTER SEQUENCE` asks for, on top of the current definition.
#[derive(Debug, Clone, Default)]
pub struct SequenceChanges {
    pub rename: Option<ObjectName>,
    /// `Some(None)`: `OWNED BY NONE`.
    pub owned_by: Option<Option<ObjectName>>,
    pub data_type: Option<ast::DataType>,
    pub increment: Option<i64>,
    /// `Some(None)`: `NO MINVALUE` (back to the default).
    pub min: Option<Option<i64>>,
    pub max: Option<Option<i64>>,
    pub start: Option<i64>,
    /// `Some(None)`: `RESTART` (at the start value).
    pub restart: Option<Option<i64>>,
    pub cache: Option<i64>,
    pub cycle: Option<bool>,
}

/// The identifiers a stored expression (a CHECK, a DEFAULT) names, folded
/// as identifiers are (unquoted to lower case). Empty if it does not tokenize.
pub fn identifiers_in(sql: &str) -> Vec<String> {
    words_in(sql)
        .into_iter()
        .filter_map(|token| match token {
            Token::Word(word) => Some(match word.quote_style {
                Some(_) => word.value,
                None => word.value.to_lowercase(),
            }),
            _ => None,
        })
        .collect()
}

/// The string literals a stored expression passes straight to function
/// `function` (`nextval('s')` gives `s`). Empty if it does not tokenize.
pub fn function_string_args(sql: &str, function: &str) -> Vec<String> {
    let tokens = words_in(sql);
    tokens
        .windows(3)
        .filter_map(|w| match w {
            [
                Token::Word(name),
                Token::LParen,
                Token::SingleQuotedString(arg),
            ] if name.quote_style.is_none() && name.value.eq_ignore_ascii_case(function) => {
                Some(arg.clone())
            }
            _ => None,
        })
        .collect()
}

/// The tokens of `sql` without whitespace (empty if it does not tokenize).
fn words_in(sql: &str) -> Vec<Token> {
    let dialect = DriftDialect::default();
    let tokens = Tokenizer::new(&dialect, sql).tokenize().unwrap_or_default();
    tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect()
}

/// Parse a script into statements.
pub fn parse_statements(sql: &str) -> Result<Vec<ParsedStatement>> {
    let dialect = DriftDialect::default();
    let tokens = Tokenizer::new(&dialect, sql).tokenize_with_location()?;
    check_complexity(&tokens)?;
    dialect.limit_prefix_steps(prefix_steps_max(tokens.len()));
    let (tokens, clauses) = take_history_clauses(&dialect, tokens)?;
    let (tokens, overridings) = take_overriding(tokens);
    let tokens = version_strings(tokens);
    let lines = LineStarts::new(sql);
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(STATEMENT_NESTING_MAX)
        .with_tokens_with_locations(tokens);
    let mut statements = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token_ref().token == Token::EOF {
            break;
        }
        let start = parser.peek_token_ref().span.start;
        let mut body = parse_body(&mut parser).map_err(|e| parse_error(&dialect, e))?;
        let end = parser.get_current_token().span.end;
        let next = parser.peek_token();
        if !matches!(next.token, Token::SemiColon | Token::EOF) {
            return Err(Error::Syntax {
                message: format!(
                    "expected end of statement, found {}{}",
                    next, next.span.start
                ),
            });
        }
        let overriding = within(&overridings, start, end);
        if overriding.is_some()
            && !matches!(&body, Body::Sql(s) if matches!(**s, Statement::Insert(_)))
        {
            return Err(Error::Syntax {
                message: "OVERRIDING … VALUE belongs to an INSERT".into(),
            });
        }
        let mut history = clauses_within(&clauses, start, end);
        if let Body::Sql(statement) = &mut body {
            check_select_widths(statement)?;
            check_history_attached(statement, &history)?;
            history.ctes = cte_scopes(statement);
            typed_literals(statement);
            set_returning::set_returning_in_select_lists(statement)?;
            set_returning::set_returning_in_from(statement)?;
            cte_columns::cte_column_lists(statement);
        }
        statements.push(ParsedStatement {
            body,
            history: Arc::new(history),
            text: Arc::from(lines.slice(sql, start, end)),
            overriding,
        });
    }
    if let Some((at, _)) = clauses.iter().find(|(at, _)| {
        !statements
            .iter()
            .any(|s| s.history.clauses.iter().any(|(l, _)| l == at))
    }) {
        return Err(misplaced_history(*at));
    }
    Ok(statements)
}

/// A select list longer than [`SELECT_ITEMS_MAX`] is 54011, anywhere in
/// the statement.
fn check_select_widths(statement: &ast::Statement) -> Result<()> {
    struct Widths;
    impl Visitor for Widths {
        type Break = ();
        fn pre_visit_query(&mut self, query: &ast::Query) -> ControlFlow<()> {
            match widest(&query.body) > SELECT_ITEMS_MAX {
                true => ControlFlow::Break(()),
                false => ControlFlow::Continue(()),
            }
        }
    }
    /// The longest select list of a set operation's branches.
    fn widest(body: &ast::SetExpr) -> usize {
        match body {
            ast::SetExpr::Select(select) => select.projection.len(),
            ast::SetExpr::SetOperation { left, right, .. } => widest(left).max(widest(right)),
            _ => 0,
        }
    }
    match statement.visit(&mut Widths) {
        ControlFlow::Break(()) => Err(Error::TooManyColumns {
            max: SELECT_ITEMS_MAX,
        }),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Literals typed as PostgreSQL types them, where DataFusion would not,
/// in one walk over the statement's expressions:
/// - `NULL || NULL` is a text NULL (an untyped NULL concatenated with one
///   is text); DataFusion finds no type for it, so the left NULL becomes
///   `CAST(NULL AS TEXT)`.
/// - `CAST(12345678901234567.55 AS NUMERIC(30,2))` keeps every digit
///   written: DataFusion reads a number with a fraction as a binary float
///   (about 17 digits), so a number cast to an exact type is cast from
///   its text instead.
fn typed_literals(statement: &mut ast::Statement) {
    let is_null = |e: &ast::Expr| matches!(e, ast::Expr::Value(v) if v.value == ast::Value::Null);
    let _ = ast::visit_expressions_mut(statement, |expr| {
        match expr {
            ast::Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::StringConcat,
                right,
            } if is_null(left) && is_null(right) => {
                let null = std::mem::replace(left.as_mut(), ast::Expr::value(ast::Value::Null));
                **left = ast::Expr::Cast {
                    kind: ast::CastKind::Cast,
                    expr: Box::new(null),
                    data_type: ast::DataType::Text,
                    array: false,
                    format: None,
                };
            }
            ast::Expr::Cast {
                expr: inner,
                data_type:
                    ast::DataType::Decimal(_) | ast::DataType::Numeric(_) | ast::DataType::Dec(_),
                ..
            } => {
                if let Some(text) = number_text(inner) {
                    **inner = ast::Expr::value(ast::Value::SingleQuotedString(text));
                }
            }
            // `ARRAY[a.x]` does not see outer columns when DataFusion plans
            // it (a lateral subquery's); the function it stands for does.
            ast::Expr::Array(array) if !array.elem.is_empty() => {
                let elems = std::mem::take(&mut array.elem);
                *expr = set_returning::call("make_array", elems);
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The text of a number literal (with its sign), if `expr` is one.
pub(crate) fn number_text(expr: &ast::Expr) -> Option<String> {
    match expr {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(text, _) => Some(text.clone()),
            _ => None,
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => number_text(expr).map(|t| format!("-{t}")),
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Plus,
            expr,
        } => number_text(expr),
        ast::Expr::Nested(inner) => number_text(inner),
        _ => None,
    }
}

/// Parse exactly one statement.
pub fn parse_statement(sql: &str) -> Result<ParsedStatement> {
    let mut statements = parse_statements(sql)?;
    match (statements.pop(), statements.is_empty()) {
        (Some(statement), true) => Ok(statement),
        _ => Err(Error::Syntax {
            message: "expected exactly one statement".into(),
        }),
    }
}

/// A view's stored text parsed back: its query with its history clauses.
/// Views store the `CREATE VIEW` statement as written (older databases
/// stored the bare query; both are read).
pub fn parse_view_query(sql: &str) -> Result<ViewQuery> {
    let statement = parse_statement(sql)?;
    let history = statement.history.clone();
    let corrupt = || Error::Corrupt {
        detail: format!("stored view definition is not a query: {sql}"),
    };
    let Body::Sql(statement) = statement.body else {
        return Err(corrupt());
    };
    match *statement {
        Statement::Query(query) => Ok(ViewQuery {
            query: *query,
            columns: Vec::new(),
            history,
        }),
        Statement::CreateView(view) => Ok(ViewQuery {
            query: *view.query,
            columns: view.columns.into_iter().map(|c| c.name).collect(),
            history,
        }),
        _ => Err(corrupt()),
    }
}

/// The query text of a stored view definition (what follows the first
/// `AS` of `CREATE VIEW … AS`), as `information_schema.views` shows it.
pub fn view_query_text(sql: &str) -> &str {
    let dialect = DriftDialect::default();
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return sql;
    };
    let mut words = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)));
    let starts_create = matches!(words.next(), Some(t) if matches!(&t.token, Token::Word(w) if w.keyword == Keyword::CREATE));
    let as_keyword = words.find(|t| matches!(&t.token, Token::Word(w) if w.keyword == Keyword::AS));
    match (starts_create, as_keyword) {
        (true, Some(token)) => {
            let from = LineStarts::new(sql).offset(sql, token.span.end);
            sql[from..].trim()
        }
        _ => sql,
    }
}

/// A stored view definition, parsed.
pub struct ViewQuery {
    pub query: ast::Query,
    /// `CREATE VIEW v (a, b) AS …`: the names its first columns take.
    pub columns: Vec<ast::Ident>,
    pub history: Arc<HistoryClauses>,
}

/// `SELECT * FROM "name"`, as a query.
pub fn select_all_from(name: &str) -> Result<ast::Query> {
    let mut query = match parse_statement("SELECT * FROM t")?.body {
        Body::Sql(statement) => match *statement {
            Statement::Query(query) => *query,
            _ => return Err(Error::internal("SELECT is not a query")),
        },
        _ => return Err(Error::internal("SELECT is not a query")),
    };
    if let ast::SetExpr::Select(select) = query.body.as_mut()
        && let Some(TableFactor::Table { name: table, .. }) =
            select.from.first_mut().map(|f| &mut f.relation)
    {
        *table = ObjectName::from(vec![ast::Ident::with_quote('"', name)]);
    }
    Ok(query)
}

/// The parse steps a statement of `tokens` tokens may take.
fn prefix_steps_max(tokens: usize) -> usize {
    PARSE_STEPS_PER_TOKEN_MAX
        .saturating_mul(tokens)
        .saturating_add(PARSE_STEPS_MIN)
}

fn parse_error(dialect: &DriftDialect, err: ParserError) -> Error {
    if dialect.out_of_steps() {
        return too_complex(format!(
            "statement too complex: parsing it took more than {PARSE_STEPS_MIN} steps plus \
             {PARSE_STEPS_PER_TOKEN_MAX} a token (each level of nesting can double the work)"
        ));
    }
    match err {
        ParserError::RecursionLimitExceeded => too_complex(format!(
            "statement too complex: nested more than {STATEMENT_NESTING_MAX} levels deep"
        )),
        other => other.into(),
    }
}

fn too_complex(message: String) -> Error {
    Error::TooComplex { message }
}

fn parse_body(parser: &mut Parser<'_>) -> std::result::Result<Body, ParserError> {
    if parser.parse_keywords(&[Keyword::ALTER, Keyword::SEQUENCE]) {
        return parse_alter_sequence(parser).map(Body::AlterSequence);
    }
    if is_word(&parser.peek_token_ref().token, "COMPACT") {
        parser.next_token();
        parser.expect_keyword(Keyword::TABLE)?;
        return parser
            .parse_object_name(false)
            .map(|n| Body::Compact(Box::new(n)));
    }
    if parser.parse_keyword(Keyword::VACUUM) {
        return parse_vacuum(parser).map(|v| Body::Vacuum(Box::new(v)));
    }
    if is_word(&parser.peek_token_ref().token, "RESTORE") {
        parser.next_token();
        return parse_restore_table(parser).map(|r| Body::RestoreTable(Box::new(r)));
    }
    if let Some(version) = parse_version_statement(parser)? {
        return Ok(Body::Version(Box::new(version)));
    }
    if parser.peek_keyword(Keyword::CREATE) {
        let temporary = matches!(
            &parser.peek_nth_token_ref(1).token,
            Token::Word(w) if matches!(w.keyword, Keyword::TEMPORARY | Keyword::TEMP)
        );
        let at = if temporary { 2 } else { 1 };
        if matches!(&parser.peek_nth_token_ref(at).token, Token::Word(w) if w.keyword == Keyword::SEQUENCE)
        {
            for _ in 0..=at {
                parser.next_token();
            }
            return parse_create_sequence(parser, temporary).map(|s| Body::Sql(Box::new(s)));
        }
    }
    parser.parse_statement().map(|s| Body::Sql(Box::new(s)))
}

/// `TABLE name TO {VERSION | TIMESTAMP} AS OF point` after `RESTORE`.
fn parse_restore_table(
    parser: &mut Parser<'_>,
) -> std::result::Result<crate::sql::restore::RestoreTable, ParserError> {
    parser.expect_keyword(Keyword::TABLE)?;
    let name = parser.parse_object_name(false)?;
    parser.expect_keyword(Keyword::TO)?;
    if parser
        .peek_one_of_keywords(&[Keyword::VERSION, Keyword::TIMESTAMP])
        .is_none()
    {
        return parser.expected("VERSION AS OF or TIMESTAMP AS OF", parser.peek_token());
    }
    let point =
        parse_as_of(parser)?.ok_or_else(|| ParserError::ParserError("expected AS OF".into()))?;
    Ok(crate::sql::restore::RestoreTable { name, point })
}

/// `[VERSION | TIMESTAMP] AS OF expr`, if next.
fn parse_as_of(parser: &mut Parser<'_>) -> std::result::Result<Option<AsOf>, ParserError> {
    let by_time = match parser.parse_one_of_keywords(&[Keyword::VERSION, Keyword::TIMESTAMP]) {
        Some(Keyword::TIMESTAMP) => true,
        Some(_) => false,
        None if parser.peek_keyword(Keyword::AS) => false,
        None => return Ok(None),
    };
    parser.expect_keywords(&[Keyword::AS, Keyword::OF])?;
    let expr = parser.parse_expr()?;
    Ok(Some(AsOf { by_time, expr }))
}

/// `CREATE TAG [IF NOT EXISTS] name [AS OF …]`, `DROP TAG [IF EXISTS]
/// name`, `CREATE TABLE [IF NOT EXISTS] name CLONE source [AS OF …]`, if next.
fn parse_version_statement(
    parser: &mut Parser<'_>,
) -> std::result::Result<Option<crate::sql::versions::VersionStatement>, ParserError> {
    use crate::sql::versions::VersionStatement;
    let tag_after = |parser: &Parser<'_>, keyword| {
        parser.peek_keyword(keyword) && is_word(&parser.peek_nth_token_ref(1).token, "TAG")
    };
    if tag_after(parser, Keyword::CREATE) {
        parser.next_token();
        parser.next_token();
        let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = parser.parse_object_name(false)?;
        let point = parse_as_of(parser)?;
        return Ok(Some(VersionStatement::CreateTag {
            name,
            if_not_exists,
            point,
        }));
    }
    if tag_after(parser, Keyword::DROP) {
        parser.next_token();
        parser.next_token();
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = parser.parse_object_name(false)?;
        return Ok(Some(VersionStatement::DropTag { name, if_exists }));
    }
    if !parser.peek_keyword(Keyword::CREATE) {
        return Ok(None);
    }
    let head = parser.maybe_parse(|p| {
        p.expect_keywords(&[Keyword::CREATE, Keyword::TABLE])?;
        let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = p.parse_object_name(false)?;
        match is_word(&p.peek_token_ref().token, "CLONE") {
            true => Ok((name, if_not_exists)),
            false => p.expected("CLONE", p.peek_token()),
        }
    })?;
    let Some((name, if_not_exists)) = head else {
        return Ok(None);
    };
    parser.next_token();
    let source = parser.parse_object_name(false)?;
    let point = parse_as_of(parser)?;
    Ok(Some(VersionStatement::Clone {
        name,
        if_not_exists,
        source,
        point,
    }))
}

/// `[TABLE] name [RETAIN n {DAYS | HOURS}]` after `VACUUM`.
fn parse_vacuum(parser: &mut Parser<'_>) -> std::result::Result<Vacuum, ParserError> {
    let _optional = parser.parse_keyword(Keyword::TABLE);
    let name = parser.parse_object_name(false)?;
    let retain_us = match parser.parse_keyword(Keyword::RETAIN) {
        false => None,
        true => {
            let count = parser.parse_literal_uint()?;
            let unit: u64 = match parser.expect_one_of_keywords(&[Keyword::DAYS, Keyword::HOURS])? {
                Keyword::DAYS => 86_400_000_000,
                _ => 3_600_000_000,
            };
            let us = count
                .checked_mul(unit)
                .and_then(|us| i64::try_from(us).ok());
            Some(us.ok_or_else(|| ParserError::ParserError("RETAIN: too long a window".into()))?)
        }
    };
    Ok(Vacuum { name, retain_us })
}

/// Whether `token` is the unquoted word `word` (a keyword sqlparser does not know).
fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// `CREATE [TEMP] SEQUENCE [IF NOT EXISTS] name option…`, options in any
/// order as PostgreSQL takes them.
fn parse_create_sequence(
    parser: &mut Parser<'_>,
    temporary: bool,
) -> std::result::Result<Statement, ParserError> {
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser.parse_object_name(false)?;
    let changes = parse_sequence_options(parser, SequenceClause::Create)?;
    let mut data_type = None;
    let mut owned_by = None;
    let options = create_options(&changes, &mut data_type, &mut owned_by);
    Ok(Statement::CreateSequence {
        temporary,
        if_not_exists,
        name,
        data_type,
        sequence_options: options,
        owned_by,
    })
}

/// sqlparser's option list for the options `changes` sets.
fn create_options(
    changes: &SequenceChanges,
    data_type: &mut Option<ast::DataType>,
    owned_by: &mut Option<ObjectName>,
) -> Vec<SequenceOptions> {
    let number = |n: i64| ast::Expr::value(ast::Value::Number(n.to_string(), false));
    let mut options = Vec::new();
    if let Some(increment) = changes.increment {
        options.push(SequenceOptions::IncrementBy(number(increment), true));
    }
    if let Some(min) = changes.min {
        options.push(SequenceOptions::MinValue(min.map(number)));
    }
    if let Some(max) = changes.max {
        options.push(SequenceOptions::MaxValue(max.map(number)));
    }
    if let Some(start) = changes.start {
        options.push(SequenceOptions::StartWith(number(start), true));
    }
    if let Some(cache) = changes.cache {
        options.push(SequenceOptions::Cache(number(cache)));
    }
    if let Some(cycle) = changes.cycle {
        // sqlparser marks `NO CYCLE` with true.
        options.push(SequenceOptions::Cycle(!cycle));
    }
    *data_type = changes.data_type.clone();
    *owned_by = match &changes.owned_by {
        Some(Some(owner)) => Some(owner.clone()),
        Some(None) => Some(ObjectName::from(vec![ast::Ident::new("NONE")])),
        None => None,
    };
    options
}

/// Identity column options: `GENERATED … AS IDENTITY ( option… )`.
pub(crate) fn parse_identity_options(
    parser: &mut Parser<'_>,
) -> std::result::Result<Vec<SequenceOptions>, ParserError> {
    if !parser.consume_token(&Token::LParen) {
        return Ok(Vec::new());
    }
    let changes = parse_sequence_options(parser, SequenceClause::Identity)?;
    parser.expect_token(&Token::RParen)?;
    Ok(create_options(&changes, &mut None, &mut None))
}

fn parse_alter_sequence(
    parser: &mut Parser<'_>,
) -> std::result::Result<AlterSequence, ParserError> {
    let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let name = parser.parse_object_name(false)?;
    let changes = parse_sequence_options(parser, SequenceClause::Alter)?;
    Ok(AlterSequence {
        if_exists,
        name,
        changes,
    })
}

/// Where sequence options are written (each takes a different subset).
#[derive(Clone, Copy, PartialEq, Eq)]
enum SequenceClause {
    Create,
    Alter,
    Identity,
}

/// Sequence options in any order, until one that is not an option.
fn parse_sequence_options(
    parser: &mut Parser<'_>,
    clause: SequenceClause,
) -> std::result::Result<SequenceChanges, ParserError> {
    let mut changes = SequenceChanges::default();
    loop {
        if clause == SequenceClause::Alter && parser.parse_keywords(&[Keyword::RENAME, Keyword::TO])
        {
            changes.rename = Some(parser.parse_object_name(false)?);
        } else if clause != SequenceClause::Identity
            && parser.parse_keywords(&[Keyword::OWNED, Keyword::BY])
        {
            changes.owned_by = Some(match parser.parse_keyword(Keyword::NONE) {
                true => None,
                false => Some(parser.parse_object_name(false)?),
            });
        } else if parser.parse_keyword(Keyword::AS) {
            changes.data_type = Some(parser.parse_data_type()?);
        } else if parser.parse_keyword(Keyword::INCREMENT) {
            let _optional_by = parser.parse_keyword(Keyword::BY);
            changes.increment = Some(signed_integer(parser)?);
        } else if parser.parse_keywords(&[Keyword::NO, Keyword::MINVALUE]) {
            changes.min = Some(None);
        } else if parser.parse_keywords(&[Keyword::NO, Keyword::MAXVALUE]) {
            changes.max = Some(None);
        } else if parser.parse_keywords(&[Keyword::NO, Keyword::CYCLE]) {
            changes.cycle = Some(false);
        } else if parser.parse_keyword(Keyword::MINVALUE) {
            changes.min = Some(Some(signed_integer(parser)?));
        } else if parser.parse_keyword(Keyword::MAXVALUE) {
            changes.max = Some(Some(signed_integer(parser)?));
        } else if parser.parse_keyword(Keyword::START) {
            let _optional_with = parser.parse_keyword(Keyword::WITH);
            changes.start = Some(signed_integer(parser)?);
        } else if clause == SequenceClause::Alter && parser.parse_keyword(Keyword::RESTART) {
            let with = parser.parse_keyword(Keyword::WITH);
            let number_next = matches!(
                parser.peek_token_ref().token,
                Token::Number(..) | Token::Minus | Token::Plus
            );
            changes.restart = Some(match with || number_next {
                true => Some(signed_integer(parser)?),
                false => None,
            });
        } else if parser.parse_keyword(Keyword::CACHE) {
            changes.cache = Some(signed_integer(parser)?);
        } else if parser.parse_keyword(Keyword::CYCLE) {
            changes.cycle = Some(true);
        } else {
            return Ok(changes);
        }
    }
}

fn signed_integer(parser: &mut Parser<'_>) -> std::result::Result<i64, ParserError> {
    let negative = parser.consume_token(&Token::Minus);
    if !negative {
        let _optional_plus = parser.consume_token(&Token::Plus);
    }
    let token = parser.next_token();
    let Token::Number(digits, _) = &token.token else {
        return parser.expected("an integer", token);
    };
    let text = match negative {
        true => format!("-{digits}"),
        false => digits.clone(),
    };
    text.parse::<i64>()
        .map_err(|_| ParserError::ParserError(format!("{text} is out of range for type bigint")))
}

/// Refuse, before parsing, a statement whose trees would nest deeper than
/// the parser and planner can follow: more than [`EXPRESSION_DEPTH_MAX`]
/// levels of parentheses, `CASE`s and operators chained at one level (see
/// [`Level::operator_depth`]), or function calls and subqueries nested
/// more than [`CALL_NESTING_MAX`] deep (planning time doubles with each
/// such level).
fn check_complexity(tokens: &[TokenWithSpan]) -> Result<()> {
    let mut nesting = Nesting::default();
    // Open `CASE … END`s: each costs the parser two levels of its recursion.
    let mut cases = 0usize;
    // Prefix operators in a row (`NOT NOT …`, `- - …`): one level each.
    let mut prefixes = 0usize;
    let mut previous: Option<&Token> = None;
    for token in tokens {
        if matches!(token.token, Token::Whitespace(_)) {
            continue;
        }
        let after = previous.replace(&token.token);
        prefixes = match is_prefix_operator(&token.token) {
            true => prefixes + 1,
            false => 0,
        };
        if prefixes > PREFIX_NESTING_MAX {
            return Err(too_complex(format!(
                "statement too complex: more than {PREFIX_NESTING_MAX} prefix operators (NOT, -, +) in a row{}",
                token.span.start
            )));
        }
        match &token.token {
            Token::Word(w) if w.keyword == Keyword::CASE => cases += 1,
            Token::Word(w) if w.keyword == Keyword::END => cases = cases.saturating_sub(1),
            _ => {}
        }
        if cases > CASE_NESTING_MAX {
            return Err(too_complex(format!(
                "statement too complex: CASE expressions nest more than {CASE_NESTING_MAX} levels deep{}",
                token.span.start
            )));
        }
        if !nesting.step(&token.token, after) {
            continue;
        }
        if nesting.depth > EXPRESSION_DEPTH_MAX {
            return Err(too_complex(format!(
                "statement too complex: expressions and set operations nest more than {EXPRESSION_DEPTH_MAX} levels deep{}",
                token.span.start
            )));
        }
        if nesting.calls > CALL_NESTING_MAX {
            return Err(too_complex(format!(
                "statement too complex: function calls and subqueries nest more than {CALL_NESTING_MAX} levels deep{}",
                token.span.start
            )));
        }
    }
    Ok(())
}

/// The open levels of a statement being scanned, and how deep its trees
/// can nest so far.
struct Nesting {
    /// Per open parenthesis or `CASE`: what it chained so far.
    levels: Vec<Level>,
    depth: usize,
    calls: usize,
}

impl Default for Nesting {
    fn default() -> Self {
        Self {
            levels: vec![Level::default()],
            depth: 1,
            calls: 0,
        }
    }
}

impl Nesting {
    /// Account for `token` (following `after`); false when it changes nothing.
    fn step(&mut self, token: &Token, after: Option<&Token>) -> bool {
        let level = self.levels.last_mut().expect("never empty");
        match token {
            Token::LParen | Token::LBracket => {
                // `name(` is a call; `(SELECT` becomes a subquery below.
                let call = matches!(after, Some(Token::Word(_)));
                self.open(Level {
                    call,
                    ..Level::default()
                });
            }
            Token::RParen | Token::RBracket => self.close(false),
            // A CASE is a subtree of the expression it is in: its WHENs
            // and THENs start expressions of their own, one level deeper.
            Token::Word(w) if w.keyword == Keyword::CASE => self.open(Level {
                case: true,
                ..Level::default()
            }),
            Token::Word(w) if w.keyword == Keyword::END && level.case => self.close(true),
            Token::Word(w)
                if matches!(w.keyword, Keyword::SELECT | Keyword::WITH)
                    && matches!(after, Some(Token::LParen))
                    && !level.call =>
            {
                level.call = true;
                self.calls += 1;
            }
            Token::SemiColon => {
                self.depth -= level.operator_depth() + level.set_operations;
                *level = Level::default();
            }
            Token::Comma => self.depth -= level.end_expression(),
            Token::Word(w) if is_set_operation(w.keyword) => {
                self.depth -= level.end_expression();
                level.set_operations += 1;
                self.depth += 1;
            }
            // `IS [NOT] DISTINCT FROM` is an operator, not a FROM clause.
            Token::Word(w)
                if w.keyword == Keyword::FROM
                    && matches!(after, Some(Token::Word(d)) if d.keyword == Keyword::DISTINCT) =>
            {
                return false;
            }
            Token::Word(w) if starts_clause(w.keyword) => self.depth -= level.end_expression(),
            other if chains_operands(other) => {
                let before = level.operator_depth();
                level.chain(other);
                self.depth += level.operator_depth() - before;
            }
            _ => return false,
        }
        true
    }

    fn open(&mut self, level: Level) {
        self.calls += usize::from(level.call);
        self.levels.push(level);
        self.depth += 1;
    }

    /// Close the innermost parenthesis (`case`: false) or CASE (true),
    /// with any level left open inside it.
    fn close(&mut self, case: bool) {
        while self.levels.len() > 1 {
            let closed = self.levels.pop().unwrap_or_default();
            self.depth -= 1 + closed.operator_depth() + closed.set_operations;
            self.calls -= usize::from(closed.call);
            if closed.case == case {
                return;
            }
        }
    }
}

/// What one parenthesis or `CASE` level of a statement has chained so far.
#[derive(Debug, Default, Clone, Copy)]
struct Level {
    /// `AND` and `OR` joining the current expression's terms.
    connectives: usize,
    /// Other operators since the last connective, and the most between any two.
    run: usize,
    run_max: usize,
    /// `BETWEEN`s whose `AND` has not come yet.
    betweens: usize,
    set_operations: usize,
    /// Opened by a function call or holding a subquery.
    call: bool,
    /// Opened by `CASE` (closed by `END`).
    case: bool,
}

impl Level {
    /// How deep the current expression's operators can nest its tree.
    /// `AND` and `OR` bind loosest, so a path from the root passes at most
    /// every one of them and then the operators of one run between two of
    /// them: `a = 1 AND b = 2 AND …` with n `AND`s is n + 1 deep, not 2n.
    fn operator_depth(&self) -> usize {
        self.connectives + self.run_max
    }

    fn chain(&mut self, operator: &Token) {
        let keyword = match operator {
            Token::Word(w) => w.keyword,
            _ => Keyword::NoKeyword,
        };
        match keyword {
            Keyword::AND if self.betweens > 0 => {
                // `BETWEEN low AND high`: part of the BETWEEN, which binds tighter.
                self.betweens -= 1;
                self.run += 1;
            }
            Keyword::AND | Keyword::OR => {
                self.connectives += 1;
                self.run = 0;
            }
            Keyword::BETWEEN => {
                self.betweens += 1;
                self.run += 1;
            }
            _ => self.run += 1,
        }
        self.run_max = self.run_max.max(self.run);
    }

    /// End the current expression (a comma or a new clause); what it added
    /// to the depth.
    fn end_expression(&mut self) -> usize {
        let depth = self.operator_depth();
        (self.connectives, self.run, self.run_max, self.betweens) = (0, 0, 0, 0);
        depth
    }
}

fn is_set_operation(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT
    )
}

/// Most prefix operators in a row admitted: each is a level of the
/// parser's recursion, and a chain near its limit sent sqlparser into
/// retrying alternatives for longer than any budget (found by fuzzing:
/// 1,017 NOTs took more than 10 s).
const PREFIX_NESTING_MAX: usize = STATEMENT_NESTING_MAX / 2;

fn is_prefix_operator(token: &Token) -> bool {
    match token {
        Token::Word(w) => w.keyword == Keyword::NOT,
        Token::Minus | Token::Plus => true,
        _ => false,
    }
}

/// Deepest `CASE` nesting admitted: the parser's recursion limit allows no
/// more, and a deeper statement is refused before parsing (found by
/// fuzzing: a 25,866-deep `CASE` with one `WHEN` missing took the parser's
/// retries 35 s to refuse).
const CASE_NESTING_MAX: usize = STATEMENT_NESTING_MAX / 2;

/// Keywords after which a new, independent expression starts.
fn starts_clause(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::GROUP
            | Keyword::HAVING
            | Keyword::ORDER
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
            | Keyword::END
            | Keyword::ON
            | Keyword::SET
            | Keyword::VALUES
            | Keyword::RETURNING
    )
}

/// Tokens that join operands into one deeper tree node: the keyword
/// operators, and every symbol that is not a value, a name or punctuation
/// (so `IN (…)`, `~~`, `#`, `@>` and operators sqlparser learns later count
/// too: uncounted, thousands of them overflowed the stack).
fn chains_operands(token: &Token) -> bool {
    match token {
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::XOR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::IN
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::REGEXP
                | Keyword::RLIKE
                | Keyword::BETWEEN
                | Keyword::OVERLAPS
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::OPERATOR
                | Keyword::JOIN
        ),
        Token::EOF
        | Token::Whitespace(_)
        | Token::Number(..)
        | Token::Char(_)
        | Token::Placeholder(_)
        | Token::Comma
        | Token::SemiColon
        | Token::Period
        | Token::Colon
        | Token::Assignment
        | Token::Backslash
        | Token::LParen
        | Token::RParen
        | Token::LBracket
        | Token::RBracket
        | Token::LBrace
        | Token::RBrace => false,
        other => !is_literal(other),
    }
}

fn is_literal(token: &Token) -> bool {
    matches!(
        token,
        Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedByteStringLiteral(_)
            | Token::TripleDoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedRawStringLiteral(_)
            | Token::DoubleQuotedRawStringLiteral(_)
            | Token::TripleSingleQuotedRawStringLiteral(_)
            | Token::TripleDoubleQuotedRawStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::QuoteDelimitedStringLiteral(_)
            | Token::NationalQuoteDelimitedStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
    )
}

/// History clauses by where their table is named.
type KeyedClauses = Vec<(Location, HistoryClause)>;

/// Remove every `FOR SYSTEM_TIME ALL | BETWEEN … | FROM …` from `tokens`,
/// parsing its bounds, and key it by the table name token before it.
fn take_history_clauses(
    dialect: &DriftDialect,
    tokens: Vec<TokenWithSpan>,
) -> Result<(Vec<TokenWithSpan>, KeyedClauses)> {
    if !tokens
        .iter()
        .any(|t| is_keyword(&t.token, Keyword::SYSTEM_TIME))
    {
        return Ok((tokens, Vec::new()));
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut clauses = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match history_clause_at(dialect, &tokens, i)? {
            Some((clause, end)) => {
                let name = out
                    .iter()
                    .rev()
                    .find(|t: &&TokenWithSpan| !is_blank(&t.token))
                    .filter(|t| matches!(t.token, Token::Word(_)))
                    .ok_or_else(|| misplaced_history(tokens[i].span.start))?;
                clauses.push((name.span.start, clause));
                i = end;
            }
            None => {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
    }
    Ok((out, clauses))
}

/// The history clause starting at `tokens[i]` and the index after it.
fn history_clause_at(
    dialect: &DriftDialect,
    tokens: &[TokenWithSpan],
    i: usize,
) -> Result<Option<(HistoryClause, usize)>> {
    if !is_keyword(&tokens[i].token, Keyword::FOR) {
        return Ok(None);
    }
    let j = next_solid(tokens, i + 1);
    if !tokens
        .get(j)
        .is_some_and(|t| is_keyword(&t.token, Keyword::SYSTEM_TIME))
    {
        return Ok(None);
    }
    let k = next_solid(tokens, j + 1);
    let Some(kind) = tokens.get(k).and_then(|t| match &t.token {
        Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::ALL => {
            Some(HistoryKind::All)
        }
        Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::BETWEEN => {
            Some(HistoryKind::Between)
        }
        Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::FROM => {
            Some(HistoryKind::FromTo)
        }
        _ => None,
    }) else {
        return Ok(None);
    };
    if kind == HistoryKind::All {
        let clause = HistoryClause {
            kind,
            from: None,
            to: None,
        };
        return Ok(Some((clause, k + 1)));
    }
    let rest: Vec<TokenWithSpan> = tokens[k + 1..].to_vec();
    let mut parser = Parser::new(dialect)
        .with_recursion_limit(STATEMENT_NESTING_MAX)
        .with_tokens_with_locations(rest);
    let (separator, name) = match kind {
        HistoryKind::Between => (Keyword::AND, "FOR SYSTEM_TIME BETWEEN … AND …"),
        _ => (Keyword::TO, "FOR SYSTEM_TIME FROM … TO …"),
    };
    let bound_precedence = dialect.prec_value(Precedence::Between);
    let mut bounds = || -> std::result::Result<(ast::Expr, ast::Expr), ParserError> {
        let from = parser.parse_subexpr(bound_precedence)?;
        if !parser.parse_keyword(separator) {
            let found = parser.peek_token();
            return parser.expected(&format!("{separator:?} in {name}"), found);
        }
        let to = parser.parse_subexpr(bound_precedence)?;
        Ok((from, to))
    };
    let (from, to) = bounds().map_err(|e| parse_error(dialect, e))?;
    let clause = HistoryClause {
        kind,
        from: Some(from),
        to: Some(to),
    };
    Ok(Some((clause, k + 1 + parser.index())))
}

fn misplaced_history(at: Location) -> Error {
    Error::Syntax {
        message: format!("FOR SYSTEM_TIME{at} must follow a table name"),
    }
}

/// `tokens` without their `OVERRIDING SYSTEM VALUE` / `OVERRIDING USER
/// VALUE` clauses, and where each was.
fn take_overriding(
    tokens: Vec<TokenWithSpan>,
) -> (Vec<TokenWithSpan>, Vec<(Location, Overriding)>) {
    let word = |t: &TokenWithSpan, value: &str| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(value));
    if !tokens.iter().any(|t| word(t, "overriding")) {
        return (tokens, Vec::new());
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let kind_at = next_solid(&tokens, i + 1);
        let value_at = next_solid(&tokens, kind_at + 1);
        let kind = match tokens.get(kind_at) {
            Some(t) if word(t, "system") => Some(Overriding::System),
            Some(t) if word(t, "user") => Some(Overriding::User),
            _ => None,
        };
        match kind {
            Some(kind)
                if word(&tokens[i], "overriding")
                    && tokens.get(value_at).is_some_and(|t| word(t, "value")) =>
            {
                found.push((tokens[i].span.start, kind));
                i = value_at + 1;
            }
            _ => {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
    }
    (out, found)
}

/// The item of `found` located between `start` and `end`.
fn within<T: Copy>(found: &[(Location, T)], start: Location, end: Location) -> Option<T> {
    found
        .iter()
        .find(|(l, _)| {
            (l.line, l.column) >= (start.line, start.column)
                && (l.line, l.column) <= (end.line, end.column)
        })
        .map(|(_, item)| *item)
}

fn is_keyword(token: &Token, keyword: Keyword) -> bool {
    matches!(token, Token::Word(w) if w.keyword == keyword && w.quote_style.is_none())
}

fn is_blank(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_))
}

/// The index of the first token at or after `from` that is not whitespace or a comment.
/// `VERSION AS OF 'name'` as `TIMESTAMP AS OF 'name'`: sqlparser takes
/// only a number after `VERSION AS OF`, and a string there is a tag's name
/// or a time, which is what `TIMESTAMP AS OF` reads a string as (see
/// [`crate::temporal::time_target`]).
fn version_strings(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let word = |t: &TokenWithSpan, keyword: Keyword| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.keyword == keyword);
    for i in 0..tokens.len() {
        let as_at = next_solid(&tokens, i + 1);
        let of_at = next_solid(&tokens, as_at + 1);
        let value_at = next_solid(&tokens, of_at + 1);
        let version_string = word(&tokens[i], Keyword::VERSION)
            && tokens.get(as_at).is_some_and(|t| word(t, Keyword::AS))
            && tokens.get(of_at).is_some_and(|t| word(t, Keyword::OF))
            && tokens
                .get(value_at)
                .is_some_and(|t| matches!(t.token, Token::SingleQuotedString(_)));
        if version_string {
            tokens[i].token = Token::make_keyword("TIMESTAMP");
        }
    }
    tokens
}

fn next_solid(tokens: &[TokenWithSpan], from: usize) -> usize {
    let mut i = from;
    while tokens.get(i).is_some_and(|t| {
        matches!(
            t.token,
            Token::Whitespace(
                Whitespace::Space
                    | Whitespace::Newline
                    | Whitespace::Tab
                    | Whitespace::SingleLineComment { .. }
                    | Whitespace::MultiLineComment(_)
            )
        )
    }) {
        i += 1;
    }
    i
}

fn clauses_within(
    clauses: &[(Location, HistoryClause)],
    start: Location,
    end: Location,
) -> HistoryClauses {
    let inside = |l: &Location| {
        (l.line, l.column) >= (start.line, start.column)
            && (l.line, l.column) <= (end.line, end.column)
    };
    HistoryClauses {
        clauses: clauses.iter().filter(|(l, _)| inside(l)).cloned().collect(),
        ctes: Vec::new(),
    }
}

/// Every history clause must follow a plain table reference of `statement`.
fn check_history_attached(statement: &Statement, history: &HistoryClauses) -> Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    struct Attached<'a> {
        history: &'a HistoryClauses,
        found: Vec<Location>,
    }
    impl Visitor for Attached<'_> {
        type Break = Error;
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Error> {
            let TableFactor::Table {
                name,
                version,
                args,
                ..
            } = factor
            else {
                return ControlFlow::Continue(());
            };
            if self.history.for_table(name).is_none() {
                return ControlFlow::Continue(());
            }
            if version.is_some() || args.is_some() {
                return ControlFlow::Break(Error::Syntax {
                    message: format!("{name} has two temporal clauses"),
                });
            }
            if let Some(at) = name_location(name) {
                self.found.push(at);
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Attached {
        history,
        found: Vec::new(),
    };
    if let ControlFlow::Break(e) = statement.visit(&mut visitor) {
        return Err(e);
    }
    match history
        .clauses
        .iter()
        .find(|(at, _)| !visitor.found.contains(at))
    {
        Some((at, _)) => Err(misplaced_history(*at)),
        None => Ok(()),
    }
}

/// Byte offsets of line starts, to cut a statement's text out of a script.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(sql: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
        Self(starts)
    }

    /// The byte offset of `location` (line and column count from 1, columns in characters).
    fn offset(&self, sql: &str, location: Location) -> usize {
        let Some(&line_start) = self.0.get((location.line as usize).saturating_sub(1)) else {
            return sql.len();
        };
        let line = &sql[line_start..];
        let column = (location.column as usize).saturating_sub(1);
        line_start
            + line
                .char_indices()
                .nth(column)
                .map_or(line.len(), |(i, _)| i)
    }

    fn slice<'a>(&self, sql: &'a str, start: Location, end: Location) -> &'a str {
        let from = self.offset(sql, start);
        let to = self.offset(sql, end).max(from);
        sql[from..to].trim()
    }
}

mod cte_columns;
mod set_returning;
#[cfg(test)]
mod tests;
