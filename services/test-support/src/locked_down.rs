//! A service binary run as ECS runs a task whose definition says
//! `readonlyRootFilesystem` and drops every Linux capability: from an
//! image's unpacked root, mounted read-only in a mount namespace of its
//! own, with an empty capability bounding set, no new privileges, as the
//! image's user. Needs root (as chroot does), which `.ci/run` has.

use std::{ffi::CString, io, os::unix::ffi::OsStrExt, os::unix::process::CommandExt, path::Path, ptr};

use crate::{Process, service_command};

/// Starts `program` (a path inside `rootfs`) locked down as `uid`:`gid`.
pub fn start_locked_down(
    rootfs: &Path,
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    uid: u32,
    gid: u32,
) -> Process {
    let root = CString::new(rootfs.as_os_str().as_bytes()).expect("a root without NUL");
    let mut command = service_command(Path::new(program));
    command.args(args).envs(envs.iter().copied());
    // SAFETY: the closure runs in the forked child before exec and calls
    // only async-signal-safe system calls on memory it owns.
    unsafe {
        command.pre_exec(move || lock_down(&root, uid, gid));
    }
    Process::spawn(format!("{program} (locked down)"), command)
}

/// In the child: a private mount namespace, the root bind-mounted onto
/// itself read-only and entered, every capability dropped from the
/// bounding set, no new privileges, then the user.
fn lock_down(root: &CString, uid: u32, gid: u32) -> io::Result<()> {
    let check = |result: libc::c_int| if result == -1 { Err(io::Error::last_os_error()) } else { Ok(()) };
    let none = ptr::null::<libc::c_char>();
    // SAFETY: plain system calls on NUL-terminated strings that outlive them.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, ptr::null()))?;
        check(libc::mount(root.as_ptr(), root.as_ptr(), none, libc::MS_BIND | libc::MS_REC, ptr::null()))?;
        check(libc::mount(none, root.as_ptr(), none, libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY, ptr::null()))?;
        check(libc::chroot(root.as_ptr()))?;
        check(libc::chdir(c"/".as_ptr()))?;
        // Past the kernel's last capability the call fails: that is the end.
        for capability in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) == -1 {
                break;
            }
        }
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        check(libc::setgroups(0, ptr::null()))?;
        check(libc::setgid(gid))?;
        check(libc::setuid(uid))?;
    }
    Ok(())
}
