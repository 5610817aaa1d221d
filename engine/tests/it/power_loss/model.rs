//! The workload of the power-loss tests and the model it is checked against.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::StdRng;

/// The first value the workload's sequence hands out (above every literal id).
pub(super) const SEQUENCE_START: i64 = 1_000_000;

/// One statement that commits, and how it changes the model.
#[derive(Debug, Clone)]
pub(super) enum Op {
    CreateTable(String),
    DropTable(String),
    AddColumn {
        table: String,
        column: String,
    },
    CreateSequence,
    Insert {
        table: String,
        ids: Vec<i64>,
    },
    Update {
        table: String,
        modulo: i64,
        rem: i64,
    },
    Delete {
        table: String,
        lo: i64,
        hi: i64,
    },
}

/// One step of the workload.
#[derive(Debug, Clone)]
pub(super) enum Action {
    Commit(Op),
    /// `SELECT nextval('ids')`, then insert a row with that id into the table.
    InsertFromSequence(String),
    Persist,
    /// `COMPACT TABLE` (rewrites files, writes a checkpoint, deletes files).
    Compact(String),
}

impl Op {
    pub(super) fn sql(&self) -> String {
        match self {
            Op::CreateTable(table) => format!(
                "CREATE TABLE {table} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, note TEXT)"
            ),
            Op::DropTable(table) => format!("DROP TABLE {table}"),
            Op::AddColumn { table, column } => {
                format!("ALTER TABLE {table} ADD COLUMN {column} BIGINT")
            }
            Op::CreateSequence => format!("CREATE SEQUENCE ids START {SEQUENCE_START}"),
            Op::Insert { table, ids } => {
                let rows: Vec<String> = ids
                    .iter()
                    .map(|id| format!("({id}, {}, 'n{id}')", id * 10))
                    .collect();
                format!(
                    "INSERT INTO {table} (id, v, note) VALUES {}",
                    rows.join(", ")
                )
            }
            Op::Update { table, modulo, rem } => format!(
                "UPDATE {table} SET v = v + 1, note = note || '+' WHERE id % {modulo} = {rem}"
            ),
            Op::Delete { table, lo, hi } => {
                format!("DELETE FROM {table} WHERE id BETWEEN {lo} AND {hi}")
            }
        }
    }
}

/// One row version: `(id, v, note)` written by commit `from`, retired by `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Version {
    pub(super) id: i64,
    pub(super) v: i64,
    pub(super) note: String,
    pub(super) from: u64,
    pub(super) to: Option<u64>,
}

/// One table of the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Table {
    pub(super) versions: Vec<Version>,
    /// Columns added after `id, v, note`.
    pub(super) added_columns: Vec<String>,
}

/// What the database must hold after some prefix of the commits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Model {
    pub(super) seq: u64,
    pub(super) tables: BTreeMap<String, Table>,
    pub(super) has_sequence: bool,
}

impl Model {
    pub(super) fn live_ids(&self, table: &str) -> Vec<i64> {
        self.tables.get(table).map_or_else(Vec::new, |t| {
            t.versions
                .iter()
                .filter(|v| v.to.is_none())
                .map(|v| v.id)
                .collect()
        })
    }

    /// Whether `op` changes anything (an UPDATE or DELETE that matches no
    /// row commits nothing).
    pub(super) fn changes(&self, op: &Op) -> bool {
        let live = |table: &str| self.live_ids(table).into_iter();
        match op {
            Op::Update { table, modulo, rem } => live(table).any(|id| id % modulo == *rem),
            Op::Delete { table, lo, hi } => live(table).any(|id| (*lo..=*hi).contains(&id)),
            _ => true,
        }
    }

    /// The model after `op` commits.
    pub(super) fn after(&self, op: &Op) -> Model {
        let mut next = self.clone();
        next.seq += 1;
        let seq = next.seq;
        let tables = &mut next.tables;
        match op {
            Op::CreateTable(name) => {
                tables.insert(name.clone(), Table::default());
            }
            Op::DropTable(name) => {
                tables.remove(name);
            }
            Op::AddColumn { table, column } => {
                table_mut(tables, table).added_columns.push(column.clone())
            }
            Op::CreateSequence => next.has_sequence = true,
            Op::Insert { table, ids } => {
                let versions = &mut table_mut(tables, table).versions;
                versions.extend(ids.iter().map(|id| Version {
                    id: *id,
                    v: id * 10,
                    note: format!("n{id}"),
                    from: seq,
                    to: None,
                }));
            }
            Op::Update { table, modulo, rem } => {
                let versions = &mut table_mut(tables, table).versions;
                let mut new = Vec::new();
                for old in versions
                    .iter_mut()
                    .filter(|v| v.to.is_none() && v.id % modulo == *rem)
                {
                    old.to = Some(seq);
                    new.push(Version {
                        v: old.v + 1,
                        note: format!("{}+", old.note),
                        from: seq,
                        to: None,
                        ..old.clone()
                    });
                }
                versions.extend(new);
            }
            Op::Delete { table, lo, hi } => {
                for old in &mut table_mut(tables, table).versions {
                    if old.to.is_none() && (*lo..=*hi).contains(&old.id) {
                        old.to = Some(seq);
                    }
                }
            }
        }
        next
    }
}

pub(super) fn table_mut<'a>(tables: &'a mut BTreeMap<String, Table>, name: &str) -> &'a mut Table {
    tables.entry(name.to_string()).or_default()
}

/// What a database has acknowledged over its lives so far.
#[derive(Debug, Clone, Default)]
pub(super) struct History {
    /// The state after the last acknowledged commit.
    pub(super) model: Model,
    /// Every value `nextval` handed out (none may be handed out again).
    pub(super) sequence_values: Vec<i64>,
}

/// The fixed workload CI sweeps: every kind of commit, four persists
/// (rotation, Parquet, checkpoint, then deleting old segments and checkpoints).
pub(super) fn sweep_workload() -> Vec<Action> {
    let t = || "t".to_string();
    let u = || "u".to_string();
    let insert = |table: String, ids: &[i64]| {
        Action::Commit(Op::Insert {
            table,
            ids: ids.to_vec(),
        })
    };
    let update = |table: String, modulo, rem| Action::Commit(Op::Update { table, modulo, rem });
    let delete = |table: String, lo, hi| Action::Commit(Op::Delete { table, lo, hi });
    vec![
        Action::Commit(Op::CreateTable(t())),
        insert(t(), &[1, 2, 3]),
        Action::Commit(Op::CreateSequence),
        insert(t(), &[4, 5]),
        update(t(), 2, 0),
        Action::InsertFromSequence(t()),
        Action::Persist,
        delete(t(), 1, 1),
        insert(t(), &[6, 7, 8]),
        update(t(), 3, 1),
        Action::Commit(Op::CreateTable(u())),
        insert(u(), &[1, 2]),
        Action::Persist,
        Action::InsertFromSequence(t()),
        delete(t(), 4, 6),
        Action::Commit(Op::AddColumn {
            table: u(),
            column: "w".into(),
        }),
        update(u(), 1, 0),
        Action::Persist,
        Action::Compact(t()),
        insert(t(), &[9]),
        update(t(), 2, 1),
        Action::Compact(t()),
        Action::Commit(Op::DropTable(u())),
        Action::Persist,
        insert(t(), &[10]),
        Action::Persist,
    ]
}

/// The actions of `list`, in turn.
pub(super) fn scripted(list: &[Action]) -> impl FnMut(&Model) -> Option<Action> + '_ {
    let mut actions = list.iter();
    move |_| actions.next().cloned()
}

/// Draws the next action of a randomized workload from the model so far.
pub(super) struct RandomWorkload {
    rng: StdRng,
    /// Actions left in this life.
    left: usize,
    /// The next literal id (never reused, whatever survived).
    next_id: i64,
}

impl RandomWorkload {
    pub(super) fn new(rng: StdRng) -> Self {
        Self {
            rng,
            left: 0,
            next_id: 1,
        }
    }

    /// Draw `actions` more actions (for the next life).
    pub(super) fn start_life(&mut self, actions: usize) {
        self.left = actions;
    }

    /// The next action, valid against `model` (None once the life's actions are drawn).
    pub(super) fn next_action(&mut self, model: &Model) -> Option<Action> {
        self.left = self.left.checked_sub(1)?;
        let tables: Vec<String> = model.tables.keys().cloned().collect();
        if tables.is_empty() {
            return Some(Action::Commit(Op::CreateTable("t".into())));
        }
        loop {
            if let Some(action) = self.draw(model, &tables) {
                return Some(action);
            }
        }
    }

    /// One weighted draw; None when the drawn kind does not fit the model.
    fn draw(&mut self, model: &Model, tables: &[String]) -> Option<Action> {
        let rng = &mut self.rng;
        let table = tables[rng.random_range(0..tables.len())].clone();
        let live = model.live_ids(&table);
        let action = match rng.random_range(0..24) {
            0..=6 => {
                let count = rng.random_range(1..=4);
                let ids = (self.next_id..self.next_id + count).collect();
                self.next_id += count;
                Action::Commit(Op::Insert { table, ids })
            }
            7..=10 if !live.is_empty() => {
                let id = live[rng.random_range(0..live.len())];
                let modulo = rng.random_range(1..=3);
                Action::Commit(Op::Update {
                    table,
                    modulo,
                    rem: id % modulo,
                })
            }
            11..=12 if !live.is_empty() => {
                let lo = live[rng.random_range(0..live.len())];
                let hi = lo + rng.random_range(0..3);
                Action::Commit(Op::Delete { table, lo, hi })
            }
            13..=14 if model.has_sequence => Action::InsertFromSequence(table),
            15 if !model.has_sequence => Action::Commit(Op::CreateSequence),
            16..=17 => Action::Persist,
            18 => Action::Compact(table),
            19 if tables.len() < 3 => {
                let name = (1..)
                    .map(|n| format!("t{n}"))
                    .find(|n| !tables.contains(n))?;
                Action::Commit(Op::CreateTable(name))
            }
            20 if table != "t" => Action::Commit(Op::DropTable(table)),
            21 => {
                let column = format!("c{}", model.seq);
                Action::Commit(Op::AddColumn { table, column })
            }
            _ => return None,
        };
        Some(action)
    }
}
