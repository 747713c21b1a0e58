//! A service's public way in (`[service.ingress]`): an Application Load
//! Balancer that carries gRPC end to end (HTTPS listener, target group of
//! protocol version GRPC) to the service's tasks on AWS. Cloud Map stays the
//! way in for everything inside the VPC; locally there is no load balancer,
//! and a client of the ALB is a client of one address.

use std::{net::IpAddr, ops::Range, time::Duration};

use serde::Deserialize;
use toml::Spanned;

use super::{Locate, SpecError};

/// ALB's own bounds of the idle timeout.
const IDLE_TIMEOUT_SECS: Range<i64> = 1..4001;

/// The load balancer in front of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    /// The ACM certificate of the HTTPS listener (an ALB carries gRPC only
    /// over HTTPS).
    pub certificate_arn: String,
    /// Reachable from the internet, or only inside the VPC.
    pub scheme: Scheme,
    /// Who may connect on 443.
    pub allow: Allow,
    /// Where the load balancer's nodes are.
    pub subnets: IngressSubnets,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
}

/// An ALB's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// A public DNS name and public addresses.
    InternetFacing,
    /// Private addresses in the VPC.
    Internal,
}

impl Scheme {
    /// As ELBv2 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::InternetFacing => "internet-facing",
            Scheme::Internal => "internal",
        }
    }
}

/// Who the load balancer's security group admits on 443.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// Anyone (IPv4 and IPv6): the default of an internet-facing one.
    Anywhere,
    /// The VPC's own address range: the default of an internal one.
    Vpc,
    /// These CIDR blocks.
    Cidrs(Vec<String>),
}

/// The subnets of the load balancer's nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngressSubnets {
    /// The VPC's public subnets (a route to an internet gateway) for an
    /// internet-facing one, its private ones for an internal one.
    ForScheme,
    /// These subnet ids (at least two zones, as ALB requires).
    Ids(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIngress {
    certificate_arn: Option<Spanned<String>>,
    scheme: Option<Spanned<String>>,
    allow_cidrs: Option<Spanned<Vec<String>>>,
    subnets: Option<Spanned<Vec<String>>>,
    idle_timeout_secs: Option<Spanned<i64>>,
}

/// The ingress of service `name`; `table` locates what concerns it whole.
pub(super) fn parse(raw: &Spanned<RawIngress>, name: &str, error: &Locate<'_>) -> Result<Ingress, SpecError> {
    let at = |span: Range<usize>, message: String| error(Some(span), format!("service {name:?}: {message}"));
    let table = raw.get_ref();
    let certificate_arn = match &table.certificate_arn {
        None => {
            return Err(at(
                raw.span(),
                "ingress.certificate_arn is missing: an ALB carries gRPC only on an HTTPS listener, which needs an \
                 ACM certificate (arn:aws:acm:REGION:ACCOUNT:certificate/ID) for the name clients call"
                    .into(),
            ));
        }
        Some(arn) if is_certificate_arn(arn.get_ref()) => arn.get_ref().clone(),
        Some(arn) => {
            return Err(at(
                arn.span(),
                format!(
                    "ingress.certificate_arn {:?} is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)",
                    arn.get_ref()
                ),
            ));
        }
    };
    let scheme = match &table.scheme {
        None => Scheme::InternetFacing,
        Some(scheme) => match scheme.get_ref().as_str() {
            "internet-facing" => Scheme::InternetFacing,
            "internal" => Scheme::Internal,
            other => {
                return Err(at(
                    scheme.span(),
                    format!("ingress.scheme {other:?} is not one of \"internet-facing\", \"internal\""),
                ));
            }
        },
    };
    let allow = match &table.allow_cidrs {
        None if scheme == Scheme::InternetFacing => Allow::Anywhere,
        None => Allow::Vpc,
        Some(cidrs) if cidrs.get_ref().is_empty() => {
            return Err(at(cidrs.span(), "ingress.allow_cidrs is empty: nobody could connect".into()));
        }
        Some(cidrs) => {
            if let Some(bad) = cidrs.get_ref().iter().find(|cidr| !is_cidr(cidr)) {
                return Err(at(
                    cidrs.span(),
                    format!("ingress.allow_cidrs: {bad:?} is not a CIDR block like 203.0.113.0/24"),
                ));
            }
            Allow::Cidrs(cidrs.get_ref().clone())
        }
    };
    let subnets = match &table.subnets {
        None => IngressSubnets::ForScheme,
        Some(ids) => {
            let valid = ids.get_ref().iter().all(|id| {
                id.strip_prefix("subnet-")
                    .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()))
            });
            if !valid || ids.get_ref().len() < 2 {
                return Err(at(
                    ids.span(),
                    "ingress.subnets: an ALB needs subnet-... ids in at least two availability zones".into(),
                ));
            }
            IngressSubnets::Ids(ids.get_ref().clone())
        }
    };
    let idle_timeout = match &table.idle_timeout_secs {
        None => Duration::from_secs(60),
        Some(secs) if IDLE_TIMEOUT_SECS.contains(secs.get_ref()) => Duration::from_secs(secs.get_ref().unsigned_abs()),
        Some(secs) => {
            return Err(at(secs.span(), format!("ingress.idle_timeout_secs {} is outside 1..=4000", secs.get_ref())));
        }
    };
    Ok(Ingress { certificate_arn, scheme, allow, subnets, idle_timeout })
}

fn is_certificate_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "acm", region, account, resource]
        if partition.starts_with("aws")
            && !region.is_empty()
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && resource
                .strip_prefix("certificate/")
                .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')))
}

fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else { return false };
    let Ok(address) = address.parse::<IpAddr>() else { return false };
    let Ok(prefix) = prefix.parse::<u8>() else { return false };
    prefix <= if address.is_ipv4() { 32 } else { 128 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_certificate_arns_are_recognised() {
        assert!(is_cidr("0.0.0.0/0") && is_cidr("203.0.113.0/24") && is_cidr("::/0") && is_cidr("2001:db8::/32"));
        assert!(!is_cidr("10.0.0.0") && !is_cidr("10.0.0.0/33") && !is_cidr("example.com/8"));
        assert!(is_certificate_arn(
            "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-4bbb-8ccc-0123456789ab"
        ));
        assert!(!is_certificate_arn("arn:aws:acm:us-east-1:123456789012:certificate/..."));
        assert!(!is_certificate_arn("arn:aws:acm:us-east-1:1234:certificate/x"));
        assert!(!is_certificate_arn("arn:aws:iam::123456789012:server-certificate/x"));
    }
}
