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

#[derive(SimpleObject, Debug, Clone)]
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

#[derive(SimpleObject, Debug, Clone)]
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
#[derive(SimpleObject, Debug, Clone)]
pub struct AuthPayload {
    pub token: String,
    pub user: User,
    pub refresh_token: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct RegisterUserInput {
    pub name: String,
    pub email: String,
    pub password: String,
}

#[derive(InputObject, Debug)]
pub struct ResetPasswordInput {
    /// The token of the reset link.
    pub token: String,
    pub password: String,
}

#[derive(InputObject, Debug)]
#[graphql(name = "LoginInput")]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

/// One customer of an import; preferences not given are the defaults.
#[derive(InputObject, Debug)]
pub struct ImportedUserInput {
    pub name: String,
    pub email: String,
    pub preferences: Option<PreferencesInput>,
}

/// At most 1,000 customers a call.
#[derive(InputObject, Debug)]
pub struct ImportUsersInput {
    pub users: Vec<ImportedUserInput>,
}

#[derive(SimpleObject, Debug, Clone, Copy)]
pub struct ImportUsersPayload {
    pub created: i32,
    pub skipped: i32,
}

impl From<ImportUsersInput> for herald_users::import::ImportRequest {
    fn from(input: ImportUsersInput) -> Self {
        herald_users::import::ImportRequest {
            users: input
                .users
                .into_iter()
                .map(|user| herald_users::import::ImportRow {
                    name: user.name,
                    email: user.email,
                    preferences: user.preferences.map(Into::into),
                })
                .collect(),
        }
    }
}

impl From<herald_users::import::ImportOutcome> for ImportUsersPayload {
    fn from(outcome: herald_users::import::ImportOutcome) -> Self {
        let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        ImportUsersPayload {
            created: count(outcome.created),
            skipped: count(outcome.skipped),
        }
    }
}

/// Absent fields stay as they are; `null` quiet hours clear them.
#[derive(InputObject, Debug)]
pub struct PreferencesInput {
    pub promotions: Option<bool>,
    pub order_updates: Option<bool>,
    pub recommendations: Option<bool>,
    pub inventory_alerts: Option<bool>,
    pub categories: Option<Vec<String>>,
    pub channels: Option<Vec<Channel>>,
    pub timezone: Option<String>,
    pub quiet_hours_start: MaybeUndefined<String>,
    pub quiet_hours_end: MaybeUndefined<String>,
}

impl From<herald_events::Role> for Role {
    fn from(role: herald_events::Role) -> Self {
        match role {
            herald_events::Role::Customer => Role::Customer,
            herald_events::Role::Admin => Role::Admin,
        }
    }
}

impl From<herald_events::Channel> for Channel {
    fn from(channel: herald_events::Channel) -> Self {
        match channel {
            herald_events::Channel::InApp => Channel::InApp,
            herald_events::Channel::Email => Channel::Email,
        }
    }
}

impl From<Channel> for herald_events::Channel {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::InApp => herald_events::Channel::InApp,
            Channel::Email => herald_events::Channel::Email,
        }
    }
}

impl From<herald_events::Preferences> for NotificationPreferences {
    fn from(p: herald_events::Preferences) -> Self {
        NotificationPreferences {
            promotions: p.promotions,
            order_updates: p.order_updates,
            recommendations: p.recommendations,
            inventory_alerts: p.inventory_alerts,
            categories: p.categories,
            channels: p.channels.into_iter().map(Channel::from).collect(),
            timezone: p.timezone,
            quiet_hours_start: p.quiet_hours_start,
            quiet_hours_end: p.quiet_hours_end,
        }
    }
}

impl From<herald_users::store::User> for User {
    fn from(user: herald_users::store::User) -> Self {
        User {
            id: ID(user.id.to_string()),
            name: user.name,
            email: user.email,
            role: user.role.into(),
            preferences: user.preferences.into(),
            created_at: user.created_at,
        }
    }
}

impl From<herald_users::sessions::AuthPayload> for AuthPayload {
    fn from(payload: herald_users::sessions::AuthPayload) -> Self {
        AuthPayload {
            token: payload.token,
            user: payload.user.into(),
            refresh_token: Some(payload.refresh_token),
        }
    }
}

impl From<PreferencesInput> for herald_users::domain::PreferencesPatch {
    fn from(input: PreferencesInput) -> Self {
        herald_users::domain::PreferencesPatch {
            promotions: input.promotions,
            order_updates: input.order_updates,
            recommendations: input.recommendations,
            inventory_alerts: input.inventory_alerts,
            categories: input.categories,
            channels: input
                .channels
                .map(|channels| channels.into_iter().map(Into::into).collect()),
            timezone: input.timezone,
            quiet_hours_start: input.quiet_hours_start.into(),
            quiet_hours_end: input.quiet_hours_end.into(),
        }
    }
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

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum OrderStatus {
    Placed,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

/// A line of an order; its product is looked up in batches (one call per request level).
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct OrderItem {
    #[graphql(skip)]
    pub product_id: uuid::Uuid,
    pub quantity: i32,
    pub unit_price_cents: i32,
}

#[derive(SimpleObject, Debug, Clone)]
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

impl From<herald_events::OrderStatus> for OrderStatus {
    fn from(status: herald_events::OrderStatus) -> Self {
        match status {
            herald_events::OrderStatus::Placed => OrderStatus::Placed,
            herald_events::OrderStatus::Confirmed => OrderStatus::Confirmed,
            herald_events::OrderStatus::Shipped => OrderStatus::Shipped,
            herald_events::OrderStatus::Delivered => OrderStatus::Delivered,
            herald_events::OrderStatus::Cancelled => OrderStatus::Cancelled,
        }
    }
}

impl From<OrderStatus> for herald_events::OrderStatus {
    fn from(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Placed => herald_events::OrderStatus::Placed,
            OrderStatus::Confirmed => herald_events::OrderStatus::Confirmed,
            OrderStatus::Shipped => herald_events::OrderStatus::Shipped,
            OrderStatus::Delivered => herald_events::OrderStatus::Delivered,
            OrderStatus::Cancelled => herald_events::OrderStatus::Cancelled,
        }
    }
}

/// Amounts and quantities the orders service bounds to fit (a total at most
/// `MAX_TOTAL_CENTS`, a quantity at most 1000).
fn to_int(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

impl From<herald_orders::store::OrderItem> for OrderItem {
    fn from(item: herald_orders::store::OrderItem) -> Self {
        OrderItem {
            product_id: item.product_id,
            quantity: to_int(item.quantity),
            unit_price_cents: to_int(item.unit_price_cents),
        }
    }
}

impl From<herald_orders::store::Order> for Order {
    fn from(order: herald_orders::store::Order) -> Self {
        Order {
            id: ID(order.id.to_string()),
            user_id: ID(order.user_id.to_string()),
            items: order.items.into_iter().map(OrderItem::from).collect(),
            total_cents: to_int(order.total_cents),
            currency: order.currency,
            status: order.status.into(),
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
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
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct Recommendation {
    #[graphql(skip)]
    pub product_id: uuid::Uuid,
    pub score: f64,
    pub reason: String,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum ActivityType {
    View,
    Cart,
    Wishlist,
    Search,
}

impl From<herald_recommendations::recommender::Recommendation> for Recommendation {
    fn from(pick: herald_recommendations::recommender::Recommendation) -> Self {
        Recommendation {
            product_id: pick.product_id,
            score: pick.score,
            reason: pick.reason,
        }
    }
}

impl From<ActivityType> for herald_recommendations::recommender::SignalKind {
    fn from(kind: ActivityType) -> Self {
        use herald_recommendations::recommender::SignalKind;
        match kind {
            ActivityType::View => SignalKind::View,
            ActivityType::Cart => SignalKind::Cart,
            ActivityType::Wishlist => SignalKind::Wishlist,
            ActivityType::Search => SignalKind::Search,
        }
    }
}

#[derive(InputObject, Debug)]
pub struct UserActivityInput {
    #[graphql(name = "type")]
    pub kind: ActivityType,
    pub product_id: Option<ID>,
    pub query: Option<String>,
}

/// A scheduled job and how its last run went.
#[derive(SimpleObject, Debug, Clone)]
pub struct ScheduledJob {
    pub name: String,
    /// The cron expression (UTC); empty when the job is switched off.
    pub schedule: String,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// `running`, `ok: …` or `error: …`.
    pub last_outcome: Option<String>,
}

impl From<herald_scheduler::store::JobView> for ScheduledJob {
    fn from(job: herald_scheduler::store::JobView) -> Self {
        ScheduledJob {
            name: job.name,
            schedule: job.schedule,
            next_run_at: job.next_run_at,
            last_run_at: job.last_run_at,
            last_outcome: job.last_outcome,
        }
    }
}

/// An admin's campaign and how far it got.
#[derive(SimpleObject, Debug, Clone)]
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

#[derive(InputObject, Debug)]
pub struct PromotionInput {
    pub title: String,
    pub body: String,
    /// Only users who prefer, bought in or showed interest in this category; null: every
    /// opted-in user.
    pub category: Option<String>,
    /// Null: now.
    pub send_at: Option<DateTime<Utc>>,
}

impl From<herald_notifications::campaign::Promotion> for Promotion {
    fn from(promotion: herald_notifications::campaign::Promotion) -> Self {
        Promotion {
            id: ID(promotion.id.to_string()),
            title: promotion.title,
            body: promotion.body,
            category: promotion.category,
            send_at: promotion.send_at,
            status: promotion.status,
            recipients: i32::try_from(promotion.recipients).unwrap_or(i32::MAX),
        }
    }
}

impl From<PromotionInput> for herald_notifications::campaign::PromotionInput {
    fn from(input: PromotionInput) -> Self {
        herald_notifications::campaign::PromotionInput {
            title: input.title,
            body: input.body,
            category: input.category,
            send_at: input.send_at,
        }
    }
}
