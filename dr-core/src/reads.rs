//! Reads outside a run (the observation before planning) and polling loops inside traits,
//! both on top of the one retry layer ([`crate::retry`]).

use std::future::Future;

use crate::retry::{Retrier, RetryBudget, RetryPolicy};
use crate::Result;

/// Calls `read` through a [`Retrier`] of its own, four attempts at most (1 s, 2 s, 4 s
/// apart): a throttled `describe` must not make a healthy replica look unreachable, nor a
/// primary that is gone delay the decision by a minute. Only for reads.
pub(crate) async fn patiently<T, F, Fut>(read: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    Retrier::new(RetryPolicy::default(), RetryBudget::default(), 0)
        .read_attempts(4)
        .read("observe", read)
        .await
}

/// For polling loops: whether `err` should end the wait. Temporary errors do not: the loop
/// keeps polling until its own deadline.
pub(crate) fn ends_wait(err: &crate::Error) -> bool {
    !err.is_retryable()
}
