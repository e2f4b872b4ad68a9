//! Data checks after a restore or a promotion: row counts and checksum queries, the
//! `SELECT COUNT(*)` of the runbooks.

use dr_core::provider::DbRef;
use dr_core::{Error, Result};

use crate::client::{quote_table, PROVIDER};
use crate::database::PostgresDatabase;

/// One check of a database's content.
///
/// # Examples
///
/// ```
/// use dr_postgres::DataCheck;
///
/// let checks = [
///     DataCheck::row_count("shop.orders").expect("1000"),
///     DataCheck::checksum("shop.orders"),
///     DataCheck::query("open orders", "SELECT count(*) FROM shop.orders WHERE open"),
/// ];
/// assert_eq!(checks[0].name(), "row count of shop.orders");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCheck {
    name: String,
    sql: String,
    expected: Option<String>,
}

impl DataCheck {
    /// `SELECT count(*)` of `table` (optionally schema-qualified).
    pub fn row_count(table: &str) -> Self {
        DataCheck {
            name: format!("row count of {table}"),
            sql: format!("SELECT count(*)::text FROM {}", quote_table(table)),
            expected: None,
        }
    }

    /// An MD5 over every row of `table` in a stable order (its text form, sorted): equal on
    /// two databases exactly when they hold the same rows.
    pub fn checksum(table: &str) -> Self {
        DataCheck {
            name: format!("checksum of {table}"),
            sql: format!(
                "SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), 'empty') \
                 FROM {} AS t",
                quote_table(table)
            ),
            expected: None,
        }
    }

    /// A query whose first column of its first row is the value checked (cast to text).
    pub fn query(name: impl Into<String>, sql: impl Into<String>) -> Self {
        DataCheck {
            name: name.into(),
            sql: sql.into(),
            expected: None,
        }
    }

    /// Fails the check unless its value is `expected`.
    pub fn expect(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SQL it runs.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The check a plan names ([`dr_core::plan::DataCheck`]): a row count, a checksum or a
    /// query, with its expected value (a plan's `min` is judged by the executor's
    /// `verify_data` step, not here).
    ///
    /// # Errors
    /// `InvalidRequest` when the plan's check does not say what to read.
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_postgres::DataCheck;
    ///
    /// let planned = dr_core::plan::DataCheck::row_count("shop.orders").with_min(10);
    /// let c = DataCheck::from_plan(&planned)?;
    /// assert_eq!(c.sql(), DataCheck::row_count("shop.orders").sql());
    /// # Ok::<(), dr_core::Error>(())
    /// ```
    pub fn from_plan(check: &dr_core::plan::DataCheck) -> Result<Self> {
        use dr_core::plan::DataCheckKind as K;
        let c = match check.kind() {
            Some(K::RowCount(t)) => DataCheck::row_count(t),
            Some(K::Checksum(t)) => DataCheck::checksum(t),
            Some(K::Query(q)) => DataCheck::query(check.label(), q),
            _ => {
                return Err(Error::InvalidRequest {
                    provider: PROVIDER.into(),
                    operation: format!("check `{}`", check.label()),
                    message: "a data check needs exactly one of row_count, checksum, query".into(),
                })
            }
        };
        let c = DataCheck {
            name: check.label(),
            ..c
        };
        Ok(match &check.expected {
            Some(e) => c.expect(e.clone()),
            None => c,
        })
    }
}

/// The outcome of one [`DataCheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// The check's name.
    pub name: String,
    /// The value it read (`NULL` as `None`).
    pub value: Option<String>,
    /// The value it expected, if any.
    pub expected: Option<String>,
}

impl CheckOutcome {
    /// Whether the value is the expected one (always, for checks without an expectation).
    pub fn passed(&self) -> bool {
        self.expected.is_none() || self.expected == self.value
    }
}

impl PostgresDatabase {
    /// Runs `checks` on `db`'s database, in order, in one read-only transaction (so they all
    /// see the same snapshot).
    ///
    /// # Errors
    /// Connection errors; `InvalidRequest` for a check whose SQL is invalid or names a table
    /// that does not exist. A value other than the expected one is not an error: see
    /// [`CheckOutcome::passed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(pg: dr_postgres::PostgresDatabase) -> dr_core::Result<()> {
    /// use dr_core::provider::DbRef;
    /// use dr_postgres::DataCheck;
    ///
    /// let restored = DbRef::new("local", "orders-restored");
    /// let out = pg.check(&restored, &[DataCheck::row_count("orders").expect("1000")]).await?;
    /// assert!(out.iter().all(|c| c.passed()));
    /// # Ok(()) }
    /// ```
    pub async fn check(&self, db: &DbRef, checks: &[DataCheck]) -> Result<Vec<CheckOutcome>> {
        let mut client = self.client(db).await?;
        let map = |e| self.map("check", db, e);
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(map)?;
        let mut out = Vec::with_capacity(checks.len());
        for c in checks {
            let rows = tx
                .simple_query(&c.sql)
                .await
                .map_err(|e| self.map(&format!("check `{}`", c.name), db, e))?;
            let value = rows.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
                _ => None,
            });
            let Some(value) = value else {
                return Err(Error::InvalidRequest {
                    provider: PROVIDER.into(),
                    operation: format!("check `{}`", c.name),
                    message: "the query returned no row".into(),
                });
            };
            out.push(CheckOutcome {
                name: c.name.clone(),
                value,
                expected: c.expected.clone(),
            });
        }
        tx.commit().await.map_err(map)?;
        Ok(out)
    }
}
