use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use herald_events::{Event, OutOfStock, PriceChanged, StockChanged};
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use serde_json::{Value, json};
use uuid::Uuid;

use super::TestService;

backend_tests!(
    admins_create_products_in_the_contract_shape,
    invalid_products_are_bad_user_input,
    only_admins_change_the_catalog,
    admins_update_details_and_set_stock,
    the_catalog_is_listed_in_creation_order_page_by_page_and_filtered,
    products_are_found_by_id_alone_or_in_batches
);

pub(super) fn beans() -> Value {
    json!({
        "name": "  Espresso Beans ",
        "description": "Dark roast, whole beans.",
        "category": " Coffee",
        "priceCents": 1299,
        "currency": "eur",
        "stock": 10
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

fn names(page: &Value) -> Vec<String> {
    page["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect()
}

impl TestService {
    pub(super) async fn create(&self, body: Value) -> Value {
        let admin = self.admin();
        let (status, product) = self
            .call(Method::POST, "/products", Some(&admin), Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{product}");
        product
    }

    pub(super) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, None).await
    }
}

async fn admins_create_products_in_the_contract_shape(set: BackendSet) {
    let s = TestService::start(set).await;
    let product = s.create(beans()).await;
    let mut keys: Vec<&str> = product
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "category",
            "createdAt",
            "currency",
            "description",
            "id",
            "name",
            "priceCents",
            "stock"
        ],
        "{set:?}"
    );
    assert_eq!(product["name"], "Espresso Beans");
    assert_eq!(product["category"], "coffee");
    assert_eq!(product["currency"], "EUR");
    assert_eq!(product["priceCents"], 1299);
    assert_eq!(product["stock"], 10);
    product["createdAt"]
        .as_str()
        .unwrap()
        .parse::<DateTime<Utc>>()
        .unwrap();
    let id = product["id"].as_str().unwrap();
    assert_eq!(
        s.get(&format!("/products/{id}")).await,
        (StatusCode::OK, product.clone())
    );

    let minimal = s
        .create(json!({"name": "Mug", "category": "kitchen", "priceCents": 0, "stock": 0}))
        .await;
    assert_eq!(minimal["description"], "");
    assert_eq!(minimal["currency"], "USD");
    s.finish().await;
}

async fn invalid_products_are_bad_user_input(set: BackendSet) {
    let s = TestService::start(set).await;
    let admin = s.admin();
    let cases = [
        with(beans(), "name", json!("   ")),
        with(beans(), "name", json!("n".repeat(201))),
        with(beans(), "description", json!("d".repeat(5001))),
        with(beans(), "category", json!("")),
        with(beans(), "category", json!("c".repeat(65))),
        with(beans(), "priceCents", json!(-1)),
        with(beans(), "priceCents", json!(1_000_000_001)),
        with(beans(), "priceCents", json!("12")),
        with(beans(), "priceCents", json!(12.5)),
        with(beans(), "currency", json!("EURO")),
        with(beans(), "stock", json!(-1)),
        without(beans(), "name"),
        without(beans(), "stock"),
        json!([]),
    ];
    for body in cases {
        let (status, error) = s
            .call(Method::POST, "/products", Some(&admin), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{set:?} {body}");
        assert_eq!(error["code"], "BAD_USER_INPUT", "{body}");
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    let (_, page) = s.get("/products").await;
    assert_eq!(page["totalCount"], 0);
    assert!(s.events().await.is_empty());
    s.finish().await;
}

async fn only_admins_change_the_catalog(set: BackendSet) {
    let s = TestService::start(set).await;
    let product = s.create(beans()).await;
    let id = product["id"].as_str().unwrap();
    let customer = s.customer();
    let writes = [
        (Method::POST, "/products".to_owned(), beans()),
        // Even an invalid body is refused for who sends it first.
        (Method::POST, "/products".to_owned(), json!({})),
        (
            Method::PATCH,
            format!("/products/{id}"),
            json!({"priceCents": 1}),
        ),
        (
            Method::PUT,
            format!("/products/{id}/stock"),
            json!({"stock": 0}),
        ),
    ];
    for (method, path, body) in writes {
        let (status, error) = s
            .call(method.clone(), &path, Some(&customer), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{set:?} {method} {path}");
        assert_eq!(error["code"], "FORBIDDEN");
        let (status, error) = s.call(method.clone(), &path, None, Some(body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(error["code"], "UNAUTHENTICATED");
    }
    assert_eq!(s.get(&format!("/products/{id}")).await.1, product);
    assert_eq!(s.events().await.len(), 1);
    s.finish().await;
}

async fn admins_update_details_and_set_stock(set: BackendSet) {
    let s = TestService::start(set).await;
    let admin = s.admin();
    let product = s.create(beans()).await;
    let id = product["id"].as_str().unwrap();
    let before = s.events().await.len();

    let (status, updated) = s
        .call(
            Method::PATCH,
            &format!("/products/{id}"),
            Some(&admin),
            Some(json!({"priceCents": 999, "description": "Now cheaper."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set:?} {updated}");
    assert_eq!(updated["priceCents"], 999);
    assert_eq!(updated["description"], "Now cheaper.");
    assert_eq!(updated["name"], "Espresso Beans");
    let events = s.events().await;
    assert_eq!(events.len(), before + 1);
    let changed: PriceChanged = events[before].payload().unwrap();
    assert_eq!(
        (changed.old_price_cents, changed.new_price_cents),
        (1299, 999)
    );

    let (status, stocked) = s
        .call(
            Method::PUT,
            &format!("/products/{id}/stock"),
            Some(&admin),
            Some(json!({"stock": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stocked["stock"], 0);
    assert_eq!(
        s.event_types_since(before + 1).await,
        [StockChanged::TYPE, OutOfStock::TYPE]
    );

    let unknown = Uuid::now_v7();
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/products/{unknown}"),
            json!({"name": "X"}),
        ),
        (
            Method::PATCH,
            "/products/not-an-id".to_owned(),
            json!({"name": "X"}),
        ),
        (
            Method::PUT,
            format!("/products/{unknown}/stock"),
            json!({"stock": 1}),
        ),
        (
            Method::PUT,
            "/products/beans/stock".to_owned(),
            json!({"stock": 1}),
        ),
    ] {
        let (status, error) = s.call(method, &path, Some(&admin), Some(body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error["code"], "NOT_FOUND");
    }
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/products/{id}"),
            json!({"priceCents": -5}),
        ),
        (
            Method::PATCH,
            format!("/products/{id}"),
            json!({"category": " "}),
        ),
        (
            Method::PUT,
            format!("/products/{id}/stock"),
            json!({"stock": -1}),
        ),
        (Method::PUT, format!("/products/{id}/stock"), json!({})),
    ] {
        let (status, error) = s.call(method, &path, Some(&admin), Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(error["code"], "BAD_USER_INPUT");
    }
    s.finish().await;
}

async fn the_catalog_is_listed_in_creation_order_page_by_page_and_filtered(set: BackendSet) {
    let s = TestService::start(set).await;
    for (name, category, description) in [
        ("Espresso Beans", "Coffee", "Dark roast"),
        ("Mug", "kitchen", "Holds 300 ml of COFFEE"),
        ("Green Tea", "tea", "Sencha"),
        ("Decaf Beans", "coffee", "100% Arabica, no caffeine"),
        ("Filter_Papers", "coffee", "For pour-over"),
    ] {
        s.create(json!({
            "name": name, "category": category, "description": description,
            "priceCents": 500, "stock": 5
        }))
        .await;
    }

    let mut seen = Vec::new();
    let mut path = "/products?first=2".to_owned();
    loop {
        let (status, page) = s.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{set:?} {page}");
        assert_eq!(page["totalCount"], 5);
        let cursor = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        assert_eq!(
            cursor.as_deref(),
            page["nodes"]
                .as_array()
                .unwrap()
                .last()
                .map(|n| n["id"].as_str().unwrap())
        );
        seen.push(names(&page));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        path = format!("/products?first=2&after={}", cursor.unwrap());
    }
    assert_eq!(
        seen,
        [
            vec!["Espresso Beans", "Mug"],
            vec!["Green Tea", "Decaf Beans"],
            vec!["Filter_Papers"]
        ]
    );

    let filtered = [
        (
            "category=COFFEE",
            vec!["Espresso Beans", "Decaf Beans", "Filter_Papers"],
        ),
        ("category=tea", vec!["Green Tea"]),
        ("category=garden", vec![]),
        ("search=beans", vec!["Espresso Beans", "Decaf Beans"]),
        ("search=coffee", vec!["Mug"]),
        ("search=%25", vec!["Decaf Beans"]),
        ("search=_", vec!["Filter_Papers"]),
        ("search=a_a", vec![]),
        ("search=%5C", vec![]),
        ("search=arabica&category=coffee", vec!["Decaf Beans"]),
        ("search=arabica&category=tea", vec![]),
        ("category=coffee&first=1", vec!["Espresso Beans"]),
    ];
    for (query, expected) in filtered {
        let (status, page) = s.get(&format!("/products?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(names(&page), expected, "{set:?} {query}");
        if query != "category=coffee&first=1" {
            assert_eq!(page["totalCount"], expected.len(), "{query}");
        }
    }
    let (_, first) = s.get("/products?category=coffee&first=1").await;
    assert_eq!(first["totalCount"], 3);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let cursor = first["pageInfo"]["endCursor"].as_str().unwrap();
    let (_, rest) = s
        .get(&format!("/products?category=coffee&after={cursor}"))
        .await;
    assert_eq!(names(&rest), ["Decaf Beans", "Filter_Papers"]);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    // A blank search filters nothing.
    assert_eq!(s.get("/products?search=%20").await.1["totalCount"], 5);

    let (_, empty) = s.get("/products?category=garden").await;
    assert_eq!(
        empty["pageInfo"],
        json!({"hasNextPage": false, "endCursor": null})
    );

    for query in [
        "first=0",
        "first=101",
        "first=-1",
        "first=many",
        "after=not-a-cursor",
    ] {
        let (status, error) = s.get(&format!("/products?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(error["code"], "BAD_USER_INPUT");
    }
    assert_eq!(s.get("/products?first=100").await.0, StatusCode::OK);
    s.finish().await;
}

async fn products_are_found_by_id_alone_or_in_batches(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.create(beans()).await;
    let mug = s
        .create(json!({"name": "Mug", "category": "kitchen", "priceCents": 800, "stock": 3}))
        .await;
    for path in [
        format!("/products/{}", Uuid::now_v7()),
        "/products/not-an-id".to_owned(),
    ] {
        let (status, error) = s.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{set:?} {path}");
        assert_eq!(error["code"], "NOT_FOUND");
    }

    let ids = json!({"ids": [
        mug["id"], Uuid::now_v7().to_string(), "not-an-id", beans["id"], mug["id"]
    ]});
    let (status, found) = s
        .call(Method::POST, "/products/lookup", None, Some(ids))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let mut found = found.as_array().unwrap().clone();
    found.sort_by_key(|p| p["name"].as_str().unwrap().to_owned());
    assert_eq!(found, [beans.clone(), mug.clone()]);

    let (status, none) = s
        .call(
            Method::POST,
            "/products/lookup",
            None,
            Some(json!({"ids": []})),
        )
        .await;
    assert_eq!((status, none), (StatusCode::OK, json!([])));
    let too_many: Vec<String> = (0..1001).map(|_| Uuid::now_v7().to_string()).collect();
    let (status, error) = s
        .call(
            Method::POST,
            "/products/lookup",
            None,
            Some(json!({"ids": too_many})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["code"], "BAD_USER_INPUT");
    s.finish().await;
}
