//! The loopback addresses of one local stack: `127.<block>.0.0/16`. The
//! first stack a user runs takes block 0 (`127.0.1.2` is game-server's
//! first replica, `127.0.0.1:8600` its DNS); a second app running at the
//! same time takes the lowest block no running stack holds, so two apps
//! never share an address, whatever their ports.

use std::net::{Ipv4Addr, SocketAddr};

/// The port of a stack's DNS server, on the first address of its block.
const DNS_PORT: u16 = 8600;

/// One stack's `/16` of 127.0.0.0/8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Block(pub u8);

impl Block {
    /// The address of host `host` of subnet `subnet` (a service, or a
    /// store after the services).
    pub fn host(self, subnet: u8, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.0, subnet, host)
    }

    /// Where the stack's DNS answers unless `--dns-addr` says otherwise.
    pub fn dns(self) -> SocketAddr {
        SocketAddr::new(self.host(0, 1).into(), DNS_PORT)
    }

    /// The lowest block not in `taken`, if one is left.
    pub fn lowest_free(taken: &[Block]) -> Option<Block> {
        (0..=u8::MAX).map(Block).find(|block| !taken.contains(block))
    }
}

impl std::fmt::Display for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "127.{}.0.0/16", self.0)
    }
}

impl std::str::FromStr for Block {
    type Err = ();

    /// Reads what `Display` wrote.
    fn from_str(text: &str) -> Result<Self, ()> {
        let second = text.strip_prefix("127.").and_then(|rest| rest.strip_suffix(".0.0/16")).ok_or(())?;
        second.parse().map(Block).map_err(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_block_keeps_the_documented_addresses() {
        assert_eq!(Block(0).dns().to_string(), "127.0.0.1:8600");
        assert_eq!(Block(0).host(1, 2).to_string(), "127.0.1.2");
        assert_eq!(Block(3).host(2, 5).to_string(), "127.3.2.5");
    }

    #[test]
    fn the_lowest_free_block_skips_the_taken_ones() {
        assert_eq!(Block::lowest_free(&[]), Some(Block(0)));
        assert_eq!(Block::lowest_free(&[Block(0), Block(2)]), Some(Block(1)));
        let all: Vec<Block> = (0..=u8::MAX).map(Block).collect();
        assert_eq!(Block::lowest_free(&all), None);
    }

    #[test]
    fn a_block_reads_back_what_it_wrote() {
        assert_eq!("127.7.0.0/16".parse(), Ok(Block(7)));
        assert_eq!(Block(7).to_string().parse(), Ok(Block(7)));
        assert_eq!("10.7.0.0/16".parse::<Block>(), Err(()));
    }
}
