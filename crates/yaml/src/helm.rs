//! YAML as helm reads and writes it: sigs.k8s.io/yaml over go-yaml v2. Reading resolves plain
//! scalars by YAML 1.1's rules (`yes`/`on` are booleans, `0777` is octal, `1_000` an integer,
//! timestamps stay strings) and converts the first document to JSON; writing (`toYaml`) reproduces
//! go-yaml v2's emitter: sorted keys in its "natural" order, indentless lists under keys, its
//! quoting rules, literal blocks for multi-line strings and plain scalars folded after column 80.
//! `toYamlPretty` writes with go-yaml v3's encoder (indent 2) instead: [`to_string_v3`].
//!
//! No Rust crate reproduces go-yaml v2 (serde_yaml and serde-saphyr emit YAML 1.2 with other
//! quoting and no folding), so both directions are written here: reading (`read.rs`) on
//! granit-parser's events (the parser serde-saphyr uses), writing in `write.rs`.

mod read;
mod write;
pub use read::{Positions, documents, from_str, from_str_line_ended, from_str_positioned};
pub use write::{Flavor, Node, natural_order, to_string, to_string_v3};

/// A YAML syntax or conversion error: the message and its 1-based line, when known.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub message: String,
    pub line: Option<usize>,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read::{GoValues, load_documents};
    use super::*;
    use crate::resolve::is_timestamp;
    use crate::subset;
    use serde_json::Value as Json;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]
        /// What the common subset reads, it reads as the go-yaml loader does.
        #[test]
        fn the_subset_reads_as_the_loader(text in weaver_arbitrary::arbitrary_yaml()) {
            if let Some(documents) = subset::stream(&text, GoValues) {
                let direct: Vec<Json> = documents.into_iter().flatten().filter(|v| !v.is_null()).collect();
                proptest::prop_assert_eq!(Ok(direct), load_documents(&text), "{}", text);
            }
        }

        /// The same on text shaped like rendered manifests, most of which the subset reads.
        #[test]
        fn the_subset_reads_manifests_as_the_loader(doc in crate::subset::tests::manifest_like()) {
            let text = format!("---\n{doc}\n");
            if let Some(documents) = subset::stream(&text, GoValues) {
                let direct: Vec<Json> = documents.into_iter().flatten().filter(|v| !v.is_null()).collect();
                proptest::prop_assert_eq!(Ok(direct), load_documents(&text), "{}", text);
            }
        }
    }
    use serde_json::json;

    fn yaml(json: Json) -> String {
        to_string(&Node::from_json(&json))
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_1_1() {
        let values =
            from_str("a: yes\nb: on\nc: 0777\nd: 1_000\ne: 08\nf: 2001-12-14\ng: ~\nh: '1'\ni: 0x1F\nj: 1e3\n")
                .unwrap()
                .unwrap();
        assert_eq!(
            values,
            json!({"a": true, "b": true, "c": 511, "d": 1000, "e": 8.0, "f": "2001-12-14", "g": null, "h": "1", "i": 31, "j": 1000.0})
        );
    }

    #[test]
    fn a_block_scalar_ending_the_text_without_a_line_break_gains_none() {
        // helm reads a values file ending `  line2` (no final newline) as "line1\nline2": the
        // scalar's last line has no line break to keep, whatever its chomping. Through the
        // subset and (an anchor takes it there) the full loader alike.
        for (header, ended) in [("|", "line1\nline2\n"), ("|+", "line1\nline2\n"), ("|-", "line1\nline2")] {
            for anchor in ["", "&a "] {
                let text = format!("config: {anchor}{header}\n  line1\n  line2");
                assert_eq!(from_str(&text).unwrap().unwrap(), json!({"config": "line1\nline2"}), "{text:?}");
                let text = format!("{text}\n");
                assert_eq!(from_str(&text).unwrap().unwrap(), json!({"config": ended}), "{text:?}");
            }
        }
    }
    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        let err =
            std::thread::Builder::new().stack_size(2 << 20).spawn(move || from_str(&deep)).unwrap().join().unwrap();
        assert!(err.is_err());
    }

    /// Block collections nested by indentation, read on a thread with a render thread's stack
    /// (2 MiB; a debug build's frames overflowed it at 255 levels): as deep as the parser
    /// allows they are read, deeper they are an error, never a crash.
    #[test]
    fn deep_block_nesting_is_read_or_an_error_not_a_crash() {
        let maps = |depth: usize| (0..depth).map(|i| format!("{}a:\n", " ".repeat(i))).collect::<String>();
        let sequences = |depth: usize| format!("{}x\n", "- ".repeat(depth));
        for (text, read) in [(maps(250), true), (maps(5000), false), (sequences(250), true), (sequences(5000), false)] {
            let outcome = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || from_str(&text).map(|_| ()))
                .unwrap()
                .join()
                .unwrap();
            assert_eq!(outcome.is_ok(), read, "{outcome:?}");
        }
    }

    #[test]
    fn a_billion_laughs_is_an_error() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in
            ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            text.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 10].join(", ")));
        }
        assert_eq!(from_str(&text).unwrap_err().message, "document contains excessive aliasing");
    }

    #[test]
    fn long_comment_blocks_are_skipped() {
        let text = format!("a:\n{}  b: 1\n", "  # commented-out example\n".repeat(500));
        assert_eq!(from_str(&text).unwrap().unwrap(), json!({"a": {"b": 1}}));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let values = from_str("base: &b {x: 1, z: 2}\nderived:\n  <<: *b\n  z: 3\n").unwrap().unwrap();
        assert_eq!(values["derived"], json!({"x": 1, "z": 3}));
        let tagged = from_str("base: &b {x: 1}\nderived:\n  !!merge <<: *b\n  w: 2\n").unwrap().unwrap();
        assert_eq!(tagged["derived"], json!({"x": 1, "w": 2}));
        // YAML 1.1: `y` and `n` are booleans, even as keys.
        assert_eq!(from_str("y: 1\nn: 2\n").unwrap().unwrap(), json!({"true": 1, "false": 2}));
    }

    #[test]
    fn emits_like_go_yaml_v2() {
        assert_eq!(yaml(json!({"b": [1, "two", {"c": null}], "a": {}})), "a: {}\nb:\n- 1\n- two\n- c: null\n");
        assert_eq!(
            yaml(json!({"s": ["true", "", "1:20", "a: b", " x", "#c", "x #c", "é"]})),
            "s:\n- \"true\"\n- \"\"\n- \"1:20\"\n- 'a: b'\n- ' x'\n- '#c'\n- 'x #c'\n- é\n"
        );
        assert_eq!(
            yaml(json!({"m": "line1\nline2\n", "nn": "x\n\n", "o": "a\tb", "y": 1, "p": [[1, 2]]})),
            "m: |\n  line1\n  line2\nnn: |+\n  x\n\no: \"a\\tb\"\np:\n- - 1\n  - 2\n\"y\": 1\n"
        );
        assert_eq!(yaml(json!({"a10": 1, "a9": 2, "a_": 3, "aB": 4})), "a_: 3\na9: 2\na10: 1\naB: 4\n");
        assert_eq!(yaml(json!(1.5e20)), "1.5e+20\n");
        // Dates and times read back as timestamps, so they are quoted; what time.Parse refuses is not.
        assert_eq!(
            yaml(json!([
                "2020-09-07",
                "2020-9-7",
                "2020-09-07T10:00:00Z",
                "2020-09-07t10:00:00.5+02:00",
                "2020-09-07 10:00:00"
            ])),
            "- \"2020-09-07\"\n- \"2020-9-7\"\n- \"2020-09-07T10:00:00Z\"\n- \"2020-09-07t10:00:00.5+02:00\"\n- \"2020-09-07 10:00:00\"\n"
        );
        assert_eq!(
            yaml(json!(["2020-09", "2020-09-07x", "2020-13-45", "2021-02-29"])),
            "- 2020-09\n- 2020-09-07x\n- 2020-13-45\n- 2021-02-29\n"
        );
        assert_eq!(yaml(json!(3.0)), "3\n");
    }

    /// go-yaml quotes the words it would read as booleans or nulls, as it spells them; v3's
    /// encoder quotes YAML 1.1's booleans too, which it reads as strings.
    #[test]
    fn words_are_quoted_as_go_yaml_spells_them() {
        let words = json!(["yes", "Off", "y", "N", "True", "Null", "yEs", "nULL", "tRUE"]);
        let expected = "- \"yes\"\n- \"Off\"\n- \"y\"\n- \"N\"\n- \"True\"\n- \"Null\"\n- yEs\n- nULL\n- tRUE\n";
        assert_eq!(yaml(words.clone()), expected);
        assert_eq!(to_string_v3(&Node::from_json(&words)), expected);
    }

    /// The hand-written reader says yes to what go-yaml's layouts, written as a pattern, match
    /// (the calendar and clock checks aside, which both share).
    #[test]
    fn timestamps_are_read_as_the_layout_pattern_reads_them() {
        let pattern = regex::Regex::new(
            r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})| [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?)?$",
        )
        .unwrap();
        let date = ["2020-1-2", "2020-01-02", "202-01-02", "2020-001-02", "2020-01", "2020-01-2x"];
        let clock = ["", "T1:2:3", "t10:20:30", " 10:20:30", "T10:20", " 1:2:3.", "T1:2:3.45", " 1:2:3.45", "T1:2:345"];
        let zone = ["", "Z", "+02:00", "-2:00", "+02:0", "z", "+0200", " "];
        for d in date {
            for c in clock {
                for z in zone {
                    let case = format!("{d}{c}{z}");
                    assert_eq!(is_timestamp(&case), pattern.is_match(&case), "{case:?}");
                }
            }
        }
    }

    #[test]
    fn long_plain_strings_fold_after_column_80() {
        let words = "word ".repeat(20);
        let out = yaml(json!({ "k": words.trim_end() }));
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.lines().nth(1).unwrap().starts_with("  word"), "{out}");
    }

    #[test]
    fn under_indented_quoted_continuations_read_as_go_yaml_reads_them() {
        // As a CRD generator writes long descriptions, and a template writes a quoted value.
        let crd =
            "properties:\n  kind:\n    description: 'Kind is a string\n    value: it''s folded.'\n    type: string\n";
        assert_eq!(
            documents(crd).unwrap(),
            [
                serde_json::json!({"properties": {"kind": {"description": "Kind is a string value: it's folded.", "type": "string"}}})
            ]
        );
        let env = "env:\n  - name: OPTS\n    value: \"\n    -Da=b \\\"c\\\"\n      \"\n  - name: B\n    value: x\n";
        let value = from_str(env).unwrap().unwrap();
        assert_eq!(value["env"][0]["value"], " -Da=b \"c\" ");
        assert_eq!(value["env"][1]["value"], "x");
        // Anything else under-indented is still an error, with its line.
        let error = documents("a:\n  b: 'x\n").unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
    }
}
