//! Values files and environment values: read, rendered when they are templates, or listed
//! when missing (a file the helmfile names is never written over).

use std::path::Path;

use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use weaver_core::error::{Error, Location, Result};
use weaver_project::values::merge_overrides;

use super::super::node::{Node, line};
use super::{Convert, Missing, placeholder_variable};

/// The documents of a values file as helmfile reads them (go-yaml v3's types), each a
/// mapping of values or nothing; an error, located in the file, when one is something else.
pub(super) fn values_documents(path: &Path, text: &str) -> Result<Vec<Option<Map<String, Value>>>> {
    let mut docs: Vec<Value> = weaver_yaml::documents_as_kyaml(path, text, "invalid YAML")?;
    // A block scalar ending the text without a line break ends without one (go-yaml's reading).
    weaver_yaml::end_unbroken_block_scalar(text, &mut docs);
    docs.into_iter()
        .map(|doc| match doc {
            Value::Null => Ok(None),
            Value::Object(map) => Ok(Some(map)),
            _ => Err(Error::at(Location::file(path), "expected a mapping of values at the top level")),
        })
        .collect()
}

impl Convert<'_> {
    /// An environment's (or the state's) `values:` list merged into `into`: inline maps and
    /// YAML files, in order, as helmfile merges them; a `.gotmpl` file rendered first over `env`
    /// with the values merged so far, as helmfile renders it (an error when it does not render:
    /// helmfile stops there too). `written` gets the same but for a file that reads environment
    /// variables: what it gives may be a secret, which is never written into a file. With
    /// `files`, the plain YAML files before anything written inline go there instead of into
    /// `written`: the environment's file lists them in `valuesFiles`, under its `values`.
    pub(super) fn environment_values(
        &mut self,
        node: &Spanned<Node>,
        what: &str,
        (into, written): (&mut Map<String, Value>, &mut Map<String, Value>),
        mut files: Option<&mut Vec<(String, Map<String, Value>)>>,
        env: &super::load::EnvState,
        missing: Missing,
    ) -> Result<()> {
        for item in self.list(node, what) {
            match &item.value {
                Node::Map(_) => {
                    if let Some(map) = self.map(item, what) {
                        merge_overrides(into, map.clone());
                        merge_overrides(written, map);
                        files = None;
                    }
                }
                _ => {
                    let Some(given) = self.text(item, &format!("{what} file")) else { continue };
                    let file = format!("{what} file `{given}`");
                    // helmfile reads each file a glob matches, in order.
                    let paths = match super::load::is_glob(&given) {
                        true => self.files.glob(&self.ctx.local(&given)),
                        false => vec![self.ctx.local(&given)],
                    };
                    if paths.is_empty() {
                        self.missing(line(item), &file, "matches no file", missing)?;
                    }
                    for path in paths {
                        let file = match super::load::is_glob(&given) {
                            true => format!("{file} ({path})"),
                            false => file.clone(),
                        };
                        let referenced = self.values_file(
                            item,
                            &file,
                            &path,
                            (&mut *into, &mut *written),
                            files.as_deref_mut(),
                            (env, missing),
                        )?;
                        if !referenced {
                            files = None;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The values file at `path` (as written, from `item`, `file` for messages) merged into
    /// `into` and `written`, or for a plain YAML file of the weaver repository into `into` and
    /// `files` when given, as [`Convert::environment_values`] merges it. Whether it went into
    /// `files`, or nothing was written of it.
    pub(super) fn values_file(
        &mut self,
        item: &Spanned<Node>,
        file: &str,
        path: &str,
        (into, written): (&mut Map<String, Value>, &mut Map<String, Value>),
        files: Option<&mut Vec<(String, Map<String, Value>)>>,
        (env, missing): (&super::load::EnvState, Missing),
    ) -> Result<bool> {
        let text = match self.files.read(path) {
            Ok(Some(text)) => {
                self.name_file(line(item), file, path);
                text
            }
            Ok(None) => {
                self.missing(line(item), file, "not found", missing)?;
                return Ok(true);
            }
            // helmfile stops on a file it cannot read: so does the import, naming it.
            Err(err) => return Err(self.stop(err, file)),
        };
        let templated = path.ends_with(".gotmpl");
        let reads_variables = templated && !super::load::variables_read(&text).is_empty();
        let text = match templated {
            true => {
                let mut so_far = env.clone();
                merge_overrides(&mut so_far.values, into.clone());
                self.files.render(path, self.ctx.dir(), &text, &so_far.data())?
            }
            false => text,
        };
        let docs = values_documents(Path::new(path), &text).map_err(|err| self.stop(err, file))?;
        // weaver reads one plain YAML mapping of the repository per file, as it is, when it
        // reads it as helmfile does (not a `0755`, which weaver reads as 755, nor `on`).
        let read_alike = || match weaver_yaml::from_str::<Option<Value>>(Path::new(path), &text) {
            Ok(None | Some(Value::Null)) => docs.iter().all(Option::is_none),
            Ok(Some(Value::Object(read))) => matches!(docs.as_slice(), [Some(values)] if *values == read),
            _ => false,
        };
        let repository_path =
            self.files.repository_path(path).filter(|_| !templated && docs.len() <= 1 && read_alike());
        if let (Some(files), Some(repository_path)) = (files, repository_path) {
            let values = docs.into_iter().flatten().next().unwrap_or_default();
            merge_overrides(into, values.clone());
            files.push((repository_path.to_string_lossy().replace('\\', "/"), values));
            return Ok(true);
        }
        for map in docs.into_iter().flatten() {
            merge_overrides(into, map.clone());
            if !reads_variables {
                merge_overrides(written, map);
            }
        }
        if reads_variables {
            self.leave(
                line(item),
                file,
                format!(
                    "reads environment variables (`env`, `requiredEnv`), which may hold secrets: the state was \
                     rendered with its values (a placeholder, `{}`, for each variable's), but they are not written; \
                     put them in the environment's `values:`, or in a SOPS file the releases list",
                    self.files.placeholder("<NAME>")
                ),
            );
        }
        Ok(reads_variables)
    }

    /// `err`, a values file's (`what`) that does not read or is not YAML values, as the error that
    /// stops the import: helmfile stops on it too, and no environment is written without it.
    pub(super) fn stop(&mut self, err: Error, what: &str) -> Error {
        let err = Error {
            message: format!("{what}: {}", err.message),
            help: Some("helmfile stops on it too: correct the file (or the path naming it), and import again".into()),
            ..err
        };
        self.stopped.get_or_insert_with(|| err.clone());
        err
    }

    /// A values file (`what`, named at `at`) that is not there (`why`), as `missing` takes it:
    /// an error, as in helmfile, or listed.
    pub(super) fn missing(&mut self, at: u64, what: &str, why: &str, missing: Missing) -> Result<()> {
        let from_variable = placeholder_variable(what, &self.files.placeholder("")).map(|variable| {
            format!("{why}: its path holds environment variable `{variable}`, whose value the import does not read")
        });
        let why = from_variable.as_deref().unwrap_or(why);
        match missing {
            Missing::Refused => Err(Error::at(
                Location::at(&self.ctx.file, self.ctx.source_line(at), 0),
                match from_variable {
                    Some(_) => format!("{what}: {why}"),
                    None => format!(
                        "{what}: {why} (helmfile stops on it; with the environment's `missingFileHandler: Warn` it \
                         passes over it)"
                    ),
                },
            )),
            Missing::Optional => {
                self.optional(at, what, why);
                Ok(())
            }
            Missing::Listed => {
                self.leave(at, what, why);
                Ok(())
            }
        }
    }

    /// Lists a values file that is not there (`why`) and that helmfile passes over: weaver has
    /// nothing to say "read it if it exists", and a file added later must not be ignored.
    pub(super) fn optional(&mut self, at: u64, what: &str, why: &str) {
        self.leave(
            at,
            what,
            format!(
                "{why}, and optional (`missingFileHandler`): weaver has no optional values files, so it is not in \
                 `valuesFiles`; add it there once it exists"
            ),
        );
    }

    /// A path the helmfile names as a path of the weaver repository, or `None` (listed).
    pub(super) fn repository_path(&mut self, at: u64, what: &str, path: &str) -> Option<String> {
        match self.files.repository_path(&self.ctx.local(path)) {
            Some(p) => Some(p.to_string_lossy().replace('\\', "/")),
            None => {
                self.leave(
                    at,
                    format!("{what} `{path}`"),
                    "outside the weaver repository (--repo): move it into the repository",
                );
                None
            }
        }
    }
}
