//! A YAML tree that keeps the line and column of every node, so that errors in release files and
//! metrics files can point at the exact place. JSON files load through the same path, because
//! JSON is YAML's flow style.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in a source file, both numbers starting at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    fn from_marker(marker: Marker) -> Self {
        Position {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.line, self.column)
    }
}

/// A YAML scalar as written, with the style that decides how it resolves.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub quoted: bool,
}

impl Scalar {
    /// Resolves a plain scalar by the YAML 1.2 core schema; quoted and block scalars are strings.
    pub fn resolve(&self) -> Resolved<'_> {
        if self.quoted {
            return Resolved::String(&self.text);
        }
        let text = self.text.as_str();
        match text {
            "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
            "true" | "True" | "TRUE" => return Resolved::Bool(true),
            "false" | "False" | "FALSE" => return Resolved::Bool(false),
            ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Resolved::Float(f64::INFINITY);
            }
            "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
            _ => {}
        }
        if is_integer(text) {
            return Resolved::Integer(text);
        }
        if is_float(text)
            && let Ok(value) = text.parse::<f64>()
        {
            return Resolved::Float(value);
        }
        Resolved::String(text)
    }
}

/// The value a scalar resolves to. Integers keep their digits, so that numbers beyond 64 bits
/// survive unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Integer(&'a str),
    Float(f64),
    String(&'a str),
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
}

fn is_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let mantissa_ok = {
        let mut parts = mantissa.splitn(2, '.');
        let whole = parts.next().unwrap_or("");
        let fraction = parts.next();
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        match fraction {
            Some(fraction) => {
                all_digits(whole)
                    && all_digits(fraction)
                    && !(whole.is_empty() && fraction.is_empty())
            }
            None => !whole.is_empty() && all_digits(whole),
        }
    };
    let exponent_ok = exponent.is_none_or(|exponent| {
        let digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

/// A node of the tree with the position where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub position: Position,
}

/// A mapping entry: the key's text and position, then the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_position: Position,
    pub value: Node,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Sequence(Vec<Node>),
    /// Entries in the order of the file; keys are unique.
    Mapping(Vec<Entry>),
}

impl Node {
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Scalar(scalar) => match scalar.resolve() {
                Resolved::Null => "null",
                Resolved::Bool(_) => "a boolean",
                Resolved::Integer(_) | Resolved::Float(_) => "a number",
                Resolved::String(_) => "a string",
            },
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

/// A syntax error, a duplicate key or an unsupported construct, with its position.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{position}: {message}")]
pub struct SyntaxError {
    pub position: Position,
    pub message: String,
}

/// A key that appears twice in one mapping; the tree keeps the first value.
#[derive(Clone, Debug, PartialEq)]
pub struct DuplicateKey {
    /// Dotted path of the key, such as `train.command`.
    pub field: String,
    pub position: Position,
    pub first_line: usize,
}

/// Parses one YAML document, where a duplicate key is an error. An empty document is `None`.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let (root, duplicates) = parse_keeping_first(text)?;
    match duplicates.into_iter().next() {
        Some(duplicate) => Err(SyntaxError {
            position: duplicate.position,
            message: format!(
                "duplicate key `{}` (first defined at line {})",
                duplicate.field, duplicate.first_line
            ),
        }),
        None => Ok(root),
    }
}

/// Parses one YAML document and lists every duplicate key, so that a caller can report them
/// beside the other problems of the same document.
pub fn parse_keeping_first(text: &str) -> Result<(Option<Node>, Vec<DuplicateKey>), SyntaxError> {
    let mut builder = TreeBuilder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, false)
        .map_err(|error| SyntaxError {
            position: Position::from_marker(*error.marker()),
            message: error.info().to_string(),
        })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    Ok((builder.root, builder.duplicates))
}

enum Open {
    Sequence {
        anchor: usize,
        position: Position,
        items: Vec<Node>,
    },
    Mapping {
        anchor: usize,
        position: Position,
        entries: Vec<Entry>,
        pending_key: Option<(String, Position)>,
    },
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<SyntaxError>,
    duplicates: Vec<DuplicateKey>,
}

impl TreeBuilder {
    fn fail(&mut self, position: Position, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { position, message });
        }
    }

    /// Dotted path of the mapping being filled, from the keys and indexes of the open nodes.
    fn open_path(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for open in &self.stack[..self.stack.len().saturating_sub(1)] {
            match open {
                Open::Mapping {
                    pending_key: Some((key, _)),
                    ..
                } => parts.push(key.clone()),
                Open::Sequence { items, .. } => {
                    let index = format!("[{}]", items.len());
                    match parts.last_mut() {
                        Some(last) => last.push_str(&index),
                        None => parts.push(index),
                    }
                }
                Open::Mapping { .. } => {}
            }
        }
        parts.join(".")
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let parent_path = self.open_path();
        let mut non_scalar_key = None;
        let mut duplicate = None;
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Sequence { items, .. }) => items.push(node),
            Some(Open::Mapping {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => match node.value {
                    Value::Scalar(scalar) => *pending_key = Some((scalar.text, node.position)),
                    _ => non_scalar_key = Some(node.position),
                },
                Some((key, key_position)) => match entries.iter().find(|entry| entry.key == key) {
                    Some(first) => {
                        let field = if parent_path.is_empty() {
                            key
                        } else {
                            format!("{parent_path}.{key}")
                        };
                        duplicate = Some(DuplicateKey {
                            field,
                            position: key_position,
                            first_line: first.key_position.line,
                        });
                    }
                    None => entries.push(Entry {
                        key,
                        key_position,
                        value: node,
                    }),
                },
            },
        }
        if let Some(position) = non_scalar_key {
            self.fail(position, "a mapping key must be a scalar".into());
        }
        if let Some(duplicate) = duplicate {
            self.duplicates.push(duplicate);
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        let position = Position::from_marker(marker);
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = style != TScalarStyle::Plain;
                let node = Node {
                    value: Value::Scalar(Scalar { text, quoted }),
                    position,
                };
                self.finish(node, anchor);
            }
            Event::SequenceStart(anchor, _tag) => self.stack.push(Open::Sequence {
                anchor,
                position,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _tag) => self.stack.push(Open::Mapping {
                anchor,
                position,
                entries: Vec::new(),
                pending_key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Open::Sequence {
                        anchor,
                        position,
                        items,
                    }) => (
                        Node {
                            value: Value::Sequence(items),
                            position,
                        },
                        anchor,
                    ),
                    Some(Open::Mapping {
                        anchor,
                        position,
                        entries,
                        ..
                    }) => (
                        Node {
                            value: Value::Mapping(entries),
                            position,
                        },
                        anchor,
                    ),
                    None => return,
                };
                self.finish(node, anchor);
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor).cloned() {
                Some(mut node) => {
                    node.position = position;
                    self.finish(node, 0);
                }
                None => self.fail(position, "alias to an unknown anchor".into()),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).expect("valid YAML").expect("a document")
    }

    #[test]
    fn mapping_keeps_positions() {
        let node = root("a: 1\nb:\n  c: x\n");
        let Value::Mapping(entries) = node.value else {
            panic!("expected a mapping")
        };
        assert_eq!(entries[1].key, "b");
        assert_eq!(entries[1].key_position, Position { line: 2, column: 1 });
        let Value::Mapping(inner) = &entries[1].value.value else {
            panic!("expected a nested mapping")
        };
        assert_eq!(inner[0].value.position, Position { line: 3, column: 6 });
    }

    #[test]
    fn duplicate_key_is_error() {
        let error = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate key");
        assert_eq!(error.position, Position { line: 3, column: 1 });
        assert!(
            error.message.contains("duplicate key `a`"),
            "{}",
            error.message
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let error = parse("a: [1, 2\n").expect_err("unclosed list");
        assert_eq!(error.position.line, 2);
    }

    #[test]
    fn scalars_resolve_by_core_schema() {
        let cases = [
            ("1.2.0", Resolved::String("1.2.0")),
            ("12", Resolved::Integer("12")),
            ("-3", Resolved::Integer("-3")),
            ("true", Resolved::Bool(true)),
            ("~", Resolved::Null),
            ("1e3", Resolved::Float(1000.0)),
            (".5", Resolved::Float(0.5)),
            ("1.", Resolved::Float(1.0)),
            ("abc", Resolved::String("abc")),
        ];
        for (text, expected) in cases {
            let scalar = Scalar {
                text: text.into(),
                quoted: false,
            };
            assert_eq!(scalar.resolve(), expected, "scalar {text}");
        }
    }

    #[test]
    fn quoted_number_is_string() {
        let scalar = Scalar {
            text: "12".into(),
            quoted: true,
        };
        assert_eq!(scalar.resolve(), Resolved::String("12"));
    }

    #[test]
    fn alias_copies_anchor() {
        let node = root("a: &x {b: 1}\nc: *x\n");
        let Value::Mapping(entries) = node.value else {
            panic!("expected a mapping")
        };
        assert_eq!(entries[0].value.value, entries[1].value.value);
    }
}
