//! `--set key=value` overrides, applied to the TOML table before it is parsed.

use super::ConfigError;

/// Applies one `key=value` override to the TOML table. The value is read as TOML (numbers,
/// booleans, arrays, quoted strings); anything that does not parse is taken as a plain string.
pub(super) fn apply_set(table: &mut toml::Table, arg: &str) -> Result<(), ConfigError> {
    let err = |m: &str| ConfigError::Set {
        arg: arg.to_string(),
        message: m.to_string(),
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| err("expected key=value, e.g. model.channels=8"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(err(
            "the key is empty; use a dotted key such as train.batch_size",
        ));
    }
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let (last, parents) = parts.split_last().ok_or_else(|| err("empty key"))?;
    let mut cur = table;
    for p in parents {
        let entry = cur
            .entry((*p).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| err(&format!("`{p}` is not a section")))?;
    }
    cur.insert((*last).to_string(), value);
    Ok(())
}
