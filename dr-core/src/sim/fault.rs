//! Deterministic fault decisions: a SplitMix64 generator and the rules of [`FaultConfig`].

use std::collections::HashMap;
use std::time::Duration;

use super::config::{FaultConfig, FaultRule};
use crate::provider::Operation;
use crate::{Error, Retry};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, identical on every platform and
/// release, which a simulation replayed from a seed needs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[min, max]`, at millisecond resolution.
    pub(crate) fn duration_between(&mut self, min: Duration, max: Duration) -> Duration {
        let draw = self.next_u64();
        if max <= min {
            return min;
        }
        let span = (max - min).as_millis() as u64 + 1;
        min + Duration::from_millis(draw % span)
    }
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The call runs normally.
    None,
    /// Permanent failure before any effect.
    Permanent,
    /// Temporary failure before any effect.
    Throttled,
    /// Temporary failure before any effect.
    Unavailable,
    /// Temporary failure before any effect.
    Timeout,
    /// The call hangs, then times out, without effect.
    Hang,
    /// The effect happens, then the caller gets `Unavailable`.
    AfterEffect,
}

/// Fault state: the generator and how often each rule has fired.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Faults {
    rng: SplitMix64,
    temporary: u64,
    #[serde(with = "hits")]
    hits: HashMap<(u8, usize), u32>,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Faults {
            rng: SplitMix64::new(seed),
            temporary: 0,
            hits: HashMap::new(),
        }
    }

    pub(crate) fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.rng
    }

    fn rule_fires(&mut self, kind: u8, rules: &[FaultRule], op: Operation, target: &str) -> bool {
        for (i, rule) in rules.iter().enumerate() {
            if !rule.matches(op, target) {
                continue;
            }
            let hits = self.hits.entry((kind, i)).or_insert(0);
            if rule.times.is_none_or(|t| *hits < t) {
                *hits += 1;
                return true;
            }
        }
        false
    }

    /// Decides the fate of a call. Draws the same amount of randomness for every call, so
    /// that adding a rule does not shift the random faults of unrelated calls.
    pub(crate) fn decide(&mut self, cfg: &FaultConfig, op: Operation, target: &str) -> Fault {
        let roll = self.rng.next_f64();
        let throttle_roll = self.rng.next_f64();
        if self.rule_fires(0, &cfg.permanent, op, target) {
            return Fault::Permanent;
        }
        if self.rule_fires(1, &cfg.hang, op, target) {
            return Fault::Hang;
        }
        if roll < cfg.rate {
            self.temporary += 1;
            return match self.temporary % 3 {
                1 => Fault::Throttled,
                2 => Fault::Unavailable,
                _ => Fault::Timeout,
            };
        }
        if throttle_roll < cfg.throttle_rate {
            return Fault::Throttled;
        }
        if self.rule_fires(2, &cfg.fail_after_effect, op, target) {
            return Fault::AfterEffect;
        }
        Fault::None
    }
}

/// The error a fault decided before the call returns (after sleeping `hang` for a hanging
/// call), or `None` when the call goes ahead (`None` and `AfterEffect`).
pub(crate) async fn refusal(
    fault: Fault,
    provider: &str,
    op: Operation,
    target: &str,
    hang: Duration,
) -> Option<Error> {
    match fault {
        Fault::None | Fault::AfterEffect => None,
        Fault::Permanent => Some(Error::Other {
            provider: provider.into(),
            operation: op.name().into(),
            retry: Retry::Permanent,
            source: format!("injected permanent fault on {target}").into(),
        }),
        Fault::Throttled => Some(Error::Throttled {
            provider: provider.into(),
            operation: op.name().into(),
        }),
        // Decided before the call: the caller is told nothing happened.
        Fault::Unavailable => Some(Error::Refused {
            provider: provider.into(),
            operation: op.name().into(),
            source: Some(format!("injected refusal on {target}").into()),
        }),
        // The caller cannot tell a timeout before the call from one after it.
        Fault::Timeout => Some(Error::Timeout {
            operation: format!("{provider} {op} on {target}"),
            after: Duration::ZERO,
        }),
        Fault::Hang => {
            tokio::time::sleep(hang).await;
            Some(Error::Timeout {
                operation: format!("{provider} {op} on {target}"),
                after: hang,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 (reference implementation by Vigna).
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        let f = SplitMix64::new(9).next_f64();
        assert!((0.0..1.0).contains(&f));
    }

    #[test]
    fn rules_fire_a_limited_number_of_times() {
        let cfg = FaultConfig::default().with_permanent(FaultRule::new(None, "db").times(2));
        let mut faults = Faults::new(1);
        let fates: Vec<Fault> = (0..3)
            .map(|_| faults.decide(&cfg, Operation::Promote, "us/db"))
            .collect();
        assert_eq!(fates, [Fault::Permanent, Fault::Permanent, Fault::None]);
        assert_eq!(
            faults.decide(&cfg, Operation::Promote, "other"),
            Fault::None
        );
    }
}

/// The fired-rule counts as a list (the key is a pair).
mod hits {
    use std::collections::HashMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        v: &HashMap<(u8, usize), u32>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut list: Vec<(u8, usize, u32)> = v.iter().map(|(&(a, b), &n)| (a, b, n)).collect();
        list.sort_unstable();
        list.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<HashMap<(u8, usize), u32>, D::Error> {
        Ok(Vec::<(u8, usize, u32)>::deserialize(d)?
            .into_iter()
            .map(|(a, b, n)| ((a, b), n))
            .collect())
    }
}
