//! One local stack per app and user: a run holds an exclusive `flock` on
//! `<runtime dir>/provision/<app>.lock` (`$XDG_RUNTIME_DIR`, else
//! `/tmp/provision-<uid>`; the directory only its user may enter) for as
//! long as it lives, with its pid, control socket and address block
//! written in it. A second run of the same app finds the lock held and
//! refuses, naming the first; the kernel releases the lock when the holder
//! exits, however it exits, so a crashed run leaves nothing to clean up.
//! A run of another app takes the lowest address block that no held lock
//! names (under `blocks.lock`, so two starting at once do not pick the same).

use std::{
    fs::{File, OpenOptions},
    io::{Read as _, Seek as _, Write as _},
    os::unix::{
        fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
        io::AsRawFd as _,
    },
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

use super::block::Block;

/// What comes before the block in a lock file.
const BLOCK_LABEL: &str = ", addresses ";

/// This run's hold on its app: released when dropped, or when the process
/// ends.
#[derive(Debug)]
pub struct Instance {
    _file: File,
    /// The addresses this run's members take.
    pub block: Block,
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
pub fn claim(app: &str, control: &Path) -> anyhow::Result<Instance> {
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
    if !try_flock(&file, libc::LOCK_EX) {
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
    // One run at a time picks its block: the others' lock files say theirs.
    let blocks = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join("blocks.lock"))
        .with_context(|| format!("cannot open {}", dir.join("blocks.lock").display()))?;
    // SAFETY: the descriptor is the open file's; a blocking lock held only
    // while lock files are read and one is written.
    if unsafe { libc::flock(blocks.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("cannot lock {}: {}", dir.join("blocks.lock").display(), std::io::Error::last_os_error());
    }
    let taken = blocks_held(&dir, &path);
    let block = Block::lowest_free(&taken).with_context(|| {
        format!("every address block of 127.0.0.0/8 is taken by a running local stack ({} of them)", taken.len())
    })?;
    file.set_len(0)?;
    file.rewind()?;
    write!(
        file,
        "provision local pid {}, control socket {}{BLOCK_LABEL}{block}",
        std::process::id(),
        control.display()
    )?;
    file.flush()?;
    drop(blocks);
    Ok(Instance { _file: file, block })
}

/// Takes `operation` (shared or exclusive) on `file` if no one holds a
/// conflicting lock.
fn try_flock(file: &File, operation: libc::c_int) -> bool {
    // SAFETY: the descriptor is the open file's.
    unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) == 0 }
}

/// The blocks of the other running stacks: the lock files in `dir` that a
/// live run holds (a shared lock cannot be had), but `own`.
fn blocks_held(dir: &Path, own: &Path) -> Vec<Block> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut taken = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_stack_lock = path.extension().is_some_and(|extension| extension == "lock")
            && path.file_name().is_some_and(|name| name != "blocks.lock");
        if path == own || !is_stack_lock {
            continue;
        }
        let Ok(mut file) = File::open(&path) else { continue };
        if try_flock(&file, libc::LOCK_SH) {
            continue; // nobody runs it: a stale file
        }
        let mut text = String::new();
        if file.read_to_string(&mut text).is_ok()
            && let Some((_, block)) = text.split_once(BLOCK_LABEL)
            && let Ok(block) = block.trim().parse()
        {
            taken.push(block);
        }
    }
    taken
}
