//! Roles, measured lag, promotion, fencing and error classes against a real primary and a
//! real streaming standby (PostgreSQL started per test by the fixture).

mod common;

use std::time::Duration;

use common::{caught_up, count, exec, fixture, primary_ref, standby_ref};
use dr_core::provider::{DatabaseReplica, DbRef, DbRole, DbState};
use dr_core::testkit::database::{self, DatabaseFixture};
use dr_core::{Error, Retry, Secret};
use dr_postgres::{LagBasis, PgInstance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_reports_roles_source_and_zero_lag_when_caught_up() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.provider();
    let p = pg.describe(&primary_ref()).await.expect("describe primary");
    assert_eq!(p.role, DbRole::Primary);
    assert_eq!(p.state, DbState::Available);
    assert_eq!(p.endpoint, Some(fx.pair.primary_instance().endpoint()));
    exec(
        &pg,
        &primary_ref(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1)",
    )
    .await;
    caught_up(&pg).await;
    let s = pg.describe(&standby_ref()).await.expect("describe standby");
    assert_eq!(
        s.role,
        DbRole::Replica {
            source: primary_ref()
        }
    );
    assert_eq!(s.replication_lag, Some(Duration::ZERO));
    assert_eq!(
        count(&pg, &standby_ref(), "SELECT count(*) FROM t").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_replay_shows_real_lag_and_resume_clears_it() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.provider();
    exec(&pg, &primary_ref(), "CREATE TABLE t (id int)").await;
    caught_up(&pg).await;
    exec(&pg, &standby_ref(), "SELECT pg_wal_replay_pause()").await;
    exec(&pg, &primary_ref(), "INSERT INTO t VALUES (1)").await;
    // The last transaction the standby replayed is the CREATE TABLE: its age grows.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first = pg.describe(&standby_ref()).await.expect("describe");
    let lag1 = first.replication_lag.expect("a lag");
    assert!(lag1 >= Duration::from_millis(1400), "lag {lag1:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lag2 = pg
        .describe(&standby_ref())
        .await
        .expect("describe")
        .replication_lag
        .expect("a lag");
    assert!(
        lag2 >= lag1 + Duration::from_millis(900),
        "{lag1:?} then {lag2:?}"
    );
    assert_eq!(
        count(&pg, &standby_ref(), "SELECT count(*) FROM t").await,
        0
    );
    exec(&pg, &standby_ref(), "SELECT pg_wal_replay_resume()").await;
    caught_up(&pg).await;
    assert_eq!(
        count(&pg, &standby_ref(), "SELECT count(*) FROM t").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_primary_gone_the_window_runs_from_the_last_proven_complete_instant() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.provider();
    exec(
        &pg,
        &primary_ref(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1)",
    )
    .await;
    caught_up(&pg).await;
    // An idle database: the last commit ages while the provider keeps seeing the standby
    // complete.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = pg.measure_lag(&standby_ref()).await.expect("measure");
    assert_eq!(seen.basis, LagBasis::CaughtUp);
    assert_eq!(seen.window, Duration::ZERO);
    let proven = pg.known_complete(&standby_ref()).expect("a proof");
    assert_eq!(proven, seen.measured_at);

    fx.pair
        .primary()
        .stop(true)
        .await
        .expect("crash the primary");
    let after = pg.measure_lag(&standby_ref()).await.expect("measure");
    assert_eq!(after.basis, LagBasis::KnownComplete, "{after:?}");
    assert_eq!(after.complete_until, proven);
    assert!(!after.streaming, "{after:?}");
    assert_eq!(after.unreplayed_bytes, 0, "{after:?}");
    // describe reports the same window (read a little later).
    let described = describe_lag(&pg).await.expect("a lag");
    let bound = (chrono::Utc::now() - proven)
        .to_std()
        .expect("after the proof");
    assert!(
        after.window <= described && described <= bound,
        "{described:?} outside {:?} ..= {bound:?}",
        after.window
    );

    // A provider that never saw the standby complete (a process started after the
    // primary was lost) can only measure from the last replayed commit, 1.5 s older.
    let fresh = fx.provider();
    let cold = fresh.measure_lag(&standby_ref()).await.expect("measure");
    assert_eq!(cold.basis, LagBasis::LastReplayedCommit, "{cold:?}");
    assert!(cold.complete_until < proven, "{cold:?}");
    assert!(
        cold.window >= after.window + Duration::from_millis(1400),
        "{cold:?} against {after:?}"
    );
    assert_eq!(fresh.known_complete(&standby_ref()), None);

    // The window keeps growing after the crash: the standby cannot tell an idle primary
    // from one still writing behind a partition.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = pg.measure_lag(&standby_ref()).await.expect("measure");
    assert!(later.window >= after.window + Duration::from_millis(250));
    assert_eq!(later.complete_until, proven);

    // The primary is not measured.
    pg.promote(&standby_ref()).await.expect("promote");
    let e = pg.measure_lag(&standby_ref()).await.unwrap_err();
    assert!(matches!(e, Error::InvalidState { .. }), "{e}");
}

async fn describe_lag(pg: &dr_postgres::PostgresDatabase) -> Option<Duration> {
    pg.describe(&standby_ref())
        .await
        .expect("describe")
        .replication_lag
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_fences_the_reachable_old_primary() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.provider();
    exec(
        &pg,
        &primary_ref(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1)",
    )
    .await;
    caught_up(&pg).await;
    // A session of the application on the old primary, open across the promotion.
    let app = pg.client(&primary_ref()).await.expect("app session");
    let promoted = pg.promote(&standby_ref()).await.expect("promote");
    assert_eq!(promoted.role, DbRole::Primary);
    assert_eq!(promoted.replication_lag, None);
    exec(&pg, &standby_ref(), "INSERT INTO t VALUES (2)").await;
    // The application's session was terminated ...
    assert!(
        app.batch_execute("SELECT 1").await.is_err(),
        "session survived the fence"
    );
    // ... and a new one cannot write.
    let again = pg.client(&primary_ref()).await.expect("new session");
    let e = again
        .batch_execute("INSERT INTO t VALUES (3)")
        .await
        .expect_err("a fenced primary must refuse writes");
    assert_eq!(
        e.as_db_error().map(|d| d.code().code()),
        Some("25006"),
        "{e}"
    );
    assert_eq!(
        count(&pg, &primary_ref(), "SELECT count(*) FROM t").await,
        1
    );
    // Unfenced, it accepts writes again (it is still a diverged primary: nothing replicates).
    pg.unfence(&primary_ref()).await.expect("unfence");
    tokio::time::sleep(Duration::from_millis(300)).await;
    exec(&pg, &primary_ref(), "INSERT INTO t VALUES (4)").await;
    // Promoting again is refused, permanently.
    let e = pg
        .promote(&standby_ref())
        .await
        .expect_err("second promotion");
    assert!(matches!(e, Error::InvalidState { .. }), "{e}");
    assert_eq!(e.retry(), Retry::Permanent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fencing_the_old_primary_keeps_accepting_writes() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.builder().with_fencing(false).build().expect("provider");
    exec(&pg, &primary_ref(), "CREATE TABLE t (id int)").await;
    caught_up(&pg).await;
    pg.promote(&standby_ref()).await.expect("promote");
    exec(&pg, &primary_ref(), "INSERT INTO t VALUES (1)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_classified_and_never_carry_the_password() {
    let Some(fx) = fixture().await else { return };
    let wrong = Secret::new("not-the-password-x9");
    let bad = DbRef::new("dc1", "bad-password");
    let nodb = DbRef::new("dc1", "no-database");
    let pg = fx
        .builder()
        .with_instance(
            bad.clone(),
            fx.pair.primary_instance().with_password(wrong.clone()),
        )
        .with_instance(nodb.clone(), fx.on_primary("does_not_exist"))
        .build()
        .expect("provider");
    let e = pg.describe(&bad).await.expect_err("wrong password");
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    assert_eq!(e.retry(), Retry::Permanent);
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(wrong.expose()), "password in {text}");
        assert!(!text.contains(fx.password.expose()), "password in {text}");
    }
    let e = pg.describe(&nodb).await.expect_err("missing database");
    assert!(e.is_not_found(), "{e}");
    let e = pg
        .describe(&DbRef::new("dc1", "not-configured"))
        .await
        .expect_err("unknown instance");
    assert!(e.is_not_found(), "{e}");
    // A syntax error is permanent.
    let e = pg
        .check(
            &primary_ref(),
            &[dr_postgres::DataCheck::query("bad", "SELEC 1")],
        )
        .await
        .expect_err("syntax error");
    assert!(matches!(e, Error::InvalidRequest { .. }), "{e}");
    // A stopped server refuses connections: temporary.
    fx.pair.primary().stop(false).await.expect("stop");
    let e = pg.describe(&primary_ref()).await.expect_err("server down");
    assert_eq!(e.retry(), Retry::Temporary, "{e}");
    assert!(!format!("{e:?}").contains(fx.password.expose()));
    // Nor does Debug of the provider or of an instance show it.
    let shown = format!("{pg:?} {:?}", fx.pair.primary_instance());
    assert!(!shown.contains(fx.password.expose()));
    assert!(!shown.contains(wrong.expose()));
    let url = fx.pair.primary_instance().url();
    assert_eq!(format!("{url}"), "***");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_is_temporary() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.provider();
    exec(
        &pg,
        &primary_ref(),
        "CREATE ROLE app LOGIN PASSWORD 'app-pw' CONNECTION LIMIT 1",
    )
    .await;
    let app = DbRef::new("dc1", "app");
    let pg = fx
        .builder()
        .with_instance(
            app.clone(),
            PgInstance::new("127.0.0.1", fx.pair.primary().port())
                .with_user("app")
                .with_password(Secret::new("app-pw")),
        )
        .build()
        .expect("provider");
    let _held = pg.client(&app).await.expect("first connection");
    let e = pg
        .client(&app)
        .await
        .expect_err("over the connection limit");
    assert_eq!(e.retry(), Retry::Temporary, "53300 is temporary: {e}");
    assert!(
        e.to_string().contains("53300") || format!("{e:?}").contains("53300"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conforms() {
    let Some(fx) = fixture().await else { return };
    let (backups, _) = fx.disk_backups("dumps");
    let target = DbRef::new(common::REGION, "restored");
    let pg = fx
        .builder()
        .with_instance(target.clone(), fx.on_primary("restored"))
        .with_dumps(common::REGION, backups)
        .build()
        .expect("provider");
    exec(
        &pg,
        &primary_ref(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1)",
    )
    .await;
    caught_up(&pg).await;
    let checks = DatabaseFixture {
        primary: primary_ref(),
        replica: standby_ref(),
        missing: DbRef::new(common::REGION, "missing"),
        snapshot_id: "conformance".into(),
        restore_target: target,
        deadline: Duration::from_secs(60),
    };
    database::run_all(&pg, &checks).await.expect("conformance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_dump_store_refuses_snapshots_typed() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.provider();
    let checks = DatabaseFixture {
        primary: primary_ref(),
        replica: standby_ref(),
        missing: DbRef::new(common::REGION, "missing"),
        snapshot_id: "none".into(),
        restore_target: DbRef::new(common::REGION, "restored"),
        deadline: Duration::from_secs(60),
    };
    database::not_found(&pg, &checks).await.expect("not found");
    database::unsupported_is_typed(&pg, &checks)
        .await
        .expect("unsupported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_restarts_a_local_server_and_keeps_its_data() {
    let Some(fx) = fixture().await else { return };
    let pg = fx.provider();
    exec(
        &pg,
        &primary_ref(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1)",
    )
    .await;
    let before = pg.client(&primary_ref()).await.expect("a session");
    let status = pg.reboot(&primary_ref(), false).await.expect("reboot");
    assert_eq!(status.role, DbRole::Primary);
    assert_eq!(status.state, DbState::Available);
    assert!(
        before.batch_execute("SELECT 1").await.is_err(),
        "the restart ended the session"
    );
    assert_eq!(
        count(&pg, &primary_ref(), "SELECT count(*) FROM t").await,
        1
    );
    // An instance without a local server cannot be rebooted: a typed refusal.
    let remote = DbRef::new("dc1", "remote");
    let pg = fx
        .builder()
        .with_instance(
            remote.clone(),
            PgInstance::new("127.0.0.1", fx.pair.primary().port())
                .with_password(fx.password.clone()),
        )
        .build()
        .expect("provider");
    let e = pg
        .reboot(&remote, false)
        .await
        .expect_err("no local server");
    assert!(matches!(e, Error::NotSupported { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_port_was_taken_says_so_and_moves_to_a_free_one() {
    let Some(fx) = fixture().await else { return };
    let mut server = fx.pair.spare("moved").expect("a spare server");
    server.init(&fx.password).await.expect("initdb");
    // Another process takes the port between choosing it and starting the server.
    let taken = server.port();
    let _holder = std::net::TcpListener::bind(("127.0.0.1", taken)).expect("hold the port");
    let e = server.start().await.expect_err("the port is taken");
    let text = e.to_string();
    assert!(
        text.contains("could not bind"),
        "the log's reason is in the error: {text}"
    );
    assert!(!text.contains(fx.password.expose()), "{text}");
    // Moving: one more attempt on a port that is free.
    server
        .start_moving_port(2, dr_postgres::free_port)
        .await
        .expect("started on another port");
    assert_ne!(server.port(), taken);
    let pg = fx
        .builder()
        .with_instance(
            DbRef::new("dc3", "moved"),
            server.instance(Some(fx.password.clone())),
        )
        .build()
        .expect("provider");
    let status = pg
        .describe(&DbRef::new("dc3", "moved"))
        .await
        .expect("the moved server answers");
    assert_eq!(status.role, DbRole::Primary);
    // Without a taken port the server starts at the first attempt; with every attempt
    // taken, the last refusal is returned.
    server.stop(false).await.expect("stop");
    let again = server.port();
    let _second = std::net::TcpListener::bind(("127.0.0.1", again)).expect("hold it too");
    let e = server
        .start_moving_port(2, || Ok(again))
        .await
        .expect_err("every port tried is taken");
    assert!(e.to_string().contains("could not bind"), "{e}");
}
