//! Operator precedence and associativity (CGPL.md §0.4): expressions parse
//! the same as their fully parenthesised forms, both for a table of
//! hand-picked cases and for random expression trees printed with only the
//! parentheses precedence requires.

use std::sync::Arc;

use pbx_lang::syntax::ast::{Expr, ExprKind, UnaryOp};
use pbx_lang::syntax::parse_expression;
use pbx_lang::SourceFile;
use proptest::prelude::*;

/// The tree of an expression as a fully parenthesised string, spans ignored.
fn shape(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Null => "null".into(),
        ExprKind::True => "true".into(),
        ExprKind::False => "false".into(),
        ExprKind::Number(number) => number.to_string(),
        ExprKind::String(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
        ExprKind::Var(name) => name.folded.to_string(),
        ExprKind::Unary(op, operand) => {
            let op = match op {
                UnaryOp::Neg => "-",
                UnaryOp::Plus => "+",
                UnaryOp::Not => "!",
            };
            format!("({op}{})", shape(operand))
        }
        ExprKind::Binary(op, left, right) => format!("({} {} {})", shape(left), op.symbol(), shape(right)),
        ExprKind::Ternary(condition, then, otherwise) => {
            format!("({} ? {} : {})", shape(condition), shape(then), shape(otherwise))
        }
        ExprKind::Call { name, args, .. } => {
            let args: Vec<String> = args.iter().map(shape).collect();
            format!("{}({})", name.display().to_ascii_lowercase(), args.join(", "))
        }
        ExprKind::Index(object, index) => format!("{}[{}]", shape(object), shape(index)),
        ExprKind::Key(object, key) => format!("{}.{key}", shape(object)),
        ExprKind::ComputedKey(object, key) => format!("{}.({})", shape(object), shape(key)),
        ExprKind::Spawn { entry, args } => {
            let args: Vec<String> = args.iter().map(shape).collect();
            format!("spawn {}({})", entry.folded, args.join(", "))
        }
    }
}

fn parse(text: &str) -> String {
    let file = Arc::new(SourceFile::new("expr", text));
    match parse_expression(&file) {
        Ok(expr) => shape(&expr),
        Err(errors) => panic!("{text}: {}", errors[0].message),
    }
}

#[test]
fn hand_picked_cases_match_their_parenthesised_forms() {
    let cases = [
        ("a + b * c", "a + (b * c)"),
        ("a * b + c", "(a * b) + c"),
        ("a - b - c", "(a - b) - c"),
        ("a / b * c % d", "((a / b) * c) % d"),
        ("-1 + -2", "(-1) + (-2)"),
        ("- a * b", "(-a) * b"),
        ("!a == b", "(!a) == b"),
        ("not a and b", "(not a) and b"),
        ("a < b + 1", "a < (b + 1)"),
        ("a == b < c", "(a == b) < c"),
        ("a < b and c > d", "(a < b) and (c > d)"),
        ("a and b or c", "(a and b) or c"),
        ("a or b and c", "(a or b) and c"),
        ("a & b | c ^ d", "((a & b) | c) ^ d"),
        ("a xor b and c", "(a xor b) and c"),
        ("a ? b : c ? d : e", "a ? b : (c ? d : e)"),
        ("a or b ? c : d", "(a or b) ? c : d"),
        ("a ? b + 1 : c * 2", "a ? (b + 1) : (c * 2)"),
        ("-x[1]", "-(x[1])"),
        ("-f(a).k", "-((f(a)).k)"),
        ("a + b.c * d[e]", "a + ((b.c) * (d[e]))"),
        ("x.f(a) + 1", "(f(x, a)) + 1"),
        ("- - a", "-(-a)"),
        ("!!a", "!(!a)"),
        ("a <= b != c >= d", "((a <= b) != c) >= d"),
    ];
    for (written, parenthesised) in cases {
        assert_eq!(
            parse(written),
            parse(parenthesised),
            "{written} vs {parenthesised}"
        );
    }
}

/// A random expression tree over a few operators of every level.
#[derive(Clone, Debug)]
enum Tree {
    Leaf(String),
    Unary(&'static str, Box<Tree>),
    Binary(&'static str, Box<Tree>, Box<Tree>),
    Ternary(Box<Tree>, Box<Tree>, Box<Tree>),
}

/// Binding strength of a written operator, higher binds tighter.
fn level(op: &str) -> u8 {
    match op {
        "*" | "/" | "%" => 5,
        "+" | "-" => 4,
        "<" | "<=" | ">" | ">=" | "==" | "!=" => 3,
        _ => 2,
    }
}

const TERNARY: u8 = 1;
const UNARY: u8 = 6;

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        "[a-e]".prop_map(Tree::Leaf),
        (0u32..100).prop_map(|n| Tree::Leaf(n.to_string()))
    ];
    leaf.prop_recursive(5, 40, 3, |inner| {
        let ops = prop_oneof![
            Just("*"),
            Just("/"),
            Just("%"),
            Just("+"),
            Just("-"),
            Just("<"),
            Just("=="),
            Just(">="),
            Just("and"),
            Just("or"),
            Just("xor"),
            Just("&"),
            Just("|"),
        ];
        prop_oneof![
            (prop_oneof![Just("-"), Just("!"), Just("not ")], inner.clone())
                .prop_map(|(op, operand)| Tree::Unary(op, Box::new(operand))),
            (ops, inner.clone(), inner.clone()).prop_map(|(op, left, right)| Tree::Binary(
                op,
                Box::new(left),
                Box::new(right)
            )),
            (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| Tree::Ternary(
                Box::new(a),
                Box::new(b),
                Box::new(c)
            )),
        ]
    })
}

/// Prints with every operation in parentheses.
fn full(tree: &Tree) -> String {
    match tree {
        Tree::Leaf(text) => text.clone(),
        Tree::Unary(op, operand) => format!("({op}{})", full(operand)),
        Tree::Binary(op, left, right) => format!("({} {op} {})", full(left), full(right)),
        Tree::Ternary(a, b, c) => format!("({} ? {} : {})", full(a), full(b), full(c)),
    }
}

/// Prints with only the parentheses that precedence and associativity need,
/// in a context that binds with strength `context`.
fn minimal(tree: &Tree, context: u8) -> String {
    let (text, strength) = match tree {
        Tree::Leaf(text) => return text.clone(),
        Tree::Unary(op, operand) => (format!("{op}{}", minimal(operand, UNARY)), UNARY),
        Tree::Binary(op, left, right) => {
            let strength = level(op);
            // Left-associative: the right operand needs parentheses at the
            // same level, the left one does not.
            (
                format!(
                    "{} {op} {}",
                    minimal(left, strength),
                    minimal(right, strength + 1)
                ),
                strength,
            )
        }
        Tree::Ternary(a, b, c) => (
            // Right-associative: only the condition needs them at this level.
            format!(
                "{} ? {} : {}",
                minimal(a, TERNARY + 1),
                minimal(b, TERNARY),
                minimal(c, TERNARY)
            ),
            TERNARY,
        ),
    };
    if strength < context {
        format!("({text})")
    } else {
        text
    }
}

proptest! {
    #[test]
    fn random_trees_parse_as_built(tree in tree()) {
        let fully = parse(&full(&tree));
        let sparing = parse(&minimal(&tree, 0));
        prop_assert_eq!(&sparing, &fully, "{}", minimal(&tree, 0));
    }
}
