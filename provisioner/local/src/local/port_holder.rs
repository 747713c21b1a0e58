//! Who holds an address a member was to listen on: a replica that cannot
//! bind fails with a line naming the address and the process on it (from
//! `/proc/net/tcp`, the socket's inode, and the `/proc/<pid>/fd` link that
//! points at it), not with the replica's own "address in use" somewhere in
//! its output.

use std::{net::SocketAddr, path::Path};

/// Refuses `addr` when something listens on it already, naming it.
pub fn check_free(addr: SocketAddr) -> std::io::Result<()> {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("{addr} is already in use{}", holder(addr).map(|who| format!(" by {who}")).unwrap_or_default()),
        )),
        Err(error) => Err(error),
    }
}

/// `pid N (name)` of the process listening on `addr`, where this system
/// tells (Linux's /proc, for processes this user may look into).
pub fn holder(addr: SocketAddr) -> Option<String> {
    let inode = listening_inode(addr)?;
    let link = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        if fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == Path::new(&link))) {
            let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some(format!("pid {pid} ({})", name.trim()));
        }
    }
    None
}

/// The inode of the IPv4 socket listening on `addr` (`/proc/net/tcp`:
/// local address as little-endian hex, state 0A).
fn listening_inode(addr: SocketAddr) -> Option<u64> {
    let SocketAddr::V4(v4) = addr else { return None };
    let wanted = format!("{:08X}:{:04X}", u32::from_le_bytes(v4.ip().octets()), v4.port());
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&wanted.as_str()) && fields.get(3) == Some(&"0A"))
            .then(|| fields.get(9)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_address_names_this_process() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = check_free(addr).unwrap_err().to_string();
        assert!(error.starts_with(&format!("{addr} is already in use by pid {} (", std::process::id())), "{error}");
        drop(taken);
        assert!(check_free(addr).is_ok());
    }
}
