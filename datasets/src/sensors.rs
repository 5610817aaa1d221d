//! "Sensors": readings that arrive late and get corrected.
//!
//! `sensors` sensors each measure once a minute (`measured_at`, the valid
//! time). Every simulation step is one arrival window and one commit (the
//! system time): most of the minute's readings arrive in it, a fraction
//! arrive one to `max_delay` steps late, and a fraction of readings that
//! already arrived are corrected (re-transmitted with a new value). A last
//! commit delivers whatever is still in flight. So what the database knew
//! about minute `m` at commit `c` differs from what it knows now, which is
//! the question "what did the dashboard show at 10:05 for 10:00?" asks.
//! Deterministic for a seed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use driftdb_engine::{Database, Session};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::progress::Progress;
use crate::{Error, Result};

/// The tables the sensors dataset creates, referenced before referencing.
pub const TABLES: [&str; 2] = ["sensors", "readings"];

/// Minutes in a day: `measured_at` wraps to the next day after this many steps.
const MINUTES_PER_DAY: u64 = 24 * 60;
/// Days the simulated month has (so timestamps stay in January 2026).
const DAYS_MAX: u64 = 31;
/// Sites the sensors are spread over.
const SITES: [&str; 4] = ["north", "south", "east", "west"];

/// How many sensors, for how long, and how unreliable their network is.
#[derive(Debug, Clone)]
pub struct SensorsConfig {
    pub sensors: u64,
    /// Minutes measured (one arrival window and one commit each).
    pub steps: u64,
    /// Share of readings that arrive late (0–1).
    pub late_fraction: f64,
    /// Latest arrival, in steps after the reading was taken.
    pub max_delay: u64,
    /// Share of arrived readings corrected per step (0–1).
    pub correction_fraction: f64,
    pub seed: u64,
}

/// One reading on its way.
#[derive(Debug, Clone, Copy)]
struct Reading {
    sensor: u64,
    minute: u64,
    value: f64,
}

/// Create `sensors` and `readings` in `db` and run the simulation.
pub async fn generate(
    db: &Database,
    config: &SensorsConfig,
    progress: &mut Progress,
) -> Result<()> {
    check(config)?;
    let mut session = Session::new(db);
    let mut rng = StdRng::seed_from_u64(config.seed);
    session
        .execute(
            "CREATE TABLE sensors (id BIGINT PRIMARY KEY, site TEXT NOT NULL); \
             CREATE TABLE readings (sensor_id BIGINT NOT NULL REFERENCES sensors, \
             measured_at TIMESTAMP NOT NULL, value DOUBLE NOT NULL, PRIMARY KEY (sensor_id, measured_at))",
        )
        .await?;
    let sensors: Vec<String> = (1..=config.sensors)
        .map(|id| format!("({id}, '{}')", SITES[id as usize % SITES.len()]))
        .collect();
    session
        .execute(&format!(
            "INSERT INTO sensors VALUES {}",
            sensors.join(", ")
        ))
        .await?;
    let mut in_flight: BTreeMap<u64, Vec<Reading>> = BTreeMap::new();
    let mut arrived: Vec<(u64, u64)> = Vec::new();
    for step in 0..config.steps {
        for sensor in 1..=config.sensors {
            let reading = Reading {
                sensor,
                minute: step,
                value: measure(sensor, step, &mut rng),
            };
            let delay = if rng.random_bool(config.late_fraction) {
                rng.random_range(1..=config.max_delay)
            } else {
                0
            };
            in_flight.entry(step + delay).or_default().push(reading);
        }
        let arriving = in_flight.remove(&step).unwrap_or_default();
        let corrections = pick_corrections(config, &arrived, &mut rng);
        session
            .execute(&window_sql(&arriving, &corrections))
            .await?;
        arrived.extend(arriving.iter().map(|r| (r.sensor, r.minute)));
        progress.add(arriving.len());
    }
    let stragglers: Vec<Reading> = in_flight.into_values().flatten().collect();
    if !stragglers.is_empty() {
        session.execute(&window_sql(&stragglers, &[])).await?;
        progress.add(stragglers.len());
    }
    Ok(())
}

fn check(config: &SensorsConfig) -> Result<()> {
    let fraction = 0.0..=1.0;
    if config.sensors == 0 || config.steps == 0 {
        return Err(Error::BadConfig(
            "sensors needs at least one sensor and one step".into(),
        ));
    }
    if config.steps > MINUTES_PER_DAY * DAYS_MAX {
        return Err(Error::BadConfig(format!(
            "at most {} steps (one month of minutes)",
            MINUTES_PER_DAY * DAYS_MAX
        )));
    }
    if !fraction.contains(&config.late_fraction) || !fraction.contains(&config.correction_fraction)
    {
        return Err(Error::BadConfig(
            "late and correction fractions lie between 0 and 1".into(),
        ));
    }
    if config.max_delay == 0 && config.late_fraction > 0.0 {
        return Err(Error::BadConfig(
            "late readings need a maximum delay of at least one step".into(),
        ));
    }
    Ok(())
}

/// A plausible temperature: a daily wave per sensor, plus noise, rounded to 0.01.
fn measure(sensor: u64, minute: u64, rng: &mut StdRng) -> f64 {
    let phase =
        (minute as f64 / MINUTES_PER_DAY as f64 + sensor as f64 / 7.0) * std::f64::consts::TAU;
    let value = 18.0 + 4.0 * phase.sin() + rng.random_range(-0.5..0.5);
    (value * 100.0).round() / 100.0
}

/// Readings (sensor, minute) already arrived that this step re-transmits.
fn pick_corrections(
    config: &SensorsConfig,
    arrived: &[(u64, u64)],
    rng: &mut StdRng,
) -> Vec<(u64, u64)> {
    if arrived.is_empty() {
        return Vec::new();
    }
    let count = (config.sensors as f64 * config.correction_fraction).round() as usize;
    let mut picked: Vec<(u64, u64)> = (0..count)
        .map(|_| arrived[rng.random_range(0..arrived.len())])
        .collect();
    picked.sort_unstable();
    picked.dedup();
    picked
}

/// One arrival window as one transaction: the arriving readings, then the corrections.
fn window_sql(arriving: &[Reading], corrections: &[(u64, u64)]) -> String {
    let mut sql = String::from("BEGIN; ");
    if !arriving.is_empty() {
        let rows: Vec<String> = arriving
            .iter()
            .map(|r| {
                format!(
                    "({}, TIMESTAMP '{}', {})",
                    r.sensor,
                    timestamp(r.minute),
                    r.value
                )
            })
            .collect();
        let _ = write!(sql, "INSERT INTO readings VALUES {}; ", rows.join(", "));
    }
    for (sensor, minute) in corrections {
        let _ = write!(
            sql,
            "UPDATE readings SET value = value + 0.25 WHERE sensor_id = {sensor} \
             AND measured_at = TIMESTAMP '{}'; ",
            timestamp(*minute)
        );
    }
    sql.push_str("COMMIT");
    sql
}

/// Minute `minute` of January 2026 as SQL timestamp text.
pub fn timestamp(minute: u64) -> String {
    let (day, minute_of_day) = (minute / MINUTES_PER_DAY, minute % MINUTES_PER_DAY);
    format!(
        "2026-01-{:02} {:02}:{:02}:00",
        day + 1,
        minute_of_day / 60,
        minute_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_become_january_timestamps() {
        assert_eq!(timestamp(0), "2026-01-01 00:00:00");
        assert_eq!(timestamp(61), "2026-01-01 01:01:00");
        assert_eq!(timestamp(MINUTES_PER_DAY + 5), "2026-01-02 00:05:00");
    }

    #[test]
    fn nonsense_configs_are_refused() {
        let good = SensorsConfig {
            sensors: 2,
            steps: 3,
            late_fraction: 0.1,
            max_delay: 2,
            correction_fraction: 0.0,
            seed: 1,
        };
        assert!(check(&good).is_ok());
        for bad in [
            SensorsConfig {
                sensors: 0,
                ..good.clone()
            },
            SensorsConfig {
                late_fraction: 1.5,
                ..good.clone()
            },
            SensorsConfig {
                max_delay: 0,
                ..good.clone()
            },
            SensorsConfig {
                steps: MINUTES_PER_DAY * DAYS_MAX + 1,
                ..good.clone()
            },
        ] {
            assert!(check(&bad).is_err(), "{bad:?}");
        }
    }
}
