//! One analyzer rule for the expression-level corrections that make
//! DataFusion's answers PostgreSQL's, in one pass over each plan, after
//! type coercion, keeping every expression's name: casts to integers round
//! ([`super::casts`]); integer constants are folded checked
//! ([`super::checked_arithmetic`]); float constants cast to decimals
//! exactly ([`super::casts`]); decimals cast to floats exactly
//! ([`super::numeric`]).

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNode;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::optimizer::AnalyzerRule;

use super::casts::{exact_decimal, rounded};
use super::checked_arithmetic::folded;
use super::numeric::exact_float;

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
                let rewritten = expr.transform_up(|e| {
                    rounded(e, &schema)?
                        .transform_data(folded)?
                        .transform_data(exact_decimal)?
                        .transform_data(|e| exact_float(e, &schema))
                })?;
                Ok(rewritten.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "driftdb_postgres_expressions"
    }
}
