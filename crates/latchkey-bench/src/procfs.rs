//! What the kernel says about a process: memory (VmRSS, VmHWM) and CPU time.
//! Linux only; elsewhere every reading is `None`.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    pub vm_rss_kib: u64,
    pub vm_hwm_kib: u64,
}

/// Reads VmRSS and VmHWM of `pid` (`"self"` works too).
pub fn memory(pid: &str) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
    };
    Some(Memory { vm_rss_kib: field("VmRSS:")?, vm_hwm_kib: field("VmHWM:")? })
}

/// User + system CPU time `pid` has used so far.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) as f64 / USER_HZ))
}

/// CPU time used so far by every live process named `comm` (e.g. `postgres`), by pid.
pub fn cpu_by_name(comm: &str) -> HashMap<u32, Duration> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if name.trim() == comm {
            if let Some(cpu) = cpu_time(&pid.to_string()) {
                out.insert(pid, cpu);
            }
        }
    }
    out
}

/// CPU used by processes named `comm` between two [`cpu_by_name`] readings
/// (a process started in between counts from zero; one that ended is lost).
pub fn cpu_since(before: &HashMap<u32, Duration>, comm: &str) -> f64 {
    cpu_by_name(comm)
        .iter()
        .map(|(pid, now)| now.saturating_sub(before.get(pid).copied().unwrap_or_default()).as_secs_f64())
        .sum()
}

/// Clock ticks per second in /proc (`getconf CLK_TCK`): 100 on mainstream Linux builds.
const USER_HZ: f64 = 100.0;

/// Bytes `pid` has caused to be written to storage (`write_bytes` in /proc/<pid>/io).
pub fn write_bytes(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("write_bytes:"))?.trim().parse().ok()
}

/// CPU time of each thread of `pid`: thread ID → (name, user + system time).
fn threads(pid: &str) -> HashMap<u32, (String, Duration)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let name = std::fs::read_to_string(entry.path().join("comm")).map(|n| n.trim().to_string()).unwrap_or_default();
        if let Some(cpu) = cpu_time(&format!("{pid}/task/{tid}")) {
            out.insert(tid, (name, cpu));
        }
    }
    out
}

/// Busy and total time of the whole machine so far (first line of /proc/stat), in ticks.
fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Measures how busy the machine's CPUs are over a phase.
pub struct MachineCpu(Option<(u64, u64)>);

impl MachineCpu {
    pub fn start() -> Self {
        Self(machine_ticks())
    }

    /// Share of all CPUs that was busy since `start`, in percent.
    pub fn busy_percent(&self) -> Option<f64> {
        let (b0, t0) = self.0?;
        let (b1, t1) = machine_ticks()?;
        let dt = t1.checked_sub(t0)?;
        (dt > 0).then(|| (b1.saturating_sub(b0)) as f64 * 100.0 / dt as f64)
    }
}

/// Samples a process's VmRSS in the background and remembers the peak.
pub struct RssSampler {
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: String, every: Duration) -> Self {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_kib.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(m) = memory(&pid) {
                    p.fetch_max(m.vm_rss_kib, Ordering::Relaxed);
                }
                tokio::time::sleep(every).await;
            }
        });
        Self { peak_kib, stop, task }
    }

    /// Stops sampling; returns the highest VmRSS seen, in KiB.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak_kib.load(Ordering::Relaxed)
    }
}

/// What the server process did during a measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// Highest VmRSS sampled during the phase (KiB).
    pub sampled_peak_rss_kib: u64,
    /// VmRSS and VmHWM (lifetime peak) at the end of the phase.
    pub end: Option<Memory>,
    /// Server CPU seconds (user + system) used during the phase.
    pub cpu_secs: Option<f64>,
    /// Server CPU seconds per thread name during the phase (threads that ended
    /// during the phase are missing, so the sum can fall short of `cpu_secs`).
    pub cpu_secs_by_thread: BTreeMap<String, f64>,
    /// Bytes the server caused to be written to storage during the phase.
    pub write_bytes: Option<u64>,
}

/// Watches the server (if its pid is known) across one phase.
pub struct ServerWatch {
    pid: String,
    cpu0: Option<Duration>,
    threads0: HashMap<u32, (String, Duration)>,
    written0: Option<u64>,
    sampler: RssSampler,
}

impl ServerWatch {
    pub fn start(pid: u32) -> Self {
        let pid = pid.to_string();
        Self {
            cpu0: cpu_time(&pid),
            threads0: threads(&pid),
            written0: write_bytes(&pid),
            sampler: RssSampler::start(pid.clone(), Duration::from_millis(100)),
            pid,
        }
    }

    pub async fn finish(self) -> ServerReport {
        let peak = self.sampler.finish().await;
        let end = memory(&self.pid);
        let cpu_secs = match (self.cpu0, cpu_time(&self.pid)) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
            _ => None,
        };
        let mut by_thread: BTreeMap<String, f64> = BTreeMap::new();
        for (tid, (name, cpu)) in threads(&self.pid) {
            let before = self.threads0.get(&tid).map(|t| t.1).unwrap_or_default();
            // Tokio names every worker and blocking thread alike; group by name.
            *by_thread.entry(name).or_insert(0.0) += cpu.saturating_sub(before).as_secs_f64();
        }
        by_thread.retain(|_, v| *v > 0.0);
        let write_bytes = match (self.written0, write_bytes(&self.pid)) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        ServerReport {
            sampled_peak_rss_kib: peak.max(end.map(|m| m.vm_rss_kib).unwrap_or(0)),
            end,
            cpu_secs,
            cpu_secs_by_thread: by_thread,
            write_bytes,
        }
    }
}

/// Prints a server report.
pub fn print_server(r: &ServerReport, per: Option<(f64, &str)>) {
    let mib = |k: u64| k as f64 / 1024.0;
    if let Some(m) = r.end {
        println!(
            "  server memory: peak VmRSS sampled {:.1} MiB, VmRSS now {:.1} MiB, VmHWM (lifetime peak) {:.1} MiB",
            mib(r.sampled_peak_rss_kib),
            mib(m.vm_rss_kib),
            mib(m.vm_hwm_kib)
        );
    }
    if let Some(cpu) = r.cpu_secs {
        let threads: Vec<String> =
            r.cpu_secs_by_thread.iter().map(|(name, secs)| format!("{name} {secs:.2} s")).collect();
        let threads = if threads.is_empty() { String::new() } else { format!("; by thread: {}", threads.join(", ")) };
        match per {
            Some((n, what)) if n > 0.0 => {
                println!("  server CPU: {cpu:.2} s ({:.3} ms per {what}){threads}", cpu * 1000.0 / n)
            }
            _ => println!("  server CPU: {cpu:.2} s{threads}"),
        }
    }
    if let Some(w) = r.write_bytes {
        let mib = w as f64 / 1048576.0;
        match per {
            Some((n, what)) if n > 0.0 => {
                println!("  server storage writes: {mib:.1} MiB ({:.1} KiB per {what})", w as f64 / 1024.0 / n)
            }
            _ => println!("  server storage writes: {mib:.1} MiB"),
        }
    }
}
