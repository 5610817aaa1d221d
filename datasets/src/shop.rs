//! "Shop": mutable business data with real history. Customers move between
//! cities; orders are placed and then move through `new → paid → shipped →
//! delivered` (or `new → cancelled`). Every step of the simulation is one
//! transaction, so the database ends up with one commit per step and a
//! history worth asking AS OF questions about. Deterministic for a seed.

use std::fmt::Write as _;

use driftdb_engine::{Database, Session};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Result;
use crate::progress::Progress;

/// The tables a shop creates, referenced before referencing.
pub const TABLES: [&str; 2] = ["customers", "orders"];

/// The statuses an order goes through, in order; `cancelled` only follows `new`.
pub const LIFECYCLE: [&str; 4] = ["new", "paid", "shipped", "delivered"];

/// Cities customers live in and move between.
const CITIES: [&str; 8] = [
    "Lisbon", "Oslo", "Lyon", "Turin", "Ghent", "Porto", "Graz", "Cork",
];

/// How big a shop to simulate.
#[derive(Debug, Clone)]
pub struct ShopConfig {
    pub customers: u64,
    /// Simulation steps, one commit each.
    pub steps: u64,
    pub orders_per_step: u64,
    pub seed: u64,
}

/// An order still moving through its lifecycle.
struct OpenOrder {
    id: u64,
    /// Index into [`LIFECYCLE`].
    stage: usize,
}

/// Create `customers` and `orders` in `db` and run the simulation.
pub async fn generate(db: &Database, config: &ShopConfig, progress: &mut Progress) -> Result<()> {
    if config.customers == 0 {
        return Err(crate::Error::BadConfig(
            "a shop needs at least one customer".into(),
        ));
    }
    let mut session = Session::new(db);
    let mut rng = StdRng::seed_from_u64(config.seed);
    session
        .execute(
            "CREATE TABLE customers (id BIGINT PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL); \
             CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL REFERENCES customers, \
             status TEXT NOT NULL, amount DECIMAL(12, 2) NOT NULL)",
        )
        .await?;
    let mut customers = String::from("INSERT INTO customers VALUES ");
    for id in 1..=config.customers {
        let city = CITIES[rng.random_range(0..CITIES.len())];
        let separator = if id == 1 { "" } else { ", " };
        let _ = write!(customers, "{separator}({id}, 'customer {id}', '{city}')");
    }
    session.execute(&customers).await?;
    let mut open: Vec<OpenOrder> = Vec::new();
    let mut next_order = 1;
    for _ in 0..config.steps {
        let sql = step_sql(config, &mut rng, &mut open, &mut next_order);
        session.execute(&sql).await?;
        progress.add(config.orders_per_step as usize);
    }
    Ok(())
}

/// One simulation step as one transaction: new orders, status changes, moves.
fn step_sql(
    config: &ShopConfig,
    rng: &mut StdRng,
    open: &mut Vec<OpenOrder>,
    next_order: &mut u64,
) -> String {
    let mut sql = String::from("BEGIN; ");
    // Advance about a third of the open orders by one stage; some new ones are cancelled.
    let mut by_status: Vec<Vec<u64>> = vec![Vec::new(); LIFECYCLE.len() + 1];
    open.retain_mut(|order| {
        if !rng.random_bool(0.35) {
            return true;
        }
        if order.stage == 0 && rng.random_bool(0.1) {
            by_status[LIFECYCLE.len()].push(order.id);
            return false;
        }
        order.stage += 1;
        by_status[order.stage].push(order.id);
        order.stage + 1 < LIFECYCLE.len()
    });
    for (stage, ids) in by_status.iter().enumerate() {
        if ids.is_empty() {
            continue;
        }
        let status = LIFECYCLE.get(stage).copied().unwrap_or("cancelled");
        let _ = write!(
            sql,
            "UPDATE orders SET status = '{status}' WHERE id IN ({}); ",
            join(ids)
        );
    }
    if config.orders_per_step > 0 {
        sql.push_str("INSERT INTO orders VALUES ");
        for n in 0..config.orders_per_step {
            let id = *next_order;
            *next_order += 1;
            let customer = rng.random_range(1..=config.customers);
            let cents: u64 = rng.random_range(100..100_000);
            let separator = if n == 0 { "" } else { ", " };
            let _ = write!(
                sql,
                "{separator}({id}, {customer}, 'new', {}.{:02})",
                cents / 100,
                cents % 100
            );
            open.push(OpenOrder { id, stage: 0 });
        }
        sql.push_str("; ");
    }
    // About one customer in a hundred moves.
    let movers: Vec<u64> = (0..config.customers.div_ceil(100))
        .map(|_| rng.random_range(1..=config.customers))
        .collect();
    let city = CITIES[rng.random_range(0..CITIES.len())];
    let _ = write!(
        sql,
        "UPDATE customers SET city = '{city}' WHERE id IN ({}); COMMIT",
        join(&movers)
    );
    sql
}

fn join(ids: &[u64]) -> String {
    ids.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
