//! One local stack per app and user: a run holds an exclusive `flock` on
//! `<runtime dir>/provision/<app>.lock` (`$XDG_RUNTIME_DIR`, else
//! `/tmp/provision-<uid>`; the directory only its user may enter) for as
//! long as it lives, with its pid and control address written in it. A
//! second run of the same app finds the lock held and refuses, naming the
//! first; the kernel releases the lock when the holder exits, however it
//! exits, so a crashed run leaves nothing to clean up.

use std::{
    fs::{File, OpenOptions},
    io::{Read as _, Seek as _, Write as _},
    net::SocketAddr,
    os::unix::{
        fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
        io::AsRawFd as _,
    },
    path::PathBuf,
};

use anyhow::{Context as _, bail};

/// This run's hold on its app: released when dropped, or when the process
/// ends.
#[derive(Debug)]
pub struct Instance {
    _file: File,
}

/// Where the locks of this user's local stacks are.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("provision"),
        // SAFETY: getuid cannot fail.
        None => std::env::temp_dir().join(format!("provision-{}", unsafe { libc::getuid() })),
    }
}

/// Takes the app's lock for this run, or says which run holds it.
pub fn claim(app: &str, control: SocketAddr) -> anyhow::Result<Instance> {
    let dir = runtime_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot make {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", dir.display()))?;
    let path = dir.join(format!("{app}.lock"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: the descriptor is the open file's.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        bail!(
            "app {app} already runs here ({}): one local stack per app; stop that one (Ctrl-C where it runs) \
             or run another app (lock {})",
            if holder.is_empty() { "another provision local".to_owned() } else { holder.to_owned() },
            path.display()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "provision local pid {}, control {control}", std::process::id())?;
    file.flush()?;
    Ok(Instance { _file: file })
}
