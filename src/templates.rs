//! Release-note templates: built into the binary from `templates/`, overridable per repository
//! from `.mrel/templates/`, rendered by minijinja in a sandbox that reads only its context.

use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};

use crate::report::{format_change, format_json_value};

/// Folder, relative to the repository root, whose files replace the built-in templates.
pub const OVERRIDE_DIR: &str = ".mrel/templates";

/// Instruction budget of one rendering, so that a template that loops without end stops with an
/// error. It is far above what the built-in templates use for thousands of rows.
const FUEL: u64 = 50_000_000;

const BUILT_IN: &[(&str, &str)] = &[
    ("notes.md.j2", include_str!("../templates/notes.md.j2")),
    (
        "changelog.md.j2",
        include_str!("../templates/changelog.md.j2"),
    ),
    ("card.md.j2", include_str!("../templates/card.md.j2")),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template {name}{}: {message}", line.map(|line| format!(", line {line}")).unwrap_or_default())]
    Render {
        name: String,
        line: Option<usize>,
        message: String,
    },
}

/// The templates of one repository.
pub struct Templates {
    env: Environment<'static>,
    /// Origin of each template (built-in or override), for messages.
    sources: Vec<(String, String)>,
}

impl Templates {
    /// Loads the built-in templates and any overrides under `root/.mrel/templates/`.
    pub fn load(root: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        // Debug mode keeps the template source and the name of an undefined variable in errors,
        // in release builds too, so that messages can quote the failing expression.
        env.set_debug(true);
        // Block tags on lines of their own leave no blank lines behind, as in Ansible and Salt.
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the syntax settings are valid");
        env.set_syntax(syntax);
        env.add_filter("value", |value: Value| format_json_value(&to_json(&value)));
        env.add_filter("change", |row: Value| {
            let field = |name: &str| {
                row.get_attr(name)
                    .ok()
                    .and_then(|value| f64::try_from(value).ok())
            };
            format_change(field("change"), field("relative"))
        });
        env.add_filter("shift_headings", |text: &str, levels: u32| {
            shift_headings(text, levels)
        });

        let mut sources = Vec::new();
        for (name, built_in) in BUILT_IN {
            let override_path = root.map(|root| root.join(OVERRIDE_DIR).join(name));
            let (source, origin) = match override_path.filter(|path| path.is_file()) {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                            path: path.clone(),
                            source,
                        })?;
                    (text, format!("{OVERRIDE_DIR}/{name}"))
                }
                None => ((*built_in).to_owned(), format!("built-in {name}")),
            };
            env.add_template_owned(*name, source)
                .map_err(|error| render_error(&origin, &error))?;
            sources.push(((*name).to_owned(), origin));
        }
        Ok(Templates { env, sources })
    }

    /// Checks that every top-level variable that the template `name` reads is a key of
    /// `context`, so that a release fails before hours of training rather than after. Names the
    /// template defines itself (loop variables, `set`) do not count.
    pub fn check_variables(
        &self,
        name: &str,
        context: &impl serde::Serialize,
    ) -> Result<(), TemplateError> {
        let origin = self
            .sources
            .iter()
            .find(|(known, _)| known == name)
            .map_or_else(|| name.to_owned(), |(_, origin)| origin.clone());
        let template = self
            .env
            .get_template(name)
            .map_err(|error| render_error(&origin, &error))?;
        let context = serde_json::to_value(context).unwrap_or(serde_json::Value::Null);
        let mut unknown: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|variable| {
                context.get(variable).is_none()
                    && self
                        .env
                        .globals()
                        .all(|(global, _)| global != variable.as_str())
            })
            .collect();
        unknown.sort();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(TemplateError::Render {
            name: origin,
            line: None,
            message: format!(
                "undefined variable{} {}; see the documented template context",
                if unknown.len() == 1 { "" } else { "s" },
                unknown
                    .iter()
                    .map(|variable| format!("`{variable}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// Renders the template `name` with `context`.
    pub fn render(
        &self,
        name: &str,
        context: &impl serde::Serialize,
    ) -> Result<String, TemplateError> {
        let origin = self
            .sources
            .iter()
            .find(|(known, _)| known == name)
            .map_or_else(|| name.to_owned(), |(_, origin)| origin.clone());
        let template = self
            .env
            .get_template(name)
            .map_err(|error| render_error(&origin, &error))?;
        let context = serde_json::to_value(context).map_err(|error| TemplateError::Render {
            name: origin.clone(),
            line: None,
            message: format!("the context cannot be converted: {error}"),
        })?;
        template.render(template_value(&context)).map_err(|error| {
            // The failure can sit in another template that this one includes.
            let error = innermost(&error);
            let failed_in = error
                .name()
                .and_then(|failed| self.sources.iter().find(|(known, _)| known == failed))
                .map_or(origin.as_str(), |(_, failed_origin)| failed_origin.as_str());
            render_error(failed_in, error)
        })
    }
}

fn render_error(origin: &str, error: &minijinja::Error) -> TemplateError {
    let place = failing_tag(error)
        .map(|tag| format!(" in `{tag}`"))
        .unwrap_or_default();
    let message = match error.kind() {
        ErrorKind::UndefinedError => format!(
            "{}{place}; see the documented template context",
            error.detail().unwrap_or("undefined variable or attribute")
        ),
        ErrorKind::OutOfFuel => {
            "the template ran too long (an endless loop?) and was stopped".to_owned()
        }
        _ => match error.detail() {
            Some(detail) => format!("{}{place}: {detail}", error.kind()),
            None => format!("{}{place}", error.kind()),
        },
    };
    TemplateError::Render {
        name: origin.to_owned(),
        line: error.line(),
        message,
    }
}

/// Follows the chain of causes to the innermost template error, which names the template and
/// line where rendering failed when one template includes another.
fn innermost(error: &minijinja::Error) -> &minijinja::Error {
    let mut current = error;
    while let Some(inner) = std::error::Error::source(current)
        .and_then(|source| source.downcast_ref::<minijinja::Error>())
    {
        current = inner;
    }
    current
}

/// Maximum length of a template tag quoted in an error message, in characters.
const MAX_QUOTED_TAG: usize = 120;

/// Quotes the `{{ … }}` or `{% … %}` tag around the failing part of the template, because the tag
/// names the variable and the filters applied to it. Whitespace runs become one space.
fn failing_tag(error: &minijinja::Error) -> Option<String> {
    let source = error.template_source()?;
    let range = error.range()?;
    let bytes = source.as_bytes();
    // The delimiters are ASCII, so these byte offsets are always character boundaries.
    let is_open =
        |at: usize| bytes.get(at) == Some(&b'{') && matches!(bytes.get(at + 1), Some(b'{' | b'%'));
    let is_close =
        |at: usize| matches!(bytes.get(at), Some(b'}' | b'%')) && bytes.get(at + 1) == Some(&b'}');
    let open = (0..=range.start.min(bytes.len()))
        .rev()
        .find(|at| is_open(*at))?;
    let close = (range.start.max(open + 2)..bytes.len()).find(|at| is_close(*at))?;
    let tag = source[open..close + 2]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some(if tag.chars().count() > MAX_QUOTED_TAG {
        let head: String = tag.chars().take(MAX_QUOTED_TAG).collect();
        format!("{head}…")
    } else {
        tag
    })
}

/// Deepest markdown heading level, where a shifted heading stops.
const MAX_HEADING_LEVEL: usize = 6;

/// Moves every markdown ATX heading (`# Title`) of `text` down by `levels`, so that notes
/// rendered on their own can sit under a heading of a larger document. Lines inside fenced code
/// blocks stay as they are.
pub fn shift_headings(text: &str, levels: u32) -> String {
    let levels = usize::try_from(levels).unwrap_or(MAX_HEADING_LEVEL);
    let mut fence: Option<&str> = None;
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        let indented = line.trim_start_matches(' ');
        let indent = line.len() - indented.len();
        let marker = ["```", "~~~"]
            .into_iter()
            .find(|marker| indented.starts_with(marker));
        match (fence, marker) {
            (None, Some(marker)) if indent <= 3 => fence = Some(marker),
            (Some(open), Some(marker)) if open == marker => fence = None,
            _ => {}
        }
        let hashes = indented.bytes().take_while(|byte| *byte == b'#').count();
        let rest = &indented[hashes..];
        let is_heading = fence.is_none()
            && marker.is_none()
            && indent <= 3
            && (1..=MAX_HEADING_LEVEL).contains(&hashes)
            && (rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r']));
        if is_heading {
            let level = (hashes + levels).min(MAX_HEADING_LEVEL);
            out.push_str(&line[..indent]);
            out.push_str(&"#".repeat(level));
            out.push_str(rest);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Converts JSON to a template value. Going through serde would turn exact numbers into
/// serde_json's internal representation, so numbers become integers or floats here.
fn template_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(value) => Value::from(*value),
        serde_json::Value::Number(number) => match (number.as_i64(), number.as_u64()) {
            (Some(value), _) => Value::from(value),
            (None, Some(value)) => Value::from(value),
            _ => Value::from(number.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(text) => Value::from(text.as_str()),
        serde_json::Value::Array(items) => {
            items.iter().map(template_value).collect::<Vec<_>>().into()
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(key, value)| (key.clone(), template_value(value)))
                .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    }
}

/// Converts a template value back to JSON for the formatting filters.
fn to_json(value: &Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_override(name: &str, text: &str) -> (tempfile::TempDir, Templates) {
        let root = tempfile::tempdir().expect("temp folder");
        let folder = root.path().join(OVERRIDE_DIR);
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join(name), text).expect("write");
        let templates = Templates::load(Some(root.path())).expect("templates load");
        (root, templates)
    }

    #[test]
    fn override_replaces_built_in() {
        let (_root, templates) = with_override("notes.md.j2", "custom {{ model }}");
        let text = templates
            .render("notes.md.j2", &serde_json::json!({"model": "m"}))
            .expect("render");
        assert_eq!(text, "custom m");
    }

    #[test]
    fn undefined_variable_is_error() {
        let (_root, templates) = with_override("notes.md.j2", "line one\n{{ missing }}");
        let error = templates
            .render("notes.md.j2", &serde_json::json!({}))
            .expect_err("undefined");
        let message = error.to_string();
        assert!(
            message.contains(".mrel/templates/notes.md.j2, line 2"),
            "{message}"
        );
        assert!(message.contains("undefined"), "{message}");
    }

    #[test]
    fn endless_loop_is_stopped() {
        let text = "{% for i in range(20000) %}{% for j in range(20000) %}{% endfor %}{% endfor %}";
        let (_root, templates) = with_override("notes.md.j2", text);
        let error = templates
            .render("notes.md.j2", &serde_json::json!({}))
            .expect_err("out of fuel");
        assert!(error.to_string().contains("ran too long"), "{error}");
    }

    #[test]
    fn undefined_variable_is_quoted() {
        let (_root, templates) = with_override("card.md.j2", "# {{ model }}\n{{ dataset.size }}");
        let error = templates
            .render(
                "card.md.j2",
                &serde_json::json!({"model": "m", "dataset": {}}),
            )
            .expect_err("undefined");
        assert_eq!(
            error.to_string(),
            "template .mrel/templates/card.md.j2, line 2: `dataset.size` is undefined in \
             `{{ dataset.size }}`; see the documented template context"
        );
    }

    #[test]
    fn syntax_error_names_line() {
        let root = tempfile::tempdir().expect("temp folder");
        let folder = root.path().join(OVERRIDE_DIR);
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join("changelog.md.j2"), "# Log\n\n{% for m in %}\n").expect("write");
        let error = Templates::load(Some(root.path()))
            .err()
            .expect("a syntax error fails loading");
        let message = error.to_string();
        assert!(
            message.starts_with("template .mrel/templates/changelog.md.j2, line 3: syntax error"),
            "{message}"
        );
        assert!(message.contains("`{% for m in %}`"), "{message}");
    }

    #[test]
    fn failing_filter_quotes_expression() {
        let (_root, templates) = with_override("notes.md.j2", "{{ model }}\n{{ version | int }}");
        let error = templates
            .render(
                "notes.md.j2",
                &serde_json::json!({"model": "m", "version": "1.0.0"}),
            )
            .expect_err("int of a version fails");
        let message = error.to_string();
        assert!(
            message.starts_with("template .mrel/templates/notes.md.j2, line 2:"),
            "{message}"
        );
        assert!(message.contains("`{{ version | int }}`"), "{message}");
    }

    #[test]
    fn included_template_error_names_it() {
        let (_root, templates) = with_override("changelog.md.j2", "{% include \"notes.md.j2\" %}");
        let error = templates
            .render("changelog.md.j2", &serde_json::json!({"models": []}))
            .expect_err("notes need their context");
        assert!(
            error
                .to_string()
                .starts_with("template built-in notes.md.j2, line 1:"),
            "{error}"
        );
    }

    #[test]
    fn headings_shift_outside_code() {
        let text = "# Title\n\n## Metrics\n```\n# comment\n```\n#hashtag\n###### Deep\n";
        assert_eq!(
            shift_headings(text, 2),
            "### Title\n\n#### Metrics\n```\n# comment\n```\n#hashtag\n###### Deep\n"
        );
    }
}
