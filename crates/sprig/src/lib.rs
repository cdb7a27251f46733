//! Sprig's template functions (Masterminds/sprig v3.3.0) as helm 3.17.1 ships them, for
//! [`gotemplate`]. Outputs, Go types (`typeOf`, `kindOf`, parameter checks) and error messages
//! follow what `helm template` prints; the table in `tests/cases/sprig.txt` is checked against a
//! real helm.
//!
//! ```
//! use gotemplate::{MissingKey, Templates, Value};
//!
//! let mut set = Templates::new("gotpl");
//! set.set_missing_key(MissingKey::Zero);
//! sprig::register(&mut set);
//! set.parse("t", r#"{{ "hello" | upper | quote }} {{ list 3 1 2 | sortAlpha | join "," }}"#).unwrap();
//! assert_eq!(set.execute("t", &Value::Nil).unwrap(), r#""HELLO" 1,2,3"#);
//! ```
//!
//! # Supported
//! Every function of sprig's `GenericFuncMap` that helm keeps: strings (`trim*`, `upper`, `lower`,
//! `title`, `untitle`, `substr`, `repeat`, `trunc`, `abbrev`, `abbrevboth`, `initials`, `rand*`,
//! `swapcase`, `shuffle`, `snakecase`, `camelcase`, `kebabcase`, `wrap`, `wrapWith`, `contains`,
//! `hasPrefix`, `hasSuffix`, `quote`, `squote`, `cat`, `indent`, `nindent`, `nospace`, `replace`,
//! `plural`, `toString`, `split`, `splitList`, `splitn`, `toStrings`, `join`, `sortAlpha`), numbers
//! (`atoi`, `int`, `int64`, `float64`, `toDecimal`, `add`, `add1`, `sub`, `div`, `mod`, `mul`,
//! `max`, `biggest`, `min`, `maxf`, `minf`, `floor`, `ceil`, `round`, `randInt`, `seq`, `until`,
//! `untilStep`, and the decimal `addf`, `add1f`, `subf`, `mulf`, `divf`), defaults and flow
//! (`default`, `empty`, `coalesce`, `all`, `any`, `ternary`, `fail`), reflection (`typeOf`,
//! `typeIs`, `typeIsLike`, `kindOf`, `kindIs`, `deepEqual`), lists (`list`, `tuple`, `append`,
//! `push`, `prepend`, `first`, `rest`, `last`, `initial`, `reverse`, `uniq`, `without`, `has`,
//! `compact`, `slice` (replacing Go's builtin, as in helm), `concat`, `chunk`, and the `must`
//! variants), dictionaries (`dict`, `get`, `set`, `unset`, `hasKey`, `pluck`, `keys`, `values`,
//! `pick`, `omit`, `merge`, `mergeOverwrite`, `deepCopy`, `dig`, `must` variants), encodings
//! (`b64enc`, `b64dec`, `b32enc`, `b32dec`, `toPrettyJson`, `toRawJson`, `mustToJson`,
//! `mustToPrettyJson`, `mustToRawJson`, `mustFromJson`), paths (`base`, `dir`, `clean`, `ext`,
//! `isAbs` and the `os` variants), URLs (`urlParse`, `urlJoin`), regular expressions (`regex*` and
//! `mustRegex*`, `regexQuoteMeta`), `semver` and `semverCompare`, dates (`now`, `date`,
//! `dateInZone`, `date_in_zone`, `htmlDate`, `htmlDateInZone`, `dateModify`, `date_modify`,
//! `mustDateModify`, `must_date_modify`, `toDate`, `mustToDate`, `unixEpoch`, `ago`, `duration`,
//! `durationRound`) with `time.Time` values and their common methods, hashes (`sha1sum`,
//! `sha256sum`, `sha512sum`, `adler32sum`), `uuidv4`, `randBytes`, `bcrypt`, `htpasswd`,
//! `derivePassword`, `encryptAES`, `decryptAES`, keys and certificates (`genPrivateKey` for rsa,
//! ecdsa and ed25519, `genCA`, `genCAWithKey`, `genSelfSignedCert`, `genSelfSignedCertWithKey`,
//! `genSignedCert`, `genSignedCertWithKey`, `buildCustomCert`), `getHostByName` (helm disables DNS
//! by default: it returns ""), and `hello`.
//!
//! Not registered here: helm's own functions (`include`, `tpl`, `required`, `toYaml`, `toYamlPretty`,
//! `fromYaml`, `fromYamlArray`, `toJson`, `fromJson`, `fromJsonArray`, `toToml`, `fromToml`,
//! `lookup`), and `env`/`expandenv`, which helm removes.
//!
//! # Go types
//! Results keep Go's types where templates can tell: `splitList`, `keys`, `sortAlpha`, `toStrings`,
//! `regexFindAll` and `regexSplit` give `[]string`, `until`/`untilStep` `[]int`, `split`/`splitn`
//! `map[string]string`, `chunk` `[][]interface {}` (as [`gotemplate::Object`]s over their list or
//! map, so `typeOf`, `deepEqual` and parameter checks see the difference); arithmetic gives `int64`,
//! `atoi` and `int` `int`, the `f` functions `float64`; `now`/`toDate` give `time.Time` objects with
//! Go's printing and methods (`Format`, `Unix`, `Year`, `Month`, `Add`, `AddDate`, `Sub`, `UTC`, ...),
//! `semver` a `*semver.Version` (`Major`, `Prerelease`, `LessThan`, ...), the certificate functions a
//! `sprig.certificate` with `.Cert` and `.Key`.
//!
//! # Differences from Go
//! - Go's map iteration is random: `keys`, `values` and `pluck`-style results come in key order here.
//! - Strings are UTF-8: where Go cuts a multi-byte character (`substr`, `trunc`, `wrapWith`,
//!   `b64dec` of binary data), the broken bytes become U+FFFD.
//! - `genPrivateKey "dsa"` is an error (no DSA implementation); EC keys other than P-256 are not read.
//! - A `time.Time` or certificate parameter (`dateModify`, `unixEpoch`, `genSignedCert`) given another
//!   type fails with Go's "wrong type for value" text, but as a function error rather than at the
//!   argument, since the engine's [`gotemplate::Type`] has no such types.
//! - Results that would take more than 2^27 elements (`until`, `repeat`, `indent`, random strings)
//!   are errors rather than attempts to exhaust memory.
//! - `mustFromJson` reports a truncated document as Go does ("unexpected end of JSON input") but other
//!   syntax errors in serde_json's words.
//! - `semver`'s `Major`/`Minor`/`Patch` are `int64` rather than `uint64` (`typeOf` shows the difference).
//! - `deepCopy`, `deepEqual`, `uniq`, `has`, `without`, the merges and the JSON encoders fail with
//!   "value nested deeper than 1000 levels" ([`gotemplate::MAX_NESTING`]) for a value nested deeper,
//!   which Go would walk; `toPrettyJson` fails rather than giving "".

mod crypto;
mod defaults;
mod dicts;
mod encoding;
mod go;
pub mod json;
mod lists;
mod numeric;
mod regex;
pub mod semver;
mod strings;
mod time;

pub use time::parse_time;
pub use weaver_primes::one_search_at_a_time as search_rsa_keys_on_one_core;

use gotemplate::{Templates, Value};

/// Adds every sprig function helm exposes to `templates` (replacing Go's builtin `slice`, as helm's
/// function map does). Register before parsing templates that call them.
pub fn register(templates: &mut Templates) {
    strings::register(templates);
    numeric::register(templates);
    defaults::register(templates);
    lists::register(templates);
    dicts::register(templates);
    encoding::register(templates);
    regex::register(templates);
    semver::register(templates);
    time::register(templates);
    crypto::register(templates);
}

/// The string argument at `i` (the engine has checked its type).
fn str_arg(args: &[Value], i: usize) -> &str {
    args.get(i).and_then(Value::as_str).unwrap_or_default()
}

/// The bytes of the string argument at `i`: not UTF-8 when it holds a binary file.
fn bytes_arg(args: &[Value], i: usize) -> &[u8] {
    args.get(i).and_then(Value::as_bytes).unwrap_or_default()
}

/// The `int` or `int64` argument at `i`.
fn int_arg(args: &[Value], i: usize) -> i64 {
    args.get(i).and_then(Value::as_int).unwrap_or_default()
}
