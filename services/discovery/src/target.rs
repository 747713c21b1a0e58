//! Targets in gRPC's naming syntax, and what they mean here.
//!
//! | target | resolves with |
//! | --- | --- |
//! | `dns:///ranking.local:5000` | the system resolver (the VPC resolver on ECS) |
//! | `dns://127.0.0.1:8600/ranking.local:5000` | that DNS server (the local stack, tests) |
//! | `ranking.local:5000` | like `dns:///ranking.local:5000` |
//! | `http://10.0.1.7:5000`, `10.0.1.7:5000` | a fixed address |
//! | `ipv4:10.0.1.7:5000,10.0.1.8:5000`, `ipv6:[::1]:5000` | a fixed list |

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

/// The DNS port a `dns://server/` authority without a port means.
const DNS_PORT: u16 = 53;

/// Where the addresses of a service come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Look the name up in DNS, again and again.
    Dns {
        /// The DNS server to ask; `None` for the system's resolver.
        server: Option<SocketAddr>,
        /// The name, e.g. `ranking.local`.
        host: String,
        /// The port the service listens on (SRV answers may say otherwise).
        port: u16,
    },
    /// A fixed set of addresses, never re-resolved.
    Fixed(Vec<SocketAddr>),
}

/// Why a target string was rejected. Every message quotes the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Nothing was given.
    #[error("empty target: expected e.g. dns:///ranking.local:5000")]
    Empty,
    /// The scheme is not one of dns, http, ipv4, ipv6.
    #[error("target {target:?}: unknown scheme {scheme:?}; use dns:, http:, ipv4: or ipv6:")]
    UnknownScheme {
        /// The target as given.
        target: String,
        /// The scheme found.
        scheme: String,
    },
    /// No host name after the scheme.
    #[error("target {target:?}: no host name; expected e.g. dns:///ranking.local:5000")]
    MissingHost {
        /// The target as given.
        target: String,
    },
    /// No port after the host: there is no default port for a gRPC service.
    #[error("target {target:?}: no port; add one, e.g. {example}")]
    MissingPort {
        /// The target as given.
        target: String,
        /// The target with a port, to copy.
        example: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("target {target:?}: bad port {port:?}")]
    BadPort {
        /// The target as given.
        target: String,
        /// The port text found.
        port: String,
    },
    /// The DNS server in `dns://server/...` must be an IP address.
    #[error(
        "target {target:?}: DNS server {server:?} must be an IP address with an optional port, e.g. 127.0.0.1:8600"
    )]
    BadDnsServer {
        /// The target as given.
        target: String,
        /// The authority found.
        server: String,
    },
    /// An entry of a fixed list is not an address.
    #[error("target {target:?}: {entry:?} is not an IP address with a port")]
    BadAddress {
        /// The target as given.
        target: String,
        /// The entry found.
        entry: String,
    },
    /// TLS is not supported by this client yet.
    #[error("target {target:?}: https is not supported; services talk plaintext gRPC inside the VPC")]
    Tls {
        /// The target as given.
        target: String,
    },
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(target: &str) -> Result<Self, Self::Err> {
        let target = target.trim();
        if target.is_empty() {
            return Err(TargetError::Empty);
        }
        let (scheme, rest) = match target.split_once(':') {
            // `localhost:5000` is a host and a port, not a scheme.
            Some((scheme, rest)) if is_scheme(scheme) && (KNOWN_SCHEMES.contains(&scheme) || !is_port(rest)) => {
                (scheme.to_ascii_lowercase(), rest)
            }
            // `host:port` and `ip:port` without a scheme.
            _ => return parse_host_port(target, target, None),
        };
        match scheme.as_str() {
            "dns" => parse_dns(target, rest),
            "http" => {
                let authority = rest.strip_prefix("//").unwrap_or(rest).trim_end_matches('/');
                parse_host_port(target, authority, None)
            }
            "https" => Err(TargetError::Tls { target: target.to_owned() }),
            "ipv4" | "ipv6" => {
                let mut addrs = Vec::new();
                for entry in rest.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
                    let addr = entry.parse::<SocketAddr>().map_err(|_| {
                        if entry.parse::<IpAddr>().is_ok() || !entry.contains(':') {
                            TargetError::MissingPort {
                                target: target.to_owned(),
                                example: format!("{scheme}:{entry}:5000"),
                            }
                        } else {
                            TargetError::BadAddress { target: target.to_owned(), entry: entry.to_owned() }
                        }
                    })?;
                    addrs.push(addr);
                }
                if addrs.is_empty() {
                    return Err(TargetError::MissingHost { target: target.to_owned() });
                }
                Ok(Target::Fixed(addrs))
            }
            _ => Err(TargetError::UnknownScheme { target: target.to_owned(), scheme }),
        }
    }
}

/// The schemes this parser knows; any other word before a colon is a host
/// when a port follows it, and an unknown scheme otherwise.
const KNOWN_SCHEMES: &[&str] = &["dns", "http", "https", "ipv4", "ipv6"];

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_digit())
}

fn is_scheme(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `dns:///host:port`, `dns://server/host:port` or `dns:host:port`.
fn parse_dns(target: &str, rest: &str) -> Result<Target, TargetError> {
    let Some(after_slashes) = rest.strip_prefix("//") else {
        return parse_host_port(target, rest, Some(None));
    };
    let (authority, endpoint) = after_slashes.split_once('/').unwrap_or(("", after_slashes));
    let server = if authority.is_empty() {
        None
    } else {
        let parsed = authority
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| authority.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, DNS_PORT)))
            .or_else(|| {
                let bracketed = authority.strip_prefix('[')?.strip_suffix(']')?;
                bracketed.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, DNS_PORT))
            });
        match parsed {
            Some(server) => Some(server),
            None => return Err(TargetError::BadDnsServer { target: target.to_owned(), server: authority.to_owned() }),
        }
    };
    parse_host_port(target, endpoint, Some(server))
}

/// `host:port`: a fixed address when the host is an IP, else a DNS name
/// (resolved by `dns_server`, or by the system when that is `None`).
fn parse_host_port(target: &str, text: &str, dns_server: Option<Option<SocketAddr>>) -> Result<Target, TargetError> {
    if text.is_empty() {
        return Err(TargetError::MissingHost { target: target.to_owned() });
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(Target::Fixed(vec![addr]));
    }
    let missing_port = || TargetError::MissingPort {
        target: target.to_owned(),
        example: format!("{}:5000", target.trim_end_matches('/')),
    };
    if text.parse::<IpAddr>().is_ok() || text.starts_with('[') && !text.contains("]:") {
        return Err(missing_port());
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(missing_port());
    };
    if host.is_empty() {
        return Err(TargetError::MissingHost { target: target.to_owned() });
    }
    if port.is_empty() {
        return Err(missing_port());
    }
    let port = match port.parse::<u16>() {
        Ok(port) if port > 0 => port,
        _ => return Err(TargetError::BadPort { target: target.to_owned(), port: port.to_owned() }),
    };
    if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
        return Err(TargetError::MissingHost { target: target.to_owned() });
    }
    Ok(Target::Dns { server: dns_server.flatten(), host: host.to_owned(), port })
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Dns { server: None, host, port } => write!(f, "dns:///{host}:{port}"),
            Target::Dns { server: Some(server), host, port } => write!(f, "dns://{server}/{host}:{port}"),
            Target::Fixed(addrs) => {
                let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                write!(f, "{}", list.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(server: Option<&str>, host: &str, port: u16) -> Target {
        Target::Dns { server: server.map(|s| s.parse().unwrap()), host: host.into(), port }
    }

    #[test]
    fn dns_targets_name_the_resolver_the_host_and_the_port() {
        assert_eq!("dns:///ranking.local:5000".parse(), Ok(dns(None, "ranking.local", 5000)));
        assert_eq!(
            "dns://127.0.0.1:8600/ranking.local:5000".parse(),
            Ok(dns(Some("127.0.0.1:8600"), "ranking.local", 5000))
        );
        assert_eq!(
            "dns://10.0.0.2/game-server.local:5000".parse(),
            Ok(dns(Some("10.0.0.2:53"), "game-server.local", 5000))
        );
        assert_eq!("dns://[::1]:8600/svc.local:1".parse(), Ok(dns(Some("[::1]:8600"), "svc.local", 1)));
        assert_eq!("dns:svc.local:7".parse(), Ok(dns(None, "svc.local", 7)));
        assert_eq!("svc.local:7".parse(), Ok(dns(None, "svc.local", 7)));
        assert_eq!("http://localhost:5000".parse(), Ok(dns(None, "localhost", 5000)));
    }

    #[test]
    fn addresses_are_fixed_lists() {
        let one: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        let two: SocketAddr = "127.0.0.3:5001".parse().unwrap();
        assert_eq!("http://127.0.0.2:5000".parse(), Ok(Target::Fixed(vec![one])));
        assert_eq!("127.0.0.2:5000".parse(), Ok(Target::Fixed(vec![one])));
        assert_eq!("ipv4:127.0.0.2:5000,127.0.0.3:5001".parse(), Ok(Target::Fixed(vec![one, two])));
        assert_eq!("ipv6:[::1]:5000".parse(), Ok(Target::Fixed(vec!["[::1]:5000".parse().unwrap()])));
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        assert!(matches!("dns:///".parse::<Target>(), Err(TargetError::MissingHost { .. })));
        assert!(
            matches!("dns://nohost/x:1".parse::<Target>(), Err(TargetError::BadDnsServer { server, .. }) if server == "nohost")
        );
        assert!(
            matches!("foo://x:1".parse::<Target>(), Err(TargetError::UnknownScheme { scheme, .. }) if scheme == "foo")
        );
        assert!(matches!("dns:///ranking.local".parse::<Target>(), Err(TargetError::MissingPort { .. })));
        assert!(matches!("ipv4:127.0.0.1".parse::<Target>(), Err(TargetError::MissingPort { .. })));
        assert!(matches!("dns:///svc.local:99999".parse::<Target>(), Err(TargetError::BadPort { .. })));
        assert!(matches!("dns:///svc.local:0".parse::<Target>(), Err(TargetError::BadPort { .. })));
        assert!(matches!("https://svc:443".parse::<Target>(), Err(TargetError::Tls { .. })));
        assert_eq!("".parse::<Target>(), Err(TargetError::Empty));

        let message = "dns:///ranking.local".parse::<Target>().unwrap_err().to_string();
        assert_eq!(message, "target \"dns:///ranking.local\": no port; add one, e.g. dns:///ranking.local:5000");
    }

    #[test]
    fn display_gives_the_canonical_form() {
        assert_eq!("svc.local:7".parse::<Target>().unwrap().to_string(), "dns:///svc.local:7");
        assert_eq!(
            "dns://127.0.0.1:8600/svc.local:7".parse::<Target>().unwrap().to_string(),
            "dns://127.0.0.1:8600/svc.local:7"
        );
    }
}
