//! `provision destroy`: removes what apply made, each kind once nothing
//! left needs it (see [`super::graph::teardown_order`]), and only what
//! carries this app's tags. Each kind's module says how it goes (services
//! are scaled to zero and drained first, so Cloud Map has no instance left
//! when its service goes).

use std::time::Duration;

use anyhow::bail;

use super::{
    backoff::poll_until,
    graph,
    resource::{Cx, DestroyOptions},
    state::Live,
};

/// What destroy would delete, as lines for the confirmation.
pub fn targets(live: &Live, options: DestroyOptions) -> Vec<String> {
    graph::teardown_order().iter().flat_map(|node| node.kind.teardown_lines(live, options)).collect()
}

/// Deletes the stack's resources.
pub async fn destroy(cx: Cx<'_>, live: &Live, options: DestroyOptions) -> anyhow::Result<()> {
    for node in graph::teardown_order() {
        node.kind.destroy(cx, live, options).await?;
    }
    Ok(())
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
