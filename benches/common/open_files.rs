//! The open-file limit of a benchmark of many hosts, raised to the hard limit so that the binary
//! and the fixture server it starts (both inherit it) can hold a connection per host. Only the
//! command line's benchmarks use it (`libc` is their dev-dependency).

/// Raises the soft open-file limit to the hard one; returns the limit now in force.
pub fn raise_open_files() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain struct in, plain struct out.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every Unix
    let limit = limit.rlim_cur as u64;
    limit
}
