//! Paging, filtering and searching the catalog.

use herald_platform::ApiError;
use herald_platform::paging::Page;
use uuid::Uuid;

use super::{MAX_SEARCH_CHARS, category};

/// One page of the catalog, in creation order, filtered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub first: i64,
    /// Only products created after this one (the previous page's `endCursor`).
    pub after: Option<Uuid>,
    pub filter: ProductFilter,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFilter {
    /// Exact match, lowercased.
    pub category: Option<String>,
    /// A LIKE pattern over the folded name and description, wildcards escaped with `\`.
    pub search: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_SIZE: i64 = 20;
    pub const MAX_SIZE: i64 = 100;

    pub fn parse(
        first: Option<i64>,
        after: Option<&str>,
        category_filter: Option<&str>,
        search: Option<&str>,
    ) -> Result<PageRequest, ApiError> {
        let Page { first, after } = Page::parse(first, after, Self::DEFAULT_SIZE, Self::MAX_SIZE)?;
        let category_filter = category_filter
            .filter(|c| !c.trim().is_empty())
            .map(category)
            .transpose()?;
        let search = search
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(search_pattern)
            .transpose()?;
        Ok(PageRequest {
            first,
            after,
            filter: ProductFilter {
                category: category_filter,
                search,
            },
        })
    }
}

/// Case folding for search, applied alike to stored text and to queries.
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// A case-insensitive substring pattern; the user's `%`, `_` and `\` match themselves.
fn search_pattern(raw: &str) -> Result<String, ApiError> {
    if raw.chars().count() > MAX_SEARCH_CHARS {
        return Err(ApiError::bad_input(format!(
            "search must be at most {MAX_SEARCH_CHARS} characters"
        )));
    }
    if raw.chars().any(char::is_control) {
        return Err(ApiError::bad_input(
            "search must not contain control characters",
        ));
    }
    let mut pattern = String::with_capacity(raw.len() + 2);
    pattern.push('%');
    for c in fold(raw).chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(pattern)
}

#[cfg(test)]
mod tests {
    use herald_platform::ErrorCode;

    use super::*;

    fn rejected(result: Result<PageRequest, ApiError>) {
        assert_eq!(result.unwrap_err().code(), ErrorCode::BadUserInput);
    }

    #[test]
    fn paging_filters_and_search_are_parsed() {
        let page = PageRequest::parse(None, None, None, None).unwrap();
        assert_eq!((page.first, page.after), (20, None));
        assert_eq!(page.filter, ProductFilter::default());
        for bad in [0, -1, 101] {
            rejected(PageRequest::parse(Some(bad), None, None, None));
        }
        rejected(PageRequest::parse(None, Some("nope"), None, None));
        let page =
            PageRequest::parse(Some(100), None, Some(" Coffee"), Some(" 100%_B\\e ")).unwrap();
        assert_eq!(page.filter.category.as_deref(), Some("coffee"));
        assert_eq!(page.filter.search.as_deref(), Some("%100\\%\\_b\\\\e%"));
        let blank = PageRequest::parse(None, None, Some(" "), Some("  ")).unwrap();
        assert_eq!(blank.filter, ProductFilter::default());
        rejected(PageRequest::parse(None, None, None, Some(&"s".repeat(201))));
    }
}
