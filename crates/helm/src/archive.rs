//! Packaged charts (`.tgz`), unpacked as helm's `LoadArchive` unpacks them: the first path
//! element is the chart's directory and is dropped; directories and PAX headers are skipped.
//! `Chart::from_archive` reads a chart of the files.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::at;
use weaver_core::error::Error;

/// Most a chart archive may hold unpacked (helm's limit for a chart is 20 MiB per file).
const MAX_UNPACKED: u64 = 100 << 20;

/// A file of the archive: its path in the chart, and its bytes.
pub(crate) type Unpacked = (String, Arc<[u8]>);

/// The archive's files.
pub(crate) fn unpack(data: &[u8], origin: &Path) -> Result<Vec<Unpacked>, Error> {
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
        files.push((name, Arc::from(bytes)));
    }
    if files.is_empty() {
        return Err(bad("no files in the chart archive".into()));
    }
    Ok(files)
}
