//! The admin's own Tera templates (`templates/admin/`), embedded in the binary. Every value is
//! computed in Rust and passed in the context (URLs, labels, cells); the templates only lay it
//! out, autoescaped with Django's `escape`.

use serde::Serialize;
use tera::{Context, Tera};

use crate::django::html;

const TEMPLATES: [(&str, &str); 9] = [
    (
        "admin/base.html",
        include_str!("../../templates/admin/base.html"),
    ),
    (
        "admin/login.html",
        include_str!("../../templates/admin/login.html"),
    ),
    (
        "admin/index.html",
        include_str!("../../templates/admin/index.html"),
    ),
    (
        "admin/logged_out.html",
        include_str!("../../templates/admin/logged_out.html"),
    ),
    (
        "admin/change_list.html",
        include_str!("../../templates/admin/change_list.html"),
    ),
    (
        "admin/delete_confirmation.html",
        include_str!("../../templates/admin/delete_confirmation.html"),
    ),
    (
        "admin/change_form.html",
        include_str!("../../templates/admin/change_form.html"),
    ),
    (
        "admin/object_history.html",
        include_str!("../../templates/admin/object_history.html"),
    ),
    (
        "admin/password_form.html",
        include_str!("../../templates/admin/password_form.html"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum AdminTemplateError {
    #[error("invalid admin templates: {0}")]
    Invalid(#[source] tera::Error),
    #[error("rendering {name}: {source}")]
    Render {
        name: &'static str,
        #[source]
        source: tera::Error,
    },
}

pub struct AdminTemplates {
    tera: Tera,
}

impl AdminTemplates {
    pub fn load() -> Result<AdminTemplates, AdminTemplateError> {
        let mut tera = Tera::new();
        tera.set_escape_fn(html::write_escaped);
        tera.autoescape_on([".html"]);
        tera.add_raw_templates(TEMPLATES)
            .map_err(AdminTemplateError::Invalid)?;
        Ok(AdminTemplates { tera })
    }

    pub fn render(
        &self,
        name: &'static str,
        context: &impl Serialize,
    ) -> Result<String, AdminTemplateError> {
        let render = |source| AdminTemplateError::Render { name, source };
        let context = Context::from_serialize(context).map_err(render)?;
        self.tera.render(name, &context).map_err(render)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_templates_compile() {
        super::AdminTemplates::load().expect("admin templates");
    }
}
