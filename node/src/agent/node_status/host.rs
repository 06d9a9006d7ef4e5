//! What the node learns about its host: CPU count, memory, free disk,
//! addresses and system identity. Readings come from `/proc`, `/etc` and
//! `statvfs` where the platform has them; anything unreadable is `None` and
//! the configuration decides.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;

/// One reading of the host's free resources.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostSample {
    /// `MemAvailable`, in bytes.
    pub memory_available: Option<u64>,
    /// The fraction of the data directory's file system still free.
    pub disk_free_ratio: Option<f64>,
}

/// Samples free memory and the free share of the file system holding `data_dir`.
pub fn sample(data_dir: &Path) -> HostSample {
    HostSample {
        memory_available: meminfo("MemAvailable:"),
        disk_free_ratio: disk_free_ratio(data_dir),
    }
}

/// `MemTotal`, in bytes.
pub fn memory_total() -> Option<u64> {
    meminfo("MemTotal:")
}

/// Logical CPUs, in millicores.
pub fn cpu_millis() -> u64 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    u64::try_from(cpus).unwrap_or(1).saturating_mul(1000)
}

/// The host's name, from the kernel or the environment.
pub fn hostname() -> Option<String> {
    read_trimmed("/proc/sys/kernel/hostname")
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
}

/// The address other hosts reach this one at: the source address of the
/// default route (found by connecting a UDP socket, which sends nothing),
/// or loopback on a host without one.
pub fn internal_ip() -> IpAddr {
    let routed = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| {
            s.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified());
    routed.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Identity strings of `nodeInfo` the host provides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemIdentity {
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
}

pub fn system_identity() -> SystemIdentity {
    SystemIdentity {
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
        os_image: os_image().unwrap_or_else(|| std::env::consts::OS.to_string()),
        machine_id: read_trimmed("/etc/machine-id").unwrap_or_default(),
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
    }
}

/// The operating system as Kubernetes names it (Go's GOOS).
pub fn operating_system() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// The architecture as Kubernetes names it (Go's GOARCH).
pub fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn os_image() -> Option<String> {
    let release = std::fs::read_to_string("/etc/os-release").ok()?;
    release.lines().find_map(|l| {
        l.strip_prefix("PRETTY_NAME=")
            .map(|v| v.trim_matches('"').to_string())
    })
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// A field of `/proc/meminfo`, in bytes.
fn meminfo(field: &str) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&info, field)
}

fn parse_meminfo(info: &str, field: &str) -> Option<u64> {
    let line = info.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(unix)]
fn disk_free_ratio(path: &Path) -> Option<f64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    if stat.f_blocks == 0 {
        return None;
    }
    // Block counts fit f64's mantissa on any real file system.
    #[allow(clippy::cast_precision_loss)]
    Some(stat.f_bavail as f64 / stat.f_blocks as f64)
}

#[cfg(not(unix))]
fn disk_free_ratio(_path: &Path) -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_fields_are_read_in_bytes() {
        let info = "MemTotal:       16384 kB\nMemFree:  100 kB\nMemAvailable:    8192 kB\n";
        assert_eq!(parse_meminfo(info, "MemTotal:"), Some(16384 * 1024));
        assert_eq!(parse_meminfo(info, "MemAvailable:"), Some(8192 * 1024));
        assert_eq!(parse_meminfo(info, "SwapTotal:"), None);
    }

    #[test]
    fn architectures_use_kubernetes_names() {
        assert!(!architecture().is_empty());
        assert_ne!(architecture(), "x86_64");
    }
}
