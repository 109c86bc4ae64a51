//! Sizes and shares for the resource limits (A18): `--memory SIZE`, `--disk-reserve 5%|SIZE`,
//! and the default size of the sandbox's tmpfs, which is RAM.

use serde::{Deserialize, Serialize};

use crate::error::Error;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

fn invalid(message: String) -> Error {
    Error::Invalid(message)
}

/// Parse a size: a number of bytes, or with a binary unit `K`, `M`, `G`, `T` (also `KiB`,
/// `MB`, ...: all are powers of 1024, as in systemd's `MemoryMax=`). `4G` is 4 GiB.
pub fn parse_size(text: &str) -> Result<u64, Error> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => TIB,
        _ => return Err(invalid(format!("{text:?}: not a size (e.g. 512M, 4G, 1T)"))),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| invalid(format!("{text:?}: not a size (e.g. 512M, 4G, 1T)")))?;
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(invalid(format!("{text:?}: out of range")));
    }
    Ok(bytes as u64)
}

/// A size for people: `64 MiB`, `4 GiB`, `1.5 GiB`.
pub fn human_size(bytes: u64) -> String {
    for (unit, name) in [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if bytes >= unit {
            let v = bytes as f64 / unit as f64;
            return if (v - v.round()).abs() < 0.05 {
                format!("{v:.0} {name}")
            } else {
                format!("{v:.1} {name}")
            };
        }
    }
    format!("{bytes} bytes")
}

/// How much free space keepout keeps for the host on every writable host filesystem the
/// sandbox sees (the project, `--rw` paths, a kept home, the workspace store): a share of the
/// filesystem's size, or an absolute amount. `0` turns the watch off. Written `5%`, `2.5%`,
/// `2G`, `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DiskReserve {
    /// Hundredths of a percent of the filesystem's size (500 = 5%).
    Share(u32),
    /// Bytes.
    Bytes(u64),
    /// A share (hundredths of a percent), but at most this many bytes: `5%,10G`.
    ShareAtMost(u32, u64),
}

impl Default for DiskReserve {
    /// 5% of the filesystem, at most 10 GiB: a 1 TB disk keeps 10 GiB for the host, not 50,
    /// so a full-ish large disk does not refuse every run.
    fn default() -> Self {
        DiskReserve::ShareAtMost(500, 10 << 30)
    }
}

impl DiskReserve {
    /// The reserve in bytes on a filesystem of `total` bytes.
    pub fn bytes_of(self, total: u64) -> u64 {
        match self {
            DiskReserve::Share(h) => (total as u128 * h as u128 / 10_000) as u64,
            DiskReserve::Bytes(b) => b,
            DiskReserve::ShareAtMost(h, max) => DiskReserve::Share(h).bytes_of(total).min(max),
        }
    }

    /// No reserve at all: keepout does not watch the disk.
    pub fn is_off(self) -> bool {
        matches!(
            self,
            DiskReserve::Share(0) | DiskReserve::Bytes(0) | DiskReserve::ShareAtMost(0, _)
        )
    }
}

impl std::str::FromStr for DiskReserve {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if let Some((share, max)) = s.split_once(',') {
            return match (share.parse()?, parse_size(max.trim())?) {
                (DiskReserve::Share(h), max) => Ok(DiskReserve::ShareAtMost(h, max)),
                _ => Err(invalid(format!(
                    "{s:?}: a share, then at most a size (e.g. 5%,10G)"
                ))),
            };
        }
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| invalid(format!("{s:?}: not a share (e.g. 5%)")))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(invalid(format!("{s:?}: a share is between 0% and 100%")));
            }
            return Ok(DiskReserve::Share((v * 100.0).round() as u32));
        }
        parse_size(s).map(DiskReserve::Bytes)
    }
}

impl std::fmt::Display for DiskReserve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            DiskReserve::Share(h) if h % 100 == 0 => write!(f, "{}%", h / 100),
            DiskReserve::Share(h) => write!(f, "{}%", h as f64 / 100.0),
            DiskReserve::Bytes(0) => write!(f, "0"),
            DiskReserve::Bytes(b) => write!(f, "{}", human_size(b).replace(' ', "")),
            DiskReserve::ShareAtMost(h, max) => write!(
                f,
                "{},{}",
                DiskReserve::Share(h),
                human_size(max).replace(' ', "")
            ),
        }
    }
}

impl TryFrom<String> for DiskReserve {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<DiskReserve> for String {
    fn from(r: DiskReserve) -> String {
        r.to_string()
    }
}

/// What stopped a run, or killed part of it, because of a limit of this module.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    /// The sandbox used all the memory `--memory` allows and the kernel killed `kills` of its
    /// processes (`command_killed`: the command itself, or init and so all of them).
    MemoryLimit {
        limit: u64,
        kills: u64,
        command_killed: bool,
    },
    /// keepout killed the sandbox: the filesystem `device` (what it is to the sandbox: `role`)
    /// was below its reserve, or, filling at `filling_per_second`, about to be.
    DiskReserve {
        device: String,
        role: String,
        free_percent: f64,
        reserve: String,
        filling_per_second: Option<u64>,
    },
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::MemoryLimit {
                limit,
                kills,
                command_killed,
            } => write!(
                f,
                "the sandbox hit its memory limit ({}) and the kernel killed {} (--memory)",
                human_size(*limit),
                match (command_killed, kills) {
                    (true, 1) => "the command".to_string(),
                    (true, n) => format!("the command ({n} processes)"),
                    (false, 1) => "one of its processes".to_string(),
                    (false, n) => format!("{n} of its processes"),
                }
            ),
            Stopped::DiskReserve {
                device,
                role,
                free_percent,
                reserve,
                filling_per_second,
            } => match filling_per_second {
                Some(rate) => write!(
                    f,
                    "stopped the run: {device} ({role}) had {free_percent:.1}% free and was filling at {}/s, \
                     about to pass the reserve of {reserve} that keepout keeps for the host (--disk-reserve)",
                    human_size(*rate)
                ),
                None => write!(
                    f,
                    "stopped the run: {device} ({role}) had only {free_percent:.1}% free; \
                     keepout keeps a reserve of {reserve} for the host (--disk-reserve)"
                ),
            },
        }
    }
}

/// The largest default size of the sandbox's `/tmp` and of a fresh `$HOME`, MiB.
pub const TMP_SIZE_MAX_DEFAULT_MIB: u64 = 2048;

/// The default size of the sandbox's `/tmp` and of a fresh `$HOME`: 2 GiB, or an eighth of
/// this machine's RAM when that is less (tmpfs pages are RAM or swap: the two together, with
/// `/dev/shm`'s 256 MiB, stay under a third of RAM), never under 64 MiB.
pub fn default_tmp_size_mib() -> u64 {
    // Worked out once per process (`Limits::default()` is called more than once per run).
    static SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        // MemTotal is /proc/meminfo's first line: one read of a small buffer.
        let mut head = [0u8; 256];
        let n = std::fs::File::open("/proc/meminfo")
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        let ram_mib = std::str::from_utf8(&head[..n])
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .map(|kib| kib / 1024);
        match ram_mib {
            Some(ram) => (ram / 8).clamp(64, TMP_SIZE_MAX_DEFAULT_MIB),
            None => TMP_SIZE_MAX_DEFAULT_MIB,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("4X").is_err());
        assert!(parse_size("").is_err());
        assert_eq!(human_size(4 << 30), "4 GiB");
        assert_eq!(human_size(64 << 20), "64 MiB");
    }

    #[test]
    fn reserves_parse_and_print() {
        assert_eq!("5%".parse(), Ok(DiskReserve::Share(500)));
        assert_eq!("2.5%".parse(), Ok(DiskReserve::Share(250)));
        assert_eq!("2G".parse(), Ok(DiskReserve::Bytes(2 << 30)));
        assert!("0".parse::<DiskReserve>().unwrap().is_off());
        assert!("101%".parse::<DiskReserve>().is_err());
        assert_eq!(DiskReserve::default().to_string(), "5%,10GiB");
        assert_eq!("5%,10G".parse(), Ok(DiskReserve::default()));
        assert_eq!(DiskReserve::default().bytes_of(100 << 30), 5 << 30);
        assert_eq!(DiskReserve::default().bytes_of(1000 << 30), 10 << 30);
        assert_eq!(DiskReserve::Share(250).to_string(), "2.5%");
        assert_eq!(DiskReserve::Bytes(2 << 30).to_string(), "2GiB");
        assert_eq!(DiskReserve::default().bytes_of(1000), 50);
    }

    #[test]
    fn the_default_tmp_size_is_bounded() {
        let mib = default_tmp_size_mib();
        assert!((64..=TMP_SIZE_MAX_DEFAULT_MIB).contains(&mib));
    }
}
