//! Scripted SDK responses (`aws-smithy-mocks`) for what moto does not model: CloudFront
//! refusing a stale `ETag` (moto accepts any `IfMatch`), a distribution still `InProgress`,
//! an EKS node group mid-update (`ResourceInUseException`), and the calls a no-op skips.

use aws_credential_types::Credentials;
use aws_sdk_cloudfront::operation::get_distribution::GetDistributionOutput;
use aws_sdk_cloudfront::operation::get_distribution_config::GetDistributionConfigOutput;
use aws_sdk_cloudfront::types::{
    DefaultCacheBehavior, Distribution, DistributionConfig, Origin, Origins, ViewerProtocolPolicy,
};
use aws_sdk_eks::operation::describe_nodegroup::DescribeNodegroupOutput;
use aws_sdk_eks::types::{
    Issue, Nodegroup, NodegroupHealth, NodegroupScalingConfig, NodegroupStatus,
};
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_types::retry::RetryConfig;
use dr_aws::{CloudFrontCdn, EksNodes};
use dr_core::provider::{CdnOrigin, NodeCapacity, NodeGroupRef, NodeGroupState, NodeScaling};
use dr_core::{Effect, Error};

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    let mut i = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        i = i.with_rule(rule);
    }
    i
}

fn cloudfront(rules: &[&Rule]) -> CloudFrontCdn {
    let conf = aws_sdk_cloudfront::Config::builder()
        .behavior_version(aws_sdk_cloudfront::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudfront::config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor(rules))
        .retry_config(RetryConfig::disabled())
        .build();
    CloudFrontCdn::new(aws_sdk_cloudfront::Client::from_conf(conf))
}

fn eks(rules: &[&Rule]) -> EksNodes {
    let conf = aws_sdk_eks::Config::builder()
        .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
        .region(aws_sdk_eks::config::Region::new("us-west-2"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor(rules))
        .retry_config(RetryConfig::disabled())
        .build();
    EksNodes::new(aws_sdk_eks::Client::from_conf(conf)).with_cluster_name("dr-west", "shop-dr")
}

fn config(domain: &str) -> DistributionConfig {
    DistributionConfig::builder()
        .caller_reference("ref-1")
        .comment("scripted")
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(1)
                .items(
                    Origin::builder()
                        .id("primary")
                        .domain_name(domain)
                        .build()
                        .expect("origin"),
                )
                .build()
                .expect("origins"),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("primary")
                .viewer_protocol_policy(ViewerProtocolPolicy::HttpsOnly)
                .build()
                .expect("behaviour"),
        )
        .build()
        .expect("config")
}

fn distribution(domain: &str, status: &str) -> Distribution {
    Distribution::builder()
        .id("E2QWRUHAPOMQZL")
        .arn("arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL")
        .status(status)
        .last_modified_time(aws_smithy_types::DateTime::from_secs(0))
        .in_progress_invalidation_batches(0)
        .domain_name("d111111abcdef8.cloudfront.net")
        .distribution_config(config(domain))
        .build()
        .expect("distribution")
}

fn cloudfront_error(status: u16, code: &str) -> aws_smithy_runtime_api::http::Response {
    let body = format!(
        "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\">\
         <Error><Type>Sender</Type><Code>{code}</Code><Message>scripted</Message></Error>\
         <RequestId>r-1</RequestId></ErrorResponse>"
    );
    aws_smithy_runtime_api::http::Response::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("status"),
        aws_smithy_types::body::SdkBody::from(body),
    )
}

#[tokio::test]
async fn a_stale_etag_is_refused_as_retryable_and_changes_nothing() {
    let read = mock!(aws_sdk_cloudfront::Client::get_distribution_config).then_output(|| {
        GetDistributionConfigOutput::builder()
            .distribution_config(config("lb.us-east-1.example.com"))
            .e_tag("E1OLD")
            .build()
    });
    let update = mock!(aws_sdk_cloudfront::Client::update_distribution)
        .match_requests(|r| {
            r.if_match() == Some("E1OLD")
                && r.distribution_config().is_some_and(|c| {
                    c.origins
                        .as_ref()
                        .is_some_and(|o| o.items[0].domain_name == "lb.us-west-2.example.com")
                        && c.comment == "scripted"
                })
        })
        .then_http_response(|| cloudfront_error(412, "PreconditionFailed"));
    let cdn = cloudfront(&[&read, &update]);
    let err = cdn
        .set_origin("E2QWRUHAPOMQZL", "lb.us-west-2.example.com")
        .await
        .expect_err("stale ETag");
    assert_eq!(
        update.num_calls(),
        1,
        "UpdateDistribution sent with IfMatch E1OLD"
    );
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.effect(), Effect::NotApplied);
    let source = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<Error>())
        .expect("a dr_core::Error source");
    assert!(source.is_precondition_failed(), "{source}");
    assert!(source.to_string().contains("ETag E1OLD"), "{source}");
    assert!(source.to_string().contains("E2QWRUHAPOMQZL"), "{source}");
}

#[tokio::test]
async fn an_origin_already_set_sends_no_update_and_in_progress_is_not_deployed() {
    let read = mock!(aws_sdk_cloudfront::Client::get_distribution_config).then_output(|| {
        GetDistributionConfigOutput::builder()
            .distribution_config(config("lb.us-west-2.example.com"))
            .e_tag("E2CUR")
            .build()
    });
    let get = mock!(aws_sdk_cloudfront::Client::get_distribution).then_output(|| {
        GetDistributionOutput::builder()
            .distribution(distribution("lb.us-west-2.example.com", "InProgress"))
            .e_tag("E2CUR")
            .build()
    });
    let update = mock!(aws_sdk_cloudfront::Client::update_distribution)
        .then_http_response(|| cloudfront_error(500, "InternalError"));
    let cdn = cloudfront(&[&read, &get, &update]);
    let d = cdn
        .set_origin("E2QWRUHAPOMQZL", "lb.us-west-2.example.com")
        .await
        .expect("no-op");
    assert_eq!(update.num_calls(), 0, "no UpdateDistribution");
    assert_eq!(d.origin, "lb.us-west-2.example.com");
    assert_eq!(d.version, "E2CUR");
    assert!(!d.deployed, "InProgress is not deployed");
}

#[tokio::test]
async fn an_unknown_distribution_is_not_found_naming_it() {
    let get = mock!(aws_sdk_cloudfront::Client::get_distribution)
        .then_http_response(|| cloudfront_error(404, "NoSuchDistribution"));
    let cdn = cloudfront(&[&get]);
    let err = cdn
        .describe_distribution("E0GONE")
        .await
        .expect_err("missing");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.to_string(), "cloudfront: distribution E0GONE not found");
}

fn nodegroup(status: NodegroupStatus, min: i32, desired: i32, max: i32) -> Nodegroup {
    Nodegroup::builder()
        .nodegroup_name("general")
        .cluster_name("shop-dr")
        .status(status)
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(min)
                .desired_size(desired)
                .max_size(max)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn a_node_group_mid_update_is_refused_as_retryable_invalid_state() {
    let describe = mock!(aws_sdk_eks::Client::describe_nodegroup)
        .match_requests(|r| {
            r.cluster_name() == Some("shop-dr") && r.nodegroup_name() == Some("general")
        })
        .then_output(|| {
            DescribeNodegroupOutput::builder()
                .nodegroup(nodegroup(NodegroupStatus::Updating, 0, 0, 4))
                .build()
        });
    let update = mock!(aws_sdk_eks::Client::update_nodegroup_config).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(409).expect("status"),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"ResourceInUseException","message":"Nodegroup is currently being updated"}"#,
            ),
        )
    });
    let eks = eks(&[&describe, &update]);
    let group = NodeGroupRef::new("dr-west", "general");
    let status = eks.describe_node_group(&group).await.expect("describe");
    assert_eq!(status.state, NodeGroupState::Updating);
    assert_eq!(
        status.ready_nodes, 0,
        "an updating group's nodes are not counted"
    );
    let err = eks
        .scale_node_group(
            &group,
            NodeScaling {
                min: 2,
                desired: 3,
                max: 6,
            },
        )
        .await
        .expect_err("in use");
    assert_eq!(update.num_calls(), 1);
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(err.effect(), Effect::NotApplied);
    let source = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<Error>())
        .expect("a dr_core::Error source");
    assert!(matches!(source, Error::InvalidState { .. }), "{source}");
    assert!(source.to_string().contains("dr-west/general"), "{source}");
    assert!(source.to_string().contains("shop-dr"), "{source}");
}

#[tokio::test]
async fn scaling_to_the_current_bounds_sends_no_update_and_issues_mean_not_ready() {
    let describe = mock!(aws_sdk_eks::Client::describe_nodegroup).then_output(|| {
        let mut ng = nodegroup(NodegroupStatus::Active, 2, 3, 6);
        ng.health = Some(
            NodegroupHealth::builder()
                .issues(Issue::builder().message("instances failed to join").build())
                .build(),
        );
        DescribeNodegroupOutput::builder().nodegroup(ng).build()
    });
    let update = mock!(aws_sdk_eks::Client::update_nodegroup_config).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(500).expect("status"),
            aws_smithy_types::body::SdkBody::empty(),
        )
    });
    let eks = eks(&[&describe, &update]);
    let group = NodeGroupRef::new("dr-west", "general");
    let same = NodeScaling {
        min: 2,
        desired: 3,
        max: 6,
    };
    eks.scale_node_group(&group, same).await.expect("no-op");
    assert_eq!(update.num_calls(), 0, "no UpdateNodegroupConfig");
    let status = eks.describe_node_group(&group).await.expect("describe");
    assert_eq!(status.state, NodeGroupState::Active);
    assert_eq!(status.ready_nodes, 0, "health issues: not counted as ready");
    assert!(!status.is_ready());

    let err = eks
        .scale_node_group(
            &group,
            NodeScaling {
                min: 2,
                desired: 7,
                max: 6,
            },
        )
        .await
        .expect_err("desired above max");
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
    assert_eq!(update.num_calls(), 0);
}
