//! Rows handed to one statement as a JSON parameter read back the same on both engines.

use herald_platform::backend_tests;
use herald_platform::bulk::{JsonRows, SqlType, json_list, select_list, select_rows};
use herald_platform::db::Database;
use herald_platform::testing::{BackendSet, drop_schema, isolated_settings};

backend_tests!(rows_given_as_json_are_stored_as_they_were);

async fn rows_given_as_json_are_stored_as_they_were(set: BackendSet) {
    eprintln!("bulk rows on the {set:?} backends");
    let dir = tempfile::tempdir().expect("a data directory");
    let settings = isolated_settings(set, dir.path());
    let db = Database::connect(&settings, "bulk")
        .await
        .expect("connecting");
    let backend = db.backend();
    sqlx::query("CREATE TABLE items (id TEXT PRIMARY KEY, note TEXT, n BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .expect("creating the table");
    let written: Vec<(String, Option<String>, i64)> = vec![
        (
            "a".into(),
            Some("quotes \" and \\ backslashes".into()),
            i64::MAX,
        ),
        ("b".into(), None, i64::MIN),
        (
            "c".into(),
            Some("line\nbreak, tab\t, ünïcödé 🎉, {\"json\": [1]}".into()),
            0,
        ),
        ("d".into(), Some(String::new()), -1),
    ];
    let mut rows = JsonRows::new();
    for row in &written {
        rows.push(row).expect("encoding a row");
    }
    let sql = format!(
        "INSERT INTO items (id, note, n) {} ON CONFLICT DO NOTHING RETURNING id",
        select_rows(
            backend,
            1,
            &[
                ("id", SqlType::Text),
                ("note", SqlType::Text),
                ("n", SqlType::BigInt)
            ]
        )
    );
    let json = rows.finish();
    let mut inserted: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(&json)
        .fetch_all(db.pool())
        .await
        .expect("inserting the rows");
    inserted.sort();
    assert_eq!(inserted, ["a", "b", "c", "d"]);
    let again: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(&json)
        .fetch_all(db.pool())
        .await
        .expect("inserting them again");
    assert!(again.is_empty(), "conflicting rows are left out");

    let read: Vec<(String, Option<String>, i64)> =
        sqlx::query_as("SELECT id, note, n FROM items ORDER BY id")
            .fetch_all(db.pool())
            .await
            .expect("reading the rows");
    assert_eq!(read, written);

    let picked: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM items WHERE id IN ({}) ORDER BY id",
        select_list(backend, 1)
    )))
    .bind(json_list(["c", "a", "z"]).expect("encoding the list"))
    .fetch_all(db.pool())
    .await
    .expect("selecting by a list");
    assert_eq!(picked, ["a", "c"]);
    drop_schema(&db).await;
}
