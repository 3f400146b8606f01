//! The open-file limit: a fleet at concurrency C holds a connection (and, while a host's
//! enumeration is released in the background, sometimes two) per host in flight, so the
//! common default soft limit of 1,024 descriptors fails a fleet of 1,000 with "too many open
//! files" midway. The soft limit is raised to the hard one, as servers and the Go runtime do,
//! and a concurrency the hard limit cannot carry is said before any host is contacted.

/// Descriptors a run needs besides its hosts' connections (the runtime, stdio, a store, logs).
const BASE: u64 = 64;
/// Descriptors one host in flight may hold at once.
const PER_HOST: u64 = 2;
/// What a watch adds: as many hosts as it has in flight keep a connection open between polls.
const KEPT_PER_HOST: u64 = 1;

/// Raises the soft open-file limit to the hard limit; returns the limit now in force (`None`
/// where it cannot be read).
#[cfg(not(unix))]
pub fn raise_open_files() -> Option<u64> {
    None
}

/// Raises the soft open-file limit to the hard limit; returns the limit now in force (`None`
/// where it cannot be read).
#[cfg(unix)]
pub fn raise_open_files() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by reference.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every Unix
    Some(limit.rlim_cur as u64)
}

/// What to say when `concurrency` hosts at once (each keeping a connection between runs, for a
/// watch: `keeps_connections`) may need more descriptors than `limit`.
pub fn too_low(limit: u64, concurrency: usize, keeps_connections: bool) -> Option<String> {
    let per_host = PER_HOST + if keeps_connections { KEPT_PER_HOST } else { 0 };
    let needed = BASE + per_host * concurrency as u64;
    (limit < needed).then(|| {
        format!(
            "warning: the open-file limit ({limit}) is too low for --concurrency {concurrency} \
             (up to {needed} descriptors); hosts past it fail with \"too many open files\". \
             Raise the hard limit (ulimit -Hn, or LimitNOFILE= for a service) or lower \
             --concurrency to {}",
            (limit.saturating_sub(BASE) / per_host).max(1)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_too_low_for_the_concurrency_is_said_with_what_would_fit() {
        assert_eq!(too_low(4096, 1000, false), None);
        let said = too_low(1024, 1000, false).unwrap();
        assert!(
            said.contains("(1024)") && said.contains("--concurrency 1000"),
            "{said}"
        );
        assert!(said.contains("lower --concurrency to 480"), "{said}");
        // A watch keeps a connection a host between polls too.
        let said = too_low(2500, 1000, true).unwrap();
        assert!(said.contains("lower --concurrency to 812"), "{said}");
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let now = raise_open_files().expect("Linux has RLIMIT_NOFILE");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(limit.rlim_cur, limit.rlim_max);
        assert_eq!(Some(now), raise_open_files());
    }
}
