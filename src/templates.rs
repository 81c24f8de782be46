//! Release-note templates: built into the binary from `templates/`, overridable per repository
//! from `.mrel/templates/`, rendered by minijinja in a sandbox that reads only its context.

use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};

use crate::report::{format_change, format_json_value};

/// Folder, relative to the repository root, whose files replace the built-in templates.
pub const OVERRIDE_DIR: &str = ".mrel/templates";

/// Instruction budget of one rendering, so that a template that loops without end stops with an
/// error; it is far above what the built-in templates use for thousands of rows.
const FUEL: u64 = 50_000_000;

const BUILT_IN: &[(&str, &str)] = &[("notes.md.j2", include_str!("../templates/notes.md.j2"))];

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
        template
            .render(template_value(&context))
            .map_err(|error| render_error(&origin, &error))
    }
}

fn render_error(origin: &str, error: &minijinja::Error) -> TemplateError {
    let message = match error.kind() {
        ErrorKind::UndefinedError => format!(
            "undefined variable or attribute{}; see the documented template context",
            error
                .detail()
                .map(|detail| format!(" ({detail})"))
                .unwrap_or_default()
        ),
        ErrorKind::OutOfFuel => {
            "the template ran too long (an endless loop?) and was stopped".to_owned()
        }
        _ => error.detail().map_or_else(
            || error.kind().to_string(),
            |detail| format!("{}: {detail}", error.kind()),
        ),
    };
    TemplateError::Render {
        name: origin.to_owned(),
        line: error.line(),
        message,
    }
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
}
