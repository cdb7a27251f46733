//! Values given on the command line, as helm takes them: `--values FILE` (`-f`), `--set-json`,
//! `--set`, `--set-string` and `--set-file`, applied in that order of kinds (helm's order, not
//! the order on the line) over everything the repository gives a chart release: for a Helm
//! chart into its `valuesFiles`, `values` and secrets merged, as helm applies `--set` over `-f`
//! files (`list[1]=x` changes one item); for weaver's charts as one more layer merged over
//! `values` (a list index starts a new list there). Files are read from the current directory,
//! once, before anything renders.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use weaver_core::error::{Error, Location, Result};
use weaver_helm::strvals::{self, Kind};
use weaver_project::values::merge_overrides;

/// The flags as given.
#[derive(Debug, Clone, Default)]
pub struct OverrideFlags {
    pub values: Vec<PathBuf>,
    pub set_json: Vec<String>,
    pub set: Vec<String>,
    pub set_string: Vec<String>,
    pub set_file: Vec<String>,
}

impl OverrideFlags {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
            && self.set_json.is_empty()
            && self.set.is_empty()
            && self.set_string.is_empty()
            && self.set_file.is_empty()
    }
}

/// The flags with their files read and every line checked.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--values` files, parsed, with the path as given.
    files: Vec<(PathBuf, Map<String, Value>)>,
    /// `--set-json`, `--set`, `--set-string`, `--set-file` lines, in helm's order.
    lines: Vec<(Kind, String)>,
    /// The text of each file a `--set-file` line names.
    set_files: HashMap<String, String>,
}

impl Overrides {
    /// Reads the flags' files and checks every line, so that a mistake is reported before
    /// anything renders. A `--values -` reads standard input, as helm's does.
    pub fn load(flags: &OverrideFlags) -> Result<Overrides> {
        let mut overrides = Overrides::default();
        for path in &flags.values {
            let text = read(path, "--values")?;
            let map = match weaver_yaml::helm::from_str(&text) {
                Ok(None | Some(Value::Null)) => Map::new(),
                Ok(Some(Value::Object(map))) if weaver_project::values::is_sops_encrypted(&map) => {
                    return Err(Error::at(
                        Location::file(path),
                        "--values: the file is encrypted with SOPS; weaver decrypts encrypted values files a release lists in `valuesFiles`",
                    ));
                }
                Ok(Some(Value::Object(map))) => map,
                Ok(Some(_)) => return Err(Error::at(Location::file(path), "--values: expected a mapping of values")),
                Err(e) => {
                    return Err(Error::at(
                        Location::at(path, e.line.unwrap_or(0) as u64, 0),
                        format!("--values: invalid YAML: {}", e.message),
                    ));
                }
            };
            overrides.files.push((path.clone(), map));
        }
        let kinds = [
            (Kind::Json, &flags.set_json),
            (Kind::Typed, &flags.set),
            (Kind::String, &flags.set_string),
            (Kind::File, &flags.set_file),
        ];
        for (kind, lines) in kinds {
            for line in lines {
                let files = std::cell::RefCell::new(HashMap::new());
                let read_file = |path: &str| {
                    let text = read(&PathBuf::from(path), kind.flag()).map_err(|e| e.to_string())?;
                    files.borrow_mut().insert(path.to_string(), text.clone());
                    Ok(text)
                };
                apply_line(kind, line, &mut Map::new(), &read_file).map_err(|problem| {
                    Error::new(format!("{} {}: {problem}", kind.flag(), quoted(line))).with_help(help(kind).to_string())
                })?;
                overrides.set_files.extend(files.into_inner());
                overrides.lines.push((kind, line.clone()));
            }
        }
        Ok(overrides)
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.lines.is_empty()
    }

    /// The flags as a user would type them again, for the release record and messages.
    pub fn describe(&self) -> Vec<String> {
        let files = self.files.iter().map(|(path, _)| format!("--values {}", path.display()));
        files.chain(self.lines.iter().map(|(kind, line)| format!("{} {line}", kind.flag()))).collect()
    }

    /// The flags with each line's first name only (`--set image.tag=…`), for messages: values
    /// typed on the command line may be secrets.
    pub fn summary(&self) -> String {
        let files = self.files.iter().map(|(path, _)| format!("--values {}", path.display()));
        let lines = self.lines.iter().map(|(kind, line)| format!("{} {}", kind.flag(), quoted(line)));
        files.chain(lines).collect::<Vec<_>>().join(", ")
    }

    /// Applies the flags to a release's values, as helm applies them to the values its `-f`
    /// files gave. Errors (a path through a value that is not a map or list) name the flag.
    pub fn apply(&self, values: &mut Map<String, Value>) -> Result<()> {
        for (_, map) in &self.files {
            merge_overrides(values, map.clone());
        }
        let read_file = |path: &str| Ok(self.set_files[path].clone());
        for (kind, line) in &self.lines {
            apply_line(*kind, line, values, &read_file)
                .map_err(|problem| Error::new(format!("{} {}: {problem}", kind.flag(), quoted(line))))?;
        }
        Ok(())
    }

    /// The flag that sets the value at JSON pointer `path` (the last one, which wins), with its
    /// value left out (`--set `image.tag=…``), for an error about that value to blame.
    pub fn flag_setting(&self, path: &str) -> Option<String> {
        if path.is_empty() {
            return None;
        }
        let read_file = |path: &str| Ok(self.set_files[path].clone());
        let files = self.files.iter().map(|(file, map)| (format!("--values {}", file.display()), Some(map.clone())));
        let lines = self.lines.iter().map(|(kind, line)| {
            let mut map = Map::new();
            let applied = apply_line(*kind, line, &mut map, &read_file).ok().map(|()| map);
            (format!("{} {}", kind.flag(), quoted(line)), applied)
        });
        let sets = |map: &Option<Map<String, Value>>| {
            map.as_ref().is_some_and(|map| Value::Object(map.clone()).pointer(path).is_some())
        };
        let flags: Vec<(String, Option<Map<String, Value>>)> = files.chain(lines).collect();
        flags.into_iter().rfind(|(_, map)| sets(map)).map(|(flag, _)| flag)
    }
}

/// Applies one `--set…` line to `values`: a `--set-json` JSON object merges as a values file.
fn apply_line(
    kind: Kind,
    line: &str,
    values: &mut Map<String, Value>,
    read_file: &dyn Fn(&str) -> std::result::Result<String, String>,
) -> std::result::Result<(), String> {
    if kind == Kind::Json && line.trim_start().starts_with('{') {
        json_object(line).map(|map| merge_overrides(values, map))
    } else {
        strvals::parse_into(line, values, kind, read_file)
    }
}

/// One flag of [`Overrides::describe`] (`--set image.tag=v2`) with its values left out
/// (`--set image.tag=…`); a `--values` file is named as it is.
pub fn brief(flag: &str) -> String {
    match flag.split_once(' ') {
        Some((name, line)) if name != "--values" => format!("{name} {}", elided(line)),
        _ => flag.to_string(),
    }
}

/// `--set-json '{"a": 1}'`: a whole object, merged as a values file is.
fn json_object(line: &str) -> std::result::Result<Map<String, Value>, String> {
    serde_json::from_str(line).map_err(|e| format!("expected a JSON object (at column {})", e.column()))
}

/// A line as the user typed it, in backticks, its values left out (see [`elided`]).
fn quoted(line: &str) -> String {
    format!("`{}`", elided(line))
}

/// A line with its values left out: its first name (`image.tag=…`), or `{…}` for a JSON
/// object. Values typed on the command line may be secrets.
fn elided(line: &str) -> String {
    if line.trim_start().starts_with('{') {
        return "{…}".to_string();
    }
    let name = line.split(['=', ',']).next().unwrap_or_default();
    format!("{name}=…")
}

fn help(kind: Kind) -> &'static str {
    match kind {
        Kind::Typed | Kind::String => {
            "expected NAME=VALUE[,NAME=VALUE…], as helm's --set: a.b=c for a nested key, list[0]=x for an item, {a,b} for a list, \\ before . , = [ to write it in a name"
        }
        Kind::Json => "expected NAME=JSON[,NAME=JSON…] or a JSON object, as helm's --set-json",
        Kind::File => "expected NAME=FILE[,NAME=FILE…], as helm's --set-file: the file's text becomes the value",
    }
}

fn read(path: &PathBuf, flag: &str) -> Result<String> {
    let bytes = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| Error::new(format!("{flag} -: cannot read standard input: {e}")))?;
        bytes
    } else {
        std::fs::read(path).map_err(|e| Error::io(&format!("read the {flag} file"), path, e))?
    };
    String::from_utf8(bytes).map_err(|_| Error::at(Location::file(path), format!("{flag}: the file is not UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn flags(set: &[&str], set_string: &[&str], set_json: &[&str]) -> OverrideFlags {
        OverrideFlags {
            set: set.iter().map(|s| s.to_string()).collect(),
            set_string: set_string.iter().map(|s| s.to_string()).collect(),
            set_json: set_json.iter().map(|s| s.to_string()).collect(),
            ..OverrideFlags::default()
        }
    }

    #[test]
    fn kinds_apply_in_helms_order_over_the_release_values() {
        // --set-json first, then --set, then --set-string: the string wins over the number.
        let overrides =
            Overrides::load(&flags(&["tag=2,list[1]=x"], &["tag=3"], &[r#"{"tag": 1, "j": [1]}"#])).unwrap();
        let mut values = json!({"tag": "0", "list": ["a", "b"], "keep": true}).as_object().unwrap().clone();
        overrides.apply(&mut values).unwrap();
        assert_eq!(Value::Object(values), json!({"tag": "3", "list": ["a", "x"], "keep": true, "j": [1]}));
        assert_eq!(
            overrides.describe(),
            [r#"--set-json {"tag": 1, "j": [1]}"#, "--set tag=2,list[1]=x", "--set-string tag=3"]
        );
    }

    #[test]
    fn files_are_read_once_and_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let values = dir.path().join("hotfix.yaml");
        std::fs::write(&values, "image:\n  tag: v2\n").unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "PEM\n").unwrap();
        let loaded = Overrides::load(&OverrideFlags {
            values: vec![values.clone()],
            set_file: vec![format!("tls.ca={}", ca.display())],
            ..OverrideFlags::default()
        })
        .unwrap();
        std::fs::remove_file(&ca).unwrap();
        let mut out = Map::new();
        loaded.apply(&mut out).unwrap();
        assert_eq!(Value::Object(out), json!({"image": {"tag": "v2"}, "tls": {"ca": "PEM\n"}}));

        let missing =
            Overrides::load(&OverrideFlags { set_file: vec!["a=nope.pem".into()], ..OverrideFlags::default() })
                .unwrap_err()
                .to_string();
        assert!(missing.contains("--set-file `a=…`") && missing.contains("nope.pem"), "{missing}");
        std::fs::write(&values, "sops:\n  version: 3.9.0\npassword: ENC[AES256_GCM,data:x]\n").unwrap();
        let encrypted =
            Overrides::load(&OverrideFlags { values: vec![values], ..OverrideFlags::default() }).unwrap_err();
        assert!(encrypted.to_string().contains("encrypted with SOPS"), "{encrypted}");
    }

    #[test]
    fn errors_name_the_flag_and_never_print_the_value() {
        let error = Overrides::load(&flags(&["password=hunter2,name"], &[], &[])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--set `password=…`: the name at column 18 has no value (a `,` in a value is written `\\,`)"
        );
        assert!(error.help.as_deref().is_some_and(|help| help.contains("NAME=VALUE") && !help.contains("hunter2")));
        let error = Overrides::load(&flags(&[], &[], &[r#"{"token": "hunter2""#])).unwrap_err().to_string();
        assert!(error.contains("--set-json") && !error.contains("hunter2"), "{error}");

        let overrides = Overrides::load(&flags(&["image.tag=2"], &[], &[])).unwrap();
        let mut values = json!({"image": "nginx:1"}).as_object().unwrap().clone();
        let error = overrides.apply(&mut values).unwrap_err().to_string();
        assert_eq!(error, "--set `image.tag=…`: the name at column 1 is a string in the values, not a map");
    }
}
