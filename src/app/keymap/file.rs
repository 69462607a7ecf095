//! The user's `keys.toml`: where it lives, how it overrides the default table, and the errors
//! that name the file and the key.

use std::path::{Path, PathBuf};

use super::{Key, KeyMap};

/// A keymap-loading error.
#[derive(Debug, thiserror::Error)]
pub enum KeymapError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("key file {origin}: unknown action `{action}` (known actions: {known})")]
    UnknownAction {
        origin: String,
        action: String,
        known: String,
    },
    #[error(
        "key file {origin}: action `{action}`: {key:?} is not a key (examples: \"p\", \"space\", \"ctrl-c\", \"F5\", \"shift-tab\")"
    )]
    BadKey {
        origin: String,
        action: String,
        key: String,
    },
    #[error("key file {origin}: key {key} is bound to both `{first}` and `{second}`")]
    Conflict {
        origin: String,
        key: String,
        first: String,
        second: String,
    },
}

impl KeyMap {
    /// Parses a `keys.toml` text over the defaults; `origin` names the file in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<KeyMap, KeymapError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e: toml::de::Error| KeymapError::Parse {
                origin: origin.to_string(),
                message: e.message().to_string(),
            })?;
        let mut map = KeyMap::default();
        for (action, value) in table {
            let known = || {
                map.bindings
                    .iter()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let Some(idx) = map.bindings.iter().position(|b| b.name == action) else {
                return Err(KeymapError::UnknownAction {
                    origin: origin.to_string(),
                    action,
                    known: known(),
                });
            };
            let texts: Vec<String> = match value {
                toml::Value::String(s) => vec![s],
                toml::Value::Array(a) => a
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s),
                        other => Err(KeymapError::BadKey {
                            origin: origin.to_string(),
                            action: action.clone(),
                            key: other.to_string(),
                        }),
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(KeymapError::BadKey {
                        origin: origin.to_string(),
                        action,
                        key: other.to_string(),
                    });
                }
            };
            let mut keys = Vec::with_capacity(texts.len());
            for t in texts {
                let key = Key::parse(&t).ok_or_else(|| KeymapError::BadKey {
                    origin: origin.to_string(),
                    action: action.clone(),
                    key: t.clone(),
                })?;
                keys.push(key);
            }
            map.bindings[idx].keys = keys;
        }
        map.check_conflicts(origin)?;
        Ok(map)
    }

    pub(super) fn check_conflicts(&self, origin: &str) -> Result<(), KeymapError> {
        for (i, a) in self.bindings.iter().enumerate() {
            for b in &self.bindings[i + 1..] {
                if a.context != b.context {
                    continue;
                }
                if let Some(k) = a.keys.iter().find(|k| b.keys.contains(k)) {
                    return Err(KeymapError::Conflict {
                        origin: origin.to_string(),
                        key: k.to_string(),
                        first: a.name.to_string(),
                        second: b.name.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Loads `path` over the defaults; a missing file means the defaults.
    pub fn load_file(path: &Path) -> Result<KeyMap, KeymapError> {
        match std::fs::read_to_string(path) {
            Ok(text) => KeyMap::from_toml_str(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyMap::default()),
            Err(source) => Err(KeymapError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Loads the user's `keys.toml` (see the module docs), or the defaults when there is none.
    pub fn load_user() -> Result<KeyMap, KeymapError> {
        match user_keys_path() {
            Some(p) => KeyMap::load_file(&p),
            None => Ok(KeyMap::default()),
        }
    }
}

/// `<config dir>/nasp-tui/keys.toml`, or `$NASP_TUI_CONFIG_DIR/keys.toml`.
pub fn user_keys_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("NASP_TUI_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("keys.toml"));
    }
    directories::ProjectDirs::from("", "", "nasp-tui").map(|d| d.config_dir().join("keys.toml"))
}
