//! The `driftdb` binary: `sql`, `demo`, `serve`, `check`, `backup`, `restore`, `load` and `export`.

use clap::Parser;
use driftdb_engine::{Database, Error, Session};
use driftdb_server::cli::{Cli, Command};
use driftdb_server::{backup, demo, repl, serve, transfer};

/// mimalloc: commits allocate many small, short-lived keys and batches;
/// it roughly doubled bulk-insert throughput over the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("DRIFTDB_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Statements are planned on runtime threads with room for the deepest
    // one the parser lets through (the main thread's stack is smaller).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(driftdb_engine::limits::STATEMENT_THREAD_STACK_BYTES)
        .build();
    let result = match runtime {
        Ok(runtime) => runtime
            .block_on(runtime.spawn(run(cli)))
            .unwrap_or_else(|e| Err(Error::internal_message(format!("the command failed: {e}")))),
        Err(e) => Err(Error::Io(e)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", repl::render_error(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Serve(args) => {
            let served = match serve::ServeConfig::resolve(args) {
                Ok(config) => serve::run(config).await,
                Err(e) => Err(e),
            };
            served.map_err(|e| match e {
                serve::ServerError::Engine(engine) => engine,
                other => {
                    Error::internal_message(format!("{other} (SQLSTATE {})", other.sqlstate()))
                }
            })
        }
        Command::Sql(args) => {
            let db = Database::open_with(&args.storage.data, args.storage.limits()).await?;
            let mut session = Session::new(&db);
            // Embedded, the user's own files: those under the working
            // folder, and the objects their credentials reach.
            session.set_file_access(driftdb_engine::FileAccess::under(["."])?.with_any_object());
            let result = match (args.execute, args.file) {
                (Some(sql), _) => repl::run_script(&mut session, &sql).await,
                (None, Some(file)) => {
                    let sql = std::fs::read_to_string(&file)?;
                    repl::run_script(&mut session, &sql).await
                }
                (None, None) => repl::run_shell(&mut session).await,
            };
            // Closing persists and releases the writer lease (object storage).
            db.close().await?;
            result
        }
        Command::Check(args) => {
            let report = driftdb_engine::storage::check::check_database(&args.data).await?;
            print!("{report}");
            match report.damage_count() {
                0 => Ok(()),
                n => Err(Error::Corrupt {
                    detail: format!("{n} damaged item(s) in {}", args.data.display()),
                }),
            }
        }
        Command::Backup(args) => backup::run_backup(args).await,
        Command::Restore(args) => backup::run_restore(args).await,
        Command::Load(args) => transfer::run_load(args).await,
        Command::Export(args) => transfer::run_export(args).await,
        Command::Demo(args) => {
            let db = Database::open_with(&args.storage.data, args.storage.limits()).await?;
            let mut session = Session::new(&db);
            if demo::create_demo(&mut session).await? {
                println!("Created the demo database in {}", db.location());
            }
            if !args.no_shell {
                println!("{}", demo::DEMO_HINT);
                repl::run_shell(&mut session).await?;
            }
            db.close().await?;
            Ok(())
        }
    }
}
