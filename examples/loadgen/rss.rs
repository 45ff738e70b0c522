//! The resident memory and CPU time of a server process, read from `/proc`.

use std::io;
use std::time::Duration;

/// `VmRSS` of process `pid`, in KiB.
pub fn vm_rss_kb(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no VmRSS in /proc/{pid}/status")))
}

/// [`vm_rss_kb`] when a pid was given; a failure is reported and gives `None`.
pub fn sample(pid: Option<u32>) -> Option<u64> {
    let pid = pid?;
    match vm_rss_kb(pid) {
        Ok(kb) => Some(kb),
        Err(err) => {
            eprintln!("cannot read the memory of pid {pid}: {err}");
            None
        }
    }
}

/// User plus system CPU time of process `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it don't.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n).and_then(|value| value.parse::<u64>().ok());
    // utime and stime are fields 14 and 15; `fields` starts at field 3.
    match (field(11), field(12)) {
        (Some(user), Some(system)) => Ok(user + system),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, format!("unreadable /proc/{pid}/stat"))),
    }
}

/// Waits until process `pid` has used under `busy` of one core over a whole
/// `window` (it has finished the work the clients gave it), or `limit` has
/// passed. Returns how long it waited and whether it went quiet.
pub async fn wait_quiet(pid: u32, window: Duration, busy: f64, limit: Duration) -> (Duration, bool) {
    // Clock ticks are 1/100 s on Linux (USER_HZ).
    const TICKS_PER_SEC: f64 = 100.0;
    let started = tokio::time::Instant::now();
    let Ok(mut last) = cpu_ticks(pid) else { return (Duration::ZERO, false) };
    while started.elapsed() < limit {
        tokio::time::sleep(window).await;
        let Ok(now) = cpu_ticks(pid) else { return (started.elapsed(), false) };
        let used = now.saturating_sub(last) as f64 / TICKS_PER_SEC / window.as_secs_f64();
        if used < busy {
            return (started.elapsed(), true);
        }
        last = now;
    }
    (started.elapsed(), false)
}

/// [`vm_rss_kb`] once it stops falling: read every half second until a
/// reading is no lower than the one before (less 0.5 %), at most `limit`.
/// A burst leaves freed memory the allocator hands back to the system over
/// the next second or so (jemalloc's decay); this reads what stays held.
pub async fn settled(pid: u32, limit: Duration) -> Option<u64> {
    const STEP: Duration = Duration::from_millis(500);
    let started = tokio::time::Instant::now();
    let mut last = sample(Some(pid))?;
    while started.elapsed() < limit {
        tokio::time::sleep(STEP).await;
        let now = sample(Some(pid))?;
        if now >= last - last / 200 {
            return Some(now.min(last));
        }
        last = now;
    }
    Some(last)
}
