//! Property tests on the plan loader: arbitrary bytes, and arbitrary mutations of a valid
//! plan that carries planted secrets, in every format, never panic and never show a planted
//! secret in an error message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dr_core::plan::{Format, Plan};
use proptest::prelude::*;

/// Secrets written into the plans; none may appear in an error.
const PLANTED: &[&str] = &[
    "Pl4ntedPassw0rd",
    "ghp_PLANTED0123456789abcdefghijklmnopqrstu",
    "AKIAPLANTED000000000",
    "wJalrXUtnFEMIK7MDENGbPxRfiCYPLANTED1234",
];

/// A valid plan with a secret in every place a careless user puts one: a connection string
/// in a health check, a token in a description, a key as a region's cloud.
fn plan_yaml() -> String {
    r#"name: shop
description: "deploy token ghp_PLANTED0123456789abcdefghijklmnopqrstu"
regions:
  - { name: east, role: primary, cloud: AKIAPLANTED000000000 }
  - { name: west, role: secondary }
databases:
  - name: orders-db
    region: east
    engine: "postgres://admin:Pl4ntedPassw0rd@db/orders"
    replicas: [{ id: orders-db-west, region: west }]
clusters:
  - name: k8s-west
    region: west
    ingress: lb.west.example.com
    workloads:
      - { name: api, namespace: shop, replicas: 2, image: "registry/api:wJalrXUtnFEMIK7MDENGbPxRfiCYPLANTED1234" }
health_checks:
  - { name: api-health, target: "https://ops:Pl4ntedPassw0rd@api.shop.example.com/health" }
services:
  - name: api
    rto: 30m
    rpo: 5m
    database: orders-db
    workloads: [api]
    health_check: api-health
scenarios:
  - { name: failover, kind: region-failover, from: east, to: west }
"#
    .to_string()
}

/// The spans of `text` that hold a planted secret with its surrounding value (a mutation
/// inside one would make a different string, not leak this one).
fn protected(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for value in [
        "postgres://admin:Pl4ntedPassw0rd@db/orders",
        "https://ops:Pl4ntedPassw0rd@api.shop.example.com/health",
    ] {
        if let Some(i) = text.find(value) {
            spans.push((i.saturating_sub(1), i + value.len() + 1));
        }
    }
    spans
}

fn in_protected(spans: &[(usize, usize)], at: usize) -> bool {
    spans.iter().any(|&(a, b)| at >= a && at <= b)
}

/// One edit of a plan's text.
#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Indent { line: usize, by: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop_oneof![
        Just(":".to_string()),
        Just("- ".to_string()),
        Just("\t".to_string()),
        Just("[".to_string()),
        Just("}".to_string()),
        Just("\"".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("\u{202e}".to_string()),
        Just("\n  ".to_string()),
        Just("99999999999999d".to_string()),
        Just(" ghp_PLANTED0123456789abcdefghijklmnopqrstu ".to_string()),
        "[ -~]{1,8}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), token).prop_map(|(at, text)| Mutation::Insert { at, text }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<usize>(), 1usize..6).prop_map(|(line, by)| Mutation::Indent { line, by }),
    ]
}

fn floor_char(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, m: &Mutation) -> String {
    let spans = protected(text);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let line_protected = |i: usize, lines: &[String]| {
        let start: usize = lines[..i].iter().map(|l| l.len() + 1).sum();
        (start..start + lines[i].len() + 1).any(|p| in_protected(&spans, p))
    };
    match m {
        Mutation::Delete { at, len } => {
            let a = floor_char(text, *at);
            let b = floor_char(text, a + len);
            if (a..=b).any(|p| in_protected(&spans, p)) || b < a {
                return text.to_string();
            }
            format!("{}{}", &text[..a], &text[b..])
        }
        Mutation::Insert { at, text: t } => {
            let a = floor_char(text, *at);
            if in_protected(&spans, a) {
                return text.to_string();
            }
            format!("{}{t}{}", &text[..a], &text[a..])
        }
        Mutation::DuplicateLine { line } => {
            let i = line % lines.len();
            let l = lines[i].clone();
            lines.insert(i, l);
            lines.join("\n")
        }
        Mutation::SwapLines { a, b } => {
            let (a, b) = (a % lines.len(), b % lines.len());
            lines.swap(a, b);
            lines.join("\n")
        }
        Mutation::Indent { line, by } => {
            let i = line % lines.len();
            if line_protected(i, &lines) {
                return text.to_string();
            }
            lines[i] = format!("{}{}", " ".repeat(*by), lines[i]);
            lines.join("\n")
        }
    }
}

/// Parses and validates `text`; returns the error message, if any.
fn load(text: &str, format: Format) -> Option<String> {
    match Plan::parse(text, format, "<prop>") {
        Ok(plan) => plan.validate().err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

fn assert_no_secret(msg: &str) -> Result<(), TestCaseError> {
    for s in PLANTED {
        prop_assert!(!msg.contains(s), "planted secret `{}` shown in: {}", s, msg);
    }
    Ok(())
}

fn as_format(plan: &Plan, format: Format) -> String {
    match format {
        Format::Yaml => plan.to_yaml().unwrap(),
        Format::Json => serde_json::to_string_pretty(plan).unwrap(),
        Format::Toml => toml::to_string(plan).unwrap(),
    }
}

#[test]
fn the_planted_plan_is_valid_in_every_format() {
    let plan = Plan::from_yaml_str(&plan_yaml()).unwrap();
    plan.validate().unwrap();
    for format in [Format::Yaml, Format::Json, Format::Toml] {
        let text = as_format(&plan, format);
        assert_eq!(load(&text, format), None, "{format}: {text}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_nor_leak(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        at in any::<usize>(),
        secret in 0..PLANTED.len(),
    ) {
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        let at = floor_char(&text, at);
        let secret = match secret {
            0 => " postgres://admin:Pl4ntedPassw0rd@db/orders ",
            i => PLANTED[i],
        };
        text.insert_str(at, secret);
        for format in [Format::Yaml, Format::Json, Format::Toml] {
            if let Some(msg) = load(&text, format) {
                assert_no_secret(&msg)?;
            }
        }
    }

    #[test]
    fn mutated_plans_never_panic_nor_leak(
        mutations in proptest::collection::vec(mutation(), 1..4),
        format in prop_oneof![Just(Format::Yaml), Just(Format::Json), Just(Format::Toml)],
    ) {
        let plan = Plan::from_yaml_str(&plan_yaml()).unwrap();
        let mut text = as_format(&plan, format);
        for m in &mutations {
            text = apply(&text, m);
        }
        if let Some(msg) = load(&text, format) {
            assert_no_secret(&msg)?;
        }
    }
}
