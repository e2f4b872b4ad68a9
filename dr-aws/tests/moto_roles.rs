//! The CDN, load balancer, node group and secret manager providers against a moto server
//! (`scripts/standins/moto.sh`).
//!
//! They read `AWS_ENDPOINT_URL`. Without it they print a `skipped:` line and pass, unless
//! `CI` is set: then they fail, because the stand-in should have been started. What moto
//! does not model (a stale `ETag` refused, an update in progress) is covered by scripted
//! SDK responses in `tests/scripted_roles.rs`.

#[path = "support/moto.rs"]
mod moto;

use dr_aws::AwsConfig;
use dr_core::provider::{
    CdnOrigin, LbTarget, LoadBalancer, NodeCapacity, NodeGroupRef, NodeGroupState, NodeScaling,
    SecretManager, TargetState,
};
use dr_core::{Error, Secret};
use moto::{aws, cluster_with_node_group, distribution, target_group, unique};

// ---------------------------------------------------------------------------------------
// CloudFront
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn cloudfront_switches_the_default_origin_and_keeps_the_rest() {
    let Some(aws) = aws().await else { return };
    let cdn = aws.build_cloudfront();
    let id = distribution(&cdn).await;

    let before = cdn.describe_distribution(&id).await.expect("describe");
    assert_eq!(before.id, id);
    assert_eq!(before.origin, "lb.us-east-1.shop.example.com");
    assert!(!before.version.is_empty());
    // moto moves a distribution to `Deployed` at once (its default immediate transition).
    assert!(before.deployed, "{before:?}");

    let after = cdn
        .set_origin(&id, "lb.us-west-2.shop.example.com")
        .await
        .expect("set origin");
    assert_eq!(after.origin, "lb.us-west-2.shop.example.com");
    let read = cdn.describe_distribution(&id).await.expect("describe");
    assert_eq!(read.origin, "lb.us-west-2.shop.example.com");
    assert!(read.deployed, "moto deploys updates at once: {read:?}");

    // Only the default behaviour's origin changed.
    let config = cdn
        .client()
        .get_distribution_config()
        .id(&id)
        .send()
        .await
        .expect("config")
        .distribution_config
        .expect("config");
    let origins = config.origins.expect("origins").items;
    let domain = |oid: &str| {
        origins
            .iter()
            .find(|o| o.id == oid)
            .map(|o| o.domain_name.clone())
    };
    assert_eq!(
        domain("east").as_deref(),
        Some("lb.us-west-2.shop.example.com")
    );
    assert_eq!(domain("static").as_deref(), Some("static.shop.example.com"));
    assert_eq!(config.comment, "dr-aws test");

    // Setting it again is a no-op that answers the same distribution.
    let again = cdn
        .set_origin(&id, "lb.us-west-2.shop.example.com")
        .await
        .expect("again");
    assert_eq!(again.origin, "lb.us-west-2.shop.example.com");
}

#[tokio::test]
async fn cloudfront_unknown_distribution_is_not_found() {
    let Some(aws) = aws().await else { return };
    let cdn = aws.build_cloudfront();
    let err = cdn
        .describe_distribution("E0NOSUCHDIST")
        .await
        .expect_err("no such distribution");
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("E0NOSUCHDIST"), "{err}");
    let err = cdn
        .set_origin("E0NOSUCHDIST", "x.example.com")
        .await
        .expect_err("no such distribution");
    assert!(err.is_not_found(), "{err}");
}

// ---------------------------------------------------------------------------------------
// ELBv2
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn elbv2_registers_lists_and_deregisters_targets_by_name_and_arn() {
    let Some(aws) = aws().await else { return };
    let lb = aws.build_elbv2();
    let (name, arn) = target_group(&aws).await;
    assert!(lb.target_health(&name).await.expect("health").is_empty());

    let east = LbTarget::parse("10.1.0.10").expect("target");
    let west = LbTarget::parse("10.2.0.10").expect("target");
    // (moto keys a group's targets by id alone, so one address on two ports is one target
    // there; ELBv2 keeps both.)
    let west_admin = LbTarget::parse("10.2.0.11:9090").expect("target");
    lb.register_targets(&name, &[east.clone(), west.clone(), west_admin.clone()])
        .await
        .expect("register");
    // Registering again changes nothing.
    lb.register_targets(&arn, std::slice::from_ref(&west))
        .await
        .expect("register again");

    let health = lb.target_health(&arn).await.expect("health");
    let listed: Vec<&LbTarget> = health.iter().map(|t| &t.target).collect();
    // The group's port is reported as `None`; another port as itself.
    assert_eq!(listed, [&east, &west, &west_admin], "{health:?}");
    assert!(
        health.iter().all(|t| t.state == TargetState::Healthy),
        "moto reports registered ip targets healthy: {health:?}"
    );

    lb.deregister_targets(&name, std::slice::from_ref(&east))
        .await
        .expect("deregister");
    // Deregistering what is no longer registered is not an error (moto refuses the call
    // itself, so this shows the read-back skips it).
    lb.deregister_targets(
        &name,
        &[east.clone(), LbTarget::parse("10.9.9.9").expect("t")],
    )
    .await
    .expect("deregister again");
    let health = lb.target_health(&name).await.expect("health");
    let listed: Vec<&LbTarget> = health.iter().map(|t| &t.target).collect();
    assert_eq!(listed, [&west, &west_admin], "{health:?}");

    // An explicit port equal to the group's is the same target.
    lb.deregister_targets(&name, &[LbTarget::parse("10.2.0.10:8080").expect("t")])
        .await
        .expect("deregister by explicit port");
    let health = lb.target_health(&name).await.expect("health");
    assert_eq!(health.len(), 1, "{health:?}");
    assert_eq!(health[0].target, west_admin);
}

#[tokio::test]
async fn elbv2_unknown_group_is_not_found() {
    let Some(aws) = aws().await else { return };
    let lb = aws.build_elbv2();
    let err = lb
        .target_health("no-such-group")
        .await
        .expect_err("no such group");
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("no-such-group"), "{err}");
    let err = lb
        .register_targets("no-such-group", &[LbTarget::parse("10.0.0.1").expect("t")])
        .await
        .expect_err("no such group");
    assert!(err.is_not_found(), "{err}");
}

// ---------------------------------------------------------------------------------------
// EKS
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn eks_scales_and_describes_a_node_group_under_the_mapped_cluster_name() {
    let Some(aws) = aws().await else { return };
    let eks_name = unique("shop-dr");
    cluster_with_node_group(&aws, &eks_name, "general", (0, 0, 4)).await;
    let eks = aws.build_eks().with_cluster_name("dr-west", &eks_name);
    let group = NodeGroupRef::new("dr-west", "general");

    let before = eks.describe_node_group(&group).await.expect("describe");
    assert_eq!(before.group, group);
    assert_eq!(
        before.scaling,
        NodeScaling {
            min: 0,
            desired: 0,
            max: 4
        }
    );
    assert_eq!(before.state, NodeGroupState::Active);

    let up = NodeScaling {
        min: 2,
        desired: 3,
        max: 6,
    };
    eks.scale_node_group(&group, up).await.expect("scale");
    let after = eks.describe_node_group(&group).await.expect("describe");
    assert_eq!(after.scaling, up);
    // moto applies updates at once and reports no health issue: ready at the new size.
    assert_eq!(after.state, NodeGroupState::Active);
    assert_eq!(after.ready_nodes, 3);
    assert!(after.is_ready());
    // The same bounds again: no update (moto would accept one; the scripted tests count).
    eks.scale_node_group(&group, up).await.expect("scale again");

    let err = eks
        .scale_node_group(
            &group,
            NodeScaling {
                min: 4,
                desired: 3,
                max: 6,
            },
        )
        .await
        .expect_err("min above desired");
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");

    // Without the mapping the plan's name is the EKS name: not found, naming the group.
    let err = aws
        .build_eks()
        .describe_node_group(&group)
        .await
        .expect_err("no cluster dr-west");
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("dr-west/general"), "{err}");
    let err = eks
        .describe_node_group(&NodeGroupRef::new("dr-west", "missing"))
        .await
        .expect_err("no such node group");
    assert!(err.is_not_found(), "{err}");
}

// ---------------------------------------------------------------------------------------
// Secrets Manager
// ---------------------------------------------------------------------------------------

async fn secret(aws: &AwsConfig, region: &str, initial: &str) -> String {
    let name = unique("shop/orders-db");
    aws.build_secretsmanager()
        .client(region)
        .create_secret()
        .name(&name)
        .secret_string(initial)
        .send()
        .await
        .expect("create secret");
    name
}

async fn version_count(aws: &AwsConfig, region: &str, name: &str) -> usize {
    aws.build_secretsmanager()
        .client(region)
        .list_secret_version_ids()
        .secret_id(name)
        .send()
        .await
        .expect("list versions")
        .versions()
        .len()
}

#[tokio::test]
async fn secretsmanager_rotation_is_idempotent_per_version() {
    let Some(aws) = aws().await else { return };
    let region = "us-west-2";
    let sm = aws.build_secretsmanager();
    let name = secret(&aws, region, "old-password").await;
    let before = sm.get_secret_value(region, &name).await.expect("get");
    assert_eq!(before.value.expose(), "old-password");
    assert_eq!(version_count(&aws, region, &name).await, 1);

    let fresh = Secret::new("n3w-p4ssw0rd-from-a-generator");
    let v1 = sm
        .put_secret_value(region, &name, &fresh, "incident-42")
        .await
        .expect("rotate");
    assert_eq!(v1, dr_aws::version_token("incident-42"));
    // The same version and value again: no second version.
    let v2 = sm
        .put_secret_value(region, &name, &fresh, "incident-42")
        .await
        .expect("rotate again");
    assert_eq!(v1, v2);
    assert_eq!(version_count(&aws, region, &name).await, 2);

    let now = sm.get_secret_value(region, &name).await.expect("get");
    assert_eq!(now.version, v1);
    assert_eq!(now.value, fresh);

    // Another value under the same version is refused, and nothing changes.
    let other = Secret::new("a-different-value-for-the-same-version");
    let err = sm
        .put_secret_value(region, &name, &other, "incident-42")
        .await
        .expect_err("same version, other value");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains(other.expose()));
    assert_eq!(version_count(&aws, region, &name).await, 2);
    assert_eq!(
        sm.get_secret_value(region, &name).await.expect("get").value,
        fresh
    );
}

#[tokio::test]
async fn secretsmanager_errors_never_show_the_value() {
    let Some(aws) = aws().await else { return };
    let region = "us-east-1";
    let sm = aws.build_secretsmanager();
    let planted = Secret::new("PLANTED-s3cr3t-value-0123456789");
    let name = secret(&aws, region, "first").await;
    let mut errors = Vec::new();
    // A missing secret, a refused version, an unreachable endpoint.
    errors.push(
        sm.put_secret_value(region, &unique("missing"), &planted, "v1")
            .await
            .expect_err("missing secret"),
    );
    sm.put_secret_value(region, &name, &Secret::new("second"), "v1")
        .await
        .expect("rotate");
    errors.push(
        sm.put_secret_value(region, &name, &planted, "v1")
            .await
            .expect_err("refused version"),
    );
    let dead = dr_aws::AwsBuilder::from_env()
        .with_endpoint("http://127.0.0.1:9")
        .with_retry_attempts(1)
        .load()
        .await
        .expect("config")
        .build_secretsmanager();
    errors.push(
        dead.put_secret_value(region, &name, &planted, "v2")
            .await
            .expect_err("unreachable"),
    );
    assert!(errors[0].is_not_found(), "{}", errors[0]);
    assert!(
        matches!(errors[1], Error::AlreadyExists { .. }),
        "{}",
        errors[1]
    );
    assert!(errors[2].is_retryable(), "{}", errors[2]);
    for err in &errors {
        let mut texts = vec![err.to_string(), format!("{err:?}")];
        let mut cur = std::error::Error::source(err);
        while let Some(e) = cur {
            texts.push(e.to_string());
            texts.push(format!("{e:?}"));
            cur = e.source();
        }
        for t in texts {
            assert!(!t.contains(planted.expose()), "the value shows in {t}");
        }
    }
    let err = sm
        .get_secret_value(region, &unique("missing"))
        .await
        .expect_err("missing");
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("secret us-east-1/"), "{err}");
}
