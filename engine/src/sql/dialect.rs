//! DriftDB's SQL dialect: PostgreSQL's, plus table versioning clauses
//! (`FOR SYSTEM_TIME AS OF`, `TIMESTAMP AS OF`, `VERSION AS OF`).

use std::any::TypeId;
use std::cell::Cell;

use sqlparser::ast::{ColumnOption, Expr, GeneratedAs, Value};
use sqlparser::dialect::{Dialect, PostgreSqlDialect, Precedence};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

/// PostgreSQL with time travel, where `?` is a parameter placeholder (as
/// ADBC and JDBC send it) rather than a geometric or JSON operator. Reports itself as PostgreSQL so the parser's
/// PostgreSQL-specific rules apply.
///
/// It also counts the prefix expressions the parser starts and fails the
/// parse past a budget ([`DriftDialect::limit_prefix_steps`]): sqlparser
/// reads a keyword that fails as an expression (`CAST(…`, `ARRAY[…`) a
/// second time as a function name, so each level of such nesting doubles
/// the work of a statement that fails inside it (60 levels ran for hours).
#[derive(Debug, Default)]
pub struct DriftDialect {
    pg: PostgreSqlDialect,
    prefix_steps: Cell<usize>,
    /// None: no budget.
    prefix_steps_max: Cell<Option<usize>>,
}

impl DriftDialect {
    /// Let the parser start at most `steps` more prefix expressions; past
    /// that each one fails at once (and [`Self::out_of_steps`] says so).
    pub fn limit_prefix_steps(&self, steps: usize) {
        self.prefix_steps.set(0);
        self.prefix_steps_max.set(Some(steps));
    }

    /// Whether the parse used up its budget of prefix expressions.
    pub fn out_of_steps(&self) -> bool {
        self.prefix_steps_max
            .get()
            .is_some_and(|max| self.prefix_steps.get() > max)
    }
}

macro_rules! delegate_flags {
    ($($name:ident),* $(,)?) => {
        $(fn $name(&self) -> bool { self.pg.$name() })*
    };
}

impl Dialect for DriftDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    fn supports_table_versioning(&self) -> bool {
        true
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.pg.identifier_quote_style(identifier)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.pg.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.pg.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.pg.is_identifier_part(ch)
    }

    fn is_reserved_for_identifier(&self, kw: Keyword) -> bool {
        self.pg.is_reserved_for_identifier(kw)
    }

    fn is_custom_operator_part(&self, ch: char) -> bool {
        self.pg.is_custom_operator_part(ch)
    }

    /// Counts the step; past the budget, fails it with the recursion-limit
    /// error, which sqlparser never retries. A `U&'…'` string (already
    /// unescaped by the tokenizer) becomes the plain string it spells, as
    /// PostgreSQL reads it: the planner has no node for the escaped form.
    fn parse_prefix(&self, parser: &mut Parser<'_>) -> Option<Result<Expr, ParserError>> {
        self.prefix_steps
            .set(self.prefix_steps.get().saturating_add(1));
        if self.out_of_steps() {
            return Some(Err(ParserError::RecursionLimitExceeded));
        }
        let next = parser.peek_token_ref();
        let Token::UnicodeStringLiteral(text) = &next.token else {
            return None;
        };
        let value = Value::SingleQuotedString(text.clone()).with_span(next.span);
        parser.advance_token();
        Some(Ok(Expr::Value(value)))
    }

    /// `a IS [NOT] DISTINCT FROM b`: sqlparser reads `b` as a whole
    /// expression, so `x IS DISTINCT FROM y AND z` became
    /// `x IS DISTINCT FROM (y AND z)`. PostgreSQL's right operand binds as
    /// tightly as `IS` does: here it is read at `IS`'s precedence.
    fn parse_infix(
        &self,
        parser: &mut Parser<'_>,
        expr: &Expr,
        _precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        let keyword = |n: usize| match &parser.peek_nth_token_ref(n).token {
            Token::Word(w) => w.keyword,
            _ => Keyword::NoKeyword,
        };
        if keyword(0) != Keyword::IS {
            return None;
        }
        let negated = match [keyword(1), keyword(2), keyword(3)] {
            [Keyword::DISTINCT, Keyword::FROM, _] => false,
            [Keyword::NOT, Keyword::DISTINCT, Keyword::FROM] => true,
            _ => return None,
        };
        for _ in 0..3 + usize::from(negated) {
            parser.advance_token();
        }
        let right = match parser.parse_subexpr(self.prec_value(Precedence::Is)) {
            Ok(right) => Box::new(right),
            Err(e) => return Some(Err(e)),
        };
        let left = Box::new(expr.clone());
        Some(Ok(match negated {
            false => Expr::IsDistinctFrom(left, right),
            true => Expr::IsNotDistinctFrom(left, right),
        }))
    }

    fn get_next_precedence(&self, parser: &Parser<'_>) -> Option<Result<u8, ParserError>> {
        self.pg.get_next_precedence(parser)
    }

    fn prec_value(&self, prec: Precedence) -> u8 {
        self.pg.prec_value(prec)
    }

    /// MySQL's `AUTO_INCREMENT` column option is `GENERATED BY DEFAULT AS
    /// IDENTITY` (the table option `AUTO_INCREMENT = n` is not a column
    /// option and stays a syntax error); identity options are taken in any
    /// order, as PostgreSQL takes them.
    fn parse_column_option(
        &self,
        parser: &mut Parser<'_>,
    ) -> Result<Option<Result<Option<ColumnOption>, ParserError>>, ParserError> {
        let auto_increment = parser.peek_keyword(Keyword::AUTO_INCREMENT)
            && parser.peek_nth_token_ref(1).token != Token::Eq;
        let generated_as = if auto_increment {
            parser.next_token();
            Some(GeneratedAs::ByDefault)
        } else if parser.parse_keywords(&[
            Keyword::GENERATED,
            Keyword::ALWAYS,
            Keyword::AS,
            Keyword::IDENTITY,
        ]) {
            Some(GeneratedAs::Always)
        } else if parser.parse_keywords(&[
            Keyword::GENERATED,
            Keyword::BY,
            Keyword::DEFAULT,
            Keyword::AS,
            Keyword::IDENTITY,
        ]) {
            Some(GeneratedAs::ByDefault)
        } else {
            None
        };
        let Some(generated_as) = generated_as else {
            return Ok(None);
        };
        let options = match auto_increment {
            true => Ok(Vec::new()),
            false => super::parser::parse_identity_options(parser),
        };
        Ok(Some(options.map(|options| {
            Some(ColumnOption::Generated {
                generated_as,
                sequence_options: Some(options),
                generation_expr: None,
                generation_expr_mode: None,
                generated_keyword: true,
            })
        })))
    }

    delegate_flags!(
        supports_unicode_string_literal,
        supports_filter_during_aggregation,
        supports_group_by_expr,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_create_index_with_clause,
        supports_explain_with_utility_options,
        supports_listen_notify,
        supports_factorial_operator,
        supports_bitwise_shift_operators,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_colon_operator,
        supports_named_fn_args_with_expr_name,
        supports_empty_projections,
        supports_nested_comments,
        supports_string_escape_constant,
        supports_numeric_literal_underscores,
        supports_array_typedef_with_brackets,
        supports_set_names,
        supports_alter_column_type_using,
        supports_notnull_operator,
        supports_interval_options,
        supports_insert_table_alias,
        supports_create_table_like_parenthesized,
        supports_select_wildcard_with_alias,
        supports_comma_separated_trim,
        supports_xml_expressions,
        supports_comment_optimizer_hint,
    );
}
