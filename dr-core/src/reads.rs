//! Patient reads: a read (describe, status, list) that hits a temporary error is tried again
//! a few times before the caller concludes anything from its absence.

use std::future::Future;
use std::time::Duration;

use crate::Result;

/// Attempts of one read on temporary errors.
const ATTEMPTS: u32 = 4;
/// Delay before the first retry; doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Calls `read` until it succeeds, fails permanently, or four attempts are used (1 s, 2 s,
/// 4 s apart). A throttled `describe` must not make a healthy replica look unreachable, nor a
/// read-back answer "cannot tell". Only for reads: they are idempotent by nature.
pub(crate) async fn patiently<T, F, Fut>(mut read: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut delay = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match read().await {
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "read failed, retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other.map_err(|e| e.exhausted(attempt)),
        }
    }
}

/// For polling loops: whether `err` should end the wait. Temporary errors do not: the loop
/// keeps polling until its own deadline.
pub(crate) fn ends_wait(err: &crate::Error) -> bool {
    !err.is_retryable()
}
