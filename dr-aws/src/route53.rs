//! [`Route53Dns`]: [`DnsFailover`] over Amazon Route 53.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, HealthCheckConfig, HealthCheckType,
    ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType,
};
use aws_sdk_route53::Client;
use dr_core::provider::{
    Capabilities, DnsChange, DnsFailover, DnsRecord, HealthStatus, Operation, Routing,
};
use dr_core::{Error, Result};

use crate::error::{map_sdk, Ctx};

const NAME: &str = "route53";

/// The change id [`Route53Dns::switch_record`](DnsFailover::switch_record) returns when the
/// record already had the requested values and nothing was submitted.
pub const UNCHANGED: &str = "unchanged";

/// [`DnsFailover`] over Amazon Route 53 (a global service: one client).
///
/// * Zones are given by id (`Z0123456789ABC` or `/hostedzone/Z0123456789ABC`).
/// * [`Routing`] maps to Route 53's simple, failover (`PRIMARY`/`SECONDARY`) and weighted
///   routing; other policies read back as `Simple` with their set identifier ignored.
/// * A switch reads the record set back first: when it already has the requested values,
///   TTL and routing, nothing is submitted and the change [`UNCHANGED`] is returned in sync.
///   Otherwise the record set is `UPSERT`ed, keeping the health check it had.
/// * Alias records read back with their target as the single value and a TTL of 0; switching
///   them replaces the alias with plain records.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::time::Duration;
/// use dr_core::provider::DnsFailover;
///
/// let dns = dr_aws::AwsConfig::from_env().await?.build_route53();
/// let mut record = dns.get_record("Z0123456789ABC", "api.example.com").await?;
/// record.values = vec!["lb.us-west-2.example.com".into()];
/// let change = dns.switch_record(&record).await?;
/// dns.wait_change(&change.id, Duration::from_secs(300)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Route53Dns {
    client: Client,
    timeout: Option<Duration>,
}

/// What a Route 53 health check probes (for [`Route53Dns::create_health_check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// `HTTP`, `HTTPS` or `TCP`.
    pub protocol: HealthCheckProtocol,
    /// Host name to probe.
    pub fqdn: String,
    /// Port (80/443 for HTTP/HTTPS when `None`).
    pub port: Option<u16>,
    /// Path for HTTP(S) checks (`/healthz`).
    pub path: Option<String>,
    /// Seconds between probes: 10 or 30.
    pub interval_secs: u8,
    /// Consecutive failures before the endpoint counts as unhealthy (1–10).
    pub failure_threshold: u8,
}

/// The protocol of a [`HealthCheckSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckProtocol {
    /// Plain HTTP; a 2xx or 3xx answer is healthy.
    Http,
    /// HTTPS (the certificate is not validated).
    Https,
    /// A TCP connection.
    Tcp,
}

impl HealthCheckSpec {
    /// An HTTPS check of `fqdn` at `path`, every 30 s, 3 failures to trip.
    pub fn https(fqdn: impl Into<String>, path: impl Into<String>) -> Self {
        HealthCheckSpec {
            protocol: HealthCheckProtocol::Https,
            fqdn: fqdn.into(),
            port: None,
            path: Some(path.into()),
            interval_secs: 30,
            failure_threshold: 3,
        }
    }
}

fn zone_id(zone: &str) -> &str {
    zone.trim_start_matches("/hostedzone/")
}

/// Route 53 names end with a dot and escape `*` as `\052`; compare without either.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim_end_matches('.')
            .replace("\\052", "*")
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn to_record(zone: &str, set: &ResourceRecordSet) -> DnsRecord {
    let routing = match (set.set_identifier(), set.failover(), set.weight()) {
        (Some(id), Some(f), _) => Routing::Failover {
            primary: *f == ResourceRecordSetFailover::Primary,
            set_id: id.to_string(),
        },
        (Some(id), None, Some(w)) => Routing::Weighted {
            set_id: id.to_string(),
            weight: u32::try_from(w).unwrap_or(0),
        },
        _ => Routing::Simple,
    };
    let mut values: Vec<String> = set
        .resource_records()
        .iter()
        .map(|r| r.value().to_string())
        .collect();
    if let Some(alias) = set.alias_target() {
        values = vec![alias.dns_name().to_string()];
    }
    DnsRecord {
        zone: zone.to_string(),
        name: set.name().trim_end_matches('.').to_string(),
        record_type: set.r#type().as_str().to_string(),
        values,
        ttl: set.ttl().and_then(|t| u32::try_from(t).ok()).unwrap_or(0),
        routing,
    }
}

fn set_id(routing: &Routing) -> Option<&str> {
    match routing {
        Routing::Simple => None,
        Routing::Failover { set_id, .. } | Routing::Weighted { set_id, .. } => Some(set_id),
    }
}

/// Whether `current` already is what `wanted` asks for.
fn unchanged(current: &DnsRecord, wanted: &DnsRecord) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v
            .iter()
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        v.sort();
        v
    };
    current
        .record_type
        .eq_ignore_ascii_case(&wanted.record_type)
        && current.ttl == wanted.ttl
        && current.routing == wanted.routing
        && norm(&current.values) == norm(&wanted.values)
}

fn build_error(operation: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidRequest {
        provider: NAME.into(),
        operation: operation.into(),
        message: e.to_string(),
    }
}

fn to_set(record: &DnsRecord, health_check: Option<&str>) -> Result<ResourceRecordSet> {
    let records = record
        .values
        .iter()
        .map(|v| ResourceRecord::builder().value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| build_error("switch_record", e))?;
    let mut set = ResourceRecordSet::builder()
        .name(fqdn(&record.name))
        .r#type(RrType::from(
            record.record_type.to_ascii_uppercase().as_str(),
        ))
        .ttl(i64::from(record.ttl))
        .set_resource_records(Some(records))
        .set_health_check_id(health_check.map(str::to_string));
    set = match &record.routing {
        Routing::Simple => set,
        Routing::Failover { primary, set_id } => set.set_identifier(set_id).failover(if *primary {
            ResourceRecordSetFailover::Primary
        } else {
            ResourceRecordSetFailover::Secondary
        }),
        Routing::Weighted { set_id, weight } => {
            set.set_identifier(set_id).weight(i64::from(*weight))
        }
    };
    set.build().map_err(|e| build_error("switch_record", e))
}

impl Route53Dns {
    /// A provider over `client`.
    pub fn new(client: Client) -> Self {
        Route53Dns {
            client,
            timeout: None,
        }
    }

    /// Records the configured operation timeout, reported in `Timeout` errors.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The underlying SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn ctx<'a>(&self, operation: &'a str, resource: &'a str) -> Ctx<'a> {
        Ctx {
            provider: NAME,
            operation,
            resource,
            timeout: self.timeout,
        }
    }

    /// The raw record set, read page by page from `name` on.
    async fn find_set(
        &self,
        zone: &str,
        name: &str,
        set_id: Option<&str>,
    ) -> Result<Option<ResourceRecordSet>> {
        let resource = format!("record {name} in zone {zone}");
        let mut start: Option<(String, RrType, Option<String>)> = None;
        loop {
            let mut req = self
                .client
                .list_resource_record_sets()
                .hosted_zone_id(zone_id(zone));
            req = match start.take() {
                None => req.start_record_name(fqdn(name)),
                Some((n, t, i)) => req
                    .start_record_name(n)
                    .start_record_type(t)
                    .set_start_record_identifier(i),
            };
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk(self.ctx("get_record", &resource), e))?;
            for set in out.resource_record_sets() {
                if !same_name(set.name(), name) {
                    return Ok(None);
                }
                if set.set_identifier() == set_id {
                    return Ok(Some(set.clone()));
                }
            }
            match (
                out.is_truncated(),
                out.next_record_name(),
                out.next_record_type(),
            ) {
                (true, Some(n), Some(t)) if same_name(n, name) => {
                    start = Some((
                        n.to_string(),
                        t.clone(),
                        out.next_record_identifier().map(str::to_string),
                    ));
                }
                _ => return Ok(None),
            }
        }
    }

    /// Creates a Route 53 health check and returns its id. `caller_reference` makes the
    /// call idempotent: repeating it with the same reference and spec returns the same check.
    ///
    /// # Errors
    /// `AlreadyExists` when the reference was used with a different spec; `InvalidRequest`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
    /// use dr_aws::HealthCheckSpec;
    ///
    /// let dns = dr_aws::AwsConfig::from_env().await?.build_route53();
    /// let spec = HealthCheckSpec::https("api.us-east-1.example.com", "/healthz");
    /// let id = dns.create_health_check("api-east-v1", &spec).await?;
    /// # let _ = id; Ok(()) }
    /// ```
    pub async fn create_health_check(
        &self,
        caller_reference: &str,
        spec: &HealthCheckSpec,
    ) -> Result<String> {
        let kind = match spec.protocol {
            HealthCheckProtocol::Http => HealthCheckType::Http,
            HealthCheckProtocol::Https => HealthCheckType::Https,
            HealthCheckProtocol::Tcp => HealthCheckType::Tcp,
        };
        let config = HealthCheckConfig::builder()
            .r#type(kind)
            .fully_qualified_domain_name(&spec.fqdn)
            .set_port(spec.port.map(i32::from))
            .set_resource_path(spec.path.clone())
            .request_interval(i32::from(spec.interval_secs))
            .failure_threshold(i32::from(spec.failure_threshold))
            .build()
            .map_err(|e| build_error("create_health_check", e))?;
        let resource = format!("health check {caller_reference}");
        let out = self
            .client
            .create_health_check()
            .caller_reference(caller_reference)
            .health_check_config(config)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("create_health_check", &resource), e))?;
        out.health_check()
            .map(|h| h.id().to_string())
            .ok_or_else(|| crate::error::missing(NAME, "create_health_check", "HealthCheck"))
    }
}

#[async_trait]
impl DnsFailover for Route53Dns {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        use Operation::*;
        Capabilities::of([GetRecord, SwitchRecord, WaitChange, HealthCheckStatus])
    }

    async fn get_record_set(
        &self,
        zone: &str,
        name: &str,
        set_id: Option<&str>,
    ) -> Result<DnsRecord> {
        match self.find_set(zone, name, set_id).await? {
            Some(set) => Ok(to_record(zone, &set)),
            None => Err(Error::not_found(
                NAME,
                match set_id {
                    Some(id) => format!("record {name} ({id}) in zone {zone}"),
                    None => format!("record {name} in zone {zone}"),
                },
            )),
        }
    }

    async fn switch_record(&self, record: &DnsRecord) -> Result<DnsChange> {
        let current = self
            .find_set(&record.zone, &record.name, set_id(&record.routing))
            .await?;
        if let Some(set) = &current {
            if unchanged(&to_record(&record.zone, set), record) {
                tracing::debug!(name = %record.name, "record already switched, nothing to do");
                return Ok(DnsChange {
                    id: UNCHANGED.to_string(),
                    in_sync: true,
                });
            }
        }
        let health_check = current.as_ref().and_then(|s| s.health_check_id());
        let change = Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(to_set(record, health_check)?)
            .build()
            .map_err(|e| build_error("switch_record", e))?;
        let batch = ChangeBatch::builder()
            .changes(change)
            .comment("dr: switch record")
            .build()
            .map_err(|e| build_error("switch_record", e))?;
        let resource = format!("record {} in zone {}", record.name, record.zone);
        let out = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone_id(&record.zone))
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("switch_record", &resource), e))?;
        let info = out
            .change_info()
            .ok_or_else(|| crate::error::missing(NAME, "switch_record", "ChangeInfo"))?;
        Ok(DnsChange {
            id: info.id().trim_start_matches("/change/").to_string(),
            in_sync: *info.status() == ChangeStatus::Insync,
        })
    }

    async fn get_change(&self, change_id: &str) -> Result<DnsChange> {
        if change_id == UNCHANGED {
            return Ok(DnsChange {
                id: UNCHANGED.into(),
                in_sync: true,
            });
        }
        let resource = format!("change {change_id}");
        let out = self
            .client
            .get_change()
            .id(change_id.trim_start_matches("/change/"))
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("get_change", &resource), e))?;
        let info = out
            .change_info()
            .ok_or_else(|| crate::error::missing(NAME, "get_change", "ChangeInfo"))?;
        Ok(DnsChange {
            id: info.id().trim_start_matches("/change/").to_string(),
            in_sync: *info.status() == ChangeStatus::Insync,
        })
    }

    /// Healthy when more than 18 % of Route 53's checkers report success (Route 53's own
    /// rule); `Unknown` when no checker has reported yet.
    async fn health_check_status(&self, health_check_id: &str) -> Result<HealthStatus> {
        let resource = format!("health check {health_check_id}");
        let out = self
            .client
            .get_health_check_status()
            .health_check_id(health_check_id)
            .send()
            .await
            .map_err(|e| map_sdk(self.ctx("health_check_status", &resource), e))?;
        let reports: Vec<&str> = out
            .health_check_observations()
            .iter()
            .filter_map(|o| o.status_report().and_then(|r| r.status()))
            .collect();
        Ok(health_from_reports(&reports))
    }
}

/// Route 53 counts an endpoint healthy when more than 18 % of its checkers do.
fn health_from_reports(reports: &[&str]) -> HealthStatus {
    if reports.is_empty() {
        return HealthStatus::Unknown;
    }
    let healthy = reports.iter().filter(|s| s.starts_with("Success")).count();
    if healthy * 100 > reports.len() * 18 {
        HealthStatus::Healthy
    } else {
        HealthStatus::Unhealthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(values: &[&str], routing: Routing) -> DnsRecord {
        DnsRecord {
            zone: "Z1".into(),
            name: "api.example.com".into(),
            record_type: "CNAME".into(),
            values: values.iter().map(|v| v.to_string()).collect(),
            ttl: 60,
            routing,
        }
    }

    #[test]
    fn routing_round_trips_through_record_sets() {
        for routing in [
            Routing::Simple,
            Routing::Failover {
                primary: false,
                set_id: "west".into(),
            },
            Routing::Weighted {
                set_id: "east".into(),
                weight: 10,
            },
        ] {
            let r = record(&["lb.example.com"], routing);
            let set = to_set(&r, Some("hc-1")).expect("valid set");
            assert_eq!(set.name(), "api.example.com.");
            assert_eq!(set.health_check_id(), Some("hc-1"));
            assert_eq!(to_record("Z1", &set), r);
        }
    }

    #[test]
    fn unchanged_ignores_order_case_and_trailing_dots() {
        let a = record(&["b.example.com.", "A.example.com"], Routing::Simple);
        let b = record(&["a.example.com", "b.example.com"], Routing::Simple);
        assert!(unchanged(&a, &b));
        let c = record(&["c.example.com"], Routing::Simple);
        assert!(!unchanged(&a, &c));
    }

    #[test]
    fn names_compare_like_route53() {
        assert!(same_name("\\052.example.com.", "*.example.com"));
        assert!(!same_name("api.example.com.", "www.example.com"));
        assert_eq!(zone_id("/hostedzone/Z1"), "Z1");
    }

    #[test]
    fn health_from_checker_reports() {
        assert_eq!(health_from_reports(&[]), HealthStatus::Unknown);
        let ok = "Success: HTTP Status Code 200";
        let bad = "Failure: Connection timed out";
        assert_eq!(
            health_from_reports(&[ok, bad, bad, bad]),
            HealthStatus::Healthy
        );
        assert_eq!(
            health_from_reports(&[ok, bad, bad, bad, bad, bad, bad]),
            HealthStatus::Unhealthy
        );
    }
}
