//! The standard `process_*` metrics, read from `/proc/self` at scrape time (the names and
//! meanings of the Prometheus client libraries' process collectors).

use std::fmt::Write;

/// Clock ticks per second for `/proc/self/stat` (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant and takes no pointers.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// What `/proc/self` says now; `None` where it could not be read (not Linux, say).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

/// Fields of `/proc/self/stat` after the `(comm)`: utime is field 14, stime 15, starttime 22,
/// vsize 23, rss 24 (1-based, `man 5 proc`).
fn parse_stat(stat: &str) -> Option<(u64, u64, u64, u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `fields[0]` is field 3 (state).
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)?, field(15)?, field(22)?, field(23)?, field(24)?))
}

fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

impl ProcessStats {
    pub fn read() -> ProcessStats {
        let mut stats = ProcessStats::default();
        if let Some((utime, stime, start, vsize, rss)) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .as_deref()
            .and_then(parse_stat)
        {
            let ticks = ticks_per_second();
            stats.cpu_seconds = Some((utime + stime) as f64 / ticks);
            stats.virtual_bytes = Some(vsize);
            stats.resident_bytes = Some(rss * page_size());
            stats.start_time_seconds = boot_time().map(|b| b as f64 + start as f64 / ticks);
        }
        stats.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        stats.max_fds = max_fds();
        stats
    }

    /// The OpenMetrics text of these values (the caller adds `# EOF`).
    pub fn encode(&self, out: &mut String) {
        let mut metric = |name: &str, kind: &str, help: &str, sample: &str, value: Option<f64>| {
            if let Some(v) = value {
                let _ = write!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{sample} {v}\n"
                );
            }
        };
        metric(
            "process_cpu_seconds",
            "counter",
            "Total user and system CPU time spent in seconds.",
            "process_cpu_seconds_total",
            self.cpu_seconds,
        );
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            "process_resident_memory_bytes",
            self.resident_bytes.map(|v| v as f64),
        );
        metric(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            "process_virtual_memory_bytes",
            self.virtual_bytes.map(|v| v as f64),
        );
        metric(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            "process_start_time_seconds",
            self.start_time_seconds,
        );
        metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            "process_open_fds",
            self.open_fds.map(|v| v as f64),
        );
        metric(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            "process_max_fds",
            self.max_fds.map(|v| v as f64),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_name_with_spaces_and_parens() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 \
                    1234 10485760 300 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((250, 50, 1234, 10_485_760, 300)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_memory_cpu_and_fds() {
        let stats = ProcessStats::read();
        assert!(stats.resident_bytes.is_some_and(|b| b > 0));
        assert!(stats.cpu_seconds.is_some());
        assert!(stats.open_fds.is_some_and(|n| n >= 3));
        let mut text = String::new();
        stats.encode(&mut text);
        assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
        assert!(text.contains("\nprocess_open_fds "), "{text}");
    }
}
