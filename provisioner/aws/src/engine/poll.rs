//! Polling an asynchronous AWS change with exponential backoff under a
//! deadline: a namespace appearing, an operation finishing, tasks stopping,
//! a resource freed before its delete. Every wait of the engine and the
//! kinds goes through here (the rollout watch polls on its own interval,
//! with a view of each service's progress).

use std::{future::Future, time::Duration};

use anyhow::bail;

use tokio::time::Instant;

/// Calls `check` until it returns a value, sleeping 0.5 s, then twice as
/// long each time up to `max_delay`. `None` when the next sleep would pass
/// `limit`: the caller says what timed out.
pub async fn poll_until<T, F, Fut>(limit: Duration, max_delay: Duration, mut check: F) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    let mut delay = Duration::from_millis(500);
    loop {
        if let Some(value) = check().await? {
            return Ok(Some(value));
        }
        if Instant::now() + delay > deadline {
            return Ok(None);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(max_delay);
    }
}

/// Retries `check` with backoff until it says done, or fails at `limit`
/// saying what it waited for.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let done = poll_until(limit, Duration::from_secs(15), || {
        let check = check();
        async move { Ok(check.await?.then_some(())) }
    })
    .await?;
    if done.is_none() {
        bail!("gave up waiting for {what} after {}s; run destroy again later", limit.as_secs());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backs_off_doubling_up_to_the_cap_and_stops_before_the_deadline() {
        let started = Instant::now();
        let mut calls = Vec::new();
        let found = poll_until(Duration::from_secs(20), Duration::from_secs(4), || {
            calls.push(started.elapsed().as_millis());
            async { anyhow::Ok(None::<()>) }
        })
        .await
        .unwrap();
        assert_eq!(found, None);
        // 0.5, 1, 2, then 4 s apart; after 19.5 s the next 4 s would pass 20 s.
        assert_eq!(calls, [0, 500, 1500, 3500, 7500, 11500, 15500, 19500]);

        let mut left = 2;
        let found = poll_until(Duration::from_secs(20), Duration::from_secs(4), || {
            left -= 1;
            async move { anyhow::Ok((left == 0).then_some("ready")) }
        })
        .await
        .unwrap();
        assert_eq!(found, Some("ready"));
    }
}
