//! Colour themes: built-in TOML files (`themes/*.toml`, embedded) and user files that override
//! only the colours they name.
//!
//! Choice, highest first: `--theme NAME|PATH`, then `NO_COLOR` (selects `mono`), then the config's
//! `ui.theme`. An unknown theme, an unknown key or a colour that does not parse is a start-up error
//! naming the file and the key. Colour is never the only carrier of meaning: the UI also marks
//! state with text, the selected op with a symbol and focus with reverse video, so `mono` loses
//! nothing but colour.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::Color;
use serde::Deserialize;

/// Names of the built-in themes, in the order `--help` lists them.
pub const BUILTIN_THEMES: &[&str] = &["default", "light", "high-contrast", "mono"];

fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        "default" => Some(include_str!("../themes/default.toml")),
        "light" => Some(include_str!("../themes/light.toml")),
        "high-contrast" => Some(include_str!("../themes/high-contrast.toml")),
        "mono" => Some(include_str!("../themes/mono.toml")),
        _ => None,
    }
}

/// Number of steps of the heat-map colour scale.
pub const HEAT_STEPS: usize = 5;

/// A theme-loading error; the message names the theme or file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error(
        "unknown theme {name:?}: use one of {} or the path of a .toml theme file",
        BUILTIN_THEMES.join(", ")
    )]
    Unknown { name: String },
    #[error("cannot read theme file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("theme {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error(
        "theme {origin}: key `{key}`: {value:?} is not a colour (use a name such as \"lightred\", an index 0-255 or \"#rrggbb\")"
    )]
    BadColour {
        origin: String,
        key: String,
        value: String,
    },
    #[error("theme {origin}: key `heat` needs exactly {HEAT_STEPS} colours, found {found}")]
    HeatLength { origin: String, found: usize },
}

macro_rules! theme_struct {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// A resolved theme: one colour per role.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Theme {
            /// The built-in or file it came from (shown nowhere; useful in logs).
            pub name: String,
            $($(#[$doc])* pub $field: Color,)*
            /// Heat-map scale, low to high.
            pub heat: [Color; HEAT_STEPS],
        }

        /// A theme file: every key optional (a partial override of `base`).
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ThemeFile {
            base: Option<String>,
            $($field: Option<String>,)*
            heat: Option<Vec<String>>,
        }

        impl ThemeFile {
            /// Overrides the colours of `theme` that this file names.
            fn apply(self, theme: &mut Theme, origin: &str) -> Result<(), ThemeError> {
                $(if let Some(v) = self.$field {
                    theme.$field = parse_colour(&v, stringify!($field), origin)?;
                })*
                if let Some(list) = self.heat {
                    if list.len() != HEAT_STEPS {
                        return Err(ThemeError::HeatLength { origin: origin.to_string(), found: list.len() });
                    }
                    for (slot, v) in theme.heat.iter_mut().zip(&list) {
                        *slot = parse_colour(v, "heat", origin)?;
                    }
                }
                Ok(())
            }

            /// Whether every key is present (built-in themes must be complete).
            #[cfg(test)]
            fn is_complete(&self) -> bool {
                true $(&& self.$field.is_some())* && self.heat.is_some()
            }
        }

        impl Theme {
            /// A theme with every role set to the terminal's default colour.
            fn blank(name: &str) -> Theme {
                Theme { name: name.to_string(), $($field: Color::Reset,)* heat: [Color::Reset; HEAT_STEPS] }
            }
        }
    };
}

theme_struct!(
    /// Ordinary text.
    text,
    /// Secondary text, dropped edges.
    dim,
    /// Pane titles.
    title,
    /// Pane borders.
    border,
    /// Border of the focused pane.
    border_focus,
    /// Highlights (numbers worth reading).
    accent,
    /// Key names in the help overlay and the footer.
    key,
    /// State colours.
    warming,
    running,
    paused,
    saving,
    finished,
    failed,
    /// The op the search selects on an edge.
    selected,
    /// The focused heat-map cell.
    focus,
    /// Chart series: train, validation, architecture loss.
    train,
    valid,
    arch,
    /// Progress gauge.
    gauge,
    /// Log levels.
    info,
    warn,
    error,
);

fn parse_colour(value: &str, key: &str, origin: &str) -> Result<Color, ThemeError> {
    let trimmed = value.trim();
    // ratatui accepts any u8 index; a hex colour must be exactly `#rrggbb`.
    Color::from_str(trimmed).map_err(|_| ThemeError::BadColour {
        origin: origin.to_string(),
        key: key.to_string(),
        value: value.to_string(),
    })
}

fn parse_file(text: &str, origin: &str) -> Result<ThemeFile, ThemeError> {
    toml::from_str(text).map_err(|e: toml::de::Error| ThemeError::Parse {
        origin: origin.to_string(),
        message: e.message().to_string(),
    })
}

/// A built-in theme by name.
pub fn builtin(name: &str) -> Result<Theme, ThemeError> {
    let text = builtin_text(name).ok_or_else(|| ThemeError::Unknown {
        name: name.to_string(),
    })?;
    let mut theme = Theme::blank(name);
    parse_file(text, &format!("built-in {name:?}"))?.apply(&mut theme, name)?;
    Ok(theme)
}

/// Parses a (possibly partial) theme from TOML text. It starts from the built-in named by its
/// `base` key (default `default`); `origin` names the file in errors.
pub fn theme_from_str(text: &str, origin: &str) -> Result<Theme, ThemeError> {
    let file = parse_file(text, origin)?;
    let base = file.base.clone().unwrap_or_else(|| "default".to_string());
    let mut theme = builtin(&base).map_err(|e| match e {
        ThemeError::Unknown { name } => ThemeError::Parse {
            origin: origin.to_string(),
            message: format!(
                "key `base`: unknown built-in theme {name:?} (use one of {})",
                BUILTIN_THEMES.join(", ")
            ),
        },
        other => other,
    })?;
    theme.name = origin.to_string();
    file.apply(&mut theme, origin)?;
    Ok(theme)
}

/// Loads a built-in theme by name, or a theme file by path (anything containing a `/` or ending
/// in `.toml`, or an existing file).
pub fn load_theme(name_or_path: &str) -> Result<Theme, ThemeError> {
    if builtin_text(name_or_path).is_some() {
        return builtin(name_or_path);
    }
    let path = Path::new(name_or_path);
    let looks_like_path =
        name_or_path.contains('/') || name_or_path.ends_with(".toml") || path.is_file();
    if !looks_like_path {
        return Err(ThemeError::Unknown {
            name: name_or_path.to_string(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ThemeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    theme_from_str(&text, &path.display().to_string())
}

/// Whether `NO_COLOR` asks for no colour (set and not empty, as no-color.org says).
pub fn no_color_requested() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Resolves the theme with the documented precedence: the CLI's `--theme` wins, then `NO_COLOR`
/// (mono), then the config's `ui.theme`.
pub fn select_theme(cli: Option<&str>, config: &str, no_color: bool) -> Result<Theme, ThemeError> {
    match cli {
        Some(name) => load_theme(name),
        None if no_color => builtin("mono"),
        None => load_theme(config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_complete_and_load() {
        for name in BUILTIN_THEMES {
            let text = builtin_text(name).expect("listed built-in has text");
            let file = parse_file(text, name).expect("built-in parses");
            assert!(
                file.is_complete(),
                "built-in theme {name} must set every key"
            );
            let t = load_theme(name).expect("built-in loads");
            assert_eq!(t.name, *name);
        }
        assert_eq!(builtin("mono").unwrap().running, Color::Reset);
        assert_eq!(builtin("default").unwrap().running, Color::Green);
        assert_eq!(
            builtin("light").unwrap().warming,
            Color::Rgb(0xaf, 0x5f, 0x00)
        );
    }

    #[test]
    fn partial_user_file_overrides_only_what_it_names() {
        let t = theme_from_str("base = \"light\"\nrunning = \"magenta\"\n", "my.toml").unwrap();
        let light = builtin("light").unwrap();
        assert_eq!(t.running, Color::Magenta);
        assert_eq!(t.paused, light.paused);
        let t = theme_from_str("failed = \"#ff0000\"", "x.toml").unwrap();
        assert_eq!(t.failed, Color::Rgb(255, 0, 0));
        assert_eq!(t.running, builtin("default").unwrap().running);
    }

    #[test]
    fn errors_name_the_theme_file_and_key() {
        let e = load_theme("solarized").unwrap_err().to_string();
        assert!(
            e.contains("solarized") && e.contains("high-contrast"),
            "{e}"
        );
        let e = theme_from_str("running = \"grean\"", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.toml") && e.contains("running") && e.contains("grean"),
            "{e}"
        );
        let e = theme_from_str("runing = \"green\"", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml") && e.contains("runing"), "{e}");
        let e = theme_from_str("heat = [\"red\"]", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("heat") && e.contains('5'), "{e}");
        let e = theme_from_str("base = \"nord\"", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("base") && e.contains("nord"), "{e}");
        let e = load_theme("/nonexistent/theme.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/theme.toml"), "{e}");
    }

    #[test]
    fn theme_file_from_disk_and_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mine.toml");
        std::fs::write(&p, "title = \"red\"\n").unwrap();
        let t = load_theme(p.to_str().unwrap()).unwrap();
        assert_eq!(t.title, Color::Red);
        assert_eq!(select_theme(None, "default", true).unwrap().name, "mono");
        assert_eq!(
            select_theme(Some("light"), "default", true).unwrap().name,
            "light"
        );
        assert_eq!(
            select_theme(None, "high-contrast", false).unwrap().name,
            "high-contrast"
        );
    }
}
