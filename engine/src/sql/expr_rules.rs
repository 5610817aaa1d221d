//! One analyzer rule for the expression-level corrections that make
//! DataFusion's answers PostgreSQL's (today: casts to integers round,
//! [`super::casts`]), in one pass over each plan, after type coercion,
//! keeping every expression's name.
//!
//! (Checked integer arithmetic as a function call per `+` was tried and
//! taken out: a 300-term sum then took seconds to plan, as every nested
//! call re-derives its arguments' types.)

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNode;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::optimizer::AnalyzerRule;

use super::casts::rounded;

/// See the module page.
#[derive(Debug, Default)]
pub struct PostgresExpressions;

impl AnalyzerRule for PostgresExpressions {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let schema = merge_schema(&plan.inputs());
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = names.save(&expr);
                let rewritten = expr.transform_up(|e| rounded(e, &schema))?;
                Ok(rewritten.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "driftdb_postgres_expressions"
    }
}
