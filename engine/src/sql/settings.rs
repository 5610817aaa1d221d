//! Custom settings: `SET myapp.user_id = 42` and `SHOW myapp.user_id`,
//! as PostgreSQL takes any two-part name outside its own namespaces (an
//! application's session variables). DriftDB's own (`driftdb.…`) and
//! DataFusion's (`datafusion.…`) names are not custom; a one-part name
//! that is not a known setting stays an error (42704).
//!
//! A custom setting lives as long as its session; unlike PostgreSQL's, a
//! `SET` inside a transaction block stays when the block rolls back.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sqlparser::ast::{Expr, ObjectName, Set, Statement, Value};

use super::session::StatementResult;
use crate::error::{Error, Result};

/// Namespaces whose names are settings of their own, never custom.
const RESERVED_NAMESPACES: [&str; 2] = ["driftdb", "datafusion"];

/// One session's custom settings, by lower-cased name.
#[derive(Debug, Default, Clone)]
pub struct CustomSettings {
    values: HashMap<String, String>,
}

/// The name `name` has as a custom setting, if it is one.
fn custom_name(name: &ObjectName) -> Option<String> {
    let text = name.to_string().to_lowercase();
    let (namespace, _) = text.split_once('.')?;
    (!RESERVED_NAMESPACES.contains(&namespace)).then_some(text)
}

impl CustomSettings {
    /// Run `statement` when it sets or shows a custom setting (None for
    /// any other statement); `seq` is the snapshot a `SHOW` reads at.
    pub(crate) fn run(
        &mut self,
        statement: &Statement,
        seq: u64,
    ) -> Option<Result<StatementResult>> {
        match statement {
            Statement::Set(Set::SingleAssignment {
                variable, values, ..
            }) => custom_name(variable).map(|name| self.set(name, values)),
            Statement::ShowVariable { variable } => {
                let name = ObjectName::from(variable.clone());
                custom_name(&name).map(|name| self.show(&name, seq))
            }
            _ => None,
        }
    }

    /// `SET name = value` (`DEFAULT` removes it).
    fn set(&mut self, name: String, values: &[Expr]) -> Result<StatementResult> {
        let [value] = values else {
            return Err(Error::InvalidArgument {
                message: format!("SET {name} takes one value"),
            });
        };
        match setting_text(value) {
            Some(text) => self.values.insert(name, text),
            None => self.values.remove(&name),
        };
        Ok(StatementResult::done("SET", None, None))
    }

    /// `SHOW name` (read at `seq`): its value, or 42704 when it was never set.
    fn show(&self, name: &str, seq: u64) -> Result<StatementResult> {
        let Some(value) = self.values.get(name) else {
            return Err(Error::UnknownSetting { name: name.into() });
        };
        let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![value.as_str()]))],
        )?;
        Ok(StatementResult::rows("SHOW", schema, vec![batch], seq))
    }
}

/// A setting's value as text (None for `DEFAULT`).
fn setting_text(value: &Expr) -> Option<String> {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            other => Some(other.to_string()),
        },
        Expr::Identifier(ident) if ident.value.eq_ignore_ascii_case("default") => None,
        Expr::Identifier(ident) => Some(ident.value.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast;

    fn name(text: &str) -> ObjectName {
        ObjectName::from(text.split('.').map(ast::Ident::new).collect::<Vec<_>>())
    }

    #[test]
    fn two_part_names_outside_reserved_namespaces_are_custom() {
        assert_eq!(custom_name(&name("MyApp.User")), Some("myapp.user".into()));
        assert_eq!(custom_name(&name("driftdb.as_of")), None);
        assert_eq!(custom_name(&name("datafusion.execution.batch_size")), None);
        assert_eq!(custom_name(&name("search_path")), None);
    }
}
