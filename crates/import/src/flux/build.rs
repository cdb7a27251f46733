//! A Kustomization's directory built as `kustomize build` builds it, with the copies an import
//! makes where a remote resource or a component would not build offline.

use std::path::{Path, PathBuf};

use granit_parser::ScalarStyle;
use serde_json::{Value, json};
use weaver_core::error::Location;
use weaver_kustomize as kustomize;
use weaver_project::environment::LoadRestrictions;
use weaver_project::source::lexical;

use super::{
    Copy, GENERATED_DIR, Import, Obj, PathField, WITHOUT_REMOTE, WithCopies, relative, with_quotes, without_item,
};

impl<'a> Import<'a> {
    /// What Flux builds from `dir`, and the entries that the release's kustomization lists in
    /// place of the directory (`None`: it names the directory): the files of the one Flux
    /// generates for a directory without a kustomization.
    pub(super) fn build(
        &mut self,
        dir: &Path,
        at: &Obj,
    ) -> std::result::Result<(Vec<Obj>, Option<Vec<PathBuf>>), String> {
        if self.kustomization_in(dir) {
            return Ok((self.kustomize_build(dir, at)?, None));
        }
        if !matches!(self.source.list(dir), Ok(Some(_))) {
            return Err(format!("{} is not a directory of the repository", dir.display()));
        }
        let mut entries = Vec::new();
        self.walk(dir, true, &mut entries);
        let mut objects = Vec::new();
        let mut listed = Vec::new();
        for entry in entries {
            if self.kustomization_in(&entry) {
                objects.extend(self.kustomize_build(&entry, at)?);
                listed.push(entry);
            } else {
                let built = self.objects_built(&entry);
                if !built.is_empty() {
                    listed.push(entry);
                }
                objects.extend(built);
            }
        }
        Ok((objects, Some(listed)))
    }

    /// The kustomization in `dir`, built as kustomize-controller builds it, but for its remote
    /// entries (and those of the kustomizations it includes), which weaver does not fetch: then
    /// its copy without them is built (see [`Import::copy_without_remote`]).
    pub(super) fn kustomize_build(&mut self, dir: &Path, at: &Obj) -> std::result::Result<Vec<Obj>, String> {
        let location = Location::file(&at.file);
        let under = PathBuf::from(GENERATED_DIR).join(WITHOUT_REMOTE);
        let mut copies = Vec::new();
        let copy = self.copy_without_remote(dir, &under, &mut copies, &mut Vec::new())?;
        let (objects, outside_root) =
            self.build_with_copies(copy.as_deref().unwrap_or(dir), &under, &copies, &location)?;
        if outside_root {
            self.unrestricted.insert(dir.to_path_buf());
        }
        Ok(objects)
    }

    /// The build of `dir` reading the repository with `copies` (below `under`) in it, as
    /// kustomize-controller builds (LoadRestrictionsNone; says whether that was needed, so that
    /// the release says so). What the copies say is said of the kustomizations they copy.
    pub(super) fn build_with_copies(
        &self,
        dir: &Path,
        under: &Path,
        copies: &[Copy],
        location: &Location,
    ) -> std::result::Result<(Vec<Obj>, bool), String> {
        let with_copies = WithCopies::new(self.source, under, copies);
        let built = kustomize::build(&with_copies, dir, location, LoadRestrictions::None, &Default::default())
            .map_err(|err| {
                copies.iter().fold(err.to_string(), |message, copy| {
                    message.replace(&copy.file.display().to_string(), &copy.original.display().to_string())
                })
            })?;
        let original = |path: PathBuf| match copies.iter().find(|c| c.file == path) {
            Some(copy) => copy.original.clone(),
            None => path,
        };
        let objects = built
            .resources
            .into_iter()
            .map(|r| Obj { object: r.object, file: original(r.source), document: r.document })
            .collect();
        Ok((objects, built.outside_root))
    }

    /// What Flux builds from `dir` (or the `listed` entries standing for it) with a
    /// Kustomization's `components` added, as kustomize-controller adds them: one kustomization
    /// over both, held in memory (the release's written kustomization has the same shape).
    pub(super) fn build_with_components(
        &mut self,
        dir: &Path,
        listed: Option<&[PathBuf]>,
        components: &[String],
        at: &Obj,
    ) -> std::result::Result<Vec<Obj>, String> {
        let wrapper_dir = PathBuf::from(GENERATED_DIR).join("with-components").join(dir);
        let mut copies = Vec::new();
        let entries = listed.map_or_else(|| vec![dir.to_path_buf()], <[PathBuf]>::to_vec);
        let resources: Vec<Value> = entries.iter().map(|e| self.named_from(&wrapper_dir, e, &mut copies)).collect();
        let mut named = Vec::new();
        for component in components {
            let path = lexical(&dir.join(component))
                .ok_or_else(|| format!("component {component} leads outside the repository"))?;
            named.push(self.named_from(&wrapper_dir, &path, &mut copies));
        }
        let wrapper = json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
            "components": named,
        });
        let file = wrapper_dir.join("kustomization.yaml");
        copies.push(Copy { file: file.clone(), original: at.file.clone(), text: wrapper.to_string() });
        let (objects, _) = self.build_with_copies(&wrapper_dir, &wrapper_dir, &copies, &Location::file(&at.file))?;
        Ok(objects)
    }

    /// A copy of the kustomization in `dir` without its remote entries (`resources`, `bases` or
    /// `components` that are URLs), which weaver does not fetch, when it lists one or includes a
    /// kustomization that does: written to `under/<dir>/kustomization.yaml` (pushed to `copies`,
    /// after the copies it names in place of those it includes), its other paths rewritten to
    /// lead where they led, every other byte as written (a remote entry's line becomes a
    /// comment, so that lines stay where they were). Each remote entry is listed at its line.
    /// `None` when no copy is needed, or when the kustomization does not read (its build says
    /// why); `including` holds the kustomizations being copied, against cycles.
    pub(super) fn copy_without_remote(
        &mut self,
        dir: &Path,
        under: &Path,
        copies: &mut Vec<Copy>,
        including: &mut Vec<PathBuf>,
    ) -> std::result::Result<Option<PathBuf>, String> {
        let copy_dir = under.join(dir);
        if copies.iter().any(|c| c.file.parent() == Some(copy_dir.as_path())) {
            return Ok(Some(copy_dir));
        }
        let Some(file) = kustomize::kustomization::find(self.source, dir) else { return Ok(None) };
        if including.contains(&file) {
            return Ok(None);
        }
        let Some(text) = self.read(&file) else { return Ok(None) };
        let mut scalars = Vec::new();
        let walked = weaver_yaml::scalars::walk(
            &text,
            |_, _, _| true,
            |s| scalars.push((s.pointer, s.value.to_string(), s.style, s.bytes, s.line)),
        );
        if walked.is_none() {
            return Ok(None);
        }
        let cannot = |line: usize, why: String| {
            format!(
                "{}:{line}: {why}, which the import cannot rewrite in a copy of the kustomization without its remote \
                 entries: vendor them into the repository",
                file.display()
            )
        };
        including.push(file.clone());
        let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
        let mut remote = Vec::new();
        let mut includes_copy = false;
        for (pointer, value, style, bytes, line) in scalars {
            let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
            let Some(field) = PathField::of(&tokens) else { continue };
            let Some(bytes) = bytes.map(|b| with_quotes(&text, b, style)) else {
                return Err(cannot(line, format!("{pointer} has no position")));
            };
            if field == PathField::Entry && kustomize::is_remote(&value) {
                let edit = without_item(&text, bytes).ok_or_else(|| cannot(line, format!("remote entry {value}")))?;
                edits.push(edit);
                remote.push((line, tokens[0] == "components", value));
                continue;
            }
            let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
            let (key, path) = match value.split_once('=') {
                Some((key, path)) if field == PathField::KeyedFile => (Some(key), path),
                _ => (None, value.as_str()),
            };
            let target = lexical(&dir.join(path));
            let is_dir = target.as_ref().is_some_and(|t| matches!(self.source.list(t), Ok(Some(_))));
            if field == PathField::FileOrInline
                && (block || !is_dir && !target.as_ref().is_some_and(|t| self.source.exists(t)))
            {
                continue;
            }
            let Some(target) = target.filter(|_| !block) else {
                return Err(cannot(line, format!("{pointer} `{path}` (outside the repository, or a block scalar)")));
            };
            let mut to = target.clone();
            if field == PathField::Entry
                && is_dir
                && let Some(copy) = self.copy_without_remote(&target, under, copies, including)?
            {
                includes_copy = true;
                to = copy;
            }
            let path = relative(&copy_dir, &to);
            let mut written = String::new();
            weaver_yaml::emit::write_double_quoted(
                &mut written,
                &key.map_or_else(|| path.clone(), |key| format!("{key}={path}")),
            );
            edits.push((bytes, written));
        }
        including.pop();
        if remote.is_empty() && !includes_copy {
            return Ok(None);
        }
        let Ok(k) = kustomize::kustomization::load(self.source, &file) else { return Ok(None) };
        // helmCharts are read from `chartHome`, `charts` beside the kustomization by default.
        let mut added = String::new();
        if k.helm_charts.as_ref().is_some_and(|charts| !charts.is_empty())
            && k.helm_globals.as_ref().is_none_or(|g| g.chart_home.is_empty())
        {
            if k.helm_globals.is_some() {
                return Err(cannot(1, "its helmGlobals have no chartHome".into()));
            }
            added.push_str("helmGlobals:\n  chartHome: ");
            weaver_yaml::emit::write_double_quoted(&mut added, &relative(&copy_dir, &dir.join("charts")));
            added.push('\n');
        }
        let mut copied = text.clone();
        edits.sort_by_key(|(bytes, _)| std::cmp::Reverse(bytes.start));
        for (bytes, written) in edits {
            copied.replace_range(bytes, &written);
        }
        if !copied.ends_with('\n') {
            copied.push('\n');
        }
        copied.push_str(&added);
        copied.push_str(&format!(
            "# {} without its remote entries, which weaver does not fetch, by `weaver import flux`.\n",
            file.display()
        ));
        let why = "not converted: weaver builds only kustomizations of its repository, and fetches nothing: the rest \
                   is converted without it (from a copy of this kustomization under flux-import/, the Flux tree as it \
                   was): vendor the file into the repository and list it in place of the URL";
        for (line, component, value) in remote {
            let what = format!("remote {} {value}", if component { "component" } else { "resource" });
            self.leave(&file, line as u64, what, why);
        }
        copies.push(Copy { file: copy_dir.join("kustomization.yaml"), original: file, text: copied });
        Ok(Some(copy_dir))
    }

    /// How the kustomization of the release in `generated_dir` names `path`, a file or
    /// kustomization of the Flux tree: by its copy without remote entries when it needs one
    /// (pushed to `copies`, written under `generated_dir`).
    pub(super) fn named_from(&mut self, generated_dir: &Path, path: &Path, copies: &mut Vec<Copy>) -> Value {
        let under = generated_dir.join(WITHOUT_REMOTE);
        // The build made the same copies, or failed and made no release.
        let copy = self.copy_without_remote(path, &under, copies, &mut Vec::new()).ok().flatten();
        Value::String(relative(generated_dir, copy.as_deref().unwrap_or(path)))
    }
}
