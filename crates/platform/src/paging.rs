//! Cursor paging as every list answers it: `first` items after the `after` cursor (the
//! previous page's `endCursor`, the id of its last item), and whether more follow.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ApiError;

/// A parsed page request: its size and the id it starts after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub first: i64,
    pub after: Option<Uuid>,
}

impl Page {
    /// `first` defaults to `default` and must be 1 to `max`; `after` must be an id.
    pub fn parse(
        first: Option<i64>,
        after: Option<&str>,
        default: i64,
        max: i64,
    ) -> Result<Page, ApiError> {
        let first = page_size(first, default, max)?;
        let after = after
            .map(|cursor| {
                cursor
                    .parse::<Uuid>()
                    .map_err(|_| ApiError::bad_input(format!("'{cursor}' is not a valid cursor")))
            })
            .transpose()?;
        Ok(Page { first, after })
    }
}

/// How many items a page holds: `default` when not asked, otherwise 1 to `max`.
pub fn page_size(first: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let first = first.unwrap_or(default);
    if !(1..=max).contains(&first) {
        return Err(ApiError::bad_input(format!(
            "first must be between 1 and {max}, got {first}"
        )));
    }
    Ok(first)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// The page among `rows`, fetched as `first + 1` so that the extra one tells whether more
/// follow; the cursor is the id (`id_of`) of the page's last item.
pub fn take_page<T>(
    mut rows: Vec<T>,
    first: i64,
    id_of: impl Fn(&T) -> Uuid,
) -> (Vec<T>, PageInfo) {
    let has_next_page = rows.len() as i64 > first;
    rows.truncate(first as usize);
    let end_cursor = rows.last().map(|row| id_of(row).to_string());
    (
        rows,
        PageInfo {
            has_next_page,
            end_cursor,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn size_and_cursor_are_checked_with_messages_that_say_why() {
        assert_eq!(
            Page::parse(None, None, 20, 100).unwrap(),
            Page {
                first: 20,
                after: None
            }
        );
        let id = Uuid::now_v7();
        let page = Page::parse(Some(100), Some(&id.to_string()), 20, 100).unwrap();
        assert_eq!((page.first, page.after), (100, Some(id)));
        for bad in [0, -1, 101] {
            let e = Page::parse(Some(bad), None, 20, 100).unwrap_err();
            assert_eq!(e.code(), ErrorCode::BadUserInput);
            assert_eq!(
                e.to_string(),
                format!("first must be between 1 and 100, got {bad}")
            );
        }
        let e = Page::parse(None, Some("nope"), 20, 100).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadUserInput);
        assert_eq!(e.to_string(), "'nope' is not a valid cursor");
    }

    #[test]
    fn the_extra_row_means_a_next_page_and_the_last_kept_one_is_the_cursor() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let (nodes, info) = take_page(ids.clone(), 2, |id| *id);
        assert_eq!(nodes, ids[..2]);
        assert_eq!(
            info,
            PageInfo {
                has_next_page: true,
                end_cursor: Some(ids[1].to_string())
            }
        );
        let (nodes, info) = take_page(ids.clone(), 3, |id| *id);
        assert_eq!((nodes.len(), info.has_next_page), (3, false));
        let (nodes, info) = take_page(Vec::<Uuid>::new(), 3, |id| *id);
        assert!(nodes.is_empty());
        assert_eq!(info.end_cursor, None);
    }
}
