//! Patches applied to rendered manifests: Kubernetes strategic merge patches and
//! RFC 6902 JSON patches, with the list merge table they share with the diff.
//!
//! Error messages name JSON pointers and field names only, never values: the
//! documents may hold decrypted secrets.

pub mod json6902;
pub mod merge_keys;
pub mod strategic;

/// Why a patch could not be applied. Paths are JSON pointers into the patch
/// document (for strategic merge) or the patched document (for JSON patch).
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("the {what} must be an object, not {found}")]
    NotAnObject { what: &'static str, found: &'static str },

    #[error(
        "`$patch: delete` at the root of the patch would delete the whole object; \
         drop the resource instead of patching it"
    )]
    DeletesObject,

    #[error("list element at {path} has no `{missing}`; elements of {field} are matched by {keys}")]
    MissingMergeKey { path: String, field: String, missing: &'static str, keys: String },

    #[error("list element at {path} must be an object; elements of {field} are matched by {keys}")]
    ElementNotAnObject { path: String, field: String, keys: String },

    #[error("unknown `$patch` directive at {path}: expected `replace`, `delete` or `merge`")]
    UnknownDirective { path: String },

    #[error(
        "directive at {path}: {field} is replaced as a whole (it has no merge key), \
         so its elements cannot carry `{directive}`"
    )]
    DirectiveInAtomicList { path: String, field: String, directive: String },

    #[error("`{directive}` at {path} must be {expected}")]
    MalformedDirective { path: String, directive: String, expected: &'static str },

    #[error("the patch sets {path}, but `$retainKeys` next to it does not list `{key}`")]
    NotRetained { path: String, key: String },

    #[error("`$setElementOrder/{field}` at {path} does not list every patched element of {field}, in patch order")]
    ElementOrderMismatch { path: String, field: String },

    #[error("JSON patch must be a list of operations, not {found}")]
    OperationsNotAList { found: &'static str },

    #[error("JSON patch operation {index} is invalid: {reason}")]
    InvalidOperation { index: usize, reason: String },

    #[error("JSON patch operation {index} (`{op}` at {path}) failed: {reason}")]
    OperationFailed { index: usize, op: &'static str, path: String, reason: String },
}

/// A JSON type name for messages; never the value itself.
pub fn type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Appends `token` to a JSON pointer, escaped per RFC 6901.
fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    pointer.push_str(&token.replace('~', "~0").replace('/', "~1"));
}

/// The root's JSON pointer is empty, which would read as a gap in a message.
fn display_pointer(pointer: &str) -> String {
    if pointer.is_empty() { "the root".to_owned() } else { pointer.to_owned() }
}
