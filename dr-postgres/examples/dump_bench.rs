//! Dumps through the provider against plain `pg_dump`/`psql` on the same server, in the
//! same run: what streaming a dump through the backup module (digest, manifest, optional
//! encryption) into a store costs, and what verifying before a restore costs, with the
//! process's peak memory (the dump is never held whole).
//!
//! ```text
//! source scripts/standins/postgres.sh && postgres_start
//! cargo run --release -p dr-postgres --example dump_bench -- [ROWS]
//! ```

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dr_core::backup::{Backups, EncryptionKey};
use dr_core::provider::{DatabaseReplica, DbRef, DynSnapshotStore};
use dr_core::store::LocalDiskStore;
use dr_core::testkit::rss::peak_rss_mib;
use dr_core::Secret;
use dr_postgres::{LocalPair, PgInstance, PostgresBuilder, BINDIR_ENV};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const RUNS: usize = 3;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn tool(bindir: &str, name: &str, inst: &PgInstance, pw: &Secret) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(format!("{bindir}/{name}"));
    c.env("PGHOST", inst.host())
        .env("PGPORT", inst.port().to_string())
        .env("PGUSER", inst.user())
        .env("PGPASSWORD", pw.expose())
        .stderr(Stdio::inherit());
    c
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let rows: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let bindir = std::env::var(BINDIR_ENV).map_err(|_| format!("{BINDIR_ENV} is not set"))?;
    let user = std::env::var("DR_PG_USER").ok();
    let dir = tempfile::tempdir()?;
    let pw = Secret::new("bench");
    let pair = LocalPair::start(
        dir.path(),
        Some(bindir.as_ref()),
        user.as_deref(),
        pw.clone(),
    )
    .await?;
    let primary = DbRef::new("dc1", "primary");
    let inst = pair.primary_instance();
    let store = |name: &str| -> Result<Arc<DynSnapshotStore>, BoxError> {
        Ok(Arc::new(LocalDiskStore::new(dir.path().join(name))?))
    };

    let mut builder = PostgresBuilder::new()
        .with_bindir(&bindir)
        .with_instance(primary.clone(), inst.clone())
        .with_dumps("dc1", Backups::new(store("plain")?));
    for i in 0..RUNS {
        builder = builder.with_instance(
            DbRef::new("dc1", format!("restored{i}")),
            inst.clone().with_dbname(format!("restored{i}")),
        );
    }
    let pg = builder.build()?;
    let client = pg.client(&primary).await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer text, note text, total numeric);
             INSERT INTO orders SELECT g, 'customer ' || (g % 1000), md5(g::text) || md5((g*7)::text), g * 1.25
             FROM generate_series(1, {rows}) g;"
        ))
        .await?;
    drop(client);
    let rss_start = peak_rss_mib();

    // Baseline: pg_dump into /dev/null, and into a file (for the psql baseline).
    let mut base = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let st = tool(&bindir, "pg_dump", &inst, &pw)
            .args([
                "--format=plain",
                "--no-owner",
                "--no-privileges",
                "--quote-all-identifiers",
                "-d",
                "postgres",
            ])
            .stdout(Stdio::null())
            .status()
            .await?;
        assert!(st.success());
        base.push(t.elapsed());
    }
    let file = dir.path().join("baseline.sql");
    let st = tool(&bindir, "pg_dump", &inst, &pw)
        .args([
            "--format=plain",
            "--no-owner",
            "--no-privileges",
            "--quote-all-identifiers",
            "-d",
            "postgres",
            "-f",
        ])
        .arg(&file)
        .status()
        .await?;
    assert!(st.success());
    let size = std::fs::metadata(&file)?.len();

    let mut plain = Vec::new();
    let mut enc = Vec::new();
    let mut snaps = Vec::new();
    for i in 0..RUNS {
        let t = Instant::now();
        let db = DbRef::new("dc1", "primary");
        snaps.push(pg.create_snapshot(&db, &format!("p{i}")).await?);
        plain.push(t.elapsed());
    }
    // Encrypted dumps go to the `enc` region's store: dump the same instance there.
    let enc_pg = PostgresBuilder::new()
        .with_bindir(&bindir)
        .with_instance(DbRef::new("enc", "primary"), inst.clone())
        .with_dumps(
            "enc",
            Backups::new(store("enc2")?)
                .with_encryption(EncryptionKey::from_bytes("bench", [3; 32])),
        )
        .build()?;
    for i in 0..RUNS {
        let t = Instant::now();
        enc_pg
            .create_snapshot(&DbRef::new("enc", "primary"), &format!("e{i}"))
            .await?;
        enc.push(t.elapsed());
    }
    let rss_dumps = peak_rss_mib();

    // Restores: psql from the file, against verify + stream into psql.
    let mut base_restore = Vec::new();
    for i in 0..RUNS {
        let name = format!("baseline{i}");
        pg.client(&primary)
            .await?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let t = Instant::now();
        let st = tool(&bindir, "psql", &inst, &pw)
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-o",
                "/dev/null",
                "-d",
                &name,
                "-f",
            ])
            .arg(&file)
            .status()
            .await?;
        assert!(st.success());
        base_restore.push(t.elapsed());
    }
    let mut restore = Vec::new();
    for (i, snap) in snaps.iter().enumerate() {
        let t = Instant::now();
        pg.restore_snapshot(snap, &DbRef::new("dc1", format!("restored{i}")))
            .await?;
        restore.push(t.elapsed());
    }
    let rss_end = peak_rss_mib();

    let mib = size as f64 / (1024.0 * 1024.0);
    let line = |what: &str, d: Duration, baseline: Duration| {
        println!(
            "| {what} | {:.2} s | {:.0} MiB/s | {:.2}x |",
            d.as_secs_f64(),
            mib / d.as_secs_f64(),
            d.as_secs_f64() / baseline.as_secs_f64()
        )
    };
    println!("{rows} rows, dump {mib:.1} MiB; medians of {RUNS} runs");
    println!();
    println!("| operation | time | throughput | vs baseline |");
    println!("|---|---|---|---|");
    let (b, br) = (median(base), median(base_restore));
    line("`pg_dump` > /dev/null (baseline)", b, b);
    line("`create_snapshot` into local disk", median(plain), b);
    line("`create_snapshot`, encrypted", median(enc), b);
    line("`psql -f dump.sql` (baseline)", br, br);
    line(
        "`restore_snapshot` (verify, then stream into psql)",
        median(restore),
        br,
    );
    println!();
    println!(
        "peak RSS (MiB): after loading {:.1}, after {} dumps {:.1}, after the restores {:.1}",
        rss_start.unwrap_or(f64::NAN),
        2 * RUNS,
        rss_dumps.unwrap_or(f64::NAN),
        rss_end.unwrap_or(f64::NAN)
    );
    drop(pair);
    Ok(())
}
