//! pest's parse errors, said in words: "expected `;`, found `end`".

use std::collections::BTreeSet;
use std::sync::Arc;

use pest::error::{ErrorVariant, InputLocation};

use super::parser::Rule;
use crate::diagnostic::{Diagnostic, ErrorKind};
use crate::source::{SourceFile, Span};

/// What one grammar rule stands for in a message, or `None` for rules that
/// only group others.
fn describe_rule(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::semicolon => "`;`",
        Rule::comma => "`,`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::rbracket => "`]`",
        Rule::colon => "`:`",
        Rule::question => "`?`",
        Rule::kw_and => "`and`",
        Rule::kw_by => "`by`",
        Rule::kw_elif => "`elif`",
        Rule::kw_else => "`else`",
        Rule::kw_end => "`end`",
        Rule::kw_entry => "`entry`",
        Rule::kw_exitif => "`exitif`",
        Rule::kw_external => "`external`",
        Rule::kw_for => "`for`",
        Rule::kw_forward => "`forward`",
        Rule::kw_function => "`function`",
        Rule::kw_if => "`if`",
        Rule::kw_is => "`is`",
        Rule::kw_loop => "`loop`",
        Rule::kw_procedure => "`procedure`",
        Rule::kw_return => "`return`",
        Rule::kw_stop => "`stop`",
        Rule::kw_then => "`then`",
        Rule::kw_var => "`var`",
        Rule::kw_while => "`while`",
        Rule::name | Rule::qname | Rule::key_name => "a name",
        Rule::assign_op => "`=`",
        Rule::expr
        | Rule::ternary
        | Rule::binary
        | Rule::postfix_expr
        | Rule::number
        | Rule::string
        | Rule::null_lit
        | Rule::true_lit
        | Rule::false_lit
        | Rule::spawn_expr
        | Rule::paren_expr
        | Rule::op_neg
        | Rule::op_pos
        | Rule::op_not => "an expression",
        Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_mod
        | Rule::op_lt
        | Rule::op_le
        | Rule::op_gt
        | Rule::op_ge
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_and
        | Rule::op_or
        | Rule::op_xor => "an operator",
        Rule::call_args => "`(`",
        Rule::index => "`[`",
        Rule::key | Rule::method_call | Rule::computed_key => "`.`",
        Rule::entry | Rule::procedure | Rule::function | Rule::top_var => {
            "`entry`, `procedure`, `function` or `var`"
        }
        Rule::EOI => "the end of the file",
        Rule::statement
        | Rule::empty_stmt
        | Rule::null_stmt
        | Rule::var_decl
        | Rule::if_stmt
        | Rule::loop_stmt
        | Rule::while_stmt
        | Rule::for_stmt
        | Rule::exitif_stmt
        | Rule::return_stmt
        | Rule::stop_stmt
        | Rule::simple_stmt
        | Rule::block => "a statement",
        _ => return None,
    })
}

/// The literal tokens pest reports (shown through `Display`, since pest does
/// not export their type), for the ones no named rule covers.
fn describe_token(token: String) -> Option<String> {
    let token = token.to_ascii_lowercase();
    // `_` is only looked at to tell where a name ends.
    if token == "builtin_rule" || token == "_" || (token.len() == 4 && token.get(1..3) == Some("..")) {
        return None;
    }
    match token.as_str() {
        // Tokens that start an expression or belong to operators are
        // summarised by the rules above.
        "+" | "-" | "*" | "/" | "%" | "<" | "<=" | ">" | ">=" | "==" | "!=" | "&" | "|" | "^" | "!"
        | "and" | "or" | "xor" | "not" | "\"" | "." | "[" | "::" => None,
        "+=" | "-=" | "*=" | "/=" | "%=" => Some("`=`".into()),
        _ => Some(format!("`{token}`")),
    }
}

/// A syntax error from pest, with `offset` added to its positions (for
/// sections parsed on their own).
pub(super) fn syntax_error(
    file: &Arc<SourceFile>,
    error: &pest::error::Error<Rule>,
    offset: usize,
) -> Diagnostic {
    let position = offset
        + match error.location {
            InputLocation::Pos(position) => position,
            InputLocation::Span((start, _)) => start,
        };
    let mut expected: BTreeSet<&'static str> = BTreeSet::new();
    let mut extra: BTreeSet<String> = BTreeSet::new();
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        expected.extend(positives.iter().filter_map(|rule| describe_rule(*rule)));
    }
    if let Some(attempts) = error.parse_attempts() {
        extra.extend(
            attempts
                .expected_tokens()
                .iter()
                .filter_map(|token| describe_token(token.to_string())),
        );
    }
    let mut words: Vec<String> = expected.iter().map(|word| word.to_string()).collect();
    for word in extra {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    let words = summarise(words);
    let text = file.text();
    let found = describe_found(text, position);
    if let Some((message, help)) = special_case(text, position, &words) {
        let span = Span::new(position, found_end(text, position));
        let diagnostic = Diagnostic::new(ErrorKind::Syntax, file, span, message);
        return match help {
            Some(help) => diagnostic.with_help(help),
            None => diagnostic,
        };
    }
    let message = if words.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(&words))
    };
    let (span, label) = match missing_after_previous_line(text, position, &words) {
        Some(previous_end) => (
            Span::new(previous_end.saturating_sub(1), previous_end),
            format!("expected {} after this", join_or(&words)),
        ),
        None if words.is_empty() => (
            Span::new(position, found_end(text, position)),
            "unexpected".to_string(),
        ),
        None => (
            Span::new(position, found_end(text, position)),
            format!("expected {}", join_or(&words)),
        ),
    };
    let mut diagnostic = Diagnostic::new(ErrorKind::Syntax, file, span, message).with_label(label);
    if let Some(help) = hint(&words, text, position) {
        diagnostic = diagnostic.with_help(help);
    }
    diagnostic
}

/// Folds the raw list of expected tokens into what a person would say:
/// "a statement" rather than every keyword that can start one, "`;`" rather
/// than `;` and every operator that could have continued the expression.
fn summarise(mut words: Vec<String>) -> Vec<String> {
    const EXPRESSION_STARTS: &[&str] = &["`(`", "`false`", "`true`", "`null`", "`spawn`", "a name"];
    const STATEMENT_STARTS: &[&str] = &[
        "`if`", "`loop`", "`for`", "`while`", "`var`", "`return`", "`stop`", "`exitif`", "`{`", "`;`",
    ];
    const CONTINUATIONS: &[&str] = &[
        "`(`",
        "`.`",
        "`[`",
        "`?`",
        "`and`",
        "`or`",
        "`xor`",
        "an operator",
    ];
    // White space and comments can go anywhere; naming them helps nobody.
    words.retain(|word| {
        let inner = word.trim_matches('`');
        let blank = inner.chars().all(|c| c.is_whitespace() || c == '\u{feff}');
        !(blank || inner == "/*" || inner == "//")
    });
    let has = |words: &Vec<String>, word: &str| words.iter().any(|w| w == word);
    let statement_position = ["`exitif`", "`return`", "`stop`"]
        .iter()
        .any(|word| has(&words, word));
    if statement_position {
        words.retain(|word| {
            !STATEMENT_STARTS.contains(&word.as_str())
                && !EXPRESSION_STARTS.contains(&word.as_str())
                && word != "an expression"
        });
        words.insert(0, "a statement".into());
    } else if has(&words, "an expression") {
        words.retain(|word| !EXPRESSION_STARTS.contains(&word.as_str()) || word == "a name");
        if has(&words, "a name") {
            words.retain(|word| word != "a name");
        }
    }
    let has_terminator = words
        .iter()
        .any(|word| !CONTINUATIONS.contains(&word.as_str()) && word != "an expression");
    if has_terminator {
        words.retain(|word| !CONTINUATIONS.contains(&word.as_str()));
    }
    words.sort_by_key(|word| (!word.starts_with('`'), word.len() > 4, word.clone()));
    words.dedup();
    words
}

fn join_or(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// When a `;` (or another closer) is missing at the end of a line, the parser
/// only notices on the next line; rustc-style, point at the end of the line
/// where it is missing. Returns that offset.
fn missing_after_previous_line(text: &str, position: usize, words: &[String]) -> Option<usize> {
    if !words
        .iter()
        .any(|word| word == "`;`" || word == "`)`" || word == "`then`")
    {
        return None;
    }
    let before = text.get(..position)?;
    let trimmed = before.trim_end();
    if trimmed.is_empty() || !before[trimmed.len()..].contains('\n') {
        return None;
    }
    Some(trimmed.len())
}

/// The token at `position`, for "found …".
fn describe_found(text: &str, position: usize) -> String {
    let rest = text.get(position..).unwrap_or("");
    let Some(first) = rest.chars().next() else {
        return "the end of the file".into();
    };
    if first.is_ascii_alphanumeric() || first == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        format!("`{word}`")
    } else if first == '"' {
        "a string".into()
    } else if first == '\n' || first == '\r' {
        "the end of the line".into()
    } else {
        format!("`{first}`")
    }
}

fn found_end(text: &str, position: usize) -> usize {
    let rest = text.get(position..).unwrap_or("");
    match rest.chars().next() {
        None => position,
        Some(first) if first.is_ascii_alphanumeric() || first == '_' => {
            position
                + rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len())
        }
        Some(first) => position + first.len_utf8(),
    }
}

/// The word (letters, digits, `_`) that ends just before `position`,
/// skipping white space.
fn word_before(text: &str, position: usize) -> String {
    let before = text.get(..position).unwrap_or("").trim_end();
    let word: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    word.chars().rev().collect::<String>().to_ascii_lowercase()
}

const KEYWORDS: &[&str] = &[
    "and",
    "by",
    "elif",
    "else",
    "end",
    "entry",
    "exitif",
    "external",
    "false",
    "for",
    "forward",
    "function",
    "if",
    "is",
    "loop",
    "not",
    "null",
    "or",
    "procedure",
    "return",
    "spawn",
    "stop",
    "then",
    "true",
    "var",
    "while",
    "xor",
];

/// Mistakes that deserve their own message rather than "expected …".
fn special_case(text: &str, position: usize, words: &[String]) -> Option<(String, Option<String>)> {
    let rest = text.get(position..).unwrap_or("");
    let next = rest.chars().next()?;
    let valid_punctuation = "\"()[]{};,.:?+-*/%<>=!&|^";
    if !(next.is_ascii_alphanumeric()
        || next == '_'
        || next.is_whitespace()
        || valid_punctuation.contains(next))
    {
        let help = match next {
            '$' => "variables are plain names: write `x`, not `$x`",
            '\'' => "strings are written in double quotes",
            '#' => "`#` starts no comment here: comments are `// …` and `/* … */`",
            _ => "this character has no meaning outside strings and comments",
        };
        return Some((format!("invalid character `{next}`"), Some(help.into())));
    }
    let previous = word_before(text, position);
    let has = |word: &str| words.iter().any(|w| w == word);
    if next == '=' && !rest.starts_with("==") && KEYWORDS.contains(&previous.as_str()) {
        return Some((
            format!("`{previous}` is a keyword and cannot name a variable"),
            Some("choose another name".into()),
        ));
    }
    if next == '=' && !rest.starts_with("==") && (has("`then`") || has("`{`") || has("`)`") || has("`loop`"))
    {
        return Some((
            "`=` assigns; a condition compares".into(),
            Some("to compare, write `==`".into()),
        ));
    }
    if rest.starts_with('+') && text.get(..position).is_some_and(|before| before.ends_with('+')) {
        return Some(("there is no `++` operator".into(), Some("write `x += 1;`".into())));
    }
    if rest.starts_with('-')
        && text.get(..position).is_some_and(|before| before.ends_with('-'))
        && has("an expression")
    {
        return Some(("there is no `--` operator".into(), Some("write `x -= 1;`".into())));
    }
    if (next == '&' || next == '|') && text.get(..position).is_some_and(|before| before.ends_with(next)) {
        let word = if next == '&' { "and" } else { "or" };
        return Some((
            format!("there is no `{next}{next}` operator"),
            Some(format!("write `{word}` (or a single `{next}`)")),
        ));
    }
    if previous == "goto" {
        return Some((
            "there is no `goto`".into(),
            Some("use `loop … end loop;` with `exitif`, or a procedure".into()),
        ));
    }
    let operator = "+-*/%<>!&|^".contains(next);
    if operator && has("`;`") && has("`=`") {
        return Some((
            "an expression alone is not a statement".into(),
            Some("a statement is an assignment (`x = …;`) or a procedure call (`P(…);`)".into()),
        ));
    }
    None
}

/// Advice for the common mistakes.
fn hint(words: &[String], text: &str, position: usize) -> Option<String> {
    let has = |word: &str| words.iter().any(|w| w == word);
    let found = text.get(position..).unwrap_or("");
    let found_word = found
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if has("`;`") && !found.is_empty() {
        return Some("every statement and declaration ends with `;`".into());
    }
    if has("`then`") && has("`{`") {
        return Some("write `if condition then … end if;` or `if (condition) { … }`".into());
    }
    if has("`loop`") {
        return Some("write `while condition loop … end loop;` or `while (condition) { … }`".into());
    }
    if has("`end`") && found.is_empty() {
        return Some("a section, `if` or `loop` is not closed".into());
    }
    if found_word == "else" || found_word == "elif" {
        return Some("`elif` and `else` follow the statements of an `if` branch".into());
    }
    if has("`is`") && has("`{`") {
        return Some("a section's body is `is … end;` or `{ … }`".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::word_before;

    #[test]
    fn word_before_handles_text_that_is_not_ascii() {
        // Found by fuzzing: a comment in Russian ending right before an error.
        let text = "// привет мир\n  x = 1;";
        assert_eq!(word_before(text, text.find('x').unwrap()), "");
        let text = "// é\nabc def";
        assert_eq!(word_before(text, text.find("def").unwrap()), "abc");
    }
}
