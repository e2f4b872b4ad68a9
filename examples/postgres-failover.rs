//! The database-failure scenario of `plans/postgres-failover.yaml` run for real against
//! PostgreSQL: a primary and a streaming standby (started here, or given by connection
//! strings), the standby promoted by the executor, the old primary fenced, the
//! application's secret repointed (the application's cluster is the simulated cloud's),
//! then the report and a row count on the promoted standby.
//!
//! ```text
//! # a local primary and standby in a temporary directory (as root, they run as `postgres`)
//! cargo run --example postgres-failover --features postgres -- --bindir /usr/lib/postgresql/15/bin
//! # existing servers (the standby must stream from the primary); the primary is fenced
//! cargo run --example postgres-failover --features postgres -- \
//!     --primary postgres://postgres:PW@10.0.1.10/postgres --standby postgres://postgres:PW@10.0.2.10/postgres
//! ```
//!
//! Without `--bindir`, `DR_PG_BINDIR` is used (`scripts/standins/postgres.sh` exports it).
//! With local servers, the primary is crashed (`pg_ctl stop -m immediate`) after some
//! writes, and the scenario's last step builds a new standby of the promoted one with
//! `pg_basebackup`; with given servers the primary is left running and fenced by the
//! promotion, and that optional step fails (no local server to build it in), which the
//! report shows as a degraded success.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dr_core::executor::{Executor, RunEvent, RunReport};
use dr_core::plan::Plan;
use dr_core::planner::{self, ObservedState};
use dr_core::provider::{DatabaseReplica, DbRef};
use dr_core::simulation::Simulation;
use dr_core::Secret;
use dr_examples::{plans_dir, print_progress, real_time_sim, Console};
use dr_postgres::{LocalPair, PgInstance, PostgresBuilder, PostgresDatabase, BINDIR_ENV};

/// How the example runs.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Directory of the PostgreSQL binaries (for local servers).
    pub bindir: Option<PathBuf>,
    /// OS user the local servers run as (default `postgres` when running as root).
    pub run_as: Option<String>,
    /// Connection string of an existing primary.
    pub primary: Option<Secret>,
    /// Connection string of an existing streaming standby of it.
    pub standby: Option<Secret>,
}

/// What the run did.
#[derive(Debug)]
pub struct Outcome {
    /// The executor's report.
    pub report: RunReport,
    /// Rows the drill wrote on the primary.
    pub rows_written: i64,
    /// Rows found on the promoted standby.
    pub rows_on_promoted: i64,
    /// The application's secret after the run.
    pub secret: Secret,
    /// The promoted standby's endpoint.
    pub standby_endpoint: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn primary_ref() -> DbRef {
    DbRef::new("dc1", "primary")
}

fn standby_ref() -> DbRef {
    DbRef::new("dc2", "standby")
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs the drill; `console` gets the forecast, live progress and the report.
///
/// # Errors
/// Servers that cannot be started or reached, an invalid plan.
pub async fn run(opts: &Options, console: &Console) -> Result<Outcome, BoxError> {
    let plan = Plan::load(plans_dir().join("postgres-failover.yaml"))?;
    let workdir;
    let mut local = None;
    let (primary, standby) = match (&opts.primary, &opts.standby) {
        (Some(p), Some(s)) => (PgInstance::from_url(p)?, PgInstance::from_url(s)?),
        (None, None) => {
            let bindir = opts
                .bindir
                .clone()
                .or_else(|| std::env::var_os(BINDIR_ENV).map(PathBuf::from));
            let run_as = opts
                .run_as
                .clone()
                .or_else(|| is_root().then(|| "postgres".to_string()));
            workdir = tempfile::Builder::new().prefix("pg-failover-").tempdir()?;
            console.out(&format!(
                "starting a primary and a streaming standby under {}",
                workdir.path().display()
            ));
            let pair = LocalPair::start(
                workdir.path(),
                bindir.as_deref(),
                run_as.as_deref(),
                drill_password(),
            )
            .await?;
            let instances = (pair.primary_instance(), pair.standby_instance());
            local = Some(pair);
            instances
        }
        _ => return Err("give both --primary and --standby, or neither".into()),
    };
    let standby_endpoint = standby.endpoint();
    console.out(&format!(
        "primary {} (dc1/primary), standby {standby_endpoint} (dc2/standby)",
        primary.endpoint()
    ));
    let mut builder = PostgresBuilder::from_env()
        .with_instance(primary_ref(), primary)
        .with_instance(standby_ref(), standby);
    if let Some(pair) = &local {
        // Where the scenario builds a new standby of the promoted one (pg_basebackup).
        let spare = pair.spare("standby-replica")?;
        builder = builder.with_instance(
            DbRef::new("dc1", "standby-replica"),
            spare.instance(Some(pair.password().clone())),
        );
    }
    if let Some(dir) = &opts.bindir {
        builder = builder.with_bindir(dir);
    }
    let pg = builder.build()?;

    // Orders arrive on the primary and stream to the standby.
    let rows_written = write_orders(&pg).await?;
    wait_caught_up(&pg).await?;
    if let Some(pair) = &local {
        console.out("the primary crashes (pg_ctl stop -m immediate)");
        pair.primary().stop(true).await?;
    }

    let sim = Simulation::new(&plan, 42, real_time_sim());
    let providers = sim
        .providers()
        .with_database(Arc::new(pg.clone()) as Arc<dyn DatabaseReplica>);
    let observed = ObservedState::observe(&plan, &providers, Utc::now()).await;
    let graph = planner::plan(&plan, "database-failure", &observed)?;
    console.out(&format!("{graph}"));

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    let progress = tokio::spawn(print_progress(rx, Utc::now(), console.clone(), false));
    let report = Executor::new(providers).events(tx).run(&graph).await;
    let _ = progress.await;
    console.out(&format!("{report}"));

    let secret = sim
        .cloud()
        .cluster()
        .read_secret("apps", "shop", "shop-secrets", "DATABASE_URL")
        .await?;
    let rows_on_promoted = rows(&pg, &standby_ref()).await?;
    console.out(&format!(
        "orders written on the primary: {rows_written}; on the promoted standby: {rows_on_promoted}"
    ));
    drop(local);
    Ok(Outcome {
        report,
        rows_written,
        rows_on_promoted,
        secret,
        standby_endpoint,
    })
}

/// A password for the drill's throw-away servers, different on every run.
fn drill_password() -> Secret {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    Secret::new(format!("drill-{}-{nanos:x}", std::process::id()))
}

async fn write_orders(pg: &PostgresDatabase) -> Result<i64, BoxError> {
    let client = pg.client(&primary_ref()).await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS drill_orders (id bigserial PRIMARY KEY, at timestamptz \
             NOT NULL DEFAULT clock_timestamp(), total numeric(10,2));
             INSERT INTO drill_orders (total) SELECT g * 1.5 FROM generate_series(1, 1000) g;",
        )
        .await?;
    rows(pg, &primary_ref()).await
}

async fn rows(pg: &PostgresDatabase, db: &DbRef) -> Result<i64, BoxError> {
    let client = pg.client(db).await?;
    Ok(client
        .query_one("SELECT count(*) FROM drill_orders", &[])
        .await?
        .get(0))
}

async fn wait_caught_up(pg: &PostgresDatabase) -> Result<(), BoxError> {
    for _ in 0..100 {
        if pg.describe(&standby_ref()).await?.replication_lag == Some(Duration::ZERO) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err("the standby did not catch up within 20 s".into())
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--bindir" => opts.bindir = Some(PathBuf::from(value()?)),
            "--run-as" => opts.run_as = Some(value()?),
            "--primary" => opts.primary = Some(Secret::new(value()?)),
            "--standby" => opts.standby = Some(Secret::new(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(opts)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> ExitCode {
    dr_examples::init_tracing();
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(dr_examples::EXIT_INVALID);
        }
    };
    match run(&opts, &Console::stdio()).await {
        Ok(o) if o.report.succeeded() => ExitCode::from(dr_examples::EXIT_OK),
        Ok(_) => ExitCode::from(dr_examples::EXIT_FAILED),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(dr_examples::EXIT_FAILED)
        }
    }
}
