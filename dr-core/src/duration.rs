//! Human durations in plans (`15m`, `1h 30m`, `90s`) and seconds in reports.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration written the way runbooks write them: `15m`, `1h`, `1h 30m`, `90s`, `2days`.
///
/// Deserialises from such a string (or from a number of seconds) and serialises back to one.
/// Negative or malformed values, and values above [`HumanDuration::MAX`] (one year), are
/// parse errors; zero parses (semantic validation rejects it where a positive duration is
/// required, naming the field). Plans built in Rust can hold any value: validation rejects
/// those above the limit too, so no arithmetic on a validated plan's durations can overflow.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dr_core::HumanDuration;
///
/// let d: HumanDuration = "1h 30m".parse().unwrap();
/// assert_eq!(d.get(), Duration::from_secs(5400));
/// assert_eq!(d.to_string(), "1h 30m");
/// assert!("-5m".parse::<HumanDuration>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The longest duration a plan may hold: one year (365 days). RTOs, RPOs, backup
    /// intervals, replication lags, PITR windows, retention, estimates and timeouts are all
    /// far below it; anything above is a typo (`99999999999999d`) and would overflow the
    /// arithmetic on instants.
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_core::HumanDuration;
    ///
    /// assert_eq!(HumanDuration::MAX.get().as_secs(), 365 * 86_400);
    /// assert!("365days".parse::<HumanDuration>().is_ok());
    /// assert!("366days".parse::<HumanDuration>().is_err());
    /// ```
    pub const MAX: HumanDuration = HumanDuration(Duration::from_secs(365 * 86_400));

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// From whole seconds.
    pub fn from_secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.starts_with('-') {
            return Err(format!("negative duration `{s}`"));
        }
        let shown = crate::redact::safe(s);
        let d = humantime::parse_duration(t).map_err(|e| {
            format!("invalid duration `{shown}` ({e}); write e.g. `90s`, `15m`, `1h 30m`")
        })?;
        bounded(d).map_err(|_| {
            format!("duration `{shown}` is longer than the limit of one year (`365days`)")
        })
    }
}

/// `d` when it is at most [`HumanDuration::MAX`].
fn bounded(d: Duration) -> Result<HumanDuration, ()> {
    if d <= HumanDuration::MAX.0 {
        Ok(HumanDuration(d))
    } else {
        Err(())
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&humantime::format_duration(self.0), f)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `90s`, `15m` or `1h 30m`, or whole seconds")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                bounded(Duration::from_secs(v)).map_err(|_| {
                    E::custom(format!(
                        "duration of {v} seconds is longer than the limit of one year (31536000 seconds)"
                    ))
                })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("negative duration `{v}`"))),
                }
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                let d = Duration::try_from_secs_f64(v).map_err(|_| {
                    E::custom(format!(
                        "invalid duration `{v}`: write whole seconds or e.g. `15m`"
                    ))
                })?;
                bounded(d).map_err(|_| {
                    E::custom(format!(
                        "duration of {v} seconds is longer than the limit of one year (31536000 seconds)"
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Serialise a `Duration` as (fractional) seconds: `#[serde(with = "dr_core::duration::seconds")]`.
pub mod seconds {
    use std::time::Duration;

    /// Serialises as seconds (`f64`).
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(super::round_secs(*d))
    }

    /// Deserialises from seconds.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = <f64 as serde::Deserialize>::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// Like [`seconds`] for `Option<Duration>` (`null` when `None`).
pub mod seconds_opt {
    use std::time::Duration;

    /// Serialises as seconds or `null`.
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&super::round_secs(*d)),
            None => s.serialize_none(),
        }
    }

    /// Deserialises from seconds or `null`.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let v = <Option<f64> as serde::Deserialize>::deserialize(d)?;
        v.map(|v| Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Seconds rounded to milliseconds, for reports.
pub(crate) fn round_secs(d: Duration) -> f64 {
    (d.as_millis() as f64) / 1000.0
}

/// A short human rendering (`12m 30s`), rounded to whole seconds.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}
