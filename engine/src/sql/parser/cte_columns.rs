//! A CTE's column list as PostgreSQL reads it: `WITH s (a) AS (SELECT 1,
//! 2)` names the first column `a` and keeps the others' names.
//! DataFusion wants exactly one name per column; a derived table in
//! `FROM` takes a shorter list (see `temporal::planner`), so the CTE's
//! list moves onto one: `WITH s AS (SELECT * FROM (SELECT 1, 2) AS s (a))`.
//! Recursive CTEs keep their lists (their recursive reference needs them).

use std::ops::ControlFlow;

use sqlparser::ast::{
    Query, SelectItem, Statement, TableAlias, TableFactor, TableWithJoins, VisitMut, VisitorMut,
};

use crate::sql::plans::select_query;

/// Move every non-recursive CTE's column list onto a derived table.
pub(super) fn cte_column_lists(statement: &mut Statement) {
    let _ = statement.visit(&mut Lists);
}

struct Lists;

impl VisitorMut for Lists {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let Some(with) = &mut query.with else {
            return ControlFlow::Continue(());
        };
        if with.recursive {
            return ControlFlow::Continue(());
        }
        for cte in &mut with.cte_tables {
            if cte.alias.columns.is_empty() {
                continue;
            }
            let columns = std::mem::take(&mut cte.alias.columns);
            let body =
                std::mem::replace(&mut cte.query, Box::new(select_query(vec![], vec![], None)));
            let derived = TableFactor::Derived {
                lateral: false,
                subquery: body,
                alias: Some(TableAlias {
                    explicit: true,
                    name: cte.alias.name.clone(),
                    columns,
                    at: None,
                }),
                sample: None,
            };
            let from = vec![TableWithJoins {
                relation: derived,
                joins: Vec::new(),
            }];
            let everything = vec![SelectItem::Wildcard(Default::default())];
            *cte.query = select_query(everything, from, None);
        }
        ControlFlow::Continue(())
    }
}
