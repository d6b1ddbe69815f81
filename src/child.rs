//! Child processes that must not outlive the tool, however it ends: on Linux the kernel kills
//! them when the thread that started them ends (`PR_SET_PDEATHSIG`), a SIGKILL of the tool
//! included, where no handler of ours runs.

/// Has the kernel kill `cmd`'s process with SIGKILL when the thread that starts it (the main
/// thread or a runtime's worker, which live as long as the tool) ends. The signal is asked for
/// between fork and exec, so the standard library forks rather than vforks for it; a program
/// that is not there is still the spawn's `NotFound`.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: between fork and exec the closure only makes the async-signal-safe calls prctl and
    // getppid, and builds errors without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The tool died before prctl took effect: nobody would kill this child.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Elsewhere a child outlives a tool killed outright; the tool's own handlers stop it otherwise.
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut tokio::process::Command) {}
