//! Email templates: per notification type a subject, a plain-text and an HTML template
//! (`{type}.subject.j2`, `{type}.txt.j2`, `{type}.html.j2`, the type in lowercase, e.g.
//! `order_update.html.j2`), built in from `templates/`. A file of the same name in the
//! `templates_dir` setting replaces the built-in one, layouts included.

use std::path::{Component, Path, PathBuf};

use minijinja::{AutoEscape, Environment, Error, ErrorKind};
use serde::Serialize;

use crate::domain::NotificationType;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        /// The built-in template called `name`.
        fn builtin(name: &str) -> Option<&'static str> {
            match name {
                $($name => Some(include_str!(concat!("../../templates/", $name))),)*
                _ => None,
            }
        }
    };
}

builtin!(
    "layout.html.j2",
    "layout.txt.j2",
    "order_update.subject.j2",
    "order_update.txt.j2",
    "order_update.html.j2",
    "promotion.subject.j2",
    "promotion.txt.j2",
    "promotion.html.j2",
    "recommendation.subject.j2",
    "recommendation.txt.j2",
    "recommendation.html.j2",
    "inventory.subject.j2",
    "inventory.txt.j2",
    "inventory.html.j2",
    "security.subject.j2",
    "security.txt.j2",
    "security.html.j2",
);

/// What a template can use.
#[derive(Debug, Clone, Serialize)]
pub struct EmailContext<'a> {
    /// The recipient's name.
    pub name: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    /// The notification type's contract name, e.g. `ORDER_UPDATE`.
    pub notification_type: &'a str,
    pub data: Option<&'a serde_json::Value>,
    /// None for SECURITY email, which cannot be switched off. In HTML write
    /// `{{ unsubscribe_url|href }}`.
    pub unsubscribe_url: Option<&'a str>,
    pub public_url: &'a str,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug)]
pub struct EmailTemplates {
    env: Environment<'static>,
}

impl EmailTemplates {
    /// The built-in templates, each replaced by `{overrides}/{name}` where that file exists.
    pub fn new(overrides: Option<PathBuf>) -> EmailTemplates {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.j2") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.add_filter("href", href);
        env.set_loader(move |name| load(overrides.as_deref(), name));
        EmailTemplates { env }
    }

    pub fn render(
        &self,
        notification_type: NotificationType,
        context: &EmailContext<'_>,
    ) -> Result<RenderedEmail, Error> {
        let stem = notification_type.as_str().to_ascii_lowercase();
        let context = minijinja::Value::from(minijinja::value::Serde(context));
        let render = |kind: &str| {
            self.env
                .get_template(&format!("{stem}.{kind}.j2"))?
                .render(&context)
        };
        let subject = render("subject")?;
        Ok(RenderedEmail {
            // A header is one line.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: render("txt")?,
            html: render("html")?,
        })
    }
}

/// `{{ url|href }}`: a URL for an HTML attribute, escaped but keeping its slashes readable
/// (the default escaping writes `/` as `&#x2f;`).
fn href(url: &str) -> minijinja::Value {
    let mut escaped = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    minijinja::Value::from_safe_string(escaped)
}

fn load(overrides: Option<&Path>, name: &str) -> Result<Option<String>, Error> {
    if let Some(dir) = overrides {
        // Names come from templates (`{% extends %}`): never outside the folder.
        let inside = Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        let path = dir.join(name);
        if inside && path.is_file() {
            return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("reading {}: {e}", path.display()),
                )
            });
        }
    }
    Ok(builtin(name).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context<'a>(
        notification_type: NotificationType,
        unsubscribe_url: Option<&'a str>,
        data: Option<&'a serde_json::Value>,
    ) -> EmailContext<'a> {
        EmailContext {
            name: "Ada <Lovelace>",
            title: "Espresso Beans is back in stock",
            body: "You are watching Espresso Beans: it can be ordered again.",
            notification_type: notification_type.as_str(),
            data,
            unsubscribe_url,
            public_url: "http://localhost:4000",
        }
    }

    #[test]
    fn every_type_has_a_subject_a_text_and_an_html_part_with_the_name() {
        let templates = EmailTemplates::new(None);
        let link = "http://localhost:4000/unsubscribe?token=abc";
        for t in NotificationType::ALL
            .into_iter()
            .filter(|t| *t != NotificationType::Security)
        {
            let email = templates
                .render(t, &context(t, Some(link), None))
                .unwrap_or_else(|e| panic!("{t:?}: {e:#}"));
            assert_eq!(email.subject, "Espresso Beans is back in stock", "{t:?}");
            assert!(
                email.text.contains("Hello Ada <Lovelace>,"),
                "{t:?}: {}",
                email.text
            );
            assert!(email.text.contains("it can be ordered again"), "{t:?}");
            assert!(email.text.contains(link), "{t:?}: {}", email.text);
            // HTML escapes what it is given.
            assert!(
                email.html.contains("Hello Ada &lt;Lovelace&gt;,"),
                "{t:?}: {}",
                email.html
            );
            assert!(email.html.contains("<!doctype html>"), "{t:?}");
            assert!(
                email.html.contains(&format!("href=\"{link}\"")),
                "{t:?}: {}",
                email.html
            );
        }
    }

    #[test]
    fn urls_in_html_attributes_are_escaped_and_stay_readable() {
        assert_eq!(
            href("http://h/u?token=a&x=\"<>'").to_string(),
            "http://h/u?token=a&amp;x=&quot;&lt;&gt;&#39;"
        );
    }

    #[test]
    fn without_an_unsubscribe_link_none_is_offered() {
        let templates = EmailTemplates::new(None);
        let t = NotificationType::Security;
        let email = templates.render(t, &context(t, None, None)).unwrap();
        assert!(
            email.text.contains("Hello Ada <Lovelace>,"),
            "{}",
            email.text
        );
        assert!(
            email.html.contains("Hello Ada &lt;Lovelace&gt;,"),
            "{}",
            email.html
        );
        assert!(
            !email.text.to_lowercase().contains("unsubscribe"),
            "{}",
            email.text
        );
        assert!(
            !email.html.to_lowercase().contains("unsubscribe"),
            "{}",
            email.html
        );
    }

    /// An account email with a link (a password reset) offers it as a button in HTML; one
    /// without (a welcome) has none.
    #[test]
    fn an_account_link_is_a_button_in_html() {
        let templates = EmailTemplates::new(None);
        let t = NotificationType::Security;
        let data = json!({ "link": "http://localhost:4000/reset-password?token=a&b" });
        let email = templates.render(t, &context(t, None, Some(&data))).unwrap();
        assert!(
            email.html.contains(
                "<a href=\"http://localhost:4000/reset-password?token=a&amp;b\" style=\"display:inline-block;"
            ),
            "{}",
            email.html
        );
        assert!(
            email.html.contains(">Espresso Beans is back in stock</a>"),
            "{}",
            email.html
        );
        assert!(!email.text.contains("<a "), "{}", email.text);
        let plain = templates.render(t, &context(t, None, None)).unwrap();
        assert!(!plain.html.contains("<a href"), "{}", plain.html);
    }

    #[test]
    fn a_file_in_the_templates_dir_replaces_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("promotion.subject.j2"),
            "Deal for {{ name }}: {{ title }} ({{ data.code }})",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("layout.txt.j2"),
            "Hi {{ name }}!\n{% block content %}{% endblock %}",
        )
        .unwrap();
        let templates = EmailTemplates::new(Some(dir.path().to_owned()));
        let t = NotificationType::Promotion;
        let data = json!({ "code": "BEANS10" });
        let email = templates.render(t, &context(t, None, Some(&data))).unwrap();
        assert_eq!(
            email.subject,
            "Deal for Ada <Lovelace>: Espresso Beans is back in stock (BEANS10)"
        );
        assert!(
            email.text.starts_with("Hi Ada <Lovelace>!"),
            "{}",
            email.text
        );
        // The others stay built in.
        assert!(email.html.contains("Hello Ada &lt;Lovelace&gt;,"));
        let other = templates
            .render(
                NotificationType::Inventory,
                &context(NotificationType::Inventory, None, None),
            )
            .unwrap();
        assert_eq!(other.subject, "Espresso Beans is back in stock");
    }

    #[test]
    fn a_broken_override_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inventory.txt.j2"), "{% if %}").unwrap();
        let templates = EmailTemplates::new(Some(dir.path().to_owned()));
        let t = NotificationType::Inventory;
        assert!(templates.render(t, &context(t, None, None)).is_err());
    }
}
