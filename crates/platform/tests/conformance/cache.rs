//! The cache contract: values and counters, each gone after its time to live.

use std::sync::Arc;
use std::time::Duration;

use herald_platform::backend_tests;
use herald_platform::cache::{Cache, MemoryCache, RedisCache};
use herald_platform::testing::{BackendSet, real_backends, unique_prefix};

backend_tests!(
    a_stored_value_is_read_back_until_deleted,
    a_value_expires_after_its_time_to_live,
    a_counter_counts_within_a_window_fixed_at_its_creation,
    counters_and_values_are_changed_several_at_once,
    a_generation_starts_above_any_earlier_one_and_is_read_with_its_value,
    a_published_message_reaches_every_listener_of_its_channel_and_no_other,
    attempts_pass_freely_then_wait_longer_each_time,
    attempts_are_forgotten_after_their_window
);

/// Runs `scenario` on the in-process cache or on Redis; keys are unique to the test, and
/// short-lived.
async fn on_cache(set: BackendSet, scenario: impl AsyncFn(&Cache)) {
    let cache = match set {
        BackendSet::Embedded => Cache::new(Arc::new(MemoryCache::new(1_000)), &unique_prefix()),
        BackendSet::Real | BackendSet::Kafka => {
            let real = real_backends().expect("real backends");
            let redis = RedisCache::connect(&real.redis_url)
                .await
                .expect("connecting to Redis");
            Cache::new(Arc::new(redis), &unique_prefix())
        }
    };
    eprintln!("cache scenario on the {set:?} backends");
    assert!(cache.ping().await, "the cache answers");
    scenario(&cache).await;
}

async fn a_stored_value_is_read_back_until_deleted(set: BackendSet) {
    on_cache(set, async |cache: &Cache| {
        let ttl = Duration::from_secs(60);
        assert_eq!(cache.get_json::<Vec<String>>("prefs:ada").await, None);
        cache
            .set_json("prefs:ada", &vec!["email", "in_app"], ttl)
            .await;
        assert_eq!(
            cache.get_json::<Vec<String>>("prefs:ada").await,
            Some(vec!["email".into(), "in_app".into()])
        );
        cache.set_json("prefs:ada", &vec!["sms"], ttl).await;
        assert_eq!(
            cache.get_json::<Vec<String>>("prefs:ada").await,
            Some(vec!["sms".into()])
        );
        cache.delete("prefs:ada").await;
        assert_eq!(cache.get_json::<Vec<String>>("prefs:ada").await, None);
    })
    .await;
}

async fn a_value_expires_after_its_time_to_live(set: BackendSet) {
    on_cache(set, async |cache: &Cache| {
        cache
            .set_json("recs:ada", &42, Duration::from_millis(300))
            .await;
        cache
            .set_json("recs:bob", &7, Duration::from_secs(60))
            .await;
        assert_eq!(cache.get_json::<i32>("recs:ada").await, Some(42));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(cache.get_json::<i32>("recs:ada").await, None);
        assert_eq!(cache.get_json::<i32>("recs:bob").await, Some(7));
        cache.delete("recs:bob").await;
    })
    .await;
}

async fn a_counter_counts_within_a_window_fixed_at_its_creation(set: BackendSet) {
    on_cache(set, async |cache: &Cache| {
        let window = Duration::from_millis(600);
        assert_eq!(cache.incr("rate:ada", window).await, Some(1));
        assert_eq!(cache.incr("rate:ada", window).await, Some(2));
        assert_eq!(cache.incr("rate:bob", window).await, Some(1));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(cache.incr("rate:ada", window).await, Some(3));
        // Increments do not extend the window: it closes 600 ms after the first one.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(cache.incr("rate:ada", window).await, Some(1));
        assert_eq!(cache.incr("rate:ada", window).await, Some(2));
    })
    .await;
}

async fn counters_and_values_are_changed_several_at_once(set: BackendSet) {
    on_cache(set, async |cache: &Cache| {
        let ttl = Duration::from_secs(60);
        assert_eq!(cache.incr("seen:ada", ttl).await, Some(1));
        assert_eq!(cache.incr("seen:bob", ttl).await, Some(1));
        // Only counters that exist move.
        let counters = ["seen:ada", "seen:bob", "seen:dan"].map(str::to_owned);
        cache.incr_existing_each(&counters).await;
        assert_eq!(cache.get_json::<i64>("seen:ada").await, Some(2));
        assert_eq!(cache.get_json::<i64>("seen:dan").await, None);
        assert_eq!(cache.incr("seen:ada", ttl).await, Some(3));
        assert_eq!(cache.incr("seen:bob", ttl).await, Some(3));

        cache.set_json("recs:ada", &1, ttl).await;
        cache.set_json("recs:bob", &2, ttl).await;
        cache.set_json("recs:cy", &3, ttl).await;
        cache
            .delete_each(&["recs:ada".to_owned(), "recs:bob".to_owned()])
            .await;
        assert_eq!(cache.get_json::<i32>("recs:ada").await, None);
        assert_eq!(cache.get_json::<i32>("recs:bob").await, None);
        assert_eq!(cache.get_json::<i32>("recs:cy").await, Some(3));
    })
    .await;
}

async fn a_generation_starts_above_any_earlier_one_and_is_read_with_its_value(set: BackendSet) {
    on_cache(set, async |cache: &Cache| {
        let ttl = Duration::from_secs(60);
        let micros = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
        };
        let before = micros(std::time::SystemTime::now());
        let first = cache.current_generation("gen:ada", ttl).await.unwrap();
        // Created at the clock (Redis' own, on this machine), then read as it is.
        assert!(
            (before - 1_000_000..before + 60_000_000).contains(&first),
            "{first} starts at the clock ({before})"
        );
        assert_eq!(cache.current_generation("gen:ada", ttl).await, Some(first));
        cache.incr_existing_each(&["gen:ada".to_owned()]).await;
        assert_eq!(
            cache.current_generation("gen:ada", ttl).await,
            Some(first + 1)
        );

        // The value beside comes in the same round trip; absent or unreadable is a miss.
        let read = cache
            .generation::<(i64, i64)>("gen:ada", ttl, Some("count:ada"))
            .await;
        assert_eq!(read, Some((first + 1, None)));
        cache.set_json("count:ada", &(first + 1, 5), ttl).await;
        let read = cache
            .generation::<(i64, i64)>("gen:ada", ttl, Some("count:ada"))
            .await;
        assert_eq!(read, Some((first + 1, Some((first + 1, 5)))));
        cache.set_json("count:ada", &"not a pair", ttl).await;
        let read = cache
            .generation::<(i64, i64)>("gen:ada", ttl, Some("count:ada"))
            .await;
        assert_eq!(read, Some((first + 1, None)));

        // Lost (a restarted cache, an eviction) and created again: above every value the
        // lost one held, so nothing kept under an old generation matches.
        cache.delete("gen:ada").await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        let again = cache.current_generation("gen:ada", ttl).await.unwrap();
        assert!(again > first + 1, "{again} > {}", first + 1);
        cache.delete("gen:ada").await;
        cache.delete("count:ada").await;
    })
    .await;
}

async fn a_published_message_reaches_every_listener_of_its_channel_and_no_other(set: BackendSet) {
    on_cache(set, async |cache: &Cache| {
        use futures::StreamExt;
        let wait = Duration::from_secs(5);
        assert!(!cache.has_listeners("live").await, "nobody listens yet");
        // Nobody listening: the message is simply gone.
        cache.publish("live", "before anyone listened").await;
        let mut first = cache.subscribe("live").await.unwrap();
        let mut second = cache.subscribe("live").await.unwrap();
        let mut elsewhere = cache.subscribe("other").await.unwrap();
        assert!(cache.has_listeners("live").await);
        cache.publish("live", "hello").await;
        cache.publish("live", "again").await;
        for listener in [&mut first, &mut second] {
            let got: Vec<String> = tokio::time::timeout(wait, listener.by_ref().take(2).collect())
                .await
                .expect("both messages within 5 s");
            assert_eq!(got, ["hello", "again"]);
        }
        let nothing = tokio::time::timeout(Duration::from_millis(200), elsewhere.next()).await;
        assert!(
            nothing.is_err(),
            "another channel hears nothing: {nothing:?}"
        );
        drop((first, second, elsewhere));
        // Redis counts a closed subscription once its connection is gone.
        let gone = async {
            while cache.has_listeners("live").await {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(wait, gone)
            .await
            .expect("no listener left within 5 s");
    })
    .await;
}

async fn attempts_pass_freely_then_wait_longer_each_time(set: BackendSet) {
    use herald_platform::cache::Backoff;
    on_cache(set, async |cache: &Cache| {
        let backoff = Backoff {
            free: 3,
            window: Duration::from_secs(60),
            first_delay: Duration::from_millis(300),
            max_delay: Duration::from_millis(500),
        };
        for _ in 0..3 {
            assert_eq!(cache.attempt("login:ada", &backoff).await, None);
        }
        // The fourth must wait the first delay after the third.
        let wait = cache.attempt("login:ada", &backoff).await.expect("a wait");
        assert!(wait <= Duration::from_millis(300), "{wait:?}");
        // A refused attempt is not counted; another key is not held back.
        assert!(cache.attempt("login:ada", &backoff).await.is_some());
        assert_eq!(cache.attempt("login:bob", &backoff).await, None);
        tokio::time::sleep(wait + Duration::from_millis(50)).await;
        // The fourth passes; the fifth waits twice as long, capped at the longest delay.
        assert_eq!(cache.attempt("login:ada", &backoff).await, None);
        let wait = cache.attempt("login:ada", &backoff).await.expect("a wait");
        assert!(
            wait > Duration::from_millis(300) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // A refund takes a counted attempt back, without lifting the wait.
        cache.refund("login:ada").await;
        assert!(cache.attempt("login:ada", &backoff).await.is_some());
        cache.delete("login:ada").await;
        assert_eq!(cache.attempt("login:ada", &backoff).await, None);
        cache.delete("login:ada").await;
        cache.delete("login:bob").await;
    })
    .await;
}

async fn attempts_are_forgotten_after_their_window(set: BackendSet) {
    use herald_platform::cache::Backoff;
    on_cache(set, async |cache: &Cache| {
        let backoff = Backoff {
            free: 1,
            window: Duration::from_millis(400),
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(100),
        };
        assert_eq!(cache.attempt("signup:ada", &backoff).await, None);
        assert!(cache.attempt("signup:ada", &backoff).await.is_some());
        tokio::time::sleep(Duration::from_millis(600)).await;
        // The window passed without attempts: free again.
        assert_eq!(cache.attempt("signup:ada", &backoff).await, None);
        assert!(cache.attempt("signup:ada", &backoff).await.is_some());
        cache.delete("signup:ada").await;
    })
    .await;
}
