//! The resident memory of a server process, read from `/proc`.

use std::io;

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
