//! Bringing an existing customer base in: the rows an admin hands over, checked all
//! together before anything is stored.

use std::collections::HashSet;

use herald_events::Preferences;
use herald_platform::{ApiError, ApiResult, RowProblem};
use serde::{Deserialize, Serialize};

use crate::domain::{Email, PreferencesPatch, UserName};

/// The most customers one import takes.
pub const MAX_IMPORT: usize = 1_000;

/// One customer to import; preferences not given are the defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportRow {
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub preferences: Option<PreferencesPatch>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportRequest {
    pub users: Vec<ImportRow>,
}

/// What an import did: customers created, and those skipped (their email was known, or
/// came earlier in the same list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    pub created: u64,
    pub skipped: u64,
}

/// A row that passed its checks.
#[derive(Debug)]
pub(crate) struct CheckedRow {
    pub name: UserName,
    pub email: Email,
    pub preferences: Preferences,
}

/// The rows checked, each email once (the first of a list that repeats one);
/// BAD_USER_INPUT naming every wrong row when any is.
pub(crate) fn check(request: &ImportRequest) -> ApiResult<Vec<CheckedRow>> {
    if request.users.len() > MAX_IMPORT {
        return Err(ApiError::bad_input(format!(
            "at most {MAX_IMPORT} users an import, got {}",
            request.users.len()
        )));
    }
    let mut checked = Vec::with_capacity(request.users.len());
    let mut problems = Vec::new();
    for (index, row) in request.users.iter().enumerate() {
        match check_row(row) {
            Ok(row) => checked.push(row),
            Err(e) => problems.push(RowProblem {
                index,
                message: e.to_string(),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid_rows("users", problems));
    }
    let mut seen = HashSet::with_capacity(checked.len());
    checked.retain(|row| seen.insert(row.email.as_str().to_owned()));
    Ok(checked)
}

fn check_row(row: &ImportRow) -> ApiResult<CheckedRow> {
    let defaults = Preferences::default();
    Ok(CheckedRow {
        name: UserName::parse(&row.name)?,
        email: Email::parse(&row.email)?,
        preferences: match &row.preferences {
            Some(patch) => patch.clone().apply(&defaults)?,
            None => defaults,
        },
    })
}

#[cfg(test)]
mod tests {
    use herald_platform::ErrorCode;

    use super::*;

    fn row(name: &str, email: &str) -> ImportRow {
        ImportRow {
            name: name.to_owned(),
            email: email.to_owned(),
            preferences: None,
        }
    }

    #[test]
    fn every_wrong_row_is_named_and_nothing_is_taken() {
        let mut request = ImportRequest {
            users: vec![
                row("Ada", "ada@example.com"),
                row("Bob", "not an email"),
                row("", "cy@example.com"),
            ],
        };
        request.users[0].preferences = Some(PreferencesPatch {
            timezone: Some("Mars/Olympus".to_owned()),
            ..PreferencesPatch::default()
        });
        let refused = check(&request).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::BadUserInput);
        let rows = refused.body().rows.unwrap();
        assert_eq!(rows.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(rows[0].message.contains("Mars/Olympus"), "{rows:?}");
        assert!(
            refused
                .to_string()
                .starts_with("3 rows of users are invalid: users[0]")
        );
    }

    #[test]
    fn an_email_repeated_in_the_list_is_taken_once() {
        let request = ImportRequest {
            users: vec![
                row("Ada", "ada@example.com"),
                row("Ada again", " ADA@example.com "),
                row("Bob", "bob@example.com"),
            ],
        };
        let checked = check(&request).unwrap();
        assert_eq!(checked.len(), 2);
        assert_eq!(checked[0].name.as_str(), "Ada");
        assert_eq!(checked[1].preferences, Preferences::default());
    }

    #[test]
    fn a_list_too_long_is_refused_whole() {
        let request = ImportRequest {
            users: (0..=MAX_IMPORT)
                .map(|i| row("Someone", &format!("u{i}@example.com")))
                .collect(),
        };
        let refused = check(&request).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::BadUserInput);
        assert!(refused.to_string().contains("at most 1000"), "{refused}");
    }
}
