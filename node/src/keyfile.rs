//! Key files: a node's ed25519 committee key on disk.
//!
//! Format (TOML): `public_key` and `secret_key`, both hex. The public key is
//! there for humans and tools; on load it must match the secret. Files are
//! created with mode 0600 and never overwritten unless asked.

use std::io::Write;
use std::path::Path;

use ordo_types::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    public_key: String,
    secret_key: String,
}

fn key_error(path: &Path, message: impl Into<String>) -> Error {
    Error::KeyFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Writes `keypair` to `path` with mode 0600. Refuses to replace an
/// existing file unless `force`.
pub fn write(path: &Path, keypair: &Keypair, force: bool) -> Result<()> {
    let text = toml::to_string(&KeyFile {
        public_key: keypair.public().to_hex(),
        secret_key: keypair.to_secret_hex(),
    })
    .map_err(|e| key_error(path, e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            key_error(path, "already exists (use --force to overwrite)")
        }
        _ => key_error(path, e.to_string()),
    })?;
    #[cfg(unix)]
    {
        // `mode` only applies to new files; tighten a forced overwrite too.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| key_error(path, e.to_string()))?;
    }
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| key_error(path, e.to_string()))
}

/// Reads a key file, checking that its public key matches its secret.
pub fn read(path: &Path) -> Result<Keypair> {
    let text = std::fs::read_to_string(path).map_err(|e| key_error(path, e.to_string()))?;
    let file: KeyFile = toml::from_str(&text)
        .map_err(|e| key_error(path, crate::config::one_line_toml_error(&text, &e)))?;
    let keypair = Keypair::from_secret_hex(&file.secret_key)
        .map_err(|e| key_error(path, format!("secret_key: {e}")))?;
    let public = PublicKey::from_hex(&file.public_key)
        .map_err(|e| key_error(path, format!("public_key: {e}")))?;
    if public != keypair.public() {
        return Err(key_error(path, "public_key does not match secret_key"));
    }
    Ok(keypair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let k = Keypair::from_seed([3; 32]);
        write(&path, &k, false).unwrap();
        assert_eq!(read(&path).unwrap().public(), k.public());
        let err = write(&path, &Keypair::from_seed([4; 32]), false).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(read(&path).unwrap().public(), k.public(), "not overwritten");
        write(&path, &Keypair::from_seed([4; 32]), true).unwrap();
        assert_eq!(
            read(&path).unwrap().public(),
            Keypair::from_seed([4; 32]).public()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn mismatched_public_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let text = format!(
            "public_key = \"{}\"\nsecret_key = \"{}\"\n",
            Keypair::from_seed([1; 32]).public().to_hex(),
            Keypair::from_seed([2; 32]).to_secret_hex()
        );
        std::fs::write(&path, text).unwrap();
        assert!(read(&path)
            .unwrap_err()
            .to_string()
            .contains("does not match"));
        assert!(read(&dir.path().join("missing.key")).is_err());
    }
}
