//! The token file: `data_dir/tokens/<mailbox>.json`, what `postdesk login` obtained and the
//! daemon keeps fresh.
//!
//! Contract:
//! - The directory is mode 0700 and the file 0600; nobody but postdesk's user reads a token.
//! - Every write is atomic: a new file beside the old one, fsynced, renamed over it, and
//!   the directory fsynced. A crash leaves the old tokens or the new ones, never half of
//!   each, and a rotated refresh token is on disk before the old one is thrown away.
//! - `Debug` never prints a token.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("token file {path}: {reason}")]
pub struct FileError {
    pub path: PathBuf,
    pub reason: String,
}

/// What is stored for one mailbox.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tokens {
    pub provider: String,
    pub client_id: String,
    pub access_token: String,
    /// When the access token stops working, as the server said (`expires_in`).
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_token: Option<String>,
    /// Only where the provider says (`refresh_token_expires_in`).
    #[serde(default)]
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When `postdesk login` got the first tokens of this grant.
    pub obtained_at: DateTime<Utc>,
    /// The last refresh, if any.
    #[serde(default)]
    pub refreshed_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("refresh_token_expires_at", &self.refresh_token_expires_at)
            .finish_non_exhaustive()
    }
}

fn fail(path: &Path, reason: impl std::fmt::Display) -> FileError {
    FileError {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads the file; `Ok(None)` when there is none (never logged in).
pub fn read(path: &Path) -> Result<Option<Tokens>, FileError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            fail(
                path,
                format!("not a token file ({e}); run `postdesk login` again"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fail(path, e)),
    }
}

/// The file's modification time, to notice a `postdesk login` done while the daemon runs.
pub fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// An exclusive lock beside the token file (`.<name>.lock`), held until dropped: one
/// refresh at a time, whichever process does it.
pub async fn lock(path: &Path) -> Result<std::fs::File, FileError> {
    let dir = path
        .parent()
        .ok_or_else(|| fail(path, "no directory"))?
        .to_owned();
    let name = path
        .file_name()
        .ok_or_else(|| fail(path, "no file name"))?
        .to_string_lossy()
        .into_owned();
    let lock_path = dir.join(format!(".{name}.lock"));
    let shown = path.to_owned();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| fail(&shown, e))?;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| fail(&shown, e))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; the lock ends with the file.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(fail(&shown, std::io::Error::last_os_error()));
        }
        Ok(f)
    })
    .await
    .map_err(|e| fail(path, e))?
}

/// Writes the file atomically, mode 0600, in a 0700 directory.
pub fn write(path: &Path, tokens: &Tokens) -> Result<(), FileError> {
    let dir = path.parent().ok_or_else(|| fail(path, "no directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| fail(path, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| fail(path, e))?;
    let json = serde_json::to_vec_pretty(tokens).map_err(|e| fail(path, e))?;
    let name = path
        .file_name()
        .ok_or_else(|| fail(path, "no file name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // An older file of the same name may have had wider permissions.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&json)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tokens {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Tokens {
            provider: "custom".into(),
            client_id: "postdesk".into(),
            access_token: "at-secret".into(),
            expires_at: Some(at),
            refresh_token: Some("rt-secret".into()),
            refresh_token_expires_at: None,
            scopes: vec!["imap".into()],
            obtained_at: at,
            refreshed_at: None,
        }
    }

    #[test]
    fn written_files_are_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens").join("support.json");
        assert!(read(&path).unwrap().is_none());
        write(&path, &sample()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert_eq!(read(&path).unwrap().unwrap(), sample());
        // Rewriting leaves one file and no temporary beside it.
        write(&path, &sample()).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("support.json")]);
    }

    #[test]
    fn debug_never_prints_a_token() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn a_damaged_file_says_to_log_in_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(&path, "{").unwrap();
        assert!(read(&path)
            .unwrap_err()
            .to_string()
            .contains("postdesk login"));
    }
}
