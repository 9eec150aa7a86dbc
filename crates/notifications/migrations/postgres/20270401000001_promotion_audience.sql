-- How many users a promotion created now would reach, by category ('' for a promotion
-- without one): the recipients with promotions on who prefer the category or showed
-- interest in it (the rule of the campaign's fan-out). Kept by the triggers below as
-- recipients and interests change, a statement at a time, so `promotionAudience` reads
-- one row however many users there are.
CREATE TABLE promotion_audience (
    category TEXT PRIMARY KEY,
    users BIGINT NOT NULL
);

CREATE INDEX category_interests_by_user ON category_interests (user_id);

-- Recipients inserted: each joins the audiences it belongs to.
CREATE FUNCTION promotion_audience_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO promotion_audience (category, users)
    SELECT category, COUNT(*) FROM (
        SELECT '' AS category, n.user_id FROM new_rows n WHERE n.promotions
        UNION
        SELECT lower(c.value), n.user_id
        FROM new_rows n, jsonb_array_elements_text(n.categories::jsonb) AS c(value)
        WHERE n.promotions
        UNION
        SELECT i.category, n.user_id
        FROM new_rows n JOIN category_interests i ON i.user_id = n.user_id
        WHERE n.promotions
    ) AS members
    GROUP BY category
    ON CONFLICT (category) DO UPDATE SET users = promotion_audience.users + excluded.users;
    RETURN NULL;
END $$;

CREATE TRIGGER promotion_audience_on_insert AFTER INSERT ON recipients
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION promotion_audience_inserted();

-- Recipients changed: they leave the audiences they were in and join those they are in
-- now (a change of name or address nets to nothing and writes nothing).
CREATE FUNCTION promotion_audience_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO promotion_audience (category, users)
    SELECT category, SUM(change) FROM (
        SELECT category, 1 AS change FROM (
            SELECT '' AS category, n.user_id FROM new_rows n WHERE n.promotions
            UNION
            SELECT lower(c.value), n.user_id
            FROM new_rows n, jsonb_array_elements_text(n.categories::jsonb) AS c(value)
            WHERE n.promotions
            UNION
            SELECT i.category, n.user_id
            FROM new_rows n JOIN category_interests i ON i.user_id = n.user_id
            WHERE n.promotions
        ) AS now_in
        UNION ALL
        SELECT category, -1 FROM (
            SELECT '' AS category, o.user_id FROM old_rows o WHERE o.promotions
            UNION
            SELECT lower(c.value), o.user_id
            FROM old_rows o, jsonb_array_elements_text(o.categories::jsonb) AS c(value)
            WHERE o.promotions
            UNION
            SELECT i.category, o.user_id
            FROM old_rows o JOIN category_interests i ON i.user_id = o.user_id
            WHERE o.promotions
        ) AS was_in
    ) AS changes
    GROUP BY category
    HAVING SUM(change) <> 0
    ON CONFLICT (category) DO UPDATE SET users = promotion_audience.users + excluded.users;
    RETURN NULL;
END $$;

CREATE TRIGGER promotion_audience_on_update AFTER UPDATE ON recipients
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION promotion_audience_updated();

-- Interests noted: a recipient with promotions on joins the category's audience unless
-- they prefer it already. Their rows are locked first, so a concurrent change of their
-- preferences counts with these interests, or these count with the changed preferences.
CREATE FUNCTION promotion_audience_interested() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM recipients r JOIN new_rows n ON n.user_id = r.user_id FOR SHARE OF r;
    INSERT INTO promotion_audience (category, users)
    SELECT n.category, COUNT(*)
    FROM new_rows n JOIN recipients r ON r.user_id = n.user_id
    WHERE r.promotions AND NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(r.categories::jsonb) AS c(value)
        WHERE lower(c.value) = n.category
    )
    GROUP BY n.category
    ON CONFLICT (category) DO UPDATE SET users = promotion_audience.users + excluded.users;
    RETURN NULL;
END $$;

CREATE TRIGGER promotion_audience_on_interest AFTER INSERT ON category_interests
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION promotion_audience_interested();

-- The audiences of the recipients and interests kept so far.
INSERT INTO promotion_audience (category, users)
SELECT category, COUNT(*) FROM (
    SELECT '' AS category, r.user_id FROM recipients r WHERE r.promotions
    UNION
    SELECT lower(c.value), r.user_id
    FROM recipients r, jsonb_array_elements_text(r.categories::jsonb) AS c(value)
    WHERE r.promotions
    UNION
    SELECT i.category, r.user_id
    FROM recipients r JOIN category_interests i ON i.user_id = r.user_id
    WHERE r.promotions
) AS members
GROUP BY category;
