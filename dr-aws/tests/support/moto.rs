//! Fixtures on a moto server (`scripts/standins/moto.sh`): the configuration from the
//! environment, and the resources the providers act on but do not create (a CloudFront
//! distribution, a VPC and an ELBv2 target group, an EKS cluster with a node group, an EBS
//! volume, an ElastiCache cluster with a snapshot). Shared by `dr-aws`'s tests and the examples' end-to-end tests
//! (`#[path = "../../dr-aws/tests/support/moto.rs"]`).
#![allow(dead_code, unreachable_pub)]

use dr_aws::sdk::cloudfront::types::{
    CustomOriginConfig, DefaultCacheBehavior, DistributionConfig, Origin, OriginProtocolPolicy,
    Origins, ViewerProtocolPolicy,
};
use dr_aws::sdk::eks::types::{NodegroupScalingConfig, VpcConfigRequest};
use dr_aws::sdk::elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};
use dr_aws::{AwsConfig, CloudFrontCdn};

/// Loads the configuration from the environment, or `None` when moto is not running here
/// (with `CI` set, a missing moto panics).
pub async fn aws() -> Option<AwsConfig> {
    dr_core::testkit::standin("AWS_ENDPOINT_URL", "moto")?;
    Some(AwsConfig::from_env().await.expect("AWS config from env"))
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    dr_core::testkit::unique(prefix)
}

/// One EC2 Query request to moto (`Action=…&Version=…`) over plain HTTP, its reply's text.
/// The EC2 SDK crate is not a dependency (it alone takes minutes to build); moto routes the
/// request to EC2 by the credential scope and does not check the signature.
pub async fn ec2(body: &str) -> String {
    query("ec2", "us-east-1", body).await
}

/// One ElastiCache Query request to moto in `region` (`Action=…&Version=2015-02-02&…`), its
/// reply's text (no ElastiCache SDK crate either).
pub async fn elasticache(region: &str, body: &str) -> String {
    query("elasticache", region, body).await
}

/// A cache cluster `id` of one `cache.t4g.micro` Redis node in `region`, and its snapshot
/// `snapshot` (moto makes both `available` at once).
pub async fn cache_with_snapshot(region: &str, id: &str, snapshot: &str) {
    let reply = elasticache(
        region,
        &format!(
            "Action=CreateCacheCluster&Version=2015-02-02&CacheClusterId={id}&Engine=redis\
             &CacheNodeType=cache.t4g.micro&NumCacheNodes=1"
        ),
    )
    .await;
    assert!(reply.contains("<CacheClusterId>"), "cluster {id}: {reply}");
    let reply = elasticache(
        region,
        &format!(
            "Action=CreateSnapshot&Version=2015-02-02&SnapshotName={snapshot}&CacheClusterId={id}"
        ),
    )
    .await;
    assert!(
        reply.contains("<SnapshotName>"),
        "snapshot {snapshot}: {reply}"
    );
}

/// One Query request to moto's `service` in `region` over plain HTTP, its reply's text; moto
/// routes it by the credential scope and does not check the signature.
async fn query(service: &str, region: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect to moto");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.expect("read");
    reply
}

/// An endpoint on 127.0.0.1 nobody listens on.
pub fn closed_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("http://127.0.0.1:{port}")
}

/// The credentials and endpoint of two providers every call of which is refused: none on
/// moto (`Unauthorized`), then moto's on [`closed_endpoint`] (`Refused`).
pub fn refusing(
    aws: &AwsConfig,
) -> [(
    Option<dr_aws::sdk::s3::config::SharedCredentialsProvider>,
    String,
); 2] {
    let moto = aws
        .sdk_config()
        .endpoint_url()
        .expect("endpoint")
        .to_string();
    [
        (None, moto),
        (aws.sdk_config().credentials_provider(), closed_endpoint()),
    ]
}

/// Checks the error of a call made without credentials (`Unauthorized`, permanent) and of
/// one sent to [`closed_endpoint`] (`Refused` before anything was sent: worth a retry).
pub fn assert_unauthorized_and_refused(no_credentials: &dr_core::Error, closed: &dr_core::Error) {
    use dr_core::{Error, Retry};
    assert!(
        matches!(no_credentials, Error::Unauthorized { .. }),
        "{no_credentials}"
    );
    assert_eq!(no_credentials.retry(), Retry::Permanent);
    assert!(matches!(closed, Error::Refused { .. }), "{closed}");
    assert!(closed.is_retryable(), "{closed}");
}

/// The text of the first `<tag>` of an XML reply.
pub fn xml_text(reply: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = reply
        .find(&open)
        .unwrap_or_else(|| panic!("a <{tag}> in {reply}"))
        + open.len();
    let end = reply[start..].find('<').expect("the element ends") + start;
    reply[start..end].to_string()
}

/// A VPC in moto's us-east-1 (moto checks that a target group's VPC exists).
pub async fn vpc() -> String {
    let reply = ec2("Action=CreateVpc&CidrBlock=10.0.0.0%2F16&Version=2016-11-15").await;
    xml_text(&reply, "vpcId")
}

/// A new 8 GiB EBS volume in us-east-1a.
pub async fn volume() -> String {
    let reply =
        ec2("Action=CreateVolume&Version=2016-11-15&AvailabilityZone=us-east-1a&Size=8").await;
    xml_text(&reply, "volumeId")
}

/// A custom origin on HTTPS.
pub fn origin(id: &str, domain: &str) -> Origin {
    Origin::builder()
        .id(id)
        .domain_name(domain)
        .custom_origin_config(
            CustomOriginConfig::builder()
                .http_port(80)
                .https_port(443)
                .origin_protocol_policy(OriginProtocolPolicy::HttpsOnly)
                .build()
                .expect("custom origin config"),
        )
        .build()
        .expect("origin")
}

/// A distribution with two origins, the default behaviour on `east`
/// (`lb.us-east-1.shop.example.com`); its id.
pub async fn distribution(cdn: &CloudFrontCdn) -> String {
    let config = DistributionConfig::builder()
        .caller_reference(unique("dr-cdn"))
        .comment("dr-aws test")
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(2)
                .items(origin("east", "lb.us-east-1.shop.example.com"))
                .items(origin("static", "static.shop.example.com"))
                .build()
                .expect("origins"),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("east")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .build()
                .expect("default cache behaviour"),
        )
        .build()
        .expect("distribution config");
    let out = cdn
        .client()
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .expect("create distribution");
    out.distribution().expect("distribution").id().to_string()
}

/// An `ip` target group on port 8080: its name and ARN.
pub async fn target_group(aws: &AwsConfig) -> (String, String) {
    let lb = aws.build_elbv2();
    let name = unique("tg").chars().take(32).collect::<String>();
    let name = name.trim_end_matches('-').to_string();
    let out = lb
        .client()
        .create_target_group()
        .name(&name)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc().await)
        .target_type(TargetTypeEnum::Ip)
        .send()
        .await
        .expect("create target group");
    let arn = out.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string();
    (name, arn)
}

/// An EKS cluster `cluster` with node group `group` at `min`/`desired`/`max` nodes.
pub async fn cluster_with_node_group(
    aws: &AwsConfig,
    cluster: &str,
    group: &str,
    (min, desired, max): (i32, i32, i32),
) {
    let eks = aws.build_eks();
    eks.client()
        .create_cluster()
        .name(cluster)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .subnet_ids("subnet-0a")
                .subnet_ids("subnet-0b")
                .build(),
        )
        .send()
        .await
        .expect("create cluster");
    eks.client()
        .create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(group)
        .node_role("arn:aws:iam::123456789012:role/eks-nodes")
        .subnets("subnet-0a")
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(min)
                .desired_size(desired)
                .max_size(max)
                .build(),
        )
        .send()
        .await
        .expect("create node group");
}
