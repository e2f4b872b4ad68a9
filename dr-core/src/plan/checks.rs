//! Data checks a plan names for a database: run against the promoted or restored instance
//! before the applications are pointed at it (`SELECT count(*)`, a checksum, any query).

use serde::{Deserialize, Serialize};

/// One check of a database's content, run by the `verify_data` step after a promotion or a
/// restore; a value other than the one expected fails the step, naming the check, and the
/// applications are not repointed.
///
/// Exactly one of `row_count`, `checksum` and `query` says what is read; `min` (for a
/// numeric value) and `expected` (the value's text) say what passes. A check with neither
/// only records its value in the report.
///
/// ```yaml
/// databases:
///   - name: orders-db
///     region: dc1
///     checks:
///       - { row_count: shop.orders, min: 1000 }
///       - { name: totals, query: "SELECT sum(total) FROM shop.orders", expected: "1234.50" }
///       - { checksum: shop.customers }
/// ```
///
/// # Examples
///
/// ```
/// use dr_core::plan::{DataCheck, DataCheckKind};
///
/// let c = DataCheck::row_count("shop.orders").with_min(1000);
/// assert_eq!(c.kind(), Some(DataCheckKind::RowCount("shop.orders")));
/// assert_eq!(c.label(), "row count of shop.orders");
/// assert!(c.judge(Some("1200")).is_ok());
/// assert_eq!(
///     c.judge(Some("3")).unwrap_err(),
///     "row count of shop.orders is 3, expected at least 1000"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCheck {
    /// Name in reports (default: what it reads, `row count of shop.orders`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The table (optionally schema-qualified) whose rows are counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<String>,
    /// The table over whose rows a checksum is computed (by the provider: dr-postgres takes
    /// an MD5 of the rows' text, sorted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// A read-only query whose first column of its first row is the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The least value that passes (the value must be an integer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// The exact value that passes, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

/// What a [`DataCheck`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataCheckKind<'a> {
    /// The number of rows of a table.
    RowCount(&'a str),
    /// A checksum over a table's rows.
    Checksum(&'a str),
    /// The first column of the first row of a query.
    Query(&'a str),
}

impl DataCheck {
    /// Counts the rows of `table`.
    pub fn row_count(table: impl Into<String>) -> Self {
        DataCheck {
            row_count: Some(table.into()),
            ..Self::default()
        }
    }

    /// A checksum over the rows of `table`.
    pub fn checksum(table: impl Into<String>) -> Self {
        DataCheck {
            checksum: Some(table.into()),
            ..Self::default()
        }
    }

    /// The value of `sql`, named `name`.
    pub fn query(name: impl Into<String>, sql: impl Into<String>) -> Self {
        DataCheck {
            name: Some(name.into()),
            query: Some(sql.into()),
            ..Self::default()
        }
    }

    /// Passes only with a value of at least `min`.
    pub fn with_min(mut self, min: i64) -> Self {
        self.min = Some(min);
        self
    }

    /// Passes only with the value `expected`.
    pub fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// What it reads; `None` unless exactly one of `row_count`, `checksum`, `query` is set.
    pub fn kind(&self) -> Option<DataCheckKind<'_>> {
        match (&self.row_count, &self.checksum, &self.query) {
            (Some(t), None, None) => Some(DataCheckKind::RowCount(t)),
            (None, Some(t), None) => Some(DataCheckKind::Checksum(t)),
            (None, None, Some(q)) => Some(DataCheckKind::Query(q)),
            _ => None,
        }
    }

    /// Its name in reports.
    pub fn label(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        match self.kind() {
            Some(DataCheckKind::RowCount(t)) => format!("row count of {t}"),
            Some(DataCheckKind::Checksum(t)) => format!("checksum of {t}"),
            Some(DataCheckKind::Query(q)) => format!("query `{q}`"),
            None => "data check".into(),
        }
    }

    /// Whether `value` (the value read, `None` for SQL `NULL`) passes.
    ///
    /// # Errors
    /// What failed, naming the check (`row count of orders is 3, expected at least 5`).
    pub fn judge(&self, value: Option<&str>) -> Result<(), String> {
        let label = self.label();
        let shown = value.unwrap_or("NULL");
        if let Some(want) = &self.expected {
            if value != Some(want.as_str()) {
                return Err(format!("{label} is {shown}, expected {want}"));
            }
        }
        if let Some(min) = self.min {
            match value.and_then(|v| v.trim().parse::<i64>().ok()) {
                Some(n) if n >= min => {}
                Some(_) => return Err(format!("{label} is {shown}, expected at least {min}")),
                None => {
                    return Err(format!(
                        "{label} is {shown}, not an integer (expected at least {min})"
                    ))
                }
            }
        }
        Ok(())
    }

    /// What is wrong with the check as written, if anything.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        let set = [&self.row_count, &self.checksum, &self.query]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if set != 1 {
            return Some("a data check needs exactly one of `row_count`, `checksum`, `query`");
        }
        if [&self.row_count, &self.checksum, &self.query]
            .iter()
            .any(|v| v.as_deref().is_some_and(|s| s.trim().is_empty()))
        {
            return Some("a data check's table or query is empty");
        }
        if self.min.is_some() && self.checksum.is_some() {
            return Some("`min` applies to a row count or a query, not to a checksum");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging_and_problems() {
        let c = DataCheck::query("total", "SELECT 1").with_expected("1");
        assert!(c.judge(Some("1")).is_ok());
        assert_eq!(c.judge(None).unwrap_err(), "total is NULL, expected 1");
        let m = DataCheck::row_count("t").with_min(2);
        assert!(m.judge(Some("x")).unwrap_err().contains("not an integer"));
        assert!(DataCheck::checksum("t").judge(Some("abc")).is_ok());
        assert!(DataCheck::default().problem().is_some());
        assert!(DataCheck::checksum("t").with_min(1).problem().is_some());
        assert!(DataCheck::row_count(" ").problem().is_some());
        assert_eq!(DataCheck::row_count("t").problem(), None);
        let two = DataCheck {
            query: Some("SELECT 1".into()),
            ..DataCheck::row_count("t")
        };
        assert_eq!(two.kind(), None);
    }

    #[test]
    fn a_plan_with_a_malformed_check_is_refused_at_its_field() {
        let yaml = |checks: &str| {
            format!(
                "name: p\nregions: [{{ name: r1, role: primary }}]\ndatabases:\n  - name: orders\n    region: r1\n    checks: [{checks}]\nservices: []\nscenarios: []\n"
            )
        };
        let plan = crate::plan::Plan::from_yaml_str(&yaml("{ row_count: t, min: 3 }"))
            .expect("a valid check");
        plan.validate().expect("a valid plan");
        assert_eq!(
            plan.databases[0].checks,
            [DataCheck::row_count("t").with_min(3)]
        );
        let err = crate::plan::Plan::from_yaml_str(&yaml("{ row_count: t, checksum: t }"))
            .expect("parsed")
            .validate()
            .expect_err("two things to read");
        let text = err.to_string();
        assert!(text.contains("databases[orders].checks[0]"), "{text}");
        assert!(crate::plan::Plan::from_yaml_str(&yaml("{ row_count: t, mn: 3 }")).is_err());
    }
}
