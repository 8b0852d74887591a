//! Reading the strategy and its input from files or stdin, with precise errors.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};

/// Reads at most `limit + 1` bytes of `path` (`-` is stdin), so that an oversized file is
/// detected without reading all of it.
pub fn read_limited(path: &str, limit: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if path == "-" {
        std::io::stdin()
            .lock()
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read the {what} from stdin"))?;
        return Ok(bytes);
    }
    let file_path = Path::new(path);
    let metadata =
        std::fs::metadata(file_path).with_context(|| format!("cannot read the {what} {path}"))?;
    if metadata.is_dir() {
        bail!("the {what} {path} is a directory, not a file");
    }
    std::fs::File::open(file_path)
        .and_then(|file| file.take(limit.saturating_add(1)).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read the {what} {path}"))?;
    Ok(bytes)
}

/// The name a strategy read from `path` is given in tracebacks.
pub fn display_name(path: &str) -> String {
    if path == "-" {
        return "<stdin>".to_owned();
    }
    Path::new(path)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_owned())
}
