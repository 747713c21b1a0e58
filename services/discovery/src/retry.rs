//! Which failed calls may be sent again, and to where.
//!
//! Like gRPC's transparent retry, a call whose request never reached a
//! server (the connection was refused, the stream was refused or fell above
//! a GOAWAY, the connection closed before the request went out) is sent
//! again on another endpoint, up to four times within its deadline: it
//! cannot have run anywhere. An opt-in [`RetryPolicy`] retries
//! idempotent methods more, on failed transport or on chosen status codes.

use std::{error::Error as StdError, io, time::Duration};

use tonic::Code;

/// Retries beyond the transparent one, for methods safe to run twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 2 to retry at all).
    pub max_attempts: u32,
    /// Methods it covers: full names (`/rpc.Rpc/GetChampion` or
    /// `rpc.Rpc/GetChampion`) or a whole service (`rpc.Rpc/*`).
    pub methods: Vec<String>,
    /// Status codes that are retried, besides transport failures.
    pub codes: Vec<Code>,
    /// Pause before each retry.
    pub backoff: Duration,
}

impl RetryPolicy {
    /// Retries `methods` up to `max_attempts` in all on UNAVAILABLE.
    pub fn idempotent(methods: impl IntoIterator<Item = impl Into<String>>, max_attempts: u32) -> Self {
        Self {
            max_attempts,
            methods: methods.into_iter().map(Into::into).collect(),
            codes: vec![Code::Unavailable],
            backoff: Duration::from_millis(50),
        }
    }

    /// Whether the policy covers the method at `path` (`/pkg.Service/Method`).
    pub fn covers(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        self.methods.iter().any(|method| {
            let method = method.trim_start_matches('/');
            match method.strip_suffix("/*") {
                Some(service) => path.split_once('/').is_some_and(|(candidate, _)| candidate == service),
                None => method == path,
            }
        })
    }
}

/// Whether `error` proves the request never reached the server's handler.
pub(crate) fn never_reached_server(error: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(h2) = error.downcast_ref::<h2::Error>()
            && h2.reason() == Some(h2::Reason::REFUSED_STREAM)
        {
            return true;
        }
        // A graceful GOAWAY (the server ageing the connection out or
        // draining) refuses the streams it will not process: the ones above
        // its last stream id, and any opened after it arrived.
        if let Some(h2) = error.downcast_ref::<h2::Error>()
            && h2.is_go_away()
            && h2.is_remote()
            && h2.reason() == Some(h2::Reason::NO_ERROR)
        {
            return true;
        }
        // Canceled: the connection closed before the request was sent.
        if let Some(hyper) = error.downcast_ref::<hyper::Error>()
            && hyper.is_canceled()
        {
            return true;
        }
        if let Some(io) = error.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        current = error.source();
    }
    let text = error.to_string();
    // tonic reports a failed (re)connect of a lazy connection this way.
    text.contains("error trying to connect") || text.contains("tcp connect error")
}

/// The innermost message of an error chain: "Connection refused" says more
/// than "transport error".
pub(crate) fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_covers_named_methods_and_whole_services() {
        let policy = RetryPolicy::idempotent(["rpc.Rpc/GetChampion", "/ranking.v1.Ranking/*"], 3);
        assert!(policy.covers("/rpc.Rpc/GetChampion"));
        assert!(!policy.covers("/rpc.Rpc/ReportMatch"));
        assert!(policy.covers("/ranking.v1.Ranking/Top"));
        assert!(!policy.covers("/ranking.v2.Ranking/Top"));
    }

    #[test]
    fn a_refused_connection_never_reached_the_server() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(never_reached_server(&refused));
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(!never_reached_server(&reset));
    }
}
