//! A user's inbox, as other services use it: list, count unread, mark read. [`InboxApi`]
//! is the one way to call it, with two implementations: [`Inbox`] itself, in the same
//! process (no HTTP, no JSON, no second token check), and [`InboxOverHttp`], across
//! processes with a service credential. The HTTP routes of `api` serve the second with the
//! first, so both run the same code.

use herald_platform::auth::Claims;
use herald_platform::db::Database;
use herald_platform::http::ServiceClient;
use herald_platform::paging::{PageInfo, take_page};
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::PageRequest;
use crate::store::{self, Notification};
use crate::unread::UnreadCounts;

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadCount {
    pub count: i64,
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
    async fn unread_count(&self, acting: &Claims) -> ApiResult<i64>;
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
}

impl Inbox {
    pub fn new(db: Database, unread: UnreadCounts, clock: Clock) -> Inbox {
        Inbox { db, unread, clock }
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
        let now = self.clock.now();
        let (rows, total_count) =
            store::list_page(&self.db, user, &page, now, !query.without_total).await?;
        let (nodes, page_info) = take_page(rows, page.first, |n| n.id);
        Ok(NotificationPage {
            nodes,
            page_info,
            total_count,
        })
    }

    async fn unread_count(&self, acting: &Claims) -> ApiResult<i64> {
        Ok(self.unread.get(&self.db, acting.sub).await?)
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

    async fn unread_count(&self, acting: &Claims) -> ApiResult<i64> {
        let count: UnreadCount = self
            .service
            .get("/notifications/unread-count", Some(acting))
            .await?;
        Ok(count.count)
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
