//! A CTE's columns named as PostgreSQL names them. A column list names
//! the first columns and keeps the others' names (`WITH s (a) AS (SELECT
//! 1, 2)`), and two columns may share a name (`SELECT *` over a join),
//! a reference to it being ambiguous. DataFusion wants exactly one name
//! per column, and renames a repeated one (`id:1`) so that `id` means the
//! first. A derived table in `FROM` does both as PostgreSQL does (see
//! `temporal::planner`), so each CTE's body becomes one, under the CTE's
//! name and with its list: `WITH s AS (SELECT * FROM (SELECT 1, 2) AS s
//! (a))`. Recursive CTEs are left as written (their recursive reference
//! needs the list where it is).

use std::ops::ControlFlow;

use sqlparser::ast::{
    Query, SelectItem, Statement, TableAlias, TableFactor, TableWithJoins, VisitMut, VisitorMut,
};

use crate::sql::plans::select_query;

/// Make every non-recursive CTE's body a derived table with its list.
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
