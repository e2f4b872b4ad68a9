//! The region failover of `plans/aws-region-failover.yaml` with real SDK calls: the database
//! on RDS, DNS on Route 53 and backups on S3 (through `dr-aws`), clusters and notifications
//! on the simulated cloud.
//!
//! It creates what the plan expects on the endpoint (an RDS primary and its cross-region
//! replica, a hosted zone with records pointing at us-east-1, an S3 bucket holding a backup),
//! then plans and runs the failover to us-west-2 in real time with live progress, and reads
//! the records and the replica back through the SDK. Against moto:
//!
//! ```text
//! source scripts/standins/moto.sh && moto_start
//! cargo run --example aws-region-failover --features aws
//! moto_stop
//! ```
//!
//! Without `AWS_ENDPOINT_URL` it uses the SDK's credential chain, that is real AWS, where it
//! creates (billable) resources. Exit status: 0 when the run succeeded, met its targets and
//! the records point to us-west-2; 1 otherwise; 2 on invalid input or missing configuration.

use std::process::ExitCode;

use dr_examples::aws::{run_aws_failover, AwsRunOptions};
use dr_examples::{init_tracing, plans_dir, Console};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    init_tracing();
    let plan = plans_dir().join("aws-region-failover.yaml");
    let run = run_aws_failover(
        &plan,
        "region-failover",
        &AwsRunOptions::default(),
        &Console::stdio(),
    )
    .await;
    ExitCode::from(run.exit)
}
