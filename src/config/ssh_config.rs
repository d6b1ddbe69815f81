//! `ssh_config` paths of the file as ssh finds them (`none`, `~`, `~user`, relative to the file):
//! the one place that reads the user database.

use std::path::{Path, PathBuf};

use super::Section;

/// `ssh_config` of `section`, a section of the file in `dir`, as ssh takes it (see
/// [`ssh_config_path`]).
pub(super) fn relative_to(section: &mut Section, dir: &Path) {
    if let Some(file) = &mut section.ssh_config {
        *file = ssh_config_path(file, dir, &home_of);
    }
}

/// An `ssh_config` of the file in `dir` as ssh takes it: `none` (no configuration file at all)
/// as it is, `~/...` and `~user/...` under the home directory `home` gives (of this user for
/// `""`), and other relative paths (a `~user` without a home among them) from `dir`.
fn ssh_config_path(file: &Path, dir: &Path, home: &dyn Fn(&str) -> Option<PathBuf>) -> PathBuf {
    if file.as_os_str() == "none" {
        return file.to_owned();
    }
    let mut parts = file.components();
    let tilde = parts.next().and_then(|first| {
        let user = first.as_os_str().to_str()?.strip_prefix('~')?;
        Some((home(user)?, parts.as_path()))
    });
    match tilde {
        Some((home, rest)) => home.join(rest),
        None if file.is_relative() => dir.join(file),
        None => file.to_owned(),
    }
}

/// The home directory of `user` (`""`: `HOME`, else this process's user's), from the user
/// database as ssh and the shell find it.
fn home_of(user: &str) -> Option<PathBuf> {
    use std::ffi::{CStr, CString, OsStr};
    use std::os::unix::ffi::OsStrExt;
    if user.is_empty()
        && let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
    {
        return Some(PathBuf::from(home));
    }
    let name = CString::new(user).ok()?;
    // An entry larger than the buffer is ERANGE: again with a larger one, up to 1 MiB.
    let mut size = 16 * 1024;
    loop {
        let mut buf = vec![0u8; size];
        // SAFETY: getpwuid_r/getpwnam_r write only into `entry` and `buf` (of the length given),
        // and `found` points at `entry` or is null; `pw_dir` then points into `buf`, read
        // before it goes.
        unsafe {
            let mut entry: libc::passwd = std::mem::zeroed();
            let mut found: *mut libc::passwd = std::ptr::null_mut();
            let status = if user.is_empty() {
                libc::getpwuid_r(
                    libc::getuid(),
                    &mut entry,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut found,
                )
            } else {
                libc::getpwnam_r(
                    name.as_ptr(),
                    &mut entry,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut found,
                )
            };
            if status == libc::ERANGE && size < 1 << 20 {
                size *= 2;
                continue;
            }
            if status != 0 || found.is_null() || entry.pw_dir.is_null() {
                return None;
            }
            let dir = CStr::from_ptr(entry.pw_dir).to_bytes();
            return (!dir.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(dir)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ssh_config_is_found_as_ssh_finds_it() {
        let dir = Path::new("/p");
        let homes = |user: &str| match user {
            "" => Some(PathBuf::from("/home/me")),
            "deploy" => Some(PathBuf::from("/srv/deploy")),
            _ => None,
        };
        let path = |file: &str| ssh_config_path(Path::new(file), dir, &homes);
        assert_eq!(path("ssh/web.conf"), Path::new("/p/ssh/web.conf"));
        assert_eq!(path("/etc/ssh/web.conf"), Path::new("/etc/ssh/web.conf"));
        assert_eq!(path("~/.ssh/work"), Path::new("/home/me/.ssh/work"));
        assert_eq!(
            path("~deploy/.ssh/config"),
            Path::new("/srv/deploy/.ssh/config")
        );
        assert_eq!(path("none"), Path::new("none"));
        assert_eq!(path("~nobody-here/x"), Path::new("/p/~nobody-here/x"));
        let homeless = ssh_config_path(Path::new("~/.ssh/work"), dir, &|_| None);
        assert_eq!(homeless, Path::new("/p/~/.ssh/work"));
        // The user database, as the shell reads it.
        assert_eq!(home_of("root"), Some(PathBuf::from("/root")));
        assert_eq!(home_of("no-such-user-of-mix-remote"), None);
    }
}
