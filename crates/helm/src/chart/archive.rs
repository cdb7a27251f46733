//! Packaged charts (`.tgz`), read as helm's `LoadArchive` reads them: the first path element
//! is the chart's directory and is dropped; directories and PAX headers are skipped.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::{Chart, File};
use crate::at;
use weaver_core::error::Error;

/// Most a chart archive may hold unpacked (helm's limit for a chart is 20 MiB per file).
const MAX_UNPACKED: u64 = 100 << 20;

pub fn load(data: &[u8], origin: &Path) -> Result<Chart, Error> {
    let bad = |what: String| at(origin, format!("cannot read the chart archive: {what}"));
    let gz = flate2::read::GzDecoder::new(data);
    let mut archive = tar::Archive::new(gz.take(MAX_UNPACKED));
    let mut files = Vec::new();
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        if !matches!(entry.header().entry_type(), tar::EntryType::Regular | tar::EntryType::Continuous) {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).replace('\\', "/");
        let parts: Vec<&str> = raw.split('/').collect();
        if parts.len() < 2 {
            if parts.first() == Some(&"Chart.yaml") {
                return Err(bad("chart yaml not in base directory".into()));
            }
            continue;
        }
        let name = parts[1..].join("/");
        // A name climbing out of the chart would be read as another chart's file.
        if name.is_empty() || parts.contains(&"..") || raw.starts_with('/') {
            return Err(bad(format!("{raw}: the archive illegally refers outside its chart")));
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| bad(e.to_string()))?;
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").map(<[u8]>::to_vec).unwrap_or(bytes);
        files.push(File { name, data: Arc::from(bytes) });
    }
    if files.is_empty() {
        return Err(bad("no files in the chart archive".into()));
    }
    Chart::from_files(files, origin)
}
