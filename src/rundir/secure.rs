//! Opening a run directory's files so that nobody else can turn them against their owner or hang
//! a reader. Run directories may sit in folders other users can write to (a shared project folder
//! under umask 002, a group that steers the run), so:
//!
//! - every file is opened without following a symbolic link (`O_NOFOLLOW`), without blocking on a
//!   FIFO or a device (`O_NONBLOCK`), and checked (`fstat` on the open descriptor) to be a regular
//!   file before it is read or written; what is read is bounded in size;
//! - a file written whole goes into a temporary file created exclusively (`O_EXCL`) under a name
//!   nobody can guess, then is renamed over the old one (a rename replaces a link, never follows
//!   it);
//! - folders and files get explicit modes, not the umask's: the run directory's own mode (set from
//!   `run.share` when the run starts) decides them: owner only (`0700`, files `0600`) unless the
//!   group may read (`0750`, files `0640`); `commands/` is the only folder the group may write to,
//!   and only when the run says so (`2770`, setgid so that the group's commands keep the group).

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::Share;

/// The most a `status.json`, a command file or a line of the event log may hold: a run writes a
/// few kilobytes; anything larger is not the run's.
pub const STATUS_MAX: u64 = 1 << 20;
/// The most a command file may hold.
pub const COMMAND_MAX: u64 = 4 << 10;
/// The most a genotype file or its index, or a checkpoint's `meta.json`, may hold.
pub const SMALL_FILE_MAX: u64 = 16 << 20;

/// The modes of a run directory and of what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    pub dir: u32,
    pub file: u32,
    /// `commands/`.
    pub inbox: u32,
}

impl Modes {
    /// The modes `run.share` asks for.
    pub fn of(share: Share) -> Modes {
        match share {
            Share::Owner => Modes {
                dir: 0o700,
                file: 0o600,
                inbox: 0o700,
            },
            Share::GroupRead => Modes {
                dir: 0o750,
                file: 0o640,
                inbox: 0o700,
            },
            Share::Group => Modes {
                dir: 0o750,
                file: 0o640,
                inbox: 0o2770,
            },
        }
    }

    /// The modes of the run directory `dir` as it was set up: the group's bits of its own mode
    /// (read, never write), nothing for others. A folder that cannot be read: owner only.
    pub fn within(dir: &Path) -> Modes {
        let mode = fs::symlink_metadata(dir).map_or(0o700, |m| m.mode());
        if mode & 0o050 == 0o050 {
            Modes::of(Share::GroupRead)
        } else {
            Modes::of(Share::Owner)
        }
    }
}

fn invalid(path: &Path, what: String) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// The effective user id of this process.
#[allow(unsafe_code)]
pub fn my_uid() -> u32 {
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// What a file that is not a plain file is, for messages.
fn kind(m: &fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_block_device() || t.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        }
    }
}

/// The one way a run directory's file is opened: `options` (read, append, create...) without
/// following a link (`O_NOFOLLOW`; a link is said to be one), without blocking on a FIFO or a
/// device (`O_NONBLOCK`), not passed on to children (`O_CLOEXEC`); then checked on the open
/// descriptor to be a regular file of at most `max` bytes. Returns the file and what `fstat`
/// said of it.
fn open_checked(
    path: &Path,
    options: &mut OpenOptions,
    max: u64,
) -> std::io::Result<(File, fs::Metadata)> {
    let f = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| link_error(path, e))?;
    let m = f.metadata()?;
    if !m.is_file() {
        return Err(invalid(
            path,
            format!("is {}, not a regular file", kind(&m)),
        ));
    }
    if m.len() > max {
        return Err(invalid(
            path,
            format!("holds {} bytes, more than the {max} it may", m.len()),
        ));
    }
    Ok((f, m))
}

/// Opens `path` for reading without following a link or blocking, and checks that it is a
/// regular file of at most `max` bytes.
pub fn open_read(path: &Path, max: u64) -> std::io::Result<File> {
    open_checked(path, OpenOptions::new().read(true), max).map(|(f, _)| f)
}

/// `O_NOFOLLOW` on a link fails with `ELOOP`: say what it is.
fn link_error(path: &Path, e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        invalid(path, "is a symbolic link, not a regular file".into())
    } else {
        e
    }
}

/// Reads the whole of `path` (see [`open_read`]), at most `max` bytes.
pub fn read(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = open_read(path, max)?;
    let mut out = Vec::new();
    f.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(invalid(
            path,
            format!("grew past the {max} bytes it may hold"),
        ));
    }
    Ok(out)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read(path, max)?).map_err(|_| invalid(path, "is not UTF-8 text".into()))
}

/// Opens (creating it with `mode`) `path` for appending, without following a link, and checks
/// that it is a regular file of this user's: a file another user put there is not written to.
pub fn open_append(path: &Path, mode: u32) -> std::io::Result<File> {
    let (f, m) = open_checked(
        path,
        OpenOptions::new().append(true).create(true).mode(mode),
        u64::MAX,
    )?;
    if m.uid() != my_uid() {
        return Err(invalid(
            path,
            format!(
                "belongs to user {}, not to this one ({}): remove it",
                m.uid(),
                my_uid()
            ),
        ));
    }
    // The umask may have taken bits off, or the file be older: the run's mode, exactly.
    if m.mode() & 0o7777 != mode {
        f.set_permissions(Permissions::from_mode(mode))?;
    }
    Ok(f)
}

/// A name nobody can guess: 16 hex digits from a randomly keyed hash of the time, the process
/// and a counter.
pub fn unpredictable() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.write_u64(COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// Creates a new file beside `path` under an unpredictable hidden name, exclusively (never an
/// existing file or link), with `mode`; returns it and its path.
pub fn create_temporary(path: &Path, mode: u32) -> std::io::Result<(File, PathBuf)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", unpredictable()));
    let (f, _) = open_checked(
        &tmp,
        OpenOptions::new().write(true).create_new(true).mode(mode),
        u64::MAX,
    )?;
    f.set_permissions(Permissions::from_mode(mode))?;
    Ok((f, tmp))
}

/// Replaces `path` with `bytes`, atomically: written into a temporary file (see
/// [`create_temporary`]) and renamed over it.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let (mut f, tmp) = create_temporary(path, mode)?;
    let done = f.write_all(bytes).and_then(|()| fs::rename(&tmp, path));
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done
}

/// Makes folder `path` (its parents as `create_dir_all` does) with `mode`, or checks that the
/// existing one is a folder of this user's (not a link to one) and gives it `mode`.
pub fn make_dir(path: &Path, mode: u32) -> std::io::Result<()> {
    match DirBuilder::new().mode(mode & 0o777).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The parents (a runs root, a sweep's folder) as the umask has them.
            fs::create_dir_all(
                path.parent()
                    .ok_or_else(|| invalid(path, "has no parent folder".into()))?,
            )?;
            DirBuilder::new().mode(mode & 0o777).create(path)?;
        }
        Err(e) => return Err(e),
    }
    let m = fs::symlink_metadata(path)?;
    if !m.is_dir() {
        return Err(invalid(path, format!("is {}, not a folder", kind(&m))));
    }
    if m.uid() != my_uid() {
        return Err(invalid(
            path,
            format!(
                "belongs to user {}, not to this one ({}); a run's folders must be its owner's",
                m.uid(),
                my_uid()
            ),
        ));
    }
    if m.mode() & 0o7777 != mode {
        fs::set_permissions(path, Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Whether `path` is a folder of this user's, not a link (what a run reads its inbox from).
pub fn own_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.uid() == my_uid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_fifos_and_big_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        fs::write(&secret, "secret").unwrap();
        let link = dir.path().join("link");
        symlink(&secret, &link).unwrap();
        let e = read(&link, 100).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let e = read(&fifo, 100).unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
        let e = read(&secret, 3).unwrap_err().to_string();
        assert!(e.contains("6 bytes"), "{e}");
        assert_eq!(read(&secret, 6).unwrap(), b"secret");
        // Appending through a link: refused, the target unchanged.
        assert!(open_append(&link, 0o600).is_err());
        assert_eq!(fs::read(&secret).unwrap(), b"secret");
    }

    #[test]
    fn replace_never_writes_through_a_link_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        fs::write(&secret, "secret").unwrap();
        let target = dir.path().join("status.json");
        symlink(&secret, &target).unwrap();
        replace(&target, b"new", 0o640).unwrap();
        assert_eq!(fs::read(&secret).unwrap(), b"secret");
        let m = fs::symlink_metadata(&target).unwrap();
        assert!(m.is_file());
        assert_eq!(m.mode() & 0o777, 0o640);
        assert_ne!(unpredictable(), unpredictable());
        // A folder that is a link is refused.
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        let linked = dir.path().join("commands");
        symlink(&real, &linked).unwrap();
        assert!(make_dir(&linked, 0o700).is_err());
        assert!(!own_dir(&linked) && own_dir(&real));
        make_dir(&dir.path().join("a/b"), 0o750).unwrap();
        let m = fs::metadata(dir.path().join("a/b")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o750);
    }
}
