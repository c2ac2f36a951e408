//! `ModelAdmin.changelist_view` and `ChangeList` (`django/contrib/admin/views/main.py`): search,
//! filters, sorting by column, pages of 100, and the "Delete selected" action.

use salvo::http::Method;
use salvo::prelude::*;
use serde::Serialize;

use crate::db::dynamic::{Cell, Kind, Sql};
use crate::db::users::prep_for_like_query;
use crate::db::{Db, DbError};
use crate::web::errors::not_found;

use super::delete::{self, Plan};
use super::effects;
use super::log::{self, DELETION, capfirst, format_datetime};
use super::models::{self, Display, Filter, ModelAdmin};
use super::request::{
    AdminResult, Chrome, SUCCESS, Staff, WARNING, add_message, finish, forbidden, form_list,
    form_value, redirect, render, staff,
};

/// `ModelAdmin.list_per_page`.
const PER_PAGE: i64 = 100;

/// The registered model of `/admin/<app>/<model>/…`, or a 404.
pub fn model_of(req: &Request, res: &mut Response) -> Option<&'static ModelAdmin> {
    let app = req.param::<String>("app").unwrap_or_default();
    let model = req.param::<String>("model").unwrap_or_default();
    let found = models::lookup(&app, &model);
    if found.is_none() {
        not_found(res);
    }
    found
}

/// `django.utils.text.smart_split`, with quoted phrases unquoted as `get_search_results` does.
fn search_terms(q: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut term = String::new();
        if c == '"' || c == '\'' {
            chars.next();
            for d in chars.by_ref() {
                if d == c {
                    break;
                }
                term.push(d);
            }
        } else {
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                term.push(d);
                chars.next();
            }
        }
        terms.push(term);
    }
    terms
}

/// `field__icontains` as each backend's `operators` spell it.
fn icontains(vendor: &str, expr: &str) -> String {
    match vendor {
        "postgresql" => format!("UPPER({expr}::text) LIKE UPPER(?)"),
        "sqlite" => format!(r"{expr} LIKE ? ESCAPE '\'"),
        _ => format!("{expr} LIKE ?"),
    }
}

/// The WHERE clause of the changelist's filters and search (`" WHERE …"` or `""`).
fn where_clause(db: &Db, m: &ModelAdmin, req: &Request) -> Sql {
    let mut conditions: Vec<Sql> = Vec::new();
    for filter in m.filters {
        match filter {
            Filter::Bool { param, column, .. } => match req.query::<String>(param).as_deref() {
                Some("1") => conditions.push(Sql::new(&format!("{column} = ?")).bind(true).clone()),
                Some("0") => {
                    conditions.push(Sql::new(&format!("{column} = ?")).bind(false).clone())
                }
                _ => {}
            },
            Filter::Related {
                param, condition, ..
            } => {
                if let Some(id) = req
                    .query::<String>(param)
                    .and_then(|v| v.parse::<i64>().ok())
                {
                    conditions.push(Sql::new(condition).bind(id).clone());
                }
            }
        }
    }
    let q = req.query::<String>("q").unwrap_or_default();
    for term in search_terms(&q) {
        let pattern = format!("%{}%", prep_for_like_query(&term));
        let ors: Vec<String> = m.search.iter().map(|f| icontains(db.vendor(), f)).collect();
        let mut sql = Sql::new(&format!("({})", ors.join(" OR ")));
        for _ in m.search {
            sql.bind(pattern.clone());
        }
        conditions.push(sql);
    }
    let mut out = Sql::new("");
    for (i, c) in conditions.iter().enumerate() {
        out.push(if i == 0 { " WHERE " } else { " AND " });
        out.push_bind(c.text(), c.args().to_vec());
    }
    out
}

/// One `?o=` item: a column index (into `list_display`, after the action checkbox when there
/// are actions) and a direction.
fn parse_order(o: &str, offset: usize, columns: usize) -> Vec<(usize, bool)> {
    o.split('.')
        .filter_map(|p| {
            let (desc, idx) = match p.strip_prefix('-') {
                Some(i) => (true, i),
                None => (false, p),
            };
            let idx = idx.parse::<usize>().ok()?.checked_sub(offset)?;
            (idx < columns).then_some((idx, desc))
        })
        .collect()
}

#[derive(Serialize)]
struct Header {
    label: &'static str,
    sortable: bool,
    sorted: Option<&'static str>,
    /// The `?o=` link that sorts by this column (toggling its direction).
    sort_url: String,
}

#[derive(Serialize)]
struct ResultRow {
    id: i64,
    /// The first column's text (the checkbox's label).
    label: String,
    url: String,
    cells: Vec<String>,
}

#[derive(Serialize)]
struct FilterChoice {
    label: String,
    url: String,
    selected: bool,
}

#[derive(Serialize)]
struct FilterBlock {
    title: &'static str,
    choices: Vec<FilterChoice>,
}

#[derive(Serialize)]
struct Hidden {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct PageLink {
    number: i64,
    url: String,
    current: bool,
}

#[derive(Serialize)]
struct ChangeListPage {
    chrome: Chrome,
    title: String,
    model_plural: String,
    model_singular: &'static str,
    add_url: Option<String>,
    actions: bool,
    search: bool,
    q: String,
    headers: Vec<Header>,
    rows: Vec<ResultRow>,
    filters: Vec<FilterBlock>,
    result_count: i64,
    full_count: i64,
    filtered: bool,
    pages: Vec<PageLink>,
    /// Hidden inputs that keep the query string across the search form.
    keep: Vec<Hidden>,
}

/// The query string with `changes` applied (`None` removes a key), as `ChangeList.get_query_string`.
fn query_with(req: &Request, changes: &[(&str, Option<String>)], drop: &[&str]) -> String {
    let mut pairs: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    pairs.retain(|(k, _)| !drop.contains(&k.as_str()) && !changes.iter().any(|(c, _)| c == k));
    for (k, v) in changes {
        if let Some(v) = v {
            pairs.push(((*k).to_owned(), v.clone()));
        }
    }
    if pairs.is_empty() {
        return "?".to_owned();
    }
    let mut out = url::form_urlencoded::Serializer::new(String::from("?"));
    for (k, v) in &pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

fn display(cell: &Cell, how: Display) -> String {
    match (how, cell) {
        (_, Cell::Null) => "-".to_owned(),
        (Display::Bool, c) => if c.bool() { "Yes" } else { "No" }.to_owned(),
        (Display::Time, Cell::Time(t)) => format_datetime(t),
        (_, Cell::Int(i)) => i.to_string(),
        (_, c) => c.text().to_owned(),
    }
}

fn column_kind(d: Display) -> Kind {
    match d {
        Display::Bool => Kind::Bool,
        Display::Time => Kind::Time,
        Display::Text | Display::Str => Kind::Text,
    }
}

/// `changelist_view`.
#[handler]
pub async fn changelist(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        let Some(m) = model_of(req, res) else {
            return Ok(());
        };
        let Some(s) = staff(req, depot, res).await? else {
            return Ok(());
        };
        let perms = s.perms.model(m);
        if !perms.view {
            forbidden(res);
            return Ok(());
        }
        // `delete_selected` is the only action, and needs the delete permission.
        let actions = perms.delete;
        if req.method() == Method::POST && form_value(req, "action").await.is_some() {
            return run_action(req, depot, res, &s, m, actions).await;
        }
        let db = &s.state.db;
        let filter = where_clause(db, m, req);
        let count = |from_where: &Sql| {
            let mut sql = Sql::new(&format!("SELECT COUNT(*) FROM {}", m.from));
            sql.push_bind(from_where.text(), from_where.args().to_vec());
            sql
        };
        let result_count = db.fetch_int(&count(&filter)).await?;
        let full_count = db.fetch_int(&count(&Sql::new(""))).await?;
        let offset = usize::from(actions);
        let o = req.query::<String>("o").unwrap_or_default();
        let order = parse_order(&o, offset, m.columns.len());
        let mut order_sql: Vec<String> = order
            .iter()
            .filter_map(|(i, desc)| {
                m.columns[*i]
                    .expr
                    .map(|e| format!("{e} {}", if *desc { "DESC" } else { "ASC" }))
            })
            .collect();
        order_sql.push(m.ordering.to_owned());
        let pages = ((result_count + PER_PAGE - 1) / PER_PAGE).max(1);
        let page = req
            .query::<String>("p")
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(1)
            .clamp(1, pages);
        let mut columns: Vec<String> = vec![r#""t"."id""#.to_owned()];
        columns.extend(m.str_columns.iter().map(|c| (*c).to_owned()));
        columns.extend(m.columns.iter().filter_map(|c| c.expr.map(str::to_owned)));
        let mut sql = Sql::new(&format!("SELECT {} FROM {}", columns.join(", "), m.from));
        sql.push_bind(filter.text(), filter.args().to_vec());
        sql.push(&format!(
            " ORDER BY {} LIMIT {PER_PAGE} OFFSET {}",
            order_sql.join(", "),
            (page - 1) * PER_PAGE
        ));
        let mut kinds = vec![Kind::Int];
        kinds.extend(m.str_columns.iter().map(|_| Kind::Text));
        kinds.extend(
            m.columns
                .iter()
                .filter(|c| c.expr.is_some())
                .map(|c| column_kind(c.display)),
        );
        let rows = db.fetch_rows(&sql, &kinds).await?;
        let strs = m.str_columns.len();
        let rows = rows
            .iter()
            .map(|r| {
                let id = r[0].int().unwrap_or(0);
                let repr = m.object_repr(&r[1..1 + strs]);
                let mut values = r[1 + strs..].iter();
                let cells: Vec<String> = m
                    .columns
                    .iter()
                    .map(|c| match c.expr {
                        None => repr.clone(),
                        Some(_) => values
                            .next()
                            .map(|v| display(v, c.display))
                            .unwrap_or_default(),
                    })
                    .collect();
                ResultRow {
                    id,
                    label: cells.first().cloned().unwrap_or_default(),
                    url: m.change_url(id),
                    cells,
                }
            })
            .collect();
        let headers = m
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let sorted = order
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, desc)| if *desc { "descending" } else { "ascending" });
                let next = if sorted == Some("ascending") {
                    format!("-{}", i + offset)
                } else {
                    (i + offset).to_string()
                };
                Header {
                    label: c.label,
                    sortable: c.expr.is_some(),
                    sorted,
                    sort_url: query_with(req, &[("o", Some(next))], &["p"]),
                }
            })
            .collect();
        let filters = filter_blocks(db, m, req).await?;
        let q = req.query::<String>("q").unwrap_or_default();
        let keep = req
            .uri()
            .query()
            .map(|qs| {
                url::form_urlencoded::parse(qs.as_bytes())
                    .filter(|(k, _)| k != "q" && k != "p")
                    .map(|(k, v)| Hidden {
                        name: k.into_owned(),
                        value: v.into_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let page_links = (1..=pages)
            .map(|n| PageLink {
                number: n,
                url: query_with(req, &[("p", Some(n.to_string()))], &[]),
                current: n == page,
            })
            .collect();
        let verb = if perms.change { "change" } else { "view" };
        let title = format!("Select {} to {verb}", m.verbose_name);
        let chrome = Chrome::new(depot, &s.user.username, title.clone())?
            .crumb(app_name(m), format!("/admin/{}/", m.app_label))
            .crumb(capfirst(m.verbose_name_plural), "");
        let page = ChangeListPage {
            chrome,
            title,
            model_plural: m.verbose_name_plural.to_owned(),
            model_singular: m.verbose_name,
            add_url: perms.add.then(|| format!("{}add/", m.changelist_url())),
            actions,
            search: !m.search.is_empty(),
            filtered: result_count != full_count || !q.is_empty(),
            q,
            headers,
            rows,
            filters,
            result_count,
            full_count,
            pages: if pages > 1 { page_links } else { Vec::new() },
            keep,
        };
        render(&s.templates, res, "admin/change_list.html", &page)
    }
    .await;
    finish(res, result);
}

pub fn app_name(m: &ModelAdmin) -> &'static str {
    models::APPS
        .iter()
        .find(|a| a.label == m.app_label)
        .map(|a| a.name)
        .unwrap_or_default()
}

async fn filter_blocks(
    db: &Db,
    m: &ModelAdmin,
    req: &Request,
) -> Result<Vec<FilterBlock>, DbError> {
    let mut blocks = Vec::new();
    for f in m.filters {
        let (title, param, options): (&'static str, &'static str, Vec<(String, String)>) = match f {
            Filter::Bool { title, param, .. } => (
                *title,
                *param,
                vec![("1".into(), "Yes".into()), ("0".into(), "No".into())],
            ),
            Filter::Related {
                title,
                param,
                choices,
                ..
            } => {
                let rows = db
                    .fetch_rows(&Sql::new(choices), &[Kind::Int, Kind::Text])
                    .await?;
                (
                    *title,
                    *param,
                    rows.iter()
                        .map(|r| (r[0].int().unwrap_or(0).to_string(), r[1].text().to_owned()))
                        .collect(),
                )
            }
        };
        let current = req.query::<String>(param);
        let mut choices = vec![FilterChoice {
            label: "All".into(),
            url: query_with(req, &[(param, None)], &["p"]),
            selected: current.is_none(),
        }];
        for (value, label) in options {
            choices.push(FilterChoice {
                selected: current.as_deref() == Some(value.as_str()),
                url: query_with(req, &[(param, Some(value))], &["p"]),
                label,
            });
        }
        blocks.push(FilterBlock { title, choices });
    }
    Ok(blocks)
}

#[derive(Serialize)]
struct DeleteSelectedPage {
    chrome: Chrome,
    model_plural: String,
    plan: Plan,
    ids: Vec<i64>,
    /// The confirmation page of one object (`delete_view`) rather than of the action.
    single: bool,
    object: String,
    cancel_url: String,
}

/// `response_action` with `delete_selected` (`django/contrib/admin/actions.py`).
async fn run_action(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    s: &Staff,
    m: &'static ModelAdmin,
    actions: bool,
) -> AdminResult {
    let back = super::request::full_path(req);
    let action = form_value(req, "action").await.unwrap_or_default();
    let ids: Vec<i64> = form_list(req, "_selected_action")
        .await
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    if action != "delete_selected" || !actions {
        add_message(depot, WARNING, "No action selected.")?;
        redirect(res, &back);
        return Ok(());
    }
    if ids.is_empty() {
        add_message(
            depot,
            WARNING,
            "Items must be selected in order to perform actions on them. No items have been changed.",
        )?;
        redirect(res, &back);
        return Ok(());
    }
    let db = &s.state.db;
    let found = delete::objects(db, m, &ids).await?;
    let plan = delete::plan(db, m, &s.perms, &found).await?;
    if form_value(req, "post").await.is_some() && plan.perms_needed.is_empty() {
        for (id, repr) in &found {
            log::log_action(
                db,
                s.user.id,
                m,
                *id,
                repr,
                DELETION,
                &serde_json::Value::String(String::new()),
            )
            .await?;
        }
        let found_ids: Vec<i64> = found.iter().map(|(id, _)| *id).collect();
        let messages = delete::delete(db, m, &found_ids).await?;
        effects::messages_deleted(&s.state, &messages);
        if !found.is_empty() {
            let items = if found.len() == 1 {
                m.verbose_name
            } else {
                m.verbose_name_plural
            };
            add_message(
                depot,
                SUCCESS,
                &format!("Successfully deleted {} {items}.", found.len()),
            )?;
        }
        redirect(res, &back);
        return Ok(());
    }
    let chrome = Chrome::new(depot, &s.user.username, "Are you sure?")?
        .crumb(app_name(m), format!("/admin/{}/", m.app_label))
        .crumb(capfirst(m.verbose_name_plural), m.changelist_url())
        .crumb("Delete multiple objects", "");
    let page = DeleteSelectedPage {
        chrome,
        model_plural: m.verbose_name_plural.to_owned(),
        ids: found.iter().map(|(id, _)| *id).collect(),
        plan,
        single: false,
        object: String::new(),
        cancel_url: back,
    };
    render(&s.templates, res, "admin/delete_confirmation.html", &page)
}

/// `delete_view`: `/admin/<app>/<model>/<id>/delete/`.
#[handler]
pub async fn delete_view(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let result: AdminResult = async {
        let Some(m) = model_of(req, res) else {
            return Ok(());
        };
        let Some(s) = staff(req, depot, res).await? else {
            return Ok(());
        };
        let raw_id = req.param::<String>("id").unwrap_or_default();
        let Ok(id) = raw_id.parse::<i64>() else {
            return missing(depot, res, m, &raw_id);
        };
        if !s.perms.model(m).delete {
            forbidden(res);
            return Ok(());
        }
        let db = &s.state.db;
        let found = delete::objects(db, m, &[id]).await?;
        let Some((_, repr)) = found.first().cloned() else {
            return missing(depot, res, m, &raw_id);
        };
        let plan = delete::plan(db, m, &s.perms, &found).await?;
        if req.method() == Method::POST && plan.perms_needed.is_empty() {
            log::log_action(
                db,
                s.user.id,
                m,
                id,
                &repr,
                DELETION,
                &serde_json::Value::String(String::new()),
            )
            .await?;
            let messages = delete::delete(db, m, &[id]).await?;
            effects::messages_deleted(&s.state, &messages);
            add_message(
                depot,
                SUCCESS,
                &format!("The {} “{repr}” was deleted successfully.", m.verbose_name),
            )?;
            redirect(res, &m.changelist_url());
            return Ok(());
        }
        if req.method() == Method::POST {
            forbidden(res);
            return Ok(());
        }
        let chrome = Chrome::new(depot, &s.user.username, "Are you sure?")?
            .crumb(app_name(m), format!("/admin/{}/", m.app_label))
            .crumb(capfirst(m.verbose_name_plural), m.changelist_url())
            .crumb(repr.clone(), m.change_url(id))
            .crumb("Delete", "");
        let page = DeleteSelectedPage {
            chrome,
            model_plural: m.verbose_name_plural.to_owned(),
            ids: vec![id],
            plan,
            single: true,
            object: format!("{} “{repr}”", m.verbose_name),
            cancel_url: m.change_url(id),
        };
        render(&s.templates, res, "admin/delete_confirmation.html", &page)
    }
    .await;
    finish(res, result);
}

/// `_get_obj_does_not_exist_redirect`: a message and the admin index.
pub fn missing(depot: &mut Depot, res: &mut Response, m: &ModelAdmin, id: &str) -> AdminResult {
    add_message(
        depot,
        WARNING,
        &format!(
            "{} with ID “{id}” doesn’t exist. Perhaps it was deleted?",
            capfirst(m.verbose_name)
        ),
    )?;
    redirect(res, "/admin/");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms_split_as_django() {
        assert_eq!(
            search_terms(r#"  hello "big world" x"#),
            ["hello", "big world", "x"]
        );
    }

    #[test]
    fn order_skips_the_action_column() {
        assert_eq!(parse_order("1.-2", 1, 4), [(0, false), (1, true)]);
        assert_eq!(parse_order("0", 1, 4), []);
        assert_eq!(parse_order("0", 0, 4), [(0, false)]);
    }
}
