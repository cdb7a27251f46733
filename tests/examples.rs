//! The CI examples in examples/ci/ cannot rot: every weaver command in their scripts must
//! parse with the current command line (clap, without running anything).

use std::path::Path;

use clap::Parser;
use serde_json::Value;
use weaver::cli::Cli;

/// The shell scripts of a CI file: GitHub's `run`, GitLab's `script`, `before_script` and
/// `after_script` (a string or a list of strings).
fn scripts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let is_script = ["run", "script", "before_script", "after_script"].contains(&key.as_str());
                match value {
                    Value::String(text) if is_script => out.push(text.clone()),
                    Value::Array(lines) if is_script => {
                        out.extend(lines.iter().filter_map(Value::as_str).map(String::from));
                    }
                    _ => scripts(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| scripts(item, out)),
        _ => {}
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    /// A word, quotes removed; one that expands a variable is a placeholder value.
    Word(String),
    /// Ends a simple command: newline, `;`, `|`, `||`, `&&`, `&`, `(`, `)`, `$(`.
    Separator,
    /// `>`, `>>`, `<`, `2>`: the next word is a file, not an argument.
    Redirect,
}

/// Enough of the shell's word splitting for CI scripts: quotes, `\` line continuations,
/// comments, operators and redirections. GitHub's `${{ … }}` and `$VAR` are placeholders.
fn tokens(script: &str) -> Vec<Token> {
    let mut text = script.replace("\\\n", " ");
    while let Some(start) = text.find("${{") {
        let end = text[start..].find("}}").map_or(text.len(), |e| start + e + 2);
        text.replace_range(start..end, "$GITHUB_EXPRESSION");
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut word, mut in_word, mut expands) = (String::new(), false, false);
    let mut i = 0;
    let end_word = |word: &mut String, in_word: &mut bool, expands: &mut bool, out: &mut Vec<Token>| {
        if *in_word {
            out.push(Token::Word(if *expands { "PLACEHOLDER".into() } else { std::mem::take(word) }));
        }
        word.clear();
        (*in_word, *expands) = (false, false);
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' => {
                let end = chars[i + 1..].iter().position(|&c| c == '\'').expect("closed quote") + i + 1;
                word.extend(&chars[i + 1..end]);
                in_word = true;
                i = end;
            }
            '"' => {
                let end = chars[i + 1..].iter().position(|&c| c == '"').expect("closed quote") + i + 1;
                let quoted: String = chars[i + 1..end].iter().collect();
                expands |= quoted.contains('$');
                word.push_str(&quoted);
                in_word = true;
                i = end;
            }
            '#' if !in_word => {
                i = chars[i..].iter().position(|&c| c == '\n').map_or(chars.len(), |p| i + p) - 1;
            }
            ' ' | '\t' => end_word(&mut word, &mut in_word, &mut expands, &mut out),
            '\n' | ';' | '|' | '&' | '(' | ')' => {
                end_word(&mut word, &mut in_word, &mut expands, &mut out);
                out.push(Token::Separator);
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                end_word(&mut word, &mut in_word, &mut expands, &mut out);
                out.push(Token::Separator);
                i += 1;
            }
            '>' | '<' => {
                // `2>` is a redirection of stderr, not the word 2.
                if word == "2" && !expands {
                    (word, in_word) = (String::new(), false);
                }
                end_word(&mut word, &mut in_word, &mut expands, &mut out);
                if chars.get(i + 1) == Some(&c) {
                    i += 1;
                }
                out.push(Token::Redirect);
            }
            '$' => {
                expands = true;
                in_word = true;
                word.push(c);
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    end_word(&mut word, &mut in_word, &mut expands, &mut out);
    out
}

/// The arguments of every `weaver` command in a script.
fn weaver_commands(script: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut redirected = false;
    let mut tokens = tokens(script);
    tokens.push(Token::Separator);
    for token in tokens {
        match token {
            Token::Word(_) if redirected => redirected = false,
            Token::Word(word) => words.push(word),
            Token::Redirect => redirected = true,
            Token::Separator => {
                let keywords = ["if", "then", "else", "elif", "do", "while", "until", "!", "time", "{", "}"];
                let start = words.iter().position(|w| !keywords.contains(&w.as_str())).unwrap_or(words.len());
                if words.get(start).is_some_and(|w| w == "weaver") {
                    commands.push(words[start + 1..].to_vec());
                }
                words.clear();
            }
        }
    }
    commands
}

/// Every weaver command of `file`, each checked with clap; returns them joined by spaces.
fn check_example(file: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut found = Vec::new();
    for document in weaver::yaml::documents(&path, &text).unwrap() {
        scripts(&document, &mut found);
    }
    let commands: Vec<Vec<String>> = found.iter().flat_map(|s| weaver_commands(s)).collect();
    let mut failures = Vec::new();
    for args in &commands {
        if let Err(err) = Cli::try_parse_from(std::iter::once("weaver".to_string()).chain(args.iter().cloned())) {
            failures.push(format!("weaver {}\n{}", args.join(" "), err.render()));
        }
    }
    assert!(failures.is_empty(), "{file}: commands the current CLI rejects:\n\n{}", failures.join("\n"));
    commands.iter().map(|args| args.join(" ")).collect()
}

/// What each example must do: plan as Markdown, apply with --changed-since, drift as JUnit.
fn assert_covers_the_pipeline(file: &str, commands: &[String]) {
    let has = |parts: &[&str]| commands.iter().any(|c| parts.iter().all(|p| c.contains(p)));
    assert!(has(&["changed", "--base PLACEHOLDER", "-o json"]), "{file}: {commands:#?}");
    assert!(has(&["diff", "--changed-since PLACEHOLDER", "-o markdown"]), "{file}: {commands:#?}");
    assert!(has(&["diff", "-o html"]), "{file}: {commands:#?}");
    assert!(has(&["apply", "--rev HEAD", "--changed-since PLACEHOLDER"]), "{file}: {commands:#?}");
    assert!(has(&["drift", "-o junit"]), "{file}: {commands:#?}");
    assert!(has(&["drift", "-o html"]), "{file}: {commands:#?}");
}

#[test]
fn the_github_actions_example_parses_with_the_current_cli() {
    let commands = check_example("github-actions.yml");
    assert_covers_the_pipeline("github-actions.yml", &commands);
}

#[test]
fn the_gitlab_ci_example_parses_with_the_current_cli() {
    let commands = check_example("gitlab-ci.yml");
    assert_covers_the_pipeline("gitlab-ci.yml", &commands);
}

#[test]
fn scripts_are_split_into_commands_as_the_shell_would() {
    let script = "# weaver render --env commented-out\n\
                  if weaver changed --base \"$BASE\" -o json | jq -e '.x == []' > /dev/null; then\n  \
                  weaver diff --env ${{ matrix.env }} \\\n    -o markdown > \"plan-$env.md\" 2> err.txt\n\
                  fi\nfor env in $(weaver envs -o json | jq -r .x); do echo weaver; done\n\
                  curl -d 'weaver apply' x && weaver drift --env 'a b' || true";
    assert_eq!(
        weaver_commands(script),
        [
            vec!["changed", "--base", "PLACEHOLDER", "-o", "json"],
            vec!["diff", "--env", "PLACEHOLDER", "-o", "markdown"],
            vec!["envs", "-o", "json"],
            vec!["drift", "--env", "a b"],
        ]
    );
}
