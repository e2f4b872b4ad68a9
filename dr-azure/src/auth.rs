//! Authentication the 1.x SDK leaves to its users: Shared Key request signing (a per-try
//! pipeline policy, so every retry is signed afresh) and SAS tokens signed with an account
//! key.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::Secret;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request, Url};
use chrono::{DateTime, SecondsFormat, Utc};

/// The storage service version our SAS tokens are signed for.
const SAS_VERSION: &str = "2022-11-02";

/// Signs each request with an account key (`Authorization: SharedKey account:signature`).
///
/// Added to the SDK pipeline as a per-try policy: a retried request gets a new `x-ms-date`
/// and a new signature.
pub(crate) struct SharedKeyPolicy {
    account: String,
    key: Secret,
}

impl std::fmt::Debug for SharedKeyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKeyPolicy")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SharedKeyPolicy {
    pub(crate) fn new(account: String, key: Secret) -> Arc<Self> {
        Arc::new(SharedKeyPolicy { account, key })
    }
}

#[async_trait]
impl Policy for SharedKeyPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let date = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        request.insert_header("x-ms-date", date);
        let to_sign = string_to_sign(&self.account, request);
        let signature = azure_core::hmac::hmac_sha256(&to_sign, &self.key)?;
        request.insert_header(
            "authorization",
            format!("SharedKey {}:{signature}", self.account),
        );
        match next.split_first() {
            Some((first, rest)) => first.send(ctx, request, rest).await,
            None => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "shared key policy must not be the last policy of a pipeline",
            )),
        }
    }
}

/// The Shared Key string to sign (Blob service, version 2009-09-19 and later).
fn string_to_sign(account: &str, request: &Request) -> String {
    let headers = request.headers();
    let header = |name: &'static str| -> String {
        headers
            .get_optional_str(&name.into())
            .unwrap_or_default()
            .to_string()
    };
    let mut content_length = header("content-length");
    if content_length.is_empty() {
        content_length = request
            .body()
            .len()
            .filter(|n| *n > 0)
            .map(|n| n.to_string())
            .unwrap_or_default();
    }
    if content_length == "0" {
        content_length.clear();
    }
    let mut ms_headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-ms-"))
        .map(|(name, value)| (name.as_str().to_string(), value.as_str().trim().to_string()))
        .collect();
    ms_headers.sort();
    let mut s = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n",
        request.method().as_ref(),
        header("content-encoding"),
        header("content-language"),
        content_length,
        header("content-md5"),
        header("content-type"),
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    );
    for (name, value) in ms_headers {
        s.push_str(&name);
        s.push(':');
        s.push_str(&value);
        s.push('\n');
    }
    s.push_str(&canonicalized_resource(account, request.url()));
    s
}

fn canonicalized_resource(account: &str, url: &Url) -> String {
    let mut s = format!("/{account}{}", url.path());
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in url.query_pairs() {
        let name = name.to_lowercase();
        match params.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value.into_owned()),
            None => params.push((name, vec![value.into_owned()])),
        }
    }
    params.sort();
    for (name, mut values) in params {
        values.sort();
        s.push('\n');
        s.push_str(&name);
        s.push(':');
        s.push_str(&values.join(","));
    }
    s
}

fn sas_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn encode(value: &str) -> String {
    url_encode(value)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An account SAS for the Blob service (`ss=b`, `srt=sco`), signed with the account key.
///
/// `permissions` is a string of the SAS permission letters, in the service's order
/// (`racwdl`: read, add, create, write, delete, list).
///
/// # Errors
/// `Unauthorized` when the key is not valid base64.
///
/// # Examples
///
/// ```
/// use chrono::{Duration, Utc};
///
/// let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// let sas = dr_azure::account_sas("devstoreaccount1", key, "rl", Utc::now() + Duration::hours(1))?;
/// assert!(sas.contains("sp=rl") && sas.contains("sig="));
/// # Ok::<(), dr_core::Error>(())
/// ```
pub fn account_sas(
    account: &str,
    key: &str,
    permissions: &str,
    expiry: DateTime<Utc>,
) -> dr_core::Result<String> {
    let se = sas_time(expiry);
    let to_sign = format!("{account}\n{permissions}\nb\nsco\n\n{se}\n\n\n{SAS_VERSION}\n\n");
    let sig = sign(&to_sign, key)?;
    Ok(format!(
        "sv={SAS_VERSION}&ss=b&srt=sco&sp={permissions}&se={}&sig={}",
        encode(&se),
        encode(&sig)
    ))
}

/// A service SAS for one blob (`sr=b`), signed with the account key.
pub(crate) fn blob_sas(
    account: &str,
    key: &str,
    container: &str,
    blob: &str,
    permissions: &str,
    expiry: DateTime<Utc>,
) -> dr_core::Result<String> {
    let se = sas_time(expiry);
    let resource = format!("/blob/{account}/{container}/{blob}");
    let to_sign =
        format!("{permissions}\n\n{se}\n{resource}\n\n\n\n{SAS_VERSION}\nb\n\n\n\n\n\n\n");
    let sig = sign(&to_sign, key)?;
    Ok(format!(
        "sv={SAS_VERSION}&sr=b&sp={permissions}&se={}&sig={}",
        encode(&se),
        encode(&sig)
    ))
}

fn sign(to_sign: &str, key: &str) -> dr_core::Result<String> {
    azure_core::hmac::hmac_sha256(to_sign, &Secret::new(key.to_string())).map_err(|_| {
        dr_core::Error::Unauthorized {
            provider: crate::PROVIDER.into(),
            message: "the account key is not valid base64".into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::Method;

    #[test]
    fn canonical_resource_sorts_and_lowercases_query() -> Result<(), Box<dyn std::error::Error>> {
        let url = Url::parse("http://h/acct/c/a%20b?restype=container&comp=list&prefix=x%2Fy")?;
        assert_eq!(
            canonicalized_resource("acct", &url),
            "/acct/acct/c/a%20b\ncomp:list\nprefix:x/y\nrestype:container"
        );
        Ok(())
    }

    #[test]
    fn string_to_sign_has_fixed_lines_and_ms_headers() -> Result<(), Box<dyn std::error::Error>> {
        let mut req = Request::new(Url::parse("http://h/acct/c/b")?, Method::Put);
        req.insert_header("x-ms-version", "2025-01-05");
        req.insert_header("x-ms-date", "Mon, 01 Jan 2024 00:00:00 GMT");
        req.insert_header("content-length", "0");
        let s = string_to_sign("acct", &req);
        assert_eq!(
            s,
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Mon, 01 Jan 2024 00:00:00 GMT\nx-ms-version:2025-01-05\n/acct/acct/c/b"
        );
        Ok(())
    }

    #[test]
    fn policy_debug_redacts_the_key() {
        let p = SharedKeyPolicy::new("acct".into(), Secret::new("c2VjcmV0".to_string()));
        let shown = format!("{p:?}");
        assert!(shown.contains("redacted") && !shown.contains("c2VjcmV0"));
    }
}
