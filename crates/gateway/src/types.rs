//! The contract's types. They deserialize straight from the services' JSON.

use async_graphql::{ComplexObject, Enum, ID, InputObject, Json, MaybeUndefined, SimpleObject};
use chrono::{DateTime, Utc};
use herald_events::MAX_ORDER_LINES;
use herald_platform::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::{GqlResult, gql_error};

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Customer,
    Admin,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    InApp,
    Email,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationType {
    OrderUpdate,
    Promotion,
    Recommendation,
    Inventory,
    Security,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    Critical,
    Standard,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPreferences {
    pub promotions: bool,
    pub order_updates: bool,
    pub recommendations: bool,
    pub inventory_alerts: bool,
    pub categories: Vec<String>,
    pub channels: Vec<Channel>,
    pub timezone: String,
    pub quiet_hours_start: Option<String>,
    pub quiet_hours_end: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: ID,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub preferences: NotificationPreferences,
    pub created_at: DateTime<Utc>,
}

/// An access token (15 minutes by default) and a refresh token to trade for the next
/// pair with `refreshToken`; each refresh token is good once.
#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthPayload {
    pub token: String,
    pub user: User,
    pub refresh_token: Option<String>,
}

/// A refresh token to trade, as the users service takes it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest<'a> {
    pub refresh_token: &'a str,
}

#[derive(InputObject, Debug, Serialize)]
pub struct RegisterUserInput {
    pub name: String,
    pub email: String,
    pub password: String,
}

/// An input passed on with the address of the client that sent it (the users service
/// limits registrations and slows failed sign-ins per client).
#[derive(Debug, Serialize)]
pub struct FromClient<'a, T> {
    #[serde(flatten)]
    pub input: &'a T,
    pub client: Option<String>,
}

#[derive(InputObject, Debug, Serialize)]
#[graphql(name = "LoginInput")]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

/// Absent fields stay as they are; `null` quiet hours clear them.
#[derive(InputObject, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferencesInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotions: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_updates: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendations: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_alerts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<Channel>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub quiet_hours_start: MaybeUndefined<String>,
    #[serde(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub quiet_hours_end: MaybeUndefined<String>,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: ID,
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: NotificationType,
    pub priority: Priority,
    pub title: String,
    pub body: String,
    pub data: Option<Json<serde_json::Value>>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct NotificationConnection {
    pub nodes: Vec<Notification>,
    pub page_info: PageInfo,
    /// Counted only when the query asks for `totalCount`.
    #[graphql(skip)]
    pub total: Option<i32>,
}

#[ComplexObject]
impl NotificationConnection {
    async fn total_count(&self) -> GqlResult<i32> {
        self.total.ok_or_else(|| {
            gql_error(
                ErrorCode::Internal,
                "the total was not counted for this query",
            )
        })
    }
}

impl From<herald_notifications::domain::NotificationType> for NotificationType {
    fn from(kind: herald_notifications::domain::NotificationType) -> Self {
        use herald_notifications::domain::NotificationType as Kind;
        match kind {
            Kind::OrderUpdate => NotificationType::OrderUpdate,
            Kind::Promotion => NotificationType::Promotion,
            Kind::Recommendation => NotificationType::Recommendation,
            Kind::Inventory => NotificationType::Inventory,
            Kind::Security => NotificationType::Security,
        }
    }
}

impl From<herald_notifications::domain::Priority> for Priority {
    fn from(priority: herald_notifications::domain::Priority) -> Self {
        match priority {
            herald_notifications::domain::Priority::Critical => Priority::Critical,
            herald_notifications::domain::Priority::Standard => Priority::Standard,
        }
    }
}

impl From<herald_notifications::store::Notification> for Notification {
    fn from(n: herald_notifications::store::Notification) -> Self {
        Notification {
            id: ID(n.id.to_string()),
            kind: n.notification_type.into(),
            priority: n.priority.into(),
            title: n.title,
            body: n.body,
            data: n.data.map(Json),
            read: n.read,
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

impl From<herald_platform::paging::PageInfo> for PageInfo {
    fn from(page: herald_platform::paging::PageInfo) -> Self {
        PageInfo {
            has_next_page: page.has_next_page,
            end_cursor: page.end_cursor,
        }
    }
}

impl From<herald_notifications::inbox::NotificationPage> for NotificationConnection {
    fn from(page: herald_notifications::inbox::NotificationPage) -> Self {
        NotificationConnection {
            nodes: page.nodes.into_iter().map(Notification::from).collect(),
            page_info: page.page_info.into(),
            total: page
                .total_count
                .map(|total| i32::try_from(total).unwrap_or(i32::MAX)),
        }
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Product {
    pub id: ID,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i32,
    pub currency: String,
    pub stock: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct ProductConnection {
    pub nodes: Vec<Product>,
    pub page_info: PageInfo,
    pub total_count: i32,
}

#[derive(InputObject, Debug)]
pub struct ProductInput {
    pub name: String,
    pub description: Option<String>,
    pub category: String,
    pub price_cents: i32,
    /// ISO 4217 code; default "USD".
    pub currency: Option<String>,
    pub stock: i32,
}

#[derive(InputObject, Debug)]
pub struct ProductUpdateInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price_cents: Option<i32>,
}

impl From<herald_products::store::Product> for Product {
    fn from(p: herald_products::store::Product) -> Self {
        Product {
            id: ID(p.id.to_string()),
            name: p.name,
            description: p.description,
            category: p.category,
            price_cents: i32::try_from(p.price_cents).unwrap_or(i32::MAX),
            currency: p.currency,
            stock: i32::try_from(p.stock).unwrap_or(i32::MAX),
            created_at: p.created_at,
        }
    }
}

impl From<herald_products::client::ProductPage> for ProductConnection {
    fn from(page: herald_products::client::ProductPage) -> Self {
        ProductConnection {
            nodes: page.nodes.into_iter().map(Product::from).collect(),
            page_info: page.page_info.into(),
            total_count: i32::try_from(page.total_count).unwrap_or(i32::MAX),
        }
    }
}

impl From<ProductInput> for herald_products::domain::ProductInput {
    fn from(input: ProductInput) -> Self {
        herald_products::domain::ProductInput {
            name: input.name,
            description: input.description,
            category: input.category,
            price_cents: input.price_cents.into(),
            currency: input.currency,
            stock: input.stock.into(),
        }
    }
}

impl From<ProductUpdateInput> for herald_products::domain::ProductPatch {
    fn from(input: ProductUpdateInput) -> Self {
        herald_products::domain::ProductPatch {
            name: input.name,
            description: input.description,
            category: input.category,
            price_cents: input.price_cents.map(i64::from),
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Placed,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

/// A line of an order; its product is looked up in batches (one call per request level).
#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[graphql(complex)]
pub struct OrderItem {
    #[graphql(skip)]
    pub product_id: uuid::Uuid,
    pub quantity: i32,
    pub unit_price_cents: i32,
}

#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: ID,
    pub user_id: ID,
    /// Counted at its largest for the query's cost.
    #[graphql(complexity = "crate::limits::list_cost(MAX_ORDER_LINES as i32, child_complexity)")]
    pub items: Vec<OrderItem>,
    pub total_cents: i32,
    pub currency: String,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(InputObject, Debug)]
pub struct OrderItemInput {
    pub product_id: ID,
    pub quantity: i32,
}

#[derive(InputObject, Debug)]
pub struct PlaceOrderInput {
    pub items: Vec<OrderItemInput>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct DeadLetter {
    pub id: ID,
    pub queue: String,
    pub event_type: String,
    pub error: String,
    pub attempts: i32,
    pub failed_at: DateTime<Utc>,
    pub payload: Option<Json<serde_json::Value>>,
}

impl From<herald_platform::deadletters::DeadLetter> for DeadLetter {
    fn from(letter: herald_platform::deadletters::DeadLetter) -> Self {
        DeadLetter {
            id: ID(letter.id.to_string()),
            queue: letter.queue,
            event_type: letter.event_type,
            error: letter.error,
            attempts: i32::try_from(letter.attempts).unwrap_or(i32::MAX),
            failed_at: letter.failed_at,
            payload: (!letter.payload.is_null()).then_some(Json(letter.payload)),
        }
    }
}

/// A product picked for the caller; its product is looked up in batches.
#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[graphql(complex)]
pub struct Recommendation {
    #[graphql(skip)]
    pub product_id: uuid::Uuid,
    pub score: f64,
    pub reason: String,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivityType {
    View,
    Cart,
    Wishlist,
    Search,
}

#[derive(InputObject, Debug)]
pub struct UserActivityInput {
    #[graphql(name = "type")]
    pub kind: ActivityType,
    pub product_id: Option<ID>,
    pub query: Option<String>,
}

/// A scheduled job and how its last run went.
#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledJob {
    pub name: String,
    /// The cron expression (UTC); empty when the job is switched off.
    pub schedule: String,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// `running`, `ok: …` or `error: …`.
    pub last_outcome: Option<String>,
}

/// An admin's campaign and how far it got.
#[derive(SimpleObject, Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    pub id: ID,
    pub title: String,
    pub body: String,
    pub category: Option<String>,
    pub send_at: DateTime<Utc>,
    /// SCHEDULED, SENDING, SENT or CANCELLED.
    pub status: String,
    /// Notifications created so far.
    pub recipients: i32,
}

#[derive(InputObject, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionInput {
    pub title: String,
    pub body: String,
    /// Only users who prefer, bought in or showed interest in this category; null: every
    /// opted-in user.
    pub category: Option<String>,
    /// Null: now.
    pub send_at: Option<DateTime<Utc>>,
}
