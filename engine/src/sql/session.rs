//! A SQL session: its own DataFusion context wired to the database through
//! the temporal relation planner, its settings (`SET driftdb.as_of`), and
//! statement routing.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{FunctionRegistry, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::analyzer::type_coercion::TypeCoercion;
use datafusion::optimizer::{Analyzer, AnalyzerRule};
use datafusion::prelude::SessionConfig;
use sqlparser::ast::{self, Statement};

use super::catalog_provider::DriftCatalog;
use super::files::FileAccess;
use super::output_names::{name_statement, public_schema, public_stream};
use super::parser::{Body, ParsedStatement};
use super::plan_cache::CachedPlan;
use super::settings::CustomSettings;
use super::{CATALOG_NAME, SCHEMA_NAME, ddl, dml, parse_statement, parse_statements};
use crate::db::{CommitChecks, Database};
use crate::error::{Error, Result};
use crate::temporal::functions::{CommitsFunction, HistoryFunction, TagsFunction};
use crate::temporal::planner::TemporalPlanner;
use crate::temporal::provider::data_store_url;
use crate::temporal::{StatementSnapshot, Target, eval_constant, resolve_target, target_of};
use crate::txn::{Transaction, TxnOptions, TxnView, WriteSet};
use parking_lot::Mutex;

/// The setting that makes tables without a temporal clause read an older snapshot.
pub const AS_OF_SETTING: &str = "driftdb.as_of";

/// What one statement produced.
#[derive(Debug, Clone)]
pub struct StatementResult {
    /// Statement kind, e.g. `SELECT`, `INSERT`, `CREATE TABLE`.
    pub tag: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// Rows written or retired, for DML.
    pub rows_affected: Option<u64>,
    /// The snapshot read (queries) or the commit made (writes).
    pub seq: Option<u64>,
    pub elapsed: std::time::Duration,
}

/// What running one statement gives: rows to stream, or a finished result.
pub enum Output {
    /// A query's rows, read at snapshot `seq`, produced as the stream is
    /// polled; a `live` stream follows a change feed and has no end.
    Rows {
        tag: String,
        seq: u64,
        stream: SendableRecordBatchStream,
        live: bool,
    },
    /// A statement that has already run (DDL, DML, SET).
    Done(StatementResult),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Rows { tag, seq, .. } => write!(f, "Rows({tag} at {seq})"),
            Output::Done(result) => write!(f, "Done({})", result.tag),
        }
    }
}

/// A statement parsed and planned once, run many times with parameters.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The statement with its placeholders numbered `$1..$n`.
    pub statement: ParsedStatement,
    /// How many parameters it takes.
    pub parameter_count: usize,
    /// Each parameter's type where the planner could infer it.
    pub parameter_types: Vec<Option<DataType>>,
    /// The result schema of a query; empty for other statements.
    pub schema: SchemaRef,
    /// Whether the statement returns rows.
    pub is_query: bool,
    /// The query's plan, re-bound per execution (see [`super::plan_cache`]).
    pub(crate) plan: Option<Arc<CachedPlan>>,
    /// A parameter names the point or range in history it reads (`AS OF
    /// $1`): it is planned per execution, and its result columns (which
    /// depend on the table's definition at that point) are known only
    /// then (`schema` is empty until then).
    pub history_parameters: bool,
}

impl Prepared {
    /// Whether executions reuse the plan made at PREPARE (see [`super::plan_cache`]).
    pub fn plans_once(&self) -> bool {
        self.plan.is_some()
    }
}

impl StatementResult {
    pub(crate) fn rows(tag: &str, schema: SchemaRef, batches: Vec<RecordBatch>, seq: u64) -> Self {
        Self {
            tag: tag.into(),
            schema,
            batches,
            rows_affected: None,
            seq: Some(seq),
            elapsed: Default::default(),
        }
    }

    pub(crate) fn done(tag: &str, rows_affected: Option<u64>, seq: Option<u64>) -> Self {
        Self {
            tag: tag.into(),
            schema: Arc::new(Schema::empty()),
            batches: Vec::new(),
            rows_affected,
            seq,
            elapsed: Default::default(),
        }
    }

    /// Total rows in the result batches.
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// One client's SQL session over a database.
pub struct Session {
    pub(super) db: Database,
    ctx: SessionContext,
    pub(super) snapshot: Arc<StatementSnapshot>,
    as_of: Option<Target>,
    /// Memory each query may use (DataFusion memory pool; operators that can spill do).
    query_memory_bytes: Option<usize>,
    /// The open transaction block, if any (statements outside one autocommit).
    pub(super) txn: Arc<Mutex<Option<Transaction>>>,
    /// What `BEGIN` starts (`SET default_transaction_isolation`, `SET SESSION CHARACTERISTICS`).
    pub(super) txn_defaults: TxnOptions,
    /// `SET myapp.x = …` ([`super::settings`]).
    custom_settings: CustomSettings,
    /// Open-ended change feeds stream live ([`crate::temporal::live`]).
    follow_feeds: Arc<std::sync::atomic::AtomicBool>,
    /// The server-side files `COPY` and `read_*` may touch ([`super::files`]).
    file_access: Arc<parking_lot::RwLock<FileAccess>>,
    /// Plans `read_*`; object-store paths are resolved before planning.
    files: Arc<super::files::read::FilePlanner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("as_of", &self.as_of)
            .finish()
    }
}

/// DataFusion's analyzer rules, with those of DriftDB that must see a
/// plan before type coercion placed ahead of it.
fn analyzer_rules() -> Vec<Arc<dyn AnalyzerRule + Send + Sync>> {
    let mut rules = Analyzer::new().rules;
    let coercion = rules
        .iter()
        .position(|r| r.name() == TypeCoercion::new().name())
        .unwrap_or(rules.len());
    rules.insert(coercion, Arc::new(super::numeric::ColumnTypes));
    rules
}

impl Session {
    /// A new session with default settings.
    pub fn new(db: &Database) -> Self {
        let snapshot = Arc::new(StatementSnapshot::default());
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG_NAME, SCHEMA_NAME)
            .with_create_default_catalog_and_schema(false);
        let planner = Arc::new(TemporalPlanner::new(db.clone(), snapshot.clone()));
        let file_access = Arc::new(parking_lot::RwLock::new(FileAccess::none()));
        let files = Arc::new(super::files::read::FilePlanner::new(file_access.clone()));
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(db.runtime_env())
            .with_default_features()
            .with_relation_planners(vec![files.clone(), planner])
            .with_analyzer_rules(analyzer_rules())
            .with_query_planner(Arc::new(super::apply::DriftQueryPlanner))
            .with_physical_optimizer_rule(Arc::new(
                super::checked_arithmetic::CheckedIntegerArithmetic,
            ))
            .build();
        // Cannot fail: registering a rewrite appends it to a list.
        let _ = state.register_function_rewrite(Arc::new(super::checked_arithmetic::WidenedSum));
        let _ = state.register_function_rewrite(Arc::new(super::numeric::FloatOverNumeric));
        let _ = state.register_function_rewrite(Arc::new(super::numeric::WideAverage));
        let _ = state.register_function_rewrite(Arc::new(super::numeric::NumericArithmetic));
        state.add_analyzer_rule(Arc::new(super::set_ops::SetOpMultiplicity));
        state.add_analyzer_rule(Arc::new(super::expr_rules::PostgresExpressions));
        // Before the rewrites below, which would decorrelate the middle of
        // a two-level correlation and strand its deeper reference.
        state.add_analyzer_rule(Arc::new(super::apply::UndecorrelatableSubqueries));
        state.add_analyzer_rule(Arc::new(super::subqueries::SubqueryPredicates));
        state.add_analyzer_rule(Arc::new(super::decorrelate::NonEqualityCorrelation));
        state.add_analyzer_rule(Arc::new(super::apply::UndecorrelatedLateral));
        let ctx = SessionContext::new_with_state(state);
        ctx.register_catalog(
            CATALOG_NAME,
            Arc::new(DriftCatalog::new(db.clone(), snapshot.clone())),
        );
        ctx.register_object_store(data_store_url().as_ref(), db.object_store());
        // Server-side files are read only as checked and pinned (`files::pinned`).
        let files_url = url::Url::parse("file://").expect("static URL parses");
        ctx.register_object_store(&files_url, super::files::pinned::PinnedStore::shared());
        ctx.register_udtf("history", Arc::new(HistoryFunction { db: db.clone() }));
        ctx.register_udtf("commits", Arc::new(CommitsFunction { db: db.clone() }));
        ctx.register_udtf("tags", Arc::new(TagsFunction { db: db.clone() }));
        let follow_feeds = Arc::new(std::sync::atomic::AtomicBool::new(false));
        ctx.register_udtf(
            "table_changes",
            Arc::new(crate::temporal::changes::TableChangesFunction {
                db: db.clone(),
                follow: follow_feeds.clone(),
            }),
        );
        ctx.register_udtf(
            "table_diff",
            Arc::new(crate::temporal::changes::TableDiffFunction { db: db.clone() }),
        );
        ctx.register_udf(current_database());
        driftdb_udfs::register_all(&ctx);
        crate::sequences::functions::register(&ctx, db, snapshot.clone());
        Self {
            db: db.clone(),
            ctx,
            snapshot,
            as_of: None,
            query_memory_bytes: None,
            txn: Arc::new(Mutex::new(None)),
            txn_defaults: TxnOptions::default(),
            custom_settings: CustomSettings::default(),
            follow_feeds,
            file_access,
            files,
        }
    }

    /// Let `COPY` and the `read_*` functions touch the files under these
    /// folders from now on (a new session may touch none).
    pub fn set_file_access(&self, access: FileAccess) {
        *self.file_access.write() = access;
    }

    /// The server-side files this session may touch.
    pub fn file_access(&self) -> FileAccess {
        self.file_access.read().clone()
    }

    /// Follow open-ended change feeds live from now on: a query over
    /// `table_changes('t', from)` that can stream keeps streaming new
    /// commits until it is dropped (the Flight SQL server's sessions).
    pub fn follow_change_feeds(&self, on: bool) {
        self.follow_feeds
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Cap the memory of every query this session runs from now on.
    pub fn set_query_memory_limit(&mut self, bytes: Option<usize>) {
        self.query_memory_bytes = bytes;
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub(crate) fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Run every statement of `sql`, stopping at the first error.
    pub async fn execute(&mut self, sql: &str) -> Result<Vec<StatementResult>> {
        let mut results = Vec::new();
        for statement in parse_statements(sql)? {
            // Boxed: a statement's future holds every kind of statement's
            // state, too large to keep in the caller's (often on a stack).
            results.push(Box::pin(self.execute_statement(statement)).await?);
        }
        Ok(results)
    }

    /// Run `sql` and return the last statement's result.
    pub async fn execute_one(&mut self, sql: &str) -> Result<StatementResult> {
        self.execute(sql).await?.pop().ok_or_else(|| Error::Syntax {
            message: "empty statement".into(),
        })
    }

    /// Run one parsed statement.
    pub async fn execute_statement(
        &mut self,
        statement: ParsedStatement,
    ) -> Result<StatementResult> {
        let started = Instant::now();
        let mut result = match self.execute_streaming(statement).await? {
            Output::Rows {
                tag, seq, stream, ..
            } => {
                let schema = stream.schema();
                let batches = datafusion::physical_plan::common::collect(stream)
                    .await
                    .inspect_err(|_| self.abort_transaction())?;
                StatementResult::rows(&tag, schema, batches, seq)
            }
            Output::Done(result) => result,
        };
        result.elapsed = started.elapsed();
        Ok(result)
    }

    /// Run one parsed statement; a query's rows come back as a stream that
    /// computes them as it is polled (and stops when dropped). Inside a
    /// transaction block, a failing statement aborts the block (25P02).
    pub async fn execute_streaming(&mut self, statement: ParsedStatement) -> Result<Output> {
        if let Some(sql) = statement.sql()
            && let Some(done) = self.transaction_control(sql).await?
        {
            return Ok(Output::Done(done));
        }
        if self.txn.lock().as_ref().is_some_and(|t| t.is_aborted()) {
            return Err(Error::InFailedTransaction);
        }
        let result = self.run_statement(statement).await;
        if result.is_err() {
            self.abort_transaction();
        }
        result
    }

    /// Inside a block, make `stream` abort the block if it fails while
    /// streaming (after its statement has returned).
    fn flag_failures(&self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let Some(flag) = self.txn.lock().as_ref().map(|t| t.failure_flag()) else {
            return stream;
        };
        let schema = stream.schema();
        let flagged = futures::StreamExt::inspect(stream, move |batch| {
            if batch.is_err() {
                flag.store(true, std::sync::atomic::Ordering::Release);
            }
        });
        Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, flagged))
    }

    /// Run a prepared statement with `params` bound to its placeholders
    /// (as typed values: nothing is spliced into text).
    pub async fn execute_prepared(
        &mut self,
        prepared: &Prepared,
        params: &[ScalarValue],
    ) -> Result<Output> {
        super::params::check_count(prepared.parameter_count, params.len())?;
        let output = match self.execute_cached(prepared, params).await? {
            Some(output) => output,
            None => {
                let _bound = BoundParams::new(&self.snapshot, params);
                self.execute_streaming(prepared.statement.clone()).await?
            }
        };
        check_result_columns(prepared, &output)?;
        Ok(output)
    }

    /// Run a prepared query from its kept plan, re-bound to the latest
    /// snapshot; None when it has none or it cannot be used now.
    async fn execute_cached(
        &mut self,
        prepared: &Prepared,
        params: &[ScalarValue],
    ) -> Result<Option<Output>> {
        let Some(cached) = prepared.plan.as_ref().filter(|_| self.may_reuse_plans()) else {
            return Ok(None);
        };
        let seq = self.db.visible_seq();
        let Some(plan) = cached.at(&self.db, seq)? else {
            return Ok(None);
        };
        self.snapshot.set(seq);
        self.snapshot.set_view(None);
        let plan = super::params::bind_plan(plan, params)?;
        let stream = self.stream_plan(plan).await?;
        let tag = prepared.statement.sql().map(statement_tag);
        Ok(Some(Output::Rows {
            tag: tag.unwrap_or_else(|| "SELECT".into()),
            seq,
            stream,
            live: false,
        }))
    }

    /// Kept plans read the latest commit: not inside a transaction block
    /// (own writes, pinned snapshots) nor under `driftdb.as_of`.
    fn may_reuse_plans(&self) -> bool {
        self.as_of.is_none() && self.txn.lock().is_none()
    }

    /// Run a prepared statement once per parameter set. An `INSERT …
    /// VALUES` of one row becomes one insert of every set's row (one
    /// commit); any other statement runs once per set. Returns the rows
    /// affected in all.
    pub async fn execute_prepared_rows(
        &mut self,
        prepared: &Prepared,
        rows: &[Vec<ScalarValue>],
    ) -> Result<u64> {
        for row in rows {
            super::params::check_count(prepared.parameter_count, row.len())?;
        }
        if let Some(Statement::Insert(insert)) = prepared.statement.sql()
            && dml::is_single_row_values(insert)
            && !prepared.history_parameters
        {
            self.snapshot
                .set_history(prepared.statement.history.clone());
            self.begin_internal_write()?;
            let overriding = prepared.statement.overriding;
            let result = dml::insert_rows(self, insert.clone(), rows, overriding)
                .await
                .inspect_err(|_| self.abort_transaction())?;
            return Ok(result.rows_affected.unwrap_or(0));
        }
        // Every set or none: outside a transaction block, the sets run in
        // one of their own, committed at the end (rolled back on any error,
        // or when this future is dropped midway).
        let mut block = ImplicitBlock::begin(self);
        let mut count = 0;
        for row in rows {
            let output = self.execute_prepared(prepared, row).await?;
            if let Output::Done(done) = output {
                count += done.rows_affected.unwrap_or(0);
            }
        }
        if block.open {
            self.commit_transaction().await?;
            block.open = false;
        }
        Ok(count)
    }

    /// Mark the open transaction block (if any) failed.
    pub fn abort_transaction(&self) {
        if let Some(txn) = self.txn.lock().as_mut() {
            txn.abort();
        }
    }

    async fn run_statement(&mut self, parsed: ParsedStatement) -> Result<Output> {
        self.snapshot.set_history(parsed.history.clone());
        let overriding = parsed.overriding;
        let statement = match parsed.body {
            Body::Sql(statement) => *statement,
            Body::AlterSequence(alter) => {
                self.pin_now();
                let done = super::sequence_ddl::alter_sequence(self, &alter).await?;
                return Ok(Output::Done(done));
            }
            // Boxed, as the larger statements are (see below).
            Body::Compact(name) => return Box::pin(super::maintenance::compact(self, &name)).await,
            Body::Vacuum(vacuum) => {
                return Box::pin(super::maintenance::vacuum(self, &vacuum)).await;
            }
            Body::Version(statement) => {
                self.pin_now();
                let done = Box::pin(super::versions::execute(self, &statement)).await?;
                return Ok(Output::Done(done));
            }
            Body::RestoreTable(restore) => {
                self.pin_now();
                let done = Box::pin(super::restore::restore_table(self, &restore)).await?;
                return Ok(Output::Done(done));
            }
        };
        super::params::refuse_placeholders_in_ddl(&statement, &parsed.history)?;
        let seq = self.begin_statement(&statement)?;
        if let Some(done) = self.custom_settings.run(&statement, seq) {
            return Ok(Output::Done(done?));
        }
        match statement {
            Statement::CreateTable(create) => {
                Ok(Output::Done(ddl::create_table(self, create).await?))
            }
            Statement::Drop {
                object_type,
                if_exists,
                names,
                cascade,
                ..
            } => Ok(Output::Done(
                Box::pin(ddl::drop_objects(
                    self,
                    object_type,
                    if_exists,
                    names,
                    cascade,
                ))
                .await?,
            )),
            Statement::AlterTable(alter) => {
                Ok(Output::Done(Box::pin(ddl::alter_table(self, alter)).await?))
            }
            Statement::CreateView(view) => Ok(Output::Done(
                Box::pin(ddl::create_view(self, view, &parsed.text)).await?,
            )),
            Statement::CreateSequence {
                temporary: false,
                if_not_exists,
                name,
                data_type,
                sequence_options,
                owned_by,
            } => Ok(Output::Done(
                super::sequence_ddl::create_sequence(
                    self,
                    if_not_exists,
                    &name,
                    data_type.as_ref(),
                    &sequence_options,
                    owned_by.as_ref(),
                )
                .await?,
            )),
            Statement::Insert(insert) => Ok(Output::Done(
                Box::pin(dml::insert(self, insert, overriding)).await?,
            )),
            Statement::Update(update) => {
                Ok(Output::Done(Box::pin(dml::update(self, update)).await?))
            }
            Statement::Delete(delete) => {
                Ok(Output::Done(Box::pin(dml::delete(self, delete)).await?))
            }
            Statement::Truncate(truncate) => Ok(Output::Done(dml::truncate(self, truncate).await?)),
            // Boxed, as the larger statements are: their futures would
            // otherwise all live inside this one, on the caller's stack.
            Statement::Merge(merge) => Ok(Output::Done(
                Box::pin(super::merge::merge(self, merge)).await?,
            )),
            Statement::Set(ast::Set::SingleAssignment {
                variable, values, ..
            }) if variable.to_string().eq_ignore_ascii_case(AS_OF_SETTING) => {
                Ok(Output::Done(self.set_as_of(values).await?))
            }
            Statement::ShowTables { .. } => Ok(Output::Done(self.show_tables(seq)?)),
            Statement::CreateIndex(index) => Ok(Output::Done(
                Box::pin(super::index_ddl::create_index(self, index)).await?,
            )),
            Statement::Copy {
                source,
                to,
                target,
                options,
                legacy_options,
                ..
            } => {
                let copy = super::files::copy::CopyStatement {
                    source,
                    to,
                    target,
                    options,
                    legacy_options,
                };
                Ok(Output::Done(
                    Box::pin(super::files::copy::copy(self, copy)).await?,
                ))
            }
            Statement::CreateSchema { .. } => Err(Error::unsupported(
                "CREATE SCHEMA: every table lives in schema public",
            )),
            other => {
                let tag = statement_tag(&other);
                let (stream, live) = self.read_stream(other).await?;
                Ok(Output::Rows {
                    tag,
                    seq,
                    stream: self.flag_failures(stream),
                    live,
                })
            }
        }
    }

    /// Pin the snapshot of "now" (with the open block's overlay) for work
    /// that is not a sqlparser statement.
    fn pin_now(&mut self) {
        let seq = self.now_seq();
        self.snapshot.set(seq);
    }

    /// Pick and pin the snapshot a statement reads: reads honour
    /// `driftdb.as_of`; otherwise the open transaction decides (see
    /// [`Transaction::statement_seq`]); outside one, the latest commit.
    fn begin_statement(&mut self, statement: &Statement) -> Result<u64> {
        let seq = match (is_write(statement), self.as_of) {
            (false, Some(target)) => resolve_target(&self.db, target)?,
            _ => self.now_seq(),
        };
        self.snapshot.set(seq);
        Ok(seq)
    }

    /// Pin the snapshot a read that is not a statement sees (an export of
    /// a table): as a query's, honouring `driftdb.as_of`.
    pub(crate) fn begin_read(&mut self) -> Result<u64> {
        let seq = match self.as_of {
            Some(target) => resolve_target(&self.db, target)?,
            None => self.now_seq(),
        };
        self.snapshot.set(seq);
        Ok(seq)
    }

    /// The snapshot a statement reading "now" uses, with the transaction's overlay installed.
    fn now_seq(&self) -> u64 {
        let latest = self.db.visible_seq();
        let mut txn = self.txn.lock();
        let Some(txn) = txn.as_mut() else {
            self.snapshot.set_view(None);
            return latest;
        };
        let seq = txn.statement_seq(latest);
        self.snapshot.set_view(txn.view(&self.db, seq));
        seq
    }

    /// Parse `sql` (one statement), number its placeholders and, for a query,
    /// plan it to learn its result schema and parameter types.
    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared> {
        let mut parsed = parse_statement(sql)?;
        if let Some(statement) = parsed.sql() {
            super::params::refuse_placeholders_in_ddl(statement, &parsed.history)?;
        }
        let placeholders = match &mut parsed.body {
            Body::Sql(statement) => {
                super::params::number_placeholders(statement, Arc::make_mut(&mut parsed.history))?
            }
            _ => super::params::Placeholders::default(),
        };
        let statement = parsed.sql().cloned();
        let mut prepared = Prepared {
            is_query: statement.as_ref().is_some_and(is_query),
            statement: parsed,
            parameter_count: placeholders.count,
            parameter_types: vec![None; placeholders.count],
            schema: Arc::new(Schema::empty()),
            plan: None,
            history_parameters: placeholders.in_history,
        };
        let plan_now = prepared.is_query && !placeholders.in_history;
        if let Some(statement) = statement.filter(|_| plan_now) {
            let epoch = self.db.schema_epoch();
            self.begin_statement(&statement)?;
            self.snapshot
                .set_history(prepared.statement.history.clone());
            let mut statement = statement;
            name_statement(&mut statement);
            let plan = self.plan_unbound(statement).await?;
            if self.may_reuse_plans() {
                prepared.plan = CachedPlan::new(&plan, epoch).map(Arc::new);
            }
            prepared.schema = self.result_schema(&plan).await;
            for (name, data_type) in plan.get_parameter_types()? {
                let index = name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok());
                if let Some(slot) = index.and_then(|n| prepared.parameter_types.get_mut(n - 1)) {
                    *slot = data_type;
                }
            }
        }
        Ok(prepared)
    }

    /// The columns `plan` returns when it runs: those of its physical plan
    /// (type coercion and functions such as `round(d, 1)` decide types
    /// only then). A plan whose placeholders keep it from being planned
    /// that far gives its analyzed columns, or its own.
    async fn result_schema(&self, plan: &LogicalPlan) -> SchemaRef {
        let schema = self.planned_schema(plan).await;
        public_schema(&schema).unwrap_or(schema)
    }

    /// [`Self::result_schema`] under the planner's (internal) names.
    async fn planned_schema(&self, plan: &LogicalPlan) -> SchemaRef {
        let state = self.ctx.state();
        if let Ok(physical) = state.create_physical_plan(plan).await {
            return physical.schema();
        }
        let analyzed =
            state
                .analyzer()
                .execute_and_check(plan.clone(), state.config_options(), |_, _| {});
        let schema = match &analyzed {
            Ok(analyzed) => analyzed.schema(),
            Err(_) => plan.schema(),
        };
        Arc::new(schema.as_arrow().clone())
    }

    /// The result schema of view `name` as of now: its stored definition
    /// parsed and planned (None when there is no such view).
    pub async fn view_schema(&mut self, name: &str) -> Result<Option<SchemaRef>> {
        self.pin_now();
        let Some(view) = self.view_def(name) else {
            return Ok(None);
        };
        let query = super::parser::select_all_from(&view.name)?;
        let plan = self.plan_unbound(Statement::Query(Box::new(query))).await?;
        Ok(Some(self.result_schema(&plan).await))
    }

    /// `SET driftdb.as_of = <version | timestamp | 'latest' | DEFAULT>`.
    async fn set_as_of(&mut self, values: Vec<ast::Expr>) -> Result<StatementResult> {
        let [value] = values.as_slice() else {
            return Err(Error::InvalidArgument {
                message: "SET driftdb.as_of takes one value".into(),
            });
        };
        if resets_as_of(value) {
            self.as_of = None;
            return Ok(StatementResult::done("SET", None, None));
        }
        let expr = super::plans::plan_expr(self, value, &datafusion::common::DFSchema::empty())?;
        let target = target_of(&self.db, &eval_constant(expr)?)?;
        let seq = resolve_target(&self.db, target)?;
        self.as_of = Some(target);
        Ok(StatementResult::done("SET", None, Some(seq)))
    }

    /// Append Arrow batches to `table` in one commit (bulk ingest; columns matched by name).
    pub async fn append(
        &mut self,
        table: &str,
        batches: &[RecordBatch],
    ) -> Result<StatementResult> {
        self.begin_internal_write()?;
        dml::append_batches(self, table, batches)
            .await
            .inspect_err(|_| self.abort_transaction())
    }

    /// Bulk-ingest Arrow batches into `table` in one commit (see [`IngestMode`]).
    pub async fn ingest(
        &mut self,
        table: &str,
        mode: super::IngestMode,
        schema: &Schema,
        batches: &[RecordBatch],
    ) -> Result<StatementResult> {
        self.begin_internal_write()?;
        super::ingest::ingest(self, table, mode, schema, batches)
            .await
            .inspect_err(|_| self.abort_transaction())
    }

    /// Start a write that does not come from SQL text (append, ingest).
    fn begin_internal_write(&mut self) -> Result<()> {
        if self.txn.lock().as_ref().is_some_and(|t| t.is_aborted()) {
            return Err(Error::InFailedTransaction);
        }
        self.pin_now();
        Ok(())
    }

    /// Read as of `point` from now on, as `SET driftdb.as_of` does: a
    /// version number, a tag's name or a timestamp (None: the latest).
    /// Returns the version it names.
    pub fn read_as_of(&mut self, point: Option<&str>) -> Result<Option<u64>> {
        let Some(point) = point else {
            self.as_of = None;
            return Ok(None);
        };
        let target = match point.trim().parse::<u64>() {
            Ok(seq) => Target::Seq(seq),
            Err(_) => target_of(&self.db, &ScalarValue::Utf8(Some(point.to_string())))?,
        };
        let seq = resolve_target(&self.db, target)?;
        self.as_of = Some(target);
        Ok(Some(seq))
    }

    /// The session's time-travel default, if any.
    pub fn as_of(&self) -> Option<Target> {
        self.as_of
    }

    fn show_tables(&self, seq: u64) -> Result<StatementResult> {
        let (tables, views) = self.db.relation_names_at(seq);
        let kinds = tables
            .iter()
            .map(|_| "table")
            .chain(views.iter().map(|_| "view"));
        let names: Vec<&str> = tables
            .iter()
            .chain(views.iter())
            .map(String::as_str)
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(names)),
                Arc::new(StringArray::from_iter_values(kinds)),
            ],
        )?;
        Ok(StatementResult::rows(
            "SHOW TABLES",
            schema,
            vec![batch],
            seq,
        ))
    }

    /// Run one read-only statement and stream its result, batch by batch,
    /// instead of collecting it. Returns the snapshot it reads and the stream.
    pub async fn query_stream(&mut self, sql: &str) -> Result<(u64, SendableRecordBatchStream)> {
        let parsed = parse_statement(sql)?;
        let Some(statement) = parsed.sql().cloned() else {
            return Err(Error::InvalidArgument {
                message: "expected a query".into(),
            });
        };
        self.snapshot.set_history(parsed.history.clone());
        let seq = self.begin_statement(&statement)?;
        Ok((seq, self.read_stream(statement).await?.0))
    }

    /// Plan a read-only statement (DDL and DML refused) and start it;
    /// also whether it follows a change feed live.
    async fn read_stream(
        &self,
        mut statement: Statement,
    ) -> Result<(SendableRecordBatchStream, bool)> {
        name_statement(&mut statement);
        let plan = self.plan(statement).await?;
        let (plan, live) = match self.follow_feeds.load(std::sync::atomic::Ordering::Relaxed) {
            true => crate::temporal::live::settle(plan)?,
            false => (plan, false),
        };
        Ok((self.stream_plan(plan).await?, live))
    }

    /// Start a bound read plan (see [`Self::plan`]).
    pub(crate) async fn stream_read_plan(
        &self,
        plan: LogicalPlan,
    ) -> Result<SendableRecordBatchStream> {
        self.stream_plan(plan).await
    }

    /// Run a bound read plan within the session's query memory limit.
    async fn stream_plan(&self, plan: LogicalPlan) -> Result<SendableRecordBatchStream> {
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .verify_plan(&plan)?;
        let Some(limit) = self
            .query_memory_bytes
            .filter(|_| !is_statement_plan(&plan))
        else {
            let frame = self.ctx.execute_logical_plan(plan).await?;
            return Ok(public_stream(frame.execute_stream().await?));
        };
        let state = self.ctx.state();
        let physical = state.create_physical_plan(&plan).await?;
        let task = TaskContext::from(&state).with_runtime(query_runtime(&state, limit)?);
        Ok(public_stream(datafusion::physical_plan::execute_stream(
            physical,
            Arc::new(task),
        )?))
    }

    /// Plan a statement with DataFusion (through DriftDB's relation
    /// planner), with the statement's parameters bound.
    pub(crate) async fn plan(&self, statement: Statement) -> Result<LogicalPlan> {
        let plan = self.plan_unbound(statement).await?;
        self.bind(plan)
    }

    /// Plan a statement, leaving its `$n` placeholders in the plan.
    async fn plan_unbound(&self, statement: Statement) -> Result<LogicalPlan> {
        // Boxed: listing objects is a large future, and every statement
        // plans through here (most with nothing to list).
        Box::pin(
            self.files
                .resolve_objects(&statement, self.ctx.runtime_env().as_ref()),
        )
        .await?;
        let statement = datafusion::sql::parser::Statement::Statement(Box::new(statement));
        Ok(self.ctx.state().statement_to_plan(statement).await?)
    }

    /// Plan a query, leaving its placeholders (bound per parameter set by the caller).
    pub(crate) async fn plan_unbound_query(&self, query: Box<ast::Query>) -> Result<LogicalPlan> {
        self.plan_unbound(Statement::Query(query)).await
    }

    /// Bind the running statement's parameter values to `plan`'s placeholders.
    pub(crate) fn bind(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        super::params::bind_plan(plan, &self.snapshot.params())
    }

    /// Plan the read of a write: `query` names the written table at
    /// `target`, which is scanned with its system columns.
    pub(crate) async fn plan_write_source(
        &self,
        query: ast::Query,
        target: sqlparser::tokenizer::Location,
    ) -> Result<LogicalPlan> {
        self.snapshot.set_write_target(Some(target));
        let plan = self.plan_unbound(Statement::Query(Box::new(query))).await;
        self.snapshot.set_write_target(None);
        plan
    }

    /// Run a bound plan to the end; returns the columns it produced (those
    /// of its physical plan: the analyzer may have changed a type the
    /// logical plan shows, e.g. `sum(bigint)`) and its batches.
    pub(crate) async fn collect_plan(
        &self,
        plan: LogicalPlan,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let stream = self
            .ctx
            .execute_logical_plan(plan)
            .await?
            .execute_stream()
            .await?;
        let schema = stream.schema();
        // The rows are a commit's: refused (54000) once their bytes alone
        // pass the largest log frame, rather than held until the commit.
        let limit = self.db.limits().log_frame_bytes_max as u64;
        let mut stream = stream;
        let (mut batches, mut bytes) = (Vec::new(), 0u64);
        while let Some(batch) = futures::StreamExt::next(&mut stream).await {
            let batch = batch?;
            for column in batch.columns() {
                bytes += column.to_data().get_slice_memory_size()? as u64;
            }
            if bytes > limit {
                return Err(Error::CommitTooLarge { bytes, limit });
            }
            batches.push(batch);
        }
        Ok((schema, batches))
    }

    /// Run an internal read (parameters bound); returns its batches.
    pub(crate) async fn run_plan(&self, plan: LogicalPlan) -> Result<Vec<RecordBatch>> {
        let plan = self.bind(plan)?;
        Ok(self.ctx.execute_logical_plan(plan).await?.collect().await?)
    }

    /// Commit a statement's writes, or fold them into the open transaction.
    /// Returns the commit's seq (None inside a transaction block).
    pub(crate) async fn commit(&self, writes: WriteSet) -> Result<Option<u64>> {
        let view = self.snapshot.view();
        self.check_constraints(&writes, view.as_deref())?;
        drop(view);
        if let Some(txn) = self.txn.lock().as_mut() {
            // The statement is done reading; release the overlay so folding need not copy it.
            self.snapshot.set_view(None);
            let tag = writes.kind.clone();
            txn.absorb(&self.db, writes, &tag)?;
            return Ok(None);
        }
        let checks = CommitChecks {
            since: self.statement_seq(),
            reads: Vec::new(),
        };
        Ok(Some(self.db.commit_statement(writes, &checks).await?.seq))
    }

    /// The table called `name` as the current statement sees it.
    pub(crate) fn table_snapshot(&self, name: &str) -> Option<crate::db::TableSnapshot> {
        let view = self.snapshot.view();
        self.db
            .table_snapshot_in(name, self.statement_seq(), view.as_deref())
    }

    /// An upper bound on the rows `snapshot`'s table holds for the current
    /// statement: its committed live rows plus those the open transaction
    /// inserted (rows the transaction retired are still counted).
    pub(crate) fn row_count_upper_bound(&self, snapshot: &crate::db::TableSnapshot) -> u64 {
        let own = self.snapshot.view().and_then(|view| {
            view.own(snapshot.def.id).map(|own| {
                own.rows
                    .iter()
                    .map(|b| b.batch.num_rows() as u64)
                    .sum::<u64>()
            })
        });
        snapshot.live_rows + own.unwrap_or(0)
    }

    /// Whether a table called `name` exists for the current statement.
    pub(crate) fn table_exists(&self, name: &str) -> bool {
        let view = self.snapshot.view();
        self.db
            .table_exists_in(name, self.statement_seq(), view.as_deref())
    }

    /// The sequence called `name` as the current statement sees it.
    pub(crate) fn sequence_def(&self, name: &str) -> Option<crate::catalog::SequenceDef> {
        let view = self.snapshot.view();
        self.db
            .sequence_in(name, self.statement_seq(), view.as_deref())
    }

    /// The view called `name` as the current statement sees it.
    pub(crate) fn view_def(&self, name: &str) -> Option<crate::catalog::ViewDef> {
        let view = self.snapshot.view();
        self.db.view_in(name, self.statement_seq(), view.as_deref())
    }

    /// Whether the current statement can see any FOREIGN KEY at all.
    pub(crate) fn any_foreign_keys(&self) -> bool {
        let view = self.snapshot.view();
        self.db
            .any_foreign_keys_in(self.statement_seq(), view.as_deref())
    }

    /// Every (table, FOREIGN KEY) referencing table `parent`, as the current statement sees them.
    pub(crate) fn referencing(
        &self,
        parent: u64,
    ) -> Vec<(crate::catalog::TableDef, crate::catalog::ForeignKeyDef)> {
        let view = self.snapshot.view();
        self.db
            .referencing_in(parent, self.statement_seq(), view.as_deref())
    }

    /// Table `id` as the current statement sees it.
    pub(crate) fn table_by_id(&self, id: u64) -> Option<crate::catalog::TableDef> {
        let view = self.snapshot.view();
        self.db
            .table_by_id_in(id, self.statement_seq(), view.as_deref())
    }

    /// The keys rows `rowids` of `def` hold under its UNIQUE constraint `c`.
    pub(crate) fn unique_keys_of_rows(
        &self,
        def: &crate::catalog::TableDef,
        c: usize,
        rowids: &[u64],
    ) -> Result<Vec<Option<crate::txn::PkKey>>> {
        let view = self.snapshot.view();
        self.db
            .unique_keys_of_rows_in(def, c, rowids, view.as_deref())
    }

    /// Whether each key of `def`'s UNIQUE constraint `c` is held for the current statement.
    pub(crate) fn unique_keys_held(
        &self,
        def: &crate::catalog::TableDef,
        c: usize,
        keys: &[&[u8]],
    ) -> Result<Vec<bool>> {
        let view = self.snapshot.view();
        self.db.unique_keys_held_in(def, c, keys, view.as_deref())
    }

    /// Whether a transaction block is open.
    pub(crate) fn in_transaction_block(&self) -> bool {
        self.txn.lock().is_some()
    }

    /// The `_rowid` holding each key of table `table_id`, counting this session's open transaction.
    pub(crate) fn lookup_primary_keys(
        &self,
        table_id: u64,
        keys: &crate::txn::KeyColumn,
    ) -> Vec<Option<u64>> {
        let view = self.snapshot.view();
        self.db
            .lookup_primary_keys_in(table_id, keys, view.as_deref())
    }

    /// Evaluate the CHECK constraints of every table the writes insert into.
    fn check_constraints(&self, writes: &WriteSet, view: Option<&TxnView>) -> Result<()> {
        for write in &writes.writes {
            let crate::txn::Write::Insert {
                table_id, batch, ..
            } = write
            else {
                continue;
            };
            let created = writes.writes.iter().find_map(|w| match w {
                crate::txn::Write::CreateTable(def) if def.id == *table_id => Some(def),
                _ => None,
            });
            let checked = match created {
                Some(def) => Some(std::borrow::Cow::Borrowed(def)),
                None => self
                    .db
                    .checked_table_def(*table_id, view)
                    .map(std::borrow::Cow::Owned),
            };
            if let Some(def) = checked {
                let def = changed_by(def.into_owned(), writes);
                crate::constraints::check::check_rows(&self.ctx, &def, batch)?;
            }
        }
        Ok(())
    }

    /// The snapshot the current statement reads.
    pub(crate) fn statement_seq(&self) -> u64 {
        self.snapshot.get()
    }

    /// A copy of the catalog the current statement sees.
    pub(crate) fn catalog_now(&self) -> crate::catalog::Catalog {
        let view = self.snapshot.view();
        self.db.catalog_in(self.statement_seq(), view.as_deref())
    }

    /// The columns of view `name`, planned through `catalog` in place of
    /// the statement's own (None: the statement's own), with no history
    /// clause of the statement in force.
    pub(crate) async fn view_columns(
        &self,
        name: &str,
        catalog: Option<Arc<crate::catalog::Catalog>>,
    ) -> Result<Vec<(String, arrow::datatypes::DataType)>> {
        let original = self.snapshot.view();
        if let Some(catalog) = catalog {
            let overlay = crate::txn::TxnView {
                seq: self.statement_seq(),
                catalog: Some(catalog),
                tables: original
                    .as_ref()
                    .map(|v| v.tables.clone())
                    .unwrap_or_default(),
                reads: None,
            };
            self.snapshot.set_view(Some(Arc::new(overlay)));
        }
        let history = self.snapshot.set_history(Arc::default());
        let planned = match super::parser::select_all_from(name) {
            Ok(query) => self.plan_unbound(Statement::Query(Box::new(query))).await,
            Err(e) => Err(e),
        };
        self.snapshot.set_history(history);
        self.snapshot.set_view(original);
        Ok(super::output_names::public_columns(planned?.schema()))
    }
}

/// `def` with the columns and CHECKs `writes` give it (an `ALTER TABLE`
/// that rewrites the table's rows checks them against its new definition).
fn changed_by(mut def: crate::catalog::TableDef, writes: &WriteSet) -> crate::catalog::TableDef {
    use crate::txn::Write;
    for write in &writes.writes {
        match write {
            Write::SetColumns {
                table_id, columns, ..
            } if *table_id == def.id => def.versions.push(crate::catalog::SchemaVersion {
                seq: u64::MAX,
                columns: columns.clone(),
            }),
            Write::SetChecks { table_id, checks } if *table_id == def.id => {
                def.checks = checks.clone();
            }
            _ => {}
        }
    }
    def
}

/// A prepared query must return the columns it announced when it was
/// prepared (PostgreSQL: "cached plan must not change result type").
/// `current_database()`: the one database a DriftDB server holds, named
/// as its catalog.
fn current_database() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "current_database",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::from(CATALOG_NAME)))),
    )
}

/// A transaction block a session opened for its own statements; rolled
/// back when dropped while `open` (an error, or the caller gave up).
struct ImplicitBlock {
    txn: Arc<Mutex<Option<Transaction>>>,
    snapshot: Arc<StatementSnapshot>,
    open: bool,
}

impl ImplicitBlock {
    /// Open a block unless `session` is in one already (then `open` is false).
    fn begin(session: &Session) -> Self {
        let mut txn = session.txn.lock();
        let open = txn.is_none();
        if open {
            *txn = Some(Transaction::new(session.txn_defaults));
        }
        Self {
            txn: session.txn.clone(),
            snapshot: session.snapshot.clone(),
            open,
        }
    }
}

impl Drop for ImplicitBlock {
    fn drop(&mut self) {
        if self.open {
            self.txn.lock().take();
            self.snapshot.set_view(None);
        }
    }
}

/// A statement's parameter values, installed for its planning; cleared
/// when dropped, also when the statement is cancelled midway, so no later
/// statement plans with them.
struct BoundParams(Arc<StatementSnapshot>);

impl BoundParams {
    fn new(snapshot: &Arc<StatementSnapshot>, params: &[ScalarValue]) -> Self {
        snapshot.set_params(Arc::from(params.to_vec()));
        Self(snapshot.clone())
    }
}

impl Drop for BoundParams {
    fn drop(&mut self) {
        self.0.set_params(Arc::from(Vec::new()));
    }
}

fn check_result_columns(prepared: &Prepared, output: &Output) -> Result<()> {
    let Output::Rows { stream, .. } = output else {
        return Ok(());
    };
    let announced = prepared.schema.fields();
    let now = stream.schema();
    let same = announced.len() == now.fields().len()
        && announced.iter().zip(now.fields()).all(|(a, b)| {
            // A type the plan could not know before its parameters were
            // bound is open, and so are a decimal's precision and scale
            // (`round(d, $1)` decides them from the value).
            let open = a.data_type() == &DataType::Null
                || (a.data_type().is_decimal() && b.data_type().is_decimal());
            a.name() == b.name() && (open || a.data_type() == b.data_type())
        });
    match same || !prepared.is_query || prepared.history_parameters {
        true => Ok(()),
        false => Err(Error::unsupported(
            "running a prepared query whose result columns changed since it was prepared \
             (prepare it again)",
        )),
    }
}

/// `SET driftdb.as_of = DEFAULT | NULL | 'latest' | latest` go back to reading the latest commit.
fn resets_as_of(value: &ast::Expr) -> bool {
    match value {
        ast::Expr::Identifier(ident) => {
            ident.quote_style.is_none()
                && ["default", "latest"].contains(&ident.value.to_ascii_lowercase().as_str())
        }
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Null => true,
            ast::Value::SingleQuotedString(text) => text.eq_ignore_ascii_case("latest"),
            _ => false,
        },
        _ => false,
    }
}

/// Statements that commit (and so always start from the latest snapshot).
fn is_write(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::CreateTable(_)
            | Statement::Drop { .. }
            | Statement::AlterTable(_)
            | Statement::CreateView(_)
            | Statement::CreateSequence { .. }
            | Statement::CreateIndex(_)
            | Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Truncate(_)
            | Statement::Merge(_)
            | Statement::Copy { to: false, .. }
    )
}

/// Statements whose result is rows computed by DataFusion.
pub fn is_query(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Query(_) | Statement::Explain { .. } | Statement::ExplainTable { .. }
    )
}

/// DataFusion statement plans (`SET datafusion.…`) run in the context, not as operators.
fn is_statement_plan(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Statement(_))
}

/// A runtime sharing the session's caches and disk manager with its own
/// memory pool of `limit` bytes, so one query cannot starve the others.
fn query_runtime(state: &SessionState, limit: usize) -> Result<Arc<RuntimeEnv>> {
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(limit),
        NonZeroUsize::new(MEMORY_CONSUMERS_REPORTED).expect("non-zero"),
    );
    Ok(RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
        .with_memory_pool(Arc::new(pool))
        .build_arc()?)
}

/// How many of the largest memory consumers an out-of-memory error names.
const MEMORY_CONSUMERS_REPORTED: usize = 3;

pub(crate) fn statement_tag(statement: &Statement) -> String {
    match statement {
        Statement::Query(_) => "SELECT".into(),
        Statement::Explain { .. } => "EXPLAIN".into(),
        Statement::ExplainTable { .. } => "DESCRIBE".into(),
        Statement::Set(_) => "SET".into(),
        other => other
            .to_string()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase(),
    }
}
