//! Output of data: number formatting and tables in text (aligned columns) and markdown.

use crate::metrics::float_text;

/// Significant digits used for numbers in text and markdown output.
pub const DEFAULT_PRECISION: usize = 5;

/// The output format of commands that print data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// Formats a number with `precision` significant digits, switching to exponent notation for
/// very small and very large magnitudes so that `1.48e-05` never prints as `0`.
pub fn format_number(value: f64, precision: usize) -> String {
    if !value.is_finite() {
        return float_text(value);
    }
    if value == 0.0 {
        return "0".into();
    }
    let precision = precision.max(1);
    let exponent = value.abs().log10().floor() as i32;
    if exponent < -4 || exponent > precision as i32 {
        let text = format!("{:.*e}", precision - 1, value);
        let (mantissa, power) = text.split_once('e').unwrap_or((&text, "0"));
        let power: i32 = power.parse().unwrap_or(0);
        let sign = if power < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim_zeros(mantissa), power.abs());
    }
    let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_owned()
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// Formats a JSON value from a record or a context: numbers with the default precision
/// (integers as written), strings bare, absent values as an em dash.
pub fn format_json_value(value: &serde_json::Value) -> String {
    format_json_value_with(value, DEFAULT_PRECISION)
}

/// [`format_json_value`] with a chosen precision.
pub fn format_json_value_with(value: &serde_json::Value, precision: usize) -> String {
    match value {
        serde_json::Value::Null => "—".into(),
        serde_json::Value::Number(number) => {
            let text = number.to_string();
            if text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || byte == b'-')
            {
                text
            } else {
                number
                    .as_f64()
                    .map_or(text, |value| format_number(value, precision))
            }
        }
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Formats a change as `+0.071 (+15.8%)`; empty when there is no numeric change.
pub fn format_change(change: Option<f64>, relative: Option<f64>) -> String {
    format_change_with(change, relative, DEFAULT_PRECISION)
}

/// [`format_change`] with a chosen precision.
pub fn format_change_with(change: Option<f64>, relative: Option<f64>, precision: usize) -> String {
    let Some(change) = change else {
        return String::new();
    };
    let sign = if change > 0.0 { "+" } else { "" };
    let mut text = format!("{sign}{}", format_number(change, precision));
    if let Some(relative) = relative {
        let percent = relative * 100.0;
        let sign = if percent > 0.0 { "+" } else { "" };
        // Three significant digits read well for a share, but a change of thousands of percent
        // keeps its whole integer part rather than turning into exponent notation.
        let shown = if percent.is_finite() && percent.abs() >= 1000.0 {
            format!("{percent:.0}")
        } else {
            format_number(percent, 3)
        };
        text.push_str(&format!(" ({sign}{shown}%)"));
    }
    text
}

/// A table of strings, rendered as aligned text or as a GitHub markdown table.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Columns aligned right in both formats (numbers).
    pub right_aligned: Vec<usize>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|cell| (*cell).to_owned()).collect(),
            rows: Vec::new(),
            right_aligned: Vec::new(),
        }
    }

    pub fn align_right(mut self, columns: &[usize]) -> Table {
        self.right_aligned = columns.to_vec();
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Aligned columns separated by two spaces, without trailing spaces.
    pub fn to_text(&self) -> String {
        let widths = self.widths();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (index, cell) in row.iter().enumerate() {
                if index > 0 {
                    line.push_str("  ");
                }
                let pad = widths[index].saturating_sub(cell.chars().count());
                if self.right_aligned.contains(&index) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Renders a GitHub table followed by a blank line, so that text after it never joins the table.
    pub fn to_markdown(&self) -> String {
        let escape = |cell: &str| cell.replace('|', "\\|").replace('\n', " ");
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|cell| escape(cell)).collect();
        out.push_str(&format!("| {} |\n", header.join(" | ")));
        let rule: Vec<&str> = (0..self.header.len())
            .map(|index| {
                if self.right_aligned.contains(&index) {
                    "---:"
                } else {
                    "---"
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|cell| escape(cell)).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out.push('\n');
        out
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self
            .header
            .iter()
            .map(|cell| cell.chars().count())
            .collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate() {
                if index < widths.len() {
                    widths[index] = widths[index].max(cell.chars().count());
                }
            }
        }
        widths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_significant_digits() {
        let cases = [
            (0.531234567, "0.53123"),
            (52.66251, "52.663"),
            (1.48e-05, "1.48e-05"),
            (2000.0, "2000"),
            (-0.25, "-0.25"),
            (1.0e12, "1e+12"),
            (0.0, "0"),
            (f64::NAN, "NaN"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_number(value, 5), expected, "value {value}");
        }
    }

    #[test]
    fn change_shows_sign_and_percent() {
        assert_eq!(format_change(Some(0.071), Some(0.158)), "+0.071 (+15.8%)");
        assert_eq!(format_change(Some(-2.5), None), "-2.5");
        assert_eq!(format_change(None, None), "");
        assert_eq!(
            format_change(Some(1999.0), Some(1999.0)),
            "+1999 (+199900%)"
        );
    }

    #[test]
    fn text_table_aligns_columns() {
        let mut table = Table::new(&["name", "value"]).align_right(&[1]);
        table.push(vec!["a".into(), "1".into()]);
        table.push(vec!["long name".into(), "22".into()]);
        assert_eq!(
            table.to_text(),
            "name       value\na              1\nlong name     22\n"
        );
    }

    #[test]
    fn markdown_table_ends_with_blank_line() {
        let mut table = Table::new(&["a"]);
        table.push(vec!["x|y".into()]);
        assert_eq!(table.to_markdown(), "| a |\n| --- |\n| x\\|y |\n\n");
    }
}
