//! The demo database: a small order book with a few commits of history, so
//! the first query in the README can travel in time.

use driftdb_engine::{Result, Session};

/// Statements that build the demo, one commit each.
const DEMO_SCRIPT: &[&str] = &[
    "CREATE TABLE customers (id INT PRIMARY KEY, name TEXT NOT NULL, city TEXT)",
    "INSERT INTO customers VALUES (1, 'Ada', 'London'), (2, 'Grace', 'New York'), (3, 'Edsger', 'Eindhoven')",
    "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, status TEXT NOT NULL, amount DECIMAL(10,2))",
    "INSERT INTO orders VALUES (100, 1, 'placed', 25.00), (101, 2, 'placed', 99.90), (102, 3, 'placed', 12.50)",
    "UPDATE orders SET status = 'shipped' WHERE id IN (100, 101)",
    "UPDATE customers SET city = 'Austin' WHERE id = 3",
    "DELETE FROM orders WHERE id = 102",
    "INSERT INTO orders VALUES (103, 1, 'placed', 42.00)",
];

/// Create the demo tables unless the database already has tables. Returns whether it did.
pub async fn create_demo(session: &mut Session) -> Result<bool> {
    let existing = session.execute_one("SHOW TABLES").await?;
    if existing.row_count() > 0 {
        return Ok(false);
    }
    for statement in DEMO_SCRIPT {
        session.execute(statement).await?;
    }
    Ok(true)
}

/// What to try first, printed when the demo shell opens.
pub const DEMO_HINT: &str = "\
Try:
  SELECT * FROM orders;
  SELECT * FROM orders VERSION AS OF 4;          -- before anything shipped
  SELECT * FROM orders FOR SYSTEM_TIME ALL;      -- every version, with _system_from/_system_to
  SELECT * FROM commits();
";
