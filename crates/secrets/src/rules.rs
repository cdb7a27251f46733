//! Which keys get encrypted (the selector) and `.sops.yaml` creation rules.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::SecretsError;
use super::keys::parse_recipient;

/// Chooses, from a value's map keys, whether it is encrypted (sops' `shouldBeEncrypted`).
#[derive(Clone, Debug)]
pub enum Selector {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
}

impl Default for Selector {
    /// sops' default when nothing is configured.
    fn default() -> Selector {
        Selector::UnencryptedSuffix("_unencrypted".into())
    }
}

/// The selector fields, named alike in `.sops.yaml` rules and in `sops` metadata.
const SELECTOR_FIELDS: [&str; 6] = [
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];

impl Selector {
    /// A value is selected by the keys on its path (any of them, like sops).
    pub(crate) fn should_encrypt<'a>(&self, mut keys: impl Iterator<Item = &'a str>) -> bool {
        match self {
            Selector::UnencryptedSuffix(s) => !keys.any(|k| k.ends_with(s.as_str())),
            Selector::EncryptedSuffix(s) => keys.any(|k| k.ends_with(s.as_str())),
            Selector::UnencryptedRegex(r) => !keys.any(|k| r.is_match(k)),
            Selector::EncryptedRegex(r) => keys.any(|k| r.is_match(k)),
        }
    }

    /// The field name and value sops records in the metadata.
    pub(crate) fn field(&self) -> (&'static str, &str) {
        match self {
            Selector::UnencryptedSuffix(s) => ("unencrypted_suffix", s),
            Selector::EncryptedSuffix(s) => ("encrypted_suffix", s),
            Selector::UnencryptedRegex(r) => ("unencrypted_regex", r.as_str()),
            Selector::EncryptedRegex(r) => ("encrypted_regex", r.as_str()),
        }
    }

    /// Reads the selector from sops' field names (`get` returns a field's string value); at
    /// most one may be set, none means the default.
    pub(crate) fn from_fields(get: impl Fn(&str) -> Option<String>) -> Result<Selector, String> {
        let set: Vec<(&str, String)> =
            SELECTOR_FIELDS.iter().filter_map(|&name| get(name).filter(|v| !v.is_empty()).map(|v| (name, v))).collect();
        let regex = |name: &str, value: &str| {
            Regex::new(value).map_err(|e| format!("{name} is not a valid regular expression: {e}"))
        };
        match set.as_slice() {
            [] => Ok(Selector::default()),
            [(name, value)] => match *name {
                "unencrypted_suffix" => Ok(Selector::UnencryptedSuffix(value.clone())),
                "encrypted_suffix" => Ok(Selector::EncryptedSuffix(value.clone())),
                "unencrypted_regex" => regex(name, value).map(Selector::UnencryptedRegex),
                "encrypted_regex" => regex(name, value).map(Selector::EncryptedRegex),
                _ => Err(format!("{name} is not supported by weaver")),
            },
            _ => Err(format!(
                "only one of {} may be set",
                set.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

/// What a new file is encrypted to and how.
#[derive(Clone, Debug)]
pub struct EncryptionSettings {
    pub recipients: Vec<String>,
    pub selector: Selector,
    pub mac_only_encrypted: bool,
}

/// `creation_rules` of a `.sops.yaml`. Like sops, a rule's `path_regex` is matched against
/// the file's path relative to the directory holding the `.sops.yaml` (`prod.yaml` for
/// `secrets/prod.yaml` with `secrets/.sops.yaml`), or against its absolute path when the file
/// is outside that directory. The first matching rule wins; a rule without `path_regex`
/// matches everything.
#[derive(Debug)]
pub struct CreationRules {
    file: PathBuf,
    dir: PathBuf,
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    path_regex: Option<Regex>,
    recipients: Vec<String>,
    selector: Selector,
    mac_only_encrypted: bool,
}

#[derive(Deserialize)]
struct ConfigFile {
    creation_rules: Option<Vec<Map<String, Json>>>,
}

/// Key types sops supports that weaver does not write: a rule naming them would silently
/// lose those readers, so it is an error.
const OTHER_KEY_FIELDS: [&str; 7] =
    ["pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault_transit_uri", "hckms", "key_groups"];

impl CreationRules {
    /// Reads `file`; `Ok(None)` if it does not exist.
    pub fn load(file: &Path) -> Result<Option<CreationRules>, SecretsError> {
        match std::fs::read_to_string(file) {
            Ok(text) => CreationRules::parse(file, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SecretsError::Io { path: file.to_owned(), source }),
        }
    }

    /// The creation rules for `file` as sops finds them: the nearest `.sops.yaml` from the
    /// file's directory up, else `fallback` (the weaver repository's `secrets/.sops.yaml`).
    /// `read` gives a candidate's text, None when there is none: from the disk (`weaver
    /// secrets`, with absolute paths) or from a commit (`weaver hydrate`, with paths relative
    /// to the repository, as `file` and `fallback` are then).
    pub fn nearest<E: From<SecretsError>>(
        file: &Path,
        fallback: &Path,
        read: &mut dyn FnMut(&Path) -> Result<Option<String>, E>,
    ) -> Result<Option<CreationRules>, E> {
        let nearer = file.ancestors().skip(1).map(|dir| dir.join(".sops.yaml"));
        for candidate in nearer.chain([fallback.to_path_buf()]) {
            if let Some(text) = read(&candidate)? {
                return Ok(Some(CreationRules::parse(&candidate, &text)?));
            }
        }
        Ok(None)
    }

    pub fn parse(file: &Path, text: &str) -> Result<CreationRules, SecretsError> {
        let error = |message: String| SecretsError::Rules { path: file.to_owned(), message };
        let raw = if text.trim().is_empty() {
            Vec::new()
        } else {
            // weaver's YAML errors: located, in weaver's words, never quoting the file.
            weaver_yaml::from_str_as::<ConfigFile>(file, text, "invalid creation rules")
                .map_err(|e| match e.location.as_ref().and_then(|l| Some((l.line?, l.column.unwrap_or(0)))) {
                    Some((line, column)) => SecretsError::Parse {
                        path: file.to_owned(),
                        line: line as usize,
                        column: column as usize,
                        message: e.message,
                    },
                    // No position: say what is wrong with the file, not "line 0".
                    None => error(e.message),
                })?
                .creation_rules
                .unwrap_or_default()
        };
        let rules = raw
            .iter()
            .enumerate()
            .map(|(index, raw)| Rule::parse(raw).map_err(|m| error(format!("creation rule {}: {m}", index + 1))))
            .collect::<Result<_, _>>()?;
        let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir = std::path::absolute(parent).map_err(|source| SecretsError::Io { path: file.to_owned(), source })?;
        Ok(CreationRules { file: file.to_owned(), dir, rules })
    }

    fn matching(&self, file: &Path) -> Option<&Rule> {
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        let relative = absolute.strip_prefix(&self.dir).unwrap_or(&absolute);
        let relative = relative.to_string_lossy();
        self.rules.iter().find(|rule| rule.path_regex.as_ref().is_none_or(|re| re.is_match(&relative)))
    }
}

impl Rule {
    fn parse(raw: &Map<String, Json>) -> Result<Rule, String> {
        let string = |name: &str| -> Result<Option<String>, String> {
            match raw.get(name) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("`{name}` must be a string")),
            }
        };
        for name in OTHER_KEY_FIELDS {
            let used = match raw.get(name) {
                None | Some(Json::Null) => false,
                Some(Json::String(s)) => !s.trim().is_empty(),
                Some(Json::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            if used {
                return Err(format!("it uses `{name}`; weaver encrypts to age recipients only (`age:`)"));
            }
        }
        let path_regex = string("path_regex")?
            .map(|re| Regex::new(&re).map_err(|e| format!("path_regex is not a valid regular expression: {e}")))
            .transpose()?;
        // sops accepts a comma-separated string; a YAML list is accepted too.
        let listed: Vec<String> = match raw.get("age") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::String(s)) => vec![s.clone()],
            Some(Json::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or("`age` list items must be strings"))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("`age` must be a string or a list of strings".into()),
        };
        let recipients = split_recipients(&listed);
        for recipient in &recipients {
            parse_recipient(recipient, "this creation rule").map_err(|e| e.to_string())?;
        }
        let selector = Selector::from_fields(|name| string(name).ok().flatten())?;
        let mac_only_encrypted = match raw.get("mac_only_encrypted") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(_) => return Err("`mac_only_encrypted` must be true or false".into()),
        };
        Ok(Rule { path_regex, recipients, selector, mac_only_encrypted })
    }
}

/// Splits comma-separated recipient lists, dropping blanks and repeats.
fn split_recipients(lists: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for recipient in lists.iter().flat_map(|l| l.split(',')).map(str::trim) {
        if !recipient.is_empty() && !out.iter().any(|r| r == recipient) {
            out.push(recipient.to_owned());
        }
    }
    out
}

/// The settings for encrypting `file`: recipients from `--age` (each may be comma-separated)
/// if given, else from the first matching creation rule; selector from that rule, else the
/// default.
pub fn encryption_settings(
    file: &Path,
    rules: Option<&CreationRules>,
    age_overrides: &[String],
) -> Result<EncryptionSettings, SecretsError> {
    let rule = rules.and_then(|r| r.matching(file));
    let recipients = if age_overrides.is_empty() {
        rule.map(|r| r.recipients.clone()).unwrap_or_default()
    } else {
        let recipients = split_recipients(age_overrides);
        for recipient in &recipients {
            parse_recipient(recipient, "--age")?;
        }
        recipients
    };
    if recipients.is_empty() {
        let reason = match (rules, rule) {
            (None, _) => "no --age given and no .sops.yaml creation rules".to_owned(),
            (Some(r), None) => format!("no --age given and no creation rule in {} matches it", r.file.display()),
            (Some(r), Some(_)) => {
                format!("the creation rule in {} that matches it lists no age recipients", r.file.display())
            }
        };
        return Err(SecretsError::NoRecipients { path: file.to_owned(), reason });
    }
    Ok(EncryptionSettings {
        recipients,
        selector: rule.map(|r| r.selector.clone()).unwrap_or_default(),
        mac_only_encrypted: rule.is_some_and(|r| r.mac_only_encrypted),
    })
}
