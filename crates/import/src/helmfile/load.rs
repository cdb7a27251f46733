//! helmfile's loading of a state for one environment (its pkg/app/desired_state_file_loader.go
//! and pkg/state/create.go): the file is split into parts at `---` lines, and each part is
//! rendered as a Go template over the environment as the parts before it left it, then read:
//! its `bases:` first (loaded the same way, for the same environment), its `environments:`
//! entry for this environment and its `values:` merged into the environment, the rest kept for
//! conversion (a later part's key replaces an earlier part's; a base's lists come before the
//! file's own). Nested `helmfiles:` are loaded for the same environment and added.

use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;

use serde_json::{Map, Value, json};
use serde_saphyr::Spanned;

use super::{Convert, Missing, is_default};
use crate::node::{Key, Node, line};
use weaver_core::error::{Error, Location, Result};
use weaver_project::source::is_plain_name;
use weaver_project::values::merge_overrides;

/// How deep bases and nested helmfiles may go: deeper is a cycle.
const MAX_DEPTH: usize = 10;

/// The file nodes come from.
#[derive(Debug, Default)]
pub(super) struct Ctx {
    /// As a path relative to the imported helmfile's directory, as messages name it.
    pub file: String,
    /// Its directory, likewise: the paths it names are relative to it.
    dir: String,
    /// The line of the file each line of its rendered text comes from.
    lines: Vec<u64>,
}

impl Ctx {
    /// The line of the file that line `rendered` of its rendered text comes from.
    pub fn source_line(&self, rendered: u64) -> u64 {
        self.lines.get((rendered as usize).saturating_sub(1)).copied().unwrap_or(rendered)
    }

    /// The file's directory, as a path relative to the imported helmfile's directory.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// `path` as the file writes it, as a path relative to the imported helmfile's directory.
    pub fn local(&self, path: &str) -> String {
        match self.dir.is_empty() || Path::new(path).is_absolute() {
            true => path.to_string(),
            false => format!("{}/{path}", self.dir),
        }
    }
}

/// The environment a state is rendered for, as helmfile builds it part by part.
#[derive(Debug, Clone, Default)]
pub(super) struct EnvState {
    pub name: String,
    /// Its `environments:` values.
    pub values: Map<String, Value>,
    /// The state's own `values:`, which its values override.
    pub defaults: Map<String, Value>,
    pub context: Option<String>,
    /// What of them the environment files write.
    pub written: Written,
}

/// The values of an environment that its files write: not those of a values file that reads
/// environment variables.
#[derive(Debug, Clone, Default)]
pub(super) struct Written {
    /// Its values files that the environment's file lists in `valuesFiles` (by repository path,
    /// with what they hold), under `values`.
    pub files: Vec<(String, Map<String, Value>)>,
    pub values: Map<String, Value>,
    pub defaults: Map<String, Value>,
}

impl Written {
    /// All of them in one map, the files' contents included.
    pub fn merged(&self) -> Map<String, Value> {
        let mut merged = self.defaults.clone();
        for (_, values) in &self.files {
            merge_overrides(&mut merged, values.clone());
        }
        merge_overrides(&mut merged, self.values.clone());
        merged
    }

    /// An environment's values as one `values:` list gives them: `files` are kept as files
    /// while nothing was written inline before them, else their contents are written.
    pub fn add(&mut self, files: Vec<(String, Map<String, Value>)>, values: Map<String, Value>) {
        match self.values.is_empty() {
            true => self.files.extend(files),
            false => files.into_iter().for_each(|(_, file)| merge_overrides(&mut self.values, file)),
        }
        merge_overrides(&mut self.values, values);
    }
}

/// The directory of `file`, a path as written.
fn parent(file: &str) -> String {
    Path::new(file).parent().map(|d| d.display().to_string()).unwrap_or_default()
}

/// Whether a path is a glob, as helmfile reads one.
pub(super) fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// A call of `env` or `requiredEnv` (helmfile's functions reading environment variables) in a
/// template, as opposed to a field of that name (`.Values.env`) or a string (`"env"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct VariableRead {
    /// The line of the template it is on, from 1.
    pub line: u64,
    /// The variable, when a string literal names it.
    pub name: Option<String>,
}

impl VariableRead {
    /// What the import says of it, read first in `file` and then at `also` (`FILE:LINE`): the
    /// files hold `files`' placeholder for its value, or what an empty value gives when it is
    /// not set. One line per variable, however often read.
    pub(super) fn left_out(&self, file: &str, also: &[String], files: &dyn super::Files) -> super::LeftOut {
        let also = match also {
            [] => String::new(),
            _ => format!(" (also read at {})", also.join(", ")),
        };
        let (what, why) = match &self.name {
            Some(name) if !files.is_set(name) => (
                format!("environment variable `{name}`, unset"),
                "not set when imported: the templates read it as empty, and the files have what they give for an \
                 empty value: set it and import again, or write its value where the files need it (a secret one in \
                 a SOPS secrets file the release lists, else the environment's `values:`)"
                    .to_string(),
            ),
            name => {
                let (what, placeholder) = match name {
                    Some(name) => (format!("environment variable `{name}`"), files.placeholder(name)),
                    None => ("an environment variable a template names".to_string(), files.placeholder("<NAME>")),
                };
                let why = format!(
                    "weaver imports no value read from the environment (it may be a secret): the files have \
                     `{placeholder}` where the template puts its value (encoded as the template encodes it, with \
                     b64enc its base64): write the value in a SOPS secrets file the release lists, or in the \
                     environment's `values:`"
                );
                (what, why)
            }
        };
        super::LeftOut { file: file.to_string(), line: self.line, what: format!("{what}{also}"), why }
    }
}

/// The calls of `env` and `requiredEnv` in `template`, in order.
pub(super) fn variables_read(template: &str) -> Vec<VariableRead> {
    let word_char = |c: char| c.is_alphanumeric() || c == '_';
    let mut reads = Vec::new();
    for (open, _) in template.match_indices("{{") {
        let start = open + 2;
        let action = &template[start..];
        let action = &action[..action.find("}}").unwrap_or(action.len())];
        let mut at = 0;
        while let Some(c) = action[at..].chars().next() {
            if c == '"' || c == '`' {
                at += quoted(&action[at..]).0;
            } else if word_char(c) {
                let len = action[at..].find(|c: char| !word_char(c)).unwrap_or(action.len() - at);
                let word = &action[at..at + len];
                let field = action[..at].ends_with(['.', '$']);
                if !field && (word == "env" || word == "requiredEnv") {
                    let after = action[at + len..].trim_start();
                    let name = quoted(after).1.filter(|name| !name.is_empty());
                    let line = template[..start + at].matches('\n').count() as u64 + 1;
                    reads.push(VariableRead { line, name });
                }
                at += len;
            } else {
                at += c.len_utf8();
            }
        }
    }
    reads
}

/// The length of the string literal `text` starts with (`"…"` with escapes, or `` `…` ``), and
/// its content when it has no escape; (0, None) when it starts with none.
fn quoted(text: &str) -> (usize, Option<String>) {
    let Some(quote) = text.chars().next().filter(|c| *c == '"' || *c == '`') else { return (0, None) };
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        if c == quote && !escaped {
            let content = &text[1..i];
            return (i + 1, (!content.contains('\\') || quote == '`').then(|| content.to_string()));
        }
        escaped = quote == '"' && c == '\\' && !escaped;
    }
    (text.len(), None)
}

impl EnvState {
    pub fn named(name: &str) -> Self {
        EnvState { name: name.to_string(), ..EnvState::default() }
    }

    /// The values templates see.
    pub fn merged(&self) -> Map<String, Value> {
        let mut merged = self.defaults.clone();
        merge_overrides(&mut merged, self.values.clone());
        merged
    }

    /// helmfile's template data for a state and its environment values files.
    pub fn data(&self) -> Value {
        let values = Value::Object(self.merged());
        json!({
            "Environment": {
                "Name": self.name,
                "KubeContext": self.context.clone().unwrap_or_default(),
                "Values": values,
            },
            "Values": values,
            "StateValues": values,
            "Namespace": "",
        })
    }
}

/// A state loaded for one environment: the environment, and the entries to convert with the
/// file each comes from.
pub(super) struct Loaded {
    pub env: EnvState,
    pub entries: Vec<(Rc<Ctx>, Spanned<Key>, Spanned<Node>)>,
}

/// The parts of a state file (helmfile splits at `\n---\n`), each with the line it starts on.
fn parts(text: &str) -> Vec<(usize, String)> {
    let text = text.replace("\r\n", "\n");
    let mut first = 1;
    text.split("\n---\n")
        .map(|part| {
            let at = first;
            first += part.matches('\n').count() + 2;
            // Blank lines before it, so that lines of the part are lines of the file.
            (at, format!("{}{part}", "\n".repeat(at - 1)))
        })
        .collect()
}

/// The line of `source` (a template) each line of `rendered` (its output) comes from: the one
/// whose text around its actions the line has, the next one after the last found if any, else
/// the nearest before it (a `range` repeats lines). A line no source line explains (blank, or
/// written whole by an action) is given the line before it's.
fn line_map(source: &str, rendered: &str) -> Vec<u64> {
    let pieces: Vec<Vec<&str>> = source.lines().map(literal_pieces).collect();
    let mut next = 0;
    let mut last = 1;
    rendered
        .lines()
        .map(|text| {
            if !text.trim().is_empty() {
                let fits = |i: &usize| explains(&pieces[*i], text);
                if let Some(i) = (next..pieces.len()).find(fits).or_else(|| (0..next).rev().find(fits)) {
                    next = i + 1;
                    last = i as u64 + 1;
                }
            }
            last
        })
        .collect()
}

/// The text of a template's line outside its actions (`{{ … }}`), the whitespace a `{{-` or
/// `-}}` trims trimmed.
fn literal_pieces(line: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = line;
    let mut trim_start = false;
    while let Some(start) = rest.find("{{") {
        let mut piece = &rest[..start];
        if trim_start {
            piece = piece.trim_start();
        }
        if rest[start..].starts_with("{{-") {
            piece = piece.trim_end();
        }
        pieces.push(piece);
        let Some(end) = action_end(&rest[start + 2..]).map(|end| end + 2) else { return pieces };
        trim_start = rest[..start + end].ends_with('-');
        rest = &rest[start + end + 2..];
    }
    pieces.push(if trim_start { rest.trim_start() } else { rest });
    pieces
}

/// Where the action that `text` starts inside of ends (the index of its `}}`), its string
/// literals skipped: `{{`{{ .Release.Name }}`}}` is one action.
fn action_end(text: &str) -> Option<usize> {
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        if text[at..].starts_with("}}") {
            return Some(at);
        }
        at += match c {
            '"' | '`' => quoted(&text[at..]).0,
            _ => c.len_utf8(),
        };
    }
    None
}

/// Whether a rendered line can be the output of the source line of these literal pieces.
fn explains(pieces: &[&str], text: &str) -> bool {
    if pieces.iter().all(|p| p.trim().is_empty()) {
        return false;
    }
    let [first, middle @ .., last] = pieces else {
        return pieces.first().is_some_and(|p| p.trim_end() == text.trim_end());
    };
    let Some(mut rest) = text.strip_prefix(*first) else { return false };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.trim_end().ends_with(last.trim_end())
}

impl Convert<'_> {
    /// The environments of the state at `file` (a path relative to the imported helmfile's
    /// directory) whose text is `text`, and of its bases, as rendering it for helmfile's
    /// `default` environment finds them; `default` when it has none. A part that does not render
    /// or read is passed over here: loading each environment reports it.
    pub(super) fn environment_names(&mut self, file: &str, text: &str) -> Vec<String> {
        let mut names = Vec::new();
        self.names_in(file, &parent(file), text, 0, &mut names);
        if names.is_empty() {
            names.push("default".to_string());
        }
        names
    }

    fn names_in(&mut self, file: &str, dir: &str, text: &str, depth: usize, names: &mut Vec<String>) {
        let dir = dir.to_string();
        for (_, part) in parts(text) {
            let Ok(rendered) = self.files.render(file, &dir, &part, &EnvState::named("default").data()) else {
                continue;
            };
            let Ok(docs) =
                weaver_yaml::documents_as_kyaml::<Spanned<Node>>(Path::new(file), &rendered, "invalid helmfile")
            else {
                continue;
            };
            self.ctx = Rc::new(Ctx { file: file.to_string(), dir: dir.clone(), lines: line_map(&part, &rendered) });
            for doc in docs {
                let Node::Map(entries) = doc.value else { continue };
                for (key, node) in entries {
                    match (key.value.0.as_str(), &node.value) {
                        ("environments", Node::Map(envs)) => {
                            for (name, _) in envs {
                                let name_text = &name.value.0;
                                if names.contains(name_text) {
                                    continue;
                                }
                                if !is_plain_name(name_text) {
                                    let what = format!("environment `{name_text}`");
                                    self.leave(
                                        line(name),
                                        what,
                                        "not a file name: weaver writes environments/<name>.yaml",
                                    );
                                    continue;
                                }
                                names.push(name_text.clone());
                            }
                        }
                        ("bases", Node::List(items)) if depth < MAX_DEPTH => {
                            for item in items {
                                let Node::Scalar(Value::String(path)) = &item.value else { continue };
                                let local = self.ctx.local(path);
                                if let Ok(Some(text)) = self.files.read(&local) {
                                    let ctx = Rc::clone(&self.ctx);
                                    self.names_in(&local, &dir, &text, depth + 1, names);
                                    self.ctx = ctx;
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// The state at `file` (a path relative to the imported helmfile's directory) whose text is
    /// `text`, loaded for `env` as helmfile loads it; `bases` read unless it is a base itself,
    /// `base_of` the directory of the state naming it (helmfile reads a base's paths relative to
    /// it, and a nested helmfile's relative to its own). An error when a part does not render or
    /// is not a helmfile: helmfile stops there too.
    pub(super) fn load(
        &mut self,
        file: &str,
        text: &str,
        env: EnvState,
        base_of: Option<&str>,
        depth: usize,
    ) -> Result<Loaded> {
        let is_base = base_of.is_some();
        if depth > MAX_DEPTH {
            return Err(Error::at(
                Location::file(file),
                format!("bases and helmfiles nested more than {MAX_DEPTH} deep: one of them names itself"),
            ));
        }
        let dir = base_of.map_or_else(|| parent(file), str::to_string);
        let mut loaded = Loaded { env, entries: Vec::new() };
        for (_, part) in parts(text) {
            let rendered = match self.files.render(file, &dir, &part, &loaded.env.data()) {
                Ok(rendered) => rendered,
                // helmfile v1 renders only `.gotmpl` states (v0 rendered all, and their files
                // escape the templates of releases: `{{`{{ .Release.Name }}`}}`): one that does
                // not render but reads is read as v1 reads it.
                Err(_)
                    if !file.ends_with(".gotmpl")
                        && weaver_yaml::documents_as_kyaml::<Spanned<Node>>(Path::new(file), &part, "").is_ok() =>
                {
                    part.clone()
                }
                Err(err) => return Err(err),
            };
            // A state read unrendered (v1's `helmfile.yaml`) keeps its lines, `{{` and all.
            let lines = if rendered == part { Vec::new() } else { line_map(&part, &rendered) };
            let ctx = Rc::new(Ctx { file: file.to_string(), dir: dir.clone(), lines });
            let what = match rendered == part {
                true => "invalid helmfile",
                false => "invalid helmfile (as its templates render it)",
            };
            let docs: Vec<Spanned<Node>> =
                weaver_yaml::documents_as_kyaml(Path::new(file), &rendered, what).map_err(|mut err| {
                    if let Some(at) = err.location.as_mut() {
                        at.line = at.line.map(|l| ctx.source_line(l));
                    }
                    err
                })?;
            self.ctx = Rc::clone(&ctx);
            // Templates were given a placeholder for each variable they read, never its value.
            if rendered != part {
                for read in variables_read(&part) {
                    let read = (file.to_string(), read);
                    if !self.variables.contains(&read) {
                        self.variables.push(read);
                    }
                }
            }
            let mut own = Vec::new();
            for doc in docs {
                match doc.value {
                    Node::Null => {}
                    Node::Map(map) => own.extend(map),
                    _ => {
                        return Err(Error::at(
                            Location::at(file, ctx.source_line(line(&doc)), doc.referenced.column()),
                            "invalid helmfile: expected a mapping of helmfile keys (`releases`, `environments`, …)",
                        ));
                    }
                }
            }
            let mut part_entries = Vec::new();
            let (mut spec, mut defaults, mut nested) = (None, None, None);
            for (key, node) in own {
                match key.value.0.as_str() {
                    "bases" if !is_base => {
                        for item in self.list(&node, "bases") {
                            let Some(path) = self.text(item, "bases") else { continue };
                            let local = ctx.local(&path);
                            match self.files.read(&local) {
                                Ok(Some(text)) => {
                                    self.name_file(line(item), &format!("bases `{path}`"), &local);
                                    let base = self.load(&local, &text, loaded.env.clone(), Some(&dir), depth + 1)?;
                                    loaded.env = base.env;
                                    part_entries.extend(base.entries);
                                }
                                Ok(None) => self.leave(line(item), format!("bases `{path}`"), "not found: not read"),
                                Err(err) => self.leave(
                                    line(item),
                                    format!("bases `{path}`"),
                                    format!("not read: {}", err.message),
                                ),
                            }
                            self.ctx = Rc::clone(&ctx);
                        }
                    }
                    "bases" => self.leave(line(&key), "bases", "helmfile reads no `bases` of a base: not read"),
                    "environments" => {
                        spec = self
                            .entries(&node, "environments")
                            .iter()
                            .find(|(name, _)| name.value.0 == loaded.env.name)
                            .map(|(_, s)| s.clone())
                    }
                    "values" => defaults = Some(node),
                    "helmfiles" => nested = Some(node),
                    _ => part_entries.push((Rc::clone(&ctx), key, node)),
                }
            }
            if let Some(spec) = spec {
                self.environment(&spec, &mut loaded.env)?;
            }
            if let Some(node) = defaults {
                let (mut values, mut written) = (Map::new(), Map::new());
                let env = loaded.env.clone();
                let into = (&mut values, &mut written);
                self.environment_values(&node, "values", into, None, &env, Missing::Listed)?;
                merge_overrides(&mut loaded.env.defaults, values);
                merge_overrides(&mut loaded.env.written.defaults, written);
            }
            // A later part's keys replace the earlier parts' (mergo's override, in helmfile).
            let replaced: BTreeSet<&str> = part_entries
                .iter()
                .filter(|(_, _, node)| !is_default(&node.value))
                .map(|(_, k, _)| k.value.0.as_str())
                .collect();
            loaded.entries.retain(|(_, key, _)| !replaced.contains(key.value.0.as_str()));
            loaded.entries.extend(part_entries);
            if let Some(node) = nested {
                self.nested(&node, &mut loaded, depth);
                self.ctx = Rc::clone(&ctx);
            }
        }
        Ok(loaded)
    }

    /// The `helmfiles:` of a state, each loaded for the same environment: their entries added
    /// to `loaded`'s, their values merged into its environment's (a weaver environment has one
    /// set of values).
    fn nested(&mut self, node: &Spanned<Node>, loaded: &mut Loaded, depth: usize) {
        let ctx = Rc::clone(&self.ctx);
        for item in self.list(node, "helmfiles") {
            self.ctx = Rc::clone(&ctx);
            let mut path = None;
            let (mut overrides, mut written) = (Map::new(), Map::new());
            let mut failed = None;
            match &item.value {
                Node::Map(fields) => {
                    for (key, value) in fields {
                        match key.value.0.as_str() {
                            "path" => path = self.text(value, "helmfiles path"),
                            "values" => {
                                let env = loaded.env.clone();
                                let into = (&mut overrides, &mut written);
                                failed = self
                                    .environment_values(value, "helmfiles values", into, None, &env, Missing::Listed)
                                    .err();
                            }
                            _ if is_default(&value.value) => {}
                            other => self.leave(
                                line(key),
                                format!("helmfiles {other}"),
                                "not supported: every release of the nested helmfile is imported",
                            ),
                        }
                    }
                }
                _ => path = self.text(item, "helmfiles"),
            }
            let Some(path) = path else { continue };
            let what = format!("helmfiles `{path}`");
            if let Some(err) = failed {
                let what = format!("{what} in environment `{}`", loaded.env.name);
                self.leave(line(item), what, format!("not read: {err}"));
                continue;
            }
            if path.contains("://") || path.starts_with("git::") {
                self.leave(line(item), what, "a remote helmfile: not read; import it from its own repository");
                continue;
            }
            let paths = match is_glob(&path) {
                true => self.files.glob(&ctx.local(&path)),
                false => vec![ctx.local(&path)],
            };
            if paths.is_empty() {
                self.leave(line(item), what.clone(), "matches no file: not read");
            }
            for local in paths {
                self.ctx = Rc::clone(&ctx);
                self.nested_one(item, &what, &local, (&overrides, &written), loaded, depth);
            }
        }
    }

    /// The nested helmfile at `local` loaded for `loaded`'s environment and added to it, as
    /// [`Convert::nested`] adds it.
    fn nested_one(
        &mut self,
        item: &Spanned<Node>,
        what: &str,
        local: &str,
        (overrides, written): (&Map<String, Value>, &Map<String, Value>),
        loaded: &mut Loaded,
        depth: usize,
    ) {
        let ctx = Rc::clone(&self.ctx);
        let text = match self.files.read(local) {
            Ok(Some(text)) => {
                self.name_file(line(item), what, local);
                text
            }
            Ok(None) => return self.leave(line(item), what, "not found: not read"),
            Err(err) => return self.leave(line(item), what, format!("not read: {}", err.message)),
        };
        // helmfile gives a nested helmfile the entry's `values` over its own.
        let mut env = EnvState::named(&loaded.env.name);
        env.values = overrides.clone();
        env.written.values = written.clone();
        match self.load(local, &text, env, None, depth + 1) {
            Ok(sub) => {
                let mut values = sub.env.merged();
                merge_overrides(&mut values, overrides.clone());
                merge_overrides(&mut loaded.env.values, values);
                let mut values = sub.env.written.merged();
                merge_overrides(&mut values, written.clone());
                merge_overrides(&mut loaded.env.written.values, values);
                loaded.entries.extend(sub.entries);
            }
            Err(err) => {
                self.ctx = ctx;
                let what = format!("{what} ({local}) in environment `{}`", loaded.env.name);
                self.leave(line(item), what, format!("not read: {err}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_read_are_calls_of_env_and_required_env_with_their_lines() {
        let template = "a: {{ requiredEnv \"DB_PASSWORD\" | b64enc }}\nb: {{ .Values.env }} {{ $env }} {{ get \"env\" . }}\nc: {{\n  env `HOME` | quote }}\nd: {{ env $name }}\n";
        let reads = variables_read(template);
        let read = |line, name: Option<&str>| VariableRead { line, name: name.map(str::to_string) };
        assert_eq!(reads, [read(1, Some("DB_PASSWORD")), read(4, Some("HOME")), read(5, None)]);
        assert!(variables_read("{{ .Environment.Name }} env requiredEnv").is_empty());
    }

    #[test]
    fn parts_keep_the_lines_of_the_file() {
        let parts = parts("a: 1\n---\nb: 2\nc: 3\n---\nd: 4\n");
        let starts: Vec<usize> = parts.iter().map(|(at, _)| *at).collect();
        assert_eq!(starts, [1, 3, 6]);
        assert_eq!(parts[2].1, "\n\n\n\n\nd: 4\n");
    }

    #[test]
    fn rendered_lines_are_traced_to_the_lines_of_the_template() {
        let source = "releases:\n{{ if eq .Environment.Name \"prod\" }}\n- name: a\n  namespace: {{ .Values.ns }}\n{{- end }}\n- name: b\n  values: [{{ .Environment.Name }}.yaml]\n";
        let rendered = "releases:\n\n- name: a\n  namespace: shop\n- name: b\n  values: [prod.yaml]\n";
        assert_eq!(line_map(source, rendered), [1, 1, 3, 4, 6, 7]);
        // A range repeats its lines: each is traced to the one that wrote it.
        let source = "list:\n{{- range .Values.items }}\n- item: {{ . }}\n{{- end }}\nafter: 1\n";
        assert_eq!(line_map(source, "list:\n- item: a\n- item: b\nafter: 1\n"), [1, 3, 3, 5]);
        // An action escaping another (helmfile v0's) is one action.
        let source = "a: {{ \"x\" }}\nb: ['v/{{`{{ .Release.Name }}`}}.yaml']\n";
        assert_eq!(line_map(source, "a: x\nb: ['v/{{ .Release.Name }}.yaml']\n"), [1, 2]);
    }
}
