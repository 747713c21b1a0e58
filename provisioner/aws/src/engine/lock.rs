//! One change at a time: `apply`, `deploy` and `destroy` of an app hold a
//! lock for as long as they run, so that two of them (two people, or a
//! person and the pipeline) never interleave their changes.
//!
//! The lock is an S3 object, `apps/<app>/lock.json` in the account's
//! `provision-<account>-<region>` bucket, written with `If-None-Match: *`:
//! S3 makes that write atomically, so of two writers exactly one gets the
//! lock (the primitive Terraform's S3 backend locks its state with since
//! 1.10). Why not DynamoDB (Terraform's older lock) or a Secrets Manager
//! secret: the first is one more SDK crate on the build's critical path,
//! the second cannot be made again under the same name until a deletion
//! finishes; S3's SDK is here already, and conditional writes and deletes
//! are its documented way to coordinate writers. The object names its
//! holder (who, from where, which command, since when) and when it expires;
//! releasing deletes it only while it is still ours (`If-Match` its ETag).
//! A lock whose holder died without releasing it is taken over when it has
//! expired, or at once when its holder ran on this host and its process is
//! gone (an apply killed half way is finished by the next one); any other
//! can be broken with `--force-unlock ID`.

use std::{future::Future, time::Duration};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::clients::{Clients, s3::S3};

/// How long a lock holds without its holder releasing it: longer than any
/// apply waits (60 minutes for a store, 15 for deployments by default).
pub const LOCK_TTL: Duration = Duration::from_secs(3 * 3600);

/// Who holds a lock, as written in the lock object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Names this taking of the lock, for `--force-unlock`.
    pub id: String,
    /// The AWS identity (ARN) and the user and host it ran as.
    pub who: String,
    /// `apply`, `deploy` or `destroy`.
    pub command: String,
    /// When it was taken and when it expires, in Unix seconds.
    pub since: u64,
    pub expires: u64,
    /// The host and process that hold it, to tell a holder that died on
    /// this host.
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub pid: u32,
}

impl Holder {
    /// Whether the holder ran on this host and its process is gone.
    fn died_here(&self) -> bool {
        let Ok(pid) = libc::pid_t::try_from(self.pid) else { return false };
        // kill(pid, 0) checks only: ESRCH says no such process.
        // SAFETY: signal 0 sends nothing.
        let gone = pid > 0
            && unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        !self.host.is_empty() && self.host == host_name() && gone
    }

    /// The holder as one line for people.
    pub fn describe(&self) -> String {
        format!(
            "`provision {}` of {} since {} (lock {}, expires {})",
            self.command,
            self.who,
            utc(self.since),
            self.id,
            utc(self.expires)
        )
    }
}

/// A lock this process holds; released by [`Lock::hold`].
#[derive(Debug)]
pub struct Lock {
    s3: S3,
    bucket: String,
    key: String,
    etag: String,
    holder: Holder,
}

/// Where an app's lock lives: the account's bucket and the app's key.
pub fn location(account: &str, region: &str, app: &str) -> (String, String) {
    (format!("provision-{account}-{region}"), format!("apps/{app}/lock.json"))
}

impl Lock {
    /// Takes the app's lock for `command` as `caller` (its ARN) of
    /// `account`, breaking first the lock with id `force_unlock` if given.
    /// Fails with the holder's name when someone else holds it.
    pub async fn take(
        clients: &Clients,
        (account, caller): (&str, &str),
        app: &str,
        command: &str,
        force_unlock: Option<&str>,
    ) -> anyhow::Result<Self> {
        let (bucket, key) = location(account, &clients.region, app);
        ensure_bucket(clients, &bucket, account).await?;
        let now = now();
        let holder = Holder {
            id: format!("{:016x}", fastrand::u64(..)),
            who: who(caller),
            command: command.to_owned(),
            since: now,
            expires: now + LOCK_TTL.as_secs(),
            host: host_name(),
            pid: std::process::id(),
        };
        let body = serde_json::to_string(&holder)?;
        let s3 = &clients.s3;
        if let Some(id) = force_unlock {
            match s3.get_text(&bucket, &key).await? {
                Some((etag, text)) => {
                    let current = parse(&text, &bucket, &key)?;
                    if current.id != id {
                        bail!(
                            "--force-unlock {id}: the lock of app {app} is {}, held by {}, not {id}: nothing was \
                             broken",
                            current.id,
                            current.describe()
                        );
                    }
                    if s3.delete_if_match(&bucket, &key, &etag).await? {
                        provision_cli::say!("Broke the lock of app {app}: {}.", current.describe());
                    }
                }
                None => provision_cli::say!("--force-unlock {id}: app {app} was not locked."),
            }
        }
        // Twice at most: once more after taking over an expired lock.
        for _ in 0..2 {
            if let Some(etag) = s3.put_if_absent(&bucket, &key, &body).await? {
                return Ok(Self { s3: s3.clone(), bucket, key, etag, holder });
            }
            let Some((etag, text)) = s3.get_text(&bucket, &key).await? else { continue };
            let current = parse(&text, &bucket, &key)?;
            let died_here = current.died_here();
            if current.expires > now && !died_here {
                bail!(
                    "app {app} is locked by {}. Nothing was changed. Run again once it is done; if it was killed, \
                     break its lock with --force-unlock {} (s3://{bucket}/{key})",
                    current.describe(),
                    current.id
                );
            }
            if s3.delete_if_match(&bucket, &key, &etag).await? {
                let why = if died_here { "left by a process of this host that is gone" } else { "expired" };
                provision_cli::say!("Took over the lock of app {app} ({why}): {}.", current.describe());
            }
        }
        bail!("app {app}'s lock changed hands while this {command} tried to take it: run it again")
    }

    /// Runs `work` while holding the lock, then releases it, also when
    /// `work` fails or Ctrl-C stops it (what was applied until then stays;
    /// the next apply finishes it).
    pub async fn hold<T>(self, work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        let result = tokio::select! {
            result = work => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(
                "interrupted: {} stopped part way; its lock is released, and the next apply finishes what it began",
                self.holder.command
            )),
        };
        let released = self.release().await;
        match (result, released) {
            (Ok(value), Ok(())) => Ok(value),
            (Err(error), _) | (Ok(_), Err(error)) => Err(error),
        }
    }

    /// Deletes the lock object while it is still the one this process
    /// wrote (someone may have broken it with `--force-unlock`).
    async fn release(self) -> anyhow::Result<()> {
        if !self.s3.delete_if_match(&self.bucket, &self.key, &self.etag).await? {
            eprintln!(
                "provision: warning: the lock this {} held was broken meanwhile (--force-unlock) and is \
                 someone else's now: it is left to them",
                self.holder.command
            );
        }
        Ok(())
    }
}

/// Makes the account's lock bucket if it is missing: private (every public
/// access block on), encrypted at rest (S3's default), tagged as
/// provision's. Not given the artifact bucket's TLS-only policy: the lock
/// holds no secret, the SDK speaks only HTTPS to AWS, and an emulator on
/// plain HTTP (the tests') would refuse every write under that policy.
async fn ensure_bucket(clients: &Clients, bucket: &str, account: &str) -> anyhow::Result<()> {
    let s3 = &clients.s3;
    if s3.bucket_exists(bucket).await? == Some(true) {
        return Ok(());
    }
    if let Err(error) = s3.create_bucket(bucket).await
        && error.code.as_deref() != Some("BucketAlreadyOwnedByYou")
    {
        return Err(
            anyhow::Error::from(error).context(format!("the lock bucket {bucket} of account {account} cannot be made"))
        );
    }
    s3.block_public_access(bucket).await?;
    let tags = vec![(super::names::MANAGED_BY_TAG.to_owned(), super::names::MANAGED_BY.to_owned())];
    s3.put_tags(bucket, &tags).await?;
    Ok(())
}

fn parse(text: &str, bucket: &str, key: &str) -> anyhow::Result<Holder> {
    serde_json::from_str(text)
        .with_context(|| format!("s3://{bucket}/{key} is not a lock provision wrote: {text:.200}"))
}

/// The caller's ARN and the user and host it runs as.
fn who(caller: &str) -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "?".to_owned());
    format!("{caller} ({user}@{})", host_name())
}

/// This host's name (`gethostname`).
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|byte| *byte == 0).unwrap_or(buffer.len());
    if ok { String::from_utf8_lossy(&buffer[..end]).into_owned() } else { "?".to_owned() }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// Unix seconds as `2026-12-07T18:45:00Z`.
fn utc(secs: u64) -> String {
    aws_smithy_types::DateTime::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_reads_as_who_what_and_when() {
        let holder = Holder {
            id: "00ab".into(),
            who: "arn:aws:iam::1:user/ann (ann@box)".into(),
            command: "apply".into(),
            since: 0,
            expires: 10_800,
            host: "box".into(),
            pid: 1,
        };
        assert_eq!(
            holder.describe(),
            "`provision apply` of arn:aws:iam::1:user/ann (ann@box) since 1970-01-01T00:00:00Z (lock 00ab, expires \
             1970-01-01T03:00:00Z)"
        );
        assert_eq!(location("123456789012", "eu-west-1", "shop").0, "provision-123456789012-eu-west-1");
    }

    #[test]
    fn a_holder_is_dead_only_on_this_host_with_its_process_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let holder = |host: String, pid: u32| Holder {
            id: String::new(),
            who: String::new(),
            command: "apply".into(),
            since: 0,
            expires: 1,
            host,
            pid,
        };
        assert!(holder(host_name(), gone).died_here());
        assert!(!holder(host_name(), std::process::id()).died_here(), "this process lives");
        assert!(!holder("elsewhere".into(), gone).died_here(), "another host's process is not ours to judge");
        assert!(!holder(String::new(), 0).died_here(), "a lock that names no process");
    }
}
