//! A set of named templates sharing functions and options: Go's `*template.Template` with its
//! associated templates, as helm builds one per chart render.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::Tree;
use crate::error::Error;
use crate::exec::{Layer, Limits, run};
use crate::funcs::{Builtin, Function};
use crate::value::Value;

/// What a field lookup on a map does when the key is missing (Go's `missingkey` option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// `missingkey=default`: the result is no value, printed `<no value>`; fields of it are no value too.
    #[default]
    Default,
    /// `missingkey=zero`: the map element type's zero value, for `map[string]interface{}` a nil
    /// interface, printed `<no value>`, whose fields are a "nil pointer evaluating" error. Helm uses this.
    Zero,
    /// `missingkey=error`: `map has no entry for key "x"` (helm's strict mode).
    Error,
}

/// Named templates, the functions they may call, and options. Parse every file into one set, then
/// execute any of its templates, many times and from many threads (`Templates` is `Send + Sync`).
#[derive(Clone, Debug)]
pub struct Templates {
    name: String,
    trees: HashMap<Arc<str>, Arc<Tree>>,
    funcs: HashMap<String, Function>,
    missing_key: MissingKey,
}

impl Templates {
    /// An empty set. `name` is what Go calls the root template; it appears only in "no template"
    /// errors (helm's root is "gotpl").
    pub fn new(name: impl Into<String>) -> Templates {
        Templates { name: name.into(), trees: HashMap::new(), funcs: HashMap::new(), missing_key: MissingKey::Default }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn set_missing_key(&mut self, missing_key: MissingKey) {
        self.missing_key = missing_key;
    }

    pub fn missing_key(&self) -> MissingKey {
        self.missing_key
    }

    /// Adds (or replaces) a function. Functions are looked up before Go's builtins, as in Go; add them
    /// before parsing templates that call them (parsing checks that called functions exist).
    pub fn add_function(&mut self, name: impl Into<String>, function: Function) {
        self.funcs.insert(name.into(), function);
    }

    pub(crate) fn function(&self, name: &str) -> Option<&Function> {
        self.funcs.get(name)
    }

    fn has_function(&self, name: &str) -> bool {
        self.funcs.contains_key(name) || Builtin::lookup(name).is_some()
    }

    /// Parses `text` as the template `name` and adds it and the templates it defines to the set. As in
    /// Go, a later definition of a name replaces an earlier one unless the later one is empty (only
    /// whitespace): parse files in helm's order to get helm's winners.
    pub fn parse(&mut self, name: &str, text: &str) -> Result<(), Error> {
        for tree in self.parse_trees(name, text)? {
            let keep_existing = tree.is_empty() && self.trees.get(&tree.name).is_some_and(|old| !old.is_empty());
            if !keep_existing {
                self.trees.insert(tree.name.clone(), Arc::new(tree));
            }
        }
        Ok(())
    }

    pub(crate) fn parse_trees(&self, name: &str, text: &str) -> Result<Vec<Tree>, Error> {
        crate::parse::parse(name, text, &|f| self.has_function(f))
    }

    pub fn has_template(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// The names of all templates, sorted.
    pub fn template_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.trees.keys().map(|k| &**k).collect();
        names.sort_unstable();
        names
    }

    /// Executes the template `name` with `data` as dot and returns its output.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, Error> {
        self.execute_with_state(name, data, &mut ())
    }

    /// Like [`Templates::execute`], giving functions access to `state` through
    /// [`crate::Ctx::state`] (helm keeps `include`'s recursion counts there, one per render).
    pub fn execute_with_state(&self, name: &str, data: &Value, state: &mut (dyn Any + Send)) -> Result<String, Error> {
        self.execute_within(name, data, state, Limits::default())
    }

    /// Like [`Templates::execute_with_state`], within `limits`: stopped when they say, or when
    /// its output or a string it makes grows past their bytes.
    pub fn execute_within(
        &self,
        name: &str,
        data: &Value,
        state: &mut (dyn Any + Send),
        limits: Limits<'_>,
    ) -> Result<String, Error> {
        let tree = self.trees.get(name).ok_or_else(|| Error::no_template(name, &self.name))?;
        let layer = Layer { trees: &self.trees, parent: None };
        let mut out = String::new();
        run(self, &layer, tree, data.clone(), &mut out, 0, state, limits)?;
        Ok(out)
    }
}
