//! A user's inbox, as other services use it: list, count unread, mark read. [`InboxApi`]
//! is the one way to call it, with two implementations: [`Inbox`] itself, in the same
//! process (no HTTP, no JSON, no second token check), and [`InboxOverHttp`], across
//! processes with a service credential. The HTTP routes of `api` serve the second with the
//! first, so both run the same code.
//!
//! An open app reads its inbox's first page again and again, and that page changes only
//! when a notification arrives or is read, or when one waiting for the end of quiet hours
//! comes due. So [`Inbox`] keeps first pages in the process ([`FirstPages`]), each filed
//! under the user's inbox generation ([`crate::unread`]) and the time the next waiting
//! notification comes due: a poll costs one round trip to the cache (the generation, which
//! every change bumps after its commit) instead of a statement, and on every replica a
//! page read before a change is never served after it.

use chrono::{DateTime, Utc};
use herald_platform::auth::Claims;
use herald_platform::db::Database;
use herald_platform::http::ServiceClient;
use herald_platform::paging::{PageInfo, take_page};
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::PageRequest;
use crate::store::{self, Notification};
pub use crate::unread::InboxVersion;
use crate::unread::{KEPT_FOR, UnreadCounts};

/// Which page of the inbox to list.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub first: Option<i64>,
    pub after: Option<String>,
    pub unread_only: Option<bool>,
    /// Leaves `total_count` out (it costs a count of the whole inbox).
    #[serde(default)]
    pub without_total: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPage {
    pub nodes: Vec<Notification>,
    pub page_info: PageInfo,
    /// How many there are in all; None when the query left it out.
    pub total_count: Option<i64>,
    /// What the page was read under, for a caller that keeps it (first pages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<InboxVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadCount {
    pub count: i64,
    /// What it was counted under, for a caller that keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<InboxVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unchanged {
    pub unchanged: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadAll {
    pub changed: u64,
}

/// The inbox operations, acting for a signed-in user.
#[async_trait::async_trait]
pub trait InboxApi: Send + Sync + 'static {
    /// The user's notifications, newest first, a page at a time.
    async fn list(&self, acting: &Claims, query: &ListQuery) -> ApiResult<NotificationPage>;
    async fn unread_count(&self, acting: &Claims) -> ApiResult<UnreadCount>;
    /// Whether what the user read under `version` (a page's, a count's) still answers as
    /// a read now would: one round trip to the cache, no statement.
    async fn unchanged_since(&self, acting: &Claims, version: &InboxVersion) -> ApiResult<bool>;
    /// NOT_FOUND for an id that names no notification of the user's.
    async fn mark_read(&self, acting: &Claims, id: Uuid) -> ApiResult<Notification>;
    /// How many changed.
    async fn mark_all_read(&self, acting: &Claims) -> ApiResult<u64>;
}

/// The inbox over its storage.
#[derive(Clone)]
pub struct Inbox {
    db: Database,
    unread: UnreadCounts,
    clock: Clock,
    first_pages: FirstPages,
}

impl Inbox {
    pub fn new(db: Database, unread: UnreadCounts, clock: Clock) -> Inbox {
        Inbox {
            db,
            unread,
            clock,
            first_pages: FirstPages::new(FIRST_PAGES_KEPT),
        }
    }
}

#[async_trait::async_trait]
impl InboxApi for Inbox {
    async fn list(&self, acting: &Claims, query: &ListQuery) -> ApiResult<NotificationPage> {
        let page = PageRequest::parse(
            query.first,
            query.after.as_deref(),
            query.unread_only.unwrap_or(false),
        )?;
        let user = acting.sub;
        let with_total = !query.without_total;
        // Only first pages are kept; without a generation (the cache is down) none is.
        let kept = match page.after {
            None => self.unread.generation(user).await.map(|generation| {
                let key = PageKey {
                    user,
                    first: page.first,
                    unread_only: page.unread_only,
                    with_total,
                };
                (key, generation)
            }),
            Some(_) => None,
        };
        let now = self.clock.now();
        if let Some((key, generation)) = &kept
            && let Some(page) = self.first_pages.get(key, *generation, now)
        {
            return Ok(page);
        }
        let listed = store::list_page(&self.db, user, &page, now, with_total).await?;
        let (nodes, page_info) = take_page(listed.rows, page.first, |n| n.id);
        let mut answer = NotificationPage {
            nodes,
            page_info,
            total_count: listed.total_count,
            version: None,
        };
        if let Some((key, generation)) = kept {
            answer.version = Some(InboxVersion {
                generation,
                until: listed.next_visible,
            });
            self.first_pages.keep(key, answer.clone());
        }
        Ok(answer)
    }

    async fn unread_count(&self, acting: &Claims) -> ApiResult<UnreadCount> {
        let (count, version) = self.unread.get(&self.db, acting.sub).await?;
        Ok(UnreadCount { count, version })
    }

    async fn unchanged_since(&self, acting: &Claims, version: &InboxVersion) -> ApiResult<bool> {
        Ok(self.unread.unchanged_since(acting.sub, version).await)
    }

    async fn mark_read(&self, acting: &Claims, id: Uuid) -> ApiResult<Notification> {
        let notification = store::mark_read(&self.db, acting.sub, id, self.clock.now())
            .await?
            .ok_or_else(|| no_notification(id))?;
        self.unread.changed(acting.sub).await;
        Ok(notification)
    }

    async fn mark_all_read(&self, acting: &Claims) -> ApiResult<u64> {
        let changed = store::mark_all_read(&self.db, acting.sub, self.clock.now()).await?;
        if changed > 0 {
            self.unread.changed(acting.sub).await;
        }
        Ok(changed)
    }
}

/// How many first pages a process keeps (a page weighs one, and one more per notification
/// on it): about 4,000 polling users with full pages of 20.
const FIRST_PAGES_KEPT: u64 = 100_000;

/// Which first page: the user's, of a size, filtered or not, with its count or without.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PageKey {
    user: Uuid,
    first: i64,
    unread_only: bool,
    with_total: bool,
}

/// First pages of inboxes kept in the process (see the module's notes), each with the
/// version it was read under, for at most [`KEPT_FOR`].
#[derive(Clone)]
struct FirstPages {
    pages: moka::sync::Cache<PageKey, Arc<NotificationPage>>,
}

impl FirstPages {
    fn new(capacity: u64) -> FirstPages {
        FirstPages {
            pages: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .weigher(|_, page: &Arc<NotificationPage>| {
                    u32::try_from(page.nodes.len() + 1).unwrap_or(u32::MAX)
                })
                .time_to_live(KEPT_FOR)
                .build(),
        }
    }

    /// The page, if its version holds at `generation` and `now`.
    fn get(&self, key: &PageKey, generation: i64, now: DateTime<Utc>) -> Option<NotificationPage> {
        let page = self
            .pages
            .get(key)
            .filter(|page| page.version.is_some_and(|v| v.holds(generation, now)))
            .map(|page| NotificationPage::clone(&page));
        let source = if page.is_some() { "kept" } else { "storage" };
        metrics::counter!("notifications_inbox_pages_total", "source" => source).increment(1);
        page
    }

    /// Keeps a page; one read under an older generation than the page kept (a slow reader
    /// that raced a change) does not replace it.
    fn keep(&self, key: PageKey, page: NotificationPage) {
        let generation = |page: &NotificationPage| page.version.map(|v| v.generation);
        let newer = generation(&page);
        let page = Arc::new(page);
        self.pages
            .entry(key)
            .and_compute_with(|current| match current {
                Some(current) if generation(current.value()) > newer => moka::ops::compute::Op::Nop,
                _ => moka::ops::compute::Op::Put(page),
            });
    }
}

pub(crate) fn no_notification(id: impl std::fmt::Display) -> ApiError {
    ApiError::not_found(format!("no notification {id}"))
}

/// The inbox of a notifications service in another process.
#[derive(Clone, Debug)]
pub struct InboxOverHttp {
    service: ServiceClient,
}

impl InboxOverHttp {
    /// `service` calls the notifications service.
    pub fn new(service: ServiceClient) -> InboxOverHttp {
        InboxOverHttp { service }
    }
}

#[async_trait::async_trait]
impl InboxApi for InboxOverHttp {
    async fn list(&self, acting: &Claims, query: &ListQuery) -> ApiResult<NotificationPage> {
        let mut url = url::Url::parse("http://notifications.invalid/notifications")
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(first) = query.first {
                pairs.append_pair("first", &first.to_string());
            }
            if let Some(after) = &query.after {
                pairs.append_pair("after", after);
            }
            if let Some(unread_only) = query.unread_only {
                pairs.append_pair("unreadOnly", &unread_only.to_string());
            }
            if query.without_total {
                pairs.append_pair("withoutTotal", "true");
            }
        }
        let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        self.service.get(&path, Some(acting)).await
    }

    async fn unread_count(&self, acting: &Claims) -> ApiResult<UnreadCount> {
        self.service
            .get("/notifications/unread-count", Some(acting))
            .await
    }

    async fn unchanged_since(&self, acting: &Claims, version: &InboxVersion) -> ApiResult<bool> {
        let answer: Unchanged = self
            .service
            .post("/notifications/unchanged-since", version, Some(acting))
            .await?;
        Ok(answer.unchanged)
    }

    async fn mark_read(&self, acting: &Claims, id: Uuid) -> ApiResult<Notification> {
        self.service
            .post(&format!("/notifications/{id}/read"), &(), Some(acting))
            .await
    }

    async fn mark_all_read(&self, acting: &Claims) -> ApiResult<u64> {
        let read: ReadAll = self
            .service
            .post("/notifications/read-all", &(), Some(acting))
            .await?;
        Ok(read.changed)
    }
}
