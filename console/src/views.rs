//! Server-side templates (minijinja). Every value is HTML-escaped on output; the only
//! pre-rendered HTML a template takes is a search snippet, which the index escapes itself
//! and marks matches in with `<b>`.

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("alerts.html", include_str!("../templates/alerts.html")),
    ("alert.html", include_str!("../templates/alert.html")),
    ("search.html", include_str!("../templates/search.html")),
    ("page.html", include_str!("../templates/page.html")),
    ("coverage.html", include_str!("../templates/coverage.html")),
    ("users.html", include_str!("../templates/users.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    ("message.html", include_str!("../templates/message.html")),
];

/// The style sheet, served from the console's own origin.
pub const STYLE: &str = include_str!("../static/style.css");

pub struct Views {
    env: Environment<'static>,
}

impl Views {
    pub fn new() -> Views {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_formatter(|out, state, value| {
            match value.as_str().filter(|s| s.chars().any(is_bidi_control)) {
                Some(s) => {
                    let shown = reveal_bidi(s);
                    let v = if value.is_safe() {
                        minijinja::Value::from_safe_string(shown)
                    } else {
                        minijinja::Value::from(shown)
                    };
                    minijinja::escape_formatter(out, state, &v)
                }
                None => minijinja::escape_formatter(out, state, value),
            }
        });
        for (name, src) in TEMPLATES {
            // The templates are part of the binary; one that does not parse is a bug the
            // tests catch.
            env.add_template(name, src)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        Views { env }
    }

    pub fn render(&self, name: &str, ctx: impl Serialize) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// Characters that reorder the text around them: a label or URL carrying one could show
/// `gnp.exe` as `exe.png`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `s` with every bidi control shown as its code point (`[U+202E]`), so crawled text is
/// read in the order it was written.
fn reveal_bidi(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_bidi_control(c) {
            out.push_str(&format!("[U+{:04X}]", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

impl Default for Views {
    fn default() -> Self {
        Views::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let v = Views::new();
        let html = v
            .render(
                "message.html",
                minijinja::context! {
                    title => "<script>alert(1)</script>",
                    message => "\"><img src=x onerror=alert(1)>",
                    viewer => minijinja::Value::from(()),
                    csrf => "",
                },
            )
            .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn bidi_controls_are_shown_not_obeyed() {
        let v = Views::new();
        let ctx = |m: &str| {
            minijinja::context! { title => "t", message => m, viewer => minijinja::Value::from(()), csrf => "" }
        };
        let html = v
            .render("message.html", ctx("photo\u{202E}gnp.exe<b>"))
            .unwrap();
        assert!(html.contains("photo[U+202E]gnp.exe&lt;b&gt;"), "{html}");
        assert!(!html.contains('\u{202E}'));
    }
}
