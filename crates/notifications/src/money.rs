//! How amounts read in notifications.

/// An amount in minor units (cents) with its currency code, as shoppers read it:
/// `format_money(4250, "USD")` is `"42.50 USD"`.
pub fn format_money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::format_money;

    #[test]
    fn amounts_have_two_decimals_and_their_currency() {
        assert_eq!(format_money(4250, "USD"), "42.50 USD");
        assert_eq!(format_money(999, "EUR"), "9.99 EUR");
        assert_eq!(format_money(1205, "USD"), "12.05 USD");
        assert_eq!(format_money(5, "USD"), "0.05 USD");
        assert_eq!(format_money(0, "USD"), "0.00 USD");
        assert_eq!(format_money(100_000_000, "GBP"), "1000000.00 GBP");
    }

    #[test]
    fn negative_and_extreme_amounts_do_not_panic() {
        assert_eq!(format_money(-150, "USD"), "-1.50 USD");
        assert_eq!(format_money(-5, "USD"), "-0.05 USD");
        assert_eq!(format_money(i64::MIN, "USD"), "-92233720368547758.08 USD");
    }
}
