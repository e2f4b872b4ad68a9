//! The `DatabaseReplica` conformance checks on the simulated cloud's database.

#![cfg(feature = "testkit")]

use std::time::Duration;

use dr_core::provider::DbRef;
use dr_core::sim::SimCloud;
use dr_core::testkit::database::{self, DatabaseFixture};

fn fixture() -> DatabaseFixture {
    DatabaseFixture {
        primary: DbRef::new("us-east-1", "orders"),
        replica: DbRef::new("us-west-2", "orders-replica"),
        missing: DbRef::new("us-east-1", "no-such-instance"),
        snapshot_id: "conformance-1".into(),
        restore_target: DbRef::new("us-east-1", "orders-restored"),
        deadline: Duration::from_secs(3 * 3600),
    }
}

#[tokio::test(start_paused = true)]
async fn simulated_database_conforms() -> dr_core::Result<()> {
    let cloud = SimCloud::new(11);
    let fx = fixture();
    cloud.add_database(&fx.primary, None);
    cloud.add_database(&fx.replica, Some(&fx.primary));
    let db = cloud.database();
    database::run_all(db.as_ref(), &fx).await
}

#[tokio::test(start_paused = true)]
async fn not_found_holds_on_an_empty_cloud() -> dr_core::Result<()> {
    let cloud = SimCloud::new(12);
    database::not_found(cloud.database().as_ref(), &fixture()).await
}
