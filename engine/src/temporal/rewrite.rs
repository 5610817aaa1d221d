//! SQL:2011 history clauses the parser does not know, rewritten at the token
//! level into a form it does:
//!
//! | written | rewritten |
//! | --- | --- |
//! | `t FOR SYSTEM_TIME ALL` | `t FOR SYSTEM_TIME AS OF __driftdb_history(NULL, NULL, 'all')` |
//! | `t FOR SYSTEM_TIME BETWEEN a AND b` | `… AS OF __driftdb_history(a, b, 'between')` |
//! | `t FOR SYSTEM_TIME FROM a TO b` | `… AS OF __driftdb_history(a, b, 'from_to')` |
//!
//! Bounds are constants: a literal (optionally typed, e.g. `TIMESTAMP '…'`),
//! a function call or a parenthesised expression, joined by `+`/`-`.

use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Error, Result};

/// The marker function the relation planner recognises.
pub const HISTORY_MARKER: &str = "__driftdb_history";

/// Rewrite history clauses in `sql`; returns `sql` unchanged when there are none.
pub fn rewrite_history_clauses(dialect: &dyn Dialect, sql: &str) -> Result<String> {
    if !crate::sql::mentions(sql, "SYSTEM_TIME") {
        return Ok(sql.to_string());
    }
    let tokens = Tokenizer::new(dialect, sql).tokenize()?;
    let mut out = String::with_capacity(sql.len() + 64);
    let mut i = 0;
    while i < tokens.len() {
        if let Some(next) = history_clause_at(&tokens, i, &mut out)? {
            i = next;
        } else {
            out.push_str(&tokens[i].to_string());
            i += 1;
        }
    }
    Ok(out)
}

fn is_keyword(token: Option<&Token>, keyword: Keyword) -> bool {
    matches!(token, Some(Token::Word(w)) if w.keyword == keyword)
}

fn skip_whitespace(tokens: &[Token], mut i: usize) -> usize {
    while matches!(tokens.get(i), Some(Token::Whitespace(_))) {
        i += 1;
    }
    i
}

/// If a history clause starts at `i`, write its rewrite to `out` and return the index after it.
fn history_clause_at(tokens: &[Token], i: usize, out: &mut String) -> Result<Option<usize>> {
    if !is_keyword(tokens.get(i), Keyword::FOR) {
        return Ok(None);
    }
    let j = skip_whitespace(tokens, i + 1);
    if !is_keyword(tokens.get(j), Keyword::SYSTEM_TIME) {
        return Ok(None);
    }
    let k = skip_whitespace(tokens, j + 1);
    let (from, to, kind, end) = match tokens.get(k) {
        Some(Token::Word(w)) if w.keyword == Keyword::ALL => {
            ("NULL".to_string(), "NULL".to_string(), "all", k + 1)
        }
        Some(Token::Word(w)) if w.keyword == Keyword::BETWEEN => {
            let (from, after_from) = bound(tokens, k + 1)?;
            let and = expect_keyword(tokens, after_from, Keyword::AND, "BETWEEN … AND")?;
            let (to, end) = bound(tokens, and)?;
            (from, to, "between", end)
        }
        Some(Token::Word(w)) if w.keyword == Keyword::FROM => {
            let (from, after_from) = bound(tokens, k + 1)?;
            let to_kw = expect_keyword(tokens, after_from, Keyword::TO, "FROM … TO")?;
            let (to, end) = bound(tokens, to_kw)?;
            (from, to, "from_to", end)
        }
        _ => return Ok(None),
    };
    out.push_str(&format!(
        "FOR SYSTEM_TIME AS OF {HISTORY_MARKER}({from}, {to}, '{kind}')"
    ));
    Ok(Some(end))
}

fn expect_keyword(tokens: &[Token], i: usize, keyword: Keyword, clause: &str) -> Result<usize> {
    let i = skip_whitespace(tokens, i);
    if is_keyword(tokens.get(i), keyword) {
        Ok(i + 1)
    } else {
        Err(Error::Syntax {
            message: format!("expected {keyword:?} in FOR SYSTEM_TIME {clause}"),
        })
    }
}

/// One bound: terms joined by `+` or `-`. Returns its text and the index after it.
fn bound(tokens: &[Token], i: usize) -> Result<(String, usize)> {
    let (mut text, mut i) = term(tokens, i)?;
    loop {
        let j = skip_whitespace(tokens, i);
        match tokens.get(j) {
            Some(op @ (Token::Plus | Token::Minus)) => {
                let (next, after) = term(tokens, j + 1)?;
                text = format!("{text} {op} {next}");
                i = after;
            }
            _ => return Ok((text, i)),
        }
    }
}

/// A literal, a typed literal, a function call or a parenthesised expression.
fn term(tokens: &[Token], i: usize) -> Result<(String, usize)> {
    let i = skip_whitespace(tokens, i);
    let bad = || Error::Syntax {
        message: "expected a time or version in FOR SYSTEM_TIME".into(),
    };
    match tokens.get(i).ok_or_else(bad)? {
        Token::LParen => group(tokens, i),
        Token::Word(w) => {
            let j = skip_whitespace(tokens, i + 1);
            match tokens.get(j) {
                Some(Token::LParen) => {
                    let (args, end) = group(tokens, j)?;
                    Ok((format!("{w}{args}"), end))
                }
                Some(literal @ (Token::SingleQuotedString(_) | Token::Number(_, _))) => {
                    Ok((format!("{w} {literal}"), j + 1))
                }
                _ => Err(bad()),
            }
        }
        literal @ (Token::SingleQuotedString(_) | Token::Number(_, _)) => {
            Ok((literal.to_string(), i + 1))
        }
        _ => Err(bad()),
    }
}

/// A balanced `( … )` group starting at `i`.
fn group(tokens: &[Token], i: usize) -> Result<(String, usize)> {
    let mut depth = 0usize;
    let mut text = String::new();
    for (offset, token) in tokens[i..].iter().enumerate() {
        text.push_str(&token.to_string());
        match token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Ok((text, i + offset + 1));
                }
            }
            _ => {}
        }
    }
    Err(Error::Syntax {
        message: "unbalanced parentheses in FOR SYSTEM_TIME".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;

    fn rewrite(sql: &str) -> String {
        rewrite_history_clauses(&PostgreSqlDialect {}, sql).unwrap()
    }

    #[test]
    fn all_becomes_open_history() {
        assert_eq!(
            rewrite("SELECT * FROM t FOR SYSTEM_TIME ALL WHERE x = 1"),
            "SELECT * FROM t FOR SYSTEM_TIME AS OF __driftdb_history(NULL, NULL, 'all') WHERE x = 1"
        );
    }

    #[test]
    fn between_and_from_to_keep_their_bounds() {
        assert_eq!(
            rewrite("SELECT * FROM t FOR SYSTEM_TIME BETWEEN 2 AND 5 h"),
            "SELECT * FROM t FOR SYSTEM_TIME AS OF __driftdb_history(2, 5, 'between') h"
        );
        assert_eq!(
            rewrite(
                "SELECT * FROM t FOR SYSTEM_TIME FROM TIMESTAMP '2026-01-01' TO now() - INTERVAL '1 day'"
            ),
            "SELECT * FROM t FOR SYSTEM_TIME AS OF __driftdb_history(TIMESTAMP '2026-01-01', now() - INTERVAL '1 day', 'from_to')"
        );
    }

    #[test]
    fn as_of_is_left_alone() {
        let sql = "SELECT * FROM t FOR SYSTEM_TIME AS OF '2026-01-01'";
        assert_eq!(rewrite(sql), sql);
    }
}
