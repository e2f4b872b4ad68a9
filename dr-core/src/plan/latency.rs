//! The plan's latency distributions per step kind, for the probabilistic forecast
//! ([`crate::forecast`]).
//!
//! ```yaml
//! forecast:
//!   latency:
//!     promote_replica: { p50: 5m, p95: 12m }             # log-normal through both
//!     switch_dns: { min: 30s, mode: 1m, max: 5m }        # triangular
//!     approval: { p50: 2m, p95: 10m }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::HumanDuration;

/// How long a step kind takes: a distribution to draw from.
///
/// # Examples
///
/// ```
/// use dr_core::plan::LatencyDist;
///
/// let d: LatencyDist = serde_json::from_str(r#"{"min": "30s", "mode": "1m", "max": "5m"}"#).unwrap();
/// assert!(matches!(d, LatencyDist::Triangular { .. }));
/// assert_eq!(d.sample(0.0).as_secs(), 30);
/// assert_eq!(d.sample(1.0).as_secs(), 300);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum LatencyDist {
    /// A log-normal distribution with this median and 95th percentile (`p95` ≥ `p50`):
    /// long tails, as provider operations have.
    Percentiles {
        /// Median.
        p50: HumanDuration,
        /// 95th percentile.
        p95: HumanDuration,
    },
    /// A triangular distribution (`min` ≤ `mode` ≤ `max`), for a bounded spread.
    Triangular {
        /// Shortest.
        min: HumanDuration,
        /// Most likely.
        mode: HumanDuration,
        /// Longest.
        max: HumanDuration,
    },
}

/// The 95th percentile of the standard normal distribution.
const Z95: f64 = 1.644_853_626_951_472_2;

impl LatencyDist {
    /// The default for a kind whose nominal duration is `nominal`: log-normal with median
    /// `nominal` and 95th percentile twice that.
    pub fn around(nominal: Duration) -> Self {
        LatencyDist::Percentiles {
            p50: nominal.into(),
            p95: (nominal * 2).into(),
        }
    }

    /// The duration at quantile `q` in [0, 1] (0 and 1 give the bounds of a triangular
    /// distribution; a log-normal one is cut at the 0.01% and 99.99% quantiles).
    pub fn sample(&self, q: f64) -> Duration {
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        let secs = match *self {
            LatencyDist::Triangular { min, mode, max } => {
                let (a, c, b) = (
                    min.get().as_secs_f64(),
                    mode.get().as_secs_f64(),
                    max.get().as_secs_f64(),
                );
                let (a, b) = (a.min(b), a.max(b));
                let c = c.clamp(a, b);
                if b <= a {
                    a
                } else {
                    let f = (c - a) / (b - a);
                    if q < f {
                        a + (q * (b - a) * (c - a)).sqrt()
                    } else {
                        b - ((1.0 - q) * (b - a) * (b - c)).sqrt()
                    }
                }
            }
            LatencyDist::Percentiles { p50, p95 } => {
                let m = p50.get().as_secs_f64();
                let p = p95.get().as_secs_f64().max(m);
                if m <= 0.0 {
                    0.0
                } else {
                    let sigma = (p / m).ln() / Z95;
                    let z = normal_quantile(q.clamp(1e-4, 1.0 - 1e-4));
                    m * (sigma * z).exp()
                }
            }
        };
        // At most a year, like every duration of a plan.
        Duration::from_secs_f64(secs.clamp(0.0, 365.0 * 86_400.0))
    }

    /// Checks the parameters: `p50` ≤ `p95`, `min` ≤ `mode` ≤ `max`.
    ///
    /// # Errors
    /// A message naming what is out of order.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            LatencyDist::Percentiles { p50, p95 } if p50.get() > p95.get() => {
                Err("p50 is above p95".into())
            }
            LatencyDist::Triangular { min, mode, max }
                if !(min.get() <= mode.get() && mode.get() <= max.get()) =>
            {
                Err("write min ≤ mode ≤ max".into())
            }
            _ => Ok(()),
        }
    }
}

/// The standard normal quantile (Acklam's rational approximation, relative error below
/// 1.2e-9), for `p` in (0, 1).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The plan's `forecast:` section: latency distributions by step kind. Kinds it does not
/// name keep the defaults of [`crate::forecast`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastConfig {
    /// Distribution per step kind (`promote_replica`, `switch_dns`, `approval`, …).
    pub latency: BTreeMap<String, LatencyDist>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_honoured() {
        let d = LatencyDist::Percentiles {
            p50: HumanDuration::from_secs(300),
            p95: HumanDuration::from_secs(720),
        };
        assert!((d.sample(0.5).as_secs_f64() - 300.0).abs() < 0.01);
        assert!((d.sample(0.95).as_secs_f64() - 720.0).abs() < 0.1);
        assert!(d.sample(0.2) < d.sample(0.3));
        assert!(d.check().is_ok());
    }

    #[test]
    fn triangular_mode_and_bounds() {
        let d = LatencyDist::Triangular {
            min: HumanDuration::from_secs(10),
            mode: HumanDuration::from_secs(20),
            max: HumanDuration::from_secs(40),
        };
        // F(mode) = (mode - min) / (max - min) = 1/3.
        assert!((d.sample(1.0 / 3.0).as_secs_f64() - 20.0).abs() < 1e-6);
        let bad = LatencyDist::Triangular {
            min: HumanDuration::from_secs(30),
            mode: HumanDuration::from_secs(20),
            max: HumanDuration::from_secs(40),
        };
        assert!(bad.check().is_err());
    }
}
