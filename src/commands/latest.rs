//! `mrel latest`: the greatest active version of a model, for scripts.

use crate::commands::{CommandError, Global, print};
use crate::report::Format;

pub struct Args {
    pub model: String,
    pub format: Format,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let registry = global.load_registry(&repo)?;
    let Some((version, event)) = registry.latest(&args.model) else {
        return Err(CommandError::invalid(format!(
            "model `{}` has no active release",
            args.model
        )));
    };
    let deprecated = registry.is_deprecated(&args.model);
    if deprecated {
        global.warn(&format!("model `{}` is deprecated", args.model));
    }
    match args.format {
        Format::Json => {
            let output = serde_json::json!({
                "model": args.model,
                "version": version.to_string(),
                "tag": event.tag,
                "commit": event.commit.to_string(),
                "deprecated": deprecated,
            });
            print(&serde_json::to_string_pretty(&output).expect("JSON output always serializes"));
        }
        Format::Text | Format::Markdown => print(&version.to_string()),
    }
    Ok(())
}
