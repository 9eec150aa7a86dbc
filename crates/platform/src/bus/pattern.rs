//! AMQP topic matching, so the embedded bus routes exactly like RabbitMQ.

/// Whether `routing_key` matches `pattern` (`*` = exactly one word, `#` = zero or more).
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    matches(&pattern, &key)
}

fn matches(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| matches(rest, &key[skip..])),
        Some((&word, rest)) => match key.split_first() {
            Some((k, key_rest)) => (word == "*" || word == *k) && matches(rest, key_rest),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn words_and_wildcards() {
        assert!(topic_matches("user.registered", "user.registered"));
        assert!(topic_matches("user.*", "user.registered"));
        assert!(!topic_matches("user.*", "user.preferences.updated"));
        assert!(topic_matches("user.#", "user.preferences.updated"));
        assert!(topic_matches("#", "order.placed"));
        assert!(topic_matches("#.placed", "order.placed"));
        assert!(!topic_matches("order.*", "user.registered"));
        assert!(!topic_matches("order", "order.placed"));
    }
}
