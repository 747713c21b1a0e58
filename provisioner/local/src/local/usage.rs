//! What a replica uses, read from the OS: its CPU time and resident memory,
//! turned into utilization of the service's Fargate reservation, as ECS
//! computes `CPUUtilization` and `MemoryUtilization` against the task's
//! `cpu` and `memory`.

use std::time::{Duration, Instant};

/// CPU units in one vCPU, as Fargate counts them.
const UNITS_PER_VCPU: f64 = 1024.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// When it was taken.
    pub at: Instant,
    /// CPU time (user and system) since the process started.
    pub cpu: Duration,
    /// Resident memory in bytes.
    pub rss: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/statm`; `None` once the
/// process is gone.
pub fn read(pid: u32) -> Option<Reading> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let (cpu, rss) = parse(&stat, &statm, clock_ticks_per_sec(), page_size())?;
    Some(Reading { at, cpu, rss })
}

/// CPU time and resident bytes from the text of `stat` and `statm`.
fn parse(stat: &str, statm: &str, ticks_per_sec: u64, page_size: u64) -> Option<(Duration, u64)> {
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields from the last ')'. After it, field 3 (state) comes first,
    // so utime (field 14) and stime (15) are the 12th and 13th words.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut words = rest.split_whitespace().skip(11);
    let utime: u64 = words.next()?.parse().ok()?;
    let stime: u64 = words.next()?.parse().ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let ticks = utime + stime;
    let cpu = Duration::from_secs(ticks / ticks_per_sec)
        + Duration::from_nanos((ticks % ticks_per_sec) * 1_000_000_000 / ticks_per_sec);
    Some((cpu, resident_pages * page_size))
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf reads a constant of the system; no memory is involved.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|ticks| *ticks > 0).unwrap_or(100)
}

fn page_size() -> u64 {
    // SAFETY: as above.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok().filter(|size| *size > 0).unwrap_or(4096)
}

/// A replica's utilization of its reservation, in percent: CPU between two
/// readings over `cpu_units` (so a 256-unit replica busy on a quarter of a
/// core is at 100%), memory at the later reading over `memory_mib`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Utilization {
    /// CPU time over wall time over the reserved vCPUs, in percent.
    pub cpu: f64,
    /// Resident memory over the reserved memory, in percent.
    pub memory: f64,
}

impl Utilization {
    /// Between `earlier` and `later` readings of one process; `None` when no
    /// time passed between them.
    pub fn between(earlier: &Reading, later: &Reading, cpu_units: u32, memory_mib: u32) -> Option<Self> {
        let wall = later.at.checked_duration_since(earlier.at)?.as_secs_f64();
        if wall <= 0.0 {
            return None;
        }
        let used = later.cpu.saturating_sub(earlier.cpu).as_secs_f64();
        let reserved_vcpus = f64::from(cpu_units) / UNITS_PER_VCPU;
        let reserved_bytes = f64::from(memory_mib) * 1024.0 * 1024.0;
        Some(Self { cpu: 100.0 * used / wall / reserved_vcpus, memory: 100.0 * later.rss as f64 / reserved_bytes })
    }

    /// The mean of several replicas' utilization (ECS's service average).
    pub fn mean(all: &[Utilization]) -> Option<Self> {
        if all.is_empty() {
            return None;
        }
        let n = all.len() as f64;
        Some(Self {
            cpu: all.iter().map(|u| u.cpu).sum::<f64>() / n,
            memory: all.iter().map(|u| u.memory).sum::<f64>() / n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_come_from_the_right_fields_even_with_spaces_in_the_name() {
        // A real /proc/<pid>/stat line, its name made awkward.
        let stat = "4242 (game server) S 1 4242 4242 0 -1 4194304 1204 0 0 0 250 50 0 0 20 0 3 0 123 1000 9 \
                    18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let statm = "5000 2560 300 100 0 900 0";
        let (cpu, rss) = parse(stat, statm, 100, 4096).unwrap();
        assert_eq!(cpu, Duration::from_secs(3));
        assert_eq!(rss, 2560 * 4096);
        assert_eq!(parse("garbage", statm, 100, 4096), None);
    }

    #[test]
    fn utilization_is_relative_to_the_reservation() {
        let start = Instant::now();
        let earlier = Reading { at: start, cpu: Duration::from_millis(1000), rss: 0 };
        let later = Reading { at: start + Duration::from_secs(2), cpu: Duration::from_millis(1500), rss: 256 << 20 };
        // Half a second of CPU in two seconds is a quarter of a core: all of
        // a 256-unit reservation, a quarter of a 1024-unit one.
        let quarter = Utilization::between(&earlier, &later, 256, 512).unwrap();
        assert!((quarter.cpu - 100.0).abs() < 1e-9 && (quarter.memory - 50.0).abs() < 1e-9, "{quarter:?}");
        let whole = Utilization::between(&earlier, &later, 1024, 512).unwrap();
        assert!((whole.cpu - 25.0).abs() < 1e-9);
        assert_eq!(Utilization::between(&later, &earlier, 256, 512), None);
        let mean = Utilization::mean(&[quarter, whole]).unwrap();
        assert!((mean.cpu - 62.5).abs() < 1e-9);
    }

    #[test]
    fn this_process_can_be_read() {
        let reading = read(std::process::id()).expect("/proc of this process");
        assert!(reading.rss > 0);
    }
}
