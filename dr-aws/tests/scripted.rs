//! Scripted SDK responses (`aws-smithy-mocks`) for what moto cannot show: instances that take
//! time to become available, throttling, 404s, and a repeated DNS switch that submits nothing.

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::types::{DbInstance, Endpoint};
use aws_sdk_route53::operation::get_change::GetChangeOutput;
use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
use aws_sdk_route53::types::{ChangeInfo, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType};
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_types::retry::RetryConfig;
use dr_aws::{RdsDatabase, Route53Dns, UNCHANGED};
use dr_core::provider::{DatabaseReplica, DbRef, DbRole, DbState, DnsFailover, DnsRecord, Routing};
use dr_core::Error;

fn rds(rules: &[&Rule]) -> RdsDatabase {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::Sequential);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_rds::Config::builder()
        .behavior_version(aws_sdk_rds::config::BehaviorVersion::latest())
        .region(aws_sdk_rds::config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(RetryConfig::disabled())
        .build();
    RdsDatabase::from_conf(conf)
}

fn route53(rules: &[&Rule]) -> Route53Dns {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_route53::Config::builder()
        .behavior_version(aws_sdk_route53::config::BehaviorVersion::latest())
        .region(aws_sdk_route53::config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(RetryConfig::disabled())
        .build();
    Route53Dns::new(aws_sdk_route53::Client::from_conf(conf))
}

fn described(status: &'static str) -> DescribeDbInstancesOutput {
    DescribeDbInstancesOutput::builder()
        .db_instances(
            DbInstance::builder()
                .db_instance_identifier("orders-replica")
                .db_instance_status(status)
                .read_replica_source_db_instance_identifier(
                    "arn:aws:rds:us-east-1:123456789012:db:orders",
                )
                .endpoint(
                    Endpoint::builder()
                        .address("orders-replica.x.rds")
                        .port(5432)
                        .build(),
                )
                .build(),
        )
        .build()
}

/// An RDS (query protocol) error body.
fn rds_error(code: &str) -> String {
    format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
         <Message>scripted</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    )
}

#[tokio::test(start_paused = true)]
async fn wait_available_backs_off_until_available() {
    let rule = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .output(|| described("modifying"))
        .times(2)
        .output(|| described("available"))
        .build();
    let rds = rds(&[&rule]);
    let db = DbRef::new("us-west-2", "orders-replica");
    let start = tokio::time::Instant::now();
    let status = rds
        .wait_available(&db, Duration::from_secs(600))
        .await
        .expect("available");
    assert_eq!(status.state, DbState::Available);
    assert_eq!(
        status.role,
        DbRole::Replica {
            source: DbRef::new("us-east-1", "orders")
        }
    );
    assert_eq!(
        status.endpoint.as_deref(),
        Some("orders-replica.x.rds:5432")
    );
    assert_eq!(rule.num_calls(), 3);
    // Backoff of 5 s, then 10 s, on the paused clock.
    assert_eq!(start.elapsed(), Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn wait_available_times_out_and_stops_on_failure() {
    let rule = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .output(|| described("backing-up"))
        .repeatedly()
        .build();
    let rds = rds(&[&rule]);
    let db = DbRef::new("us-east-1", "orders-replica");
    let err = rds
        .wait_available(&db, Duration::from_secs(60))
        .await
        .expect_err("times out");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");

    let rule = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .output(|| described("rebooting"))
        .output(|| described("incompatible-parameters"))
        .build();
    let rds = self::rds(&[&rule]);
    let err = rds
        .wait_available(&db, Duration::from_secs(600))
        .await
        .expect_err("failed");
    assert!(matches!(err, Error::InvalidState { .. }), "{err}");
}

#[tokio::test]
async fn throttling_maps_to_throttled() {
    let rule = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .http_status(400, Some(rds_error("Throttling")))
        .build();
    let rds = rds(&[&rule]);
    let err = rds
        .describe(&DbRef::new("us-east-1", "orders"))
        .await
        .expect_err("throttled");
    assert!(matches!(err, Error::Throttled { .. }), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn not_found_by_code_and_by_status() {
    let rule = mock!(aws_sdk_rds::Client::promote_read_replica)
        .sequence()
        .http_status(404, Some(rds_error("DBInstanceNotFound")))
        .http_status(404, None)
        .build();
    let rds = rds(&[&rule]);
    let db = DbRef::new("us-east-1", "gone");
    for _ in 0..2 {
        let err = rds.promote(&db).await.expect_err("missing");
        assert!(err.is_not_found(), "{err}");
        assert_eq!(err.to_string(), "rds: database us-east-1/gone not found");
    }
}

#[tokio::test]
async fn invalid_state_and_server_errors() {
    let rule = mock!(aws_sdk_rds::Client::reboot_db_instance)
        .sequence()
        .http_status(400, Some(rds_error("InvalidDBInstanceState")))
        .http_status(503, None)
        .build();
    let rds = rds(&[&rule]);
    let db = DbRef::new("us-east-1", "orders");
    let err = rds.reboot(&db, true).await.expect_err("invalid state");
    assert!(matches!(err, Error::InvalidState { .. }), "{err}");
    let err = rds.reboot(&db, true).await.expect_err("unavailable");
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.is_retryable());
}

fn cname(value: &str) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name("api.example.com.")
        .r#type(RrType::Cname)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(value).build().expect("rr"))
        .build()
        .expect("set")
}

#[tokio::test]
async fn repeated_switch_submits_nothing() {
    let list = mock!(aws_sdk_route53::Client::list_resource_record_sets).then_output(|| {
        ListResourceRecordSetsOutput::builder()
            .resource_record_sets(cname("west.example.com"))
            .is_truncated(false)
            .max_items(100)
            .build()
            .expect("output")
    });
    let change =
        mock!(aws_sdk_route53::Client::change_resource_record_sets).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(500).expect("status"),
                aws_smithy_types::body::SdkBody::empty(),
            )
        });
    let dns = route53(&[&list, &change]);
    let record = DnsRecord {
        zone: "/hostedzone/Z1".into(),
        name: "api.example.com".into(),
        record_type: "CNAME".into(),
        values: vec!["west.example.com.".into()],
        ttl: 60,
        routing: Routing::Simple,
    };
    let out = dns.switch_record(&record).await.expect("no-op");
    assert_eq!(out.id, UNCHANGED);
    assert!(out.in_sync);
    assert_eq!(change.num_calls(), 0, "ChangeResourceRecordSets not called");

    let mut other = record.clone();
    other.values = vec!["east.example.com".into()];
    let err = dns.switch_record(&other).await.expect_err("scripted 500");
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert_eq!(change.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn wait_change_polls_until_insync() {
    let info = |status: ChangeStatus| {
        GetChangeOutput::builder()
            .change_info(
                ChangeInfo::builder()
                    .id("/change/C1")
                    .status(status)
                    .submitted_at(aws_smithy_types::DateTime::from_secs(0))
                    .build()
                    .expect("info"),
            )
            .build()
    };
    let rule = mock!(aws_sdk_route53::Client::get_change)
        .sequence()
        .output(move || info(ChangeStatus::Pending))
        .times(2)
        .output(move || info(ChangeStatus::Insync))
        .build();
    let dns = route53(&[&rule]);
    let start = tokio::time::Instant::now();
    let change = dns
        .wait_change("C1", Duration::from_secs(300))
        .await
        .expect("in sync");
    assert!(change.in_sync);
    assert_eq!(change.id, "C1");
    assert_eq!(rule.num_calls(), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(2 + 4));
}
