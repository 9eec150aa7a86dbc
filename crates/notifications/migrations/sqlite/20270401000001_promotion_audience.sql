-- How many users a promotion created now would reach, by category ('' for a promotion
-- without one): the recipients with promotions on who prefer the category or showed
-- interest in it (the rule of the campaign's fan-out). Kept by the triggers below as
-- recipients and interests change, so `promotionAudience` reads one row however many
-- users there are. (SQLite has one writer at a time: a row trigger each is enough. A
-- trigger's INSERT OR IGNORE would take the conflict policy of the statement that fired
-- it, so missing rows are inserted where they are missing instead.)
CREATE TABLE promotion_audience (
    category TEXT PRIMARY KEY,
    users INTEGER NOT NULL
);

CREATE INDEX category_interests_by_user ON category_interests (user_id);

CREATE TRIGGER promotion_audience_on_insert AFTER INSERT ON recipients
FOR EACH ROW WHEN NEW.promotions
BEGIN
    INSERT INTO promotion_audience (category, users)
    SELECT category, 0 FROM (
        SELECT '' AS category
        UNION SELECT lower(value) FROM json_each(NEW.categories)
        UNION SELECT category FROM category_interests WHERE user_id = NEW.user_id
    ) AS m WHERE m.category NOT IN (SELECT category FROM promotion_audience);
    UPDATE promotion_audience SET users = users + 1 WHERE category IN (
        SELECT ''
        UNION SELECT lower(value) FROM json_each(NEW.categories)
        UNION SELECT category FROM category_interests WHERE user_id = NEW.user_id
    );
END;

CREATE TRIGGER promotion_audience_on_update AFTER UPDATE OF promotions, categories ON recipients
FOR EACH ROW
BEGIN
    UPDATE promotion_audience SET users = users - 1 WHERE OLD.promotions AND category IN (
        SELECT ''
        UNION SELECT lower(value) FROM json_each(OLD.categories)
        UNION SELECT category FROM category_interests WHERE user_id = OLD.user_id
    );
    INSERT INTO promotion_audience (category, users)
    SELECT category, 0 FROM (
        SELECT '' AS category
        UNION SELECT lower(value) FROM json_each(NEW.categories)
        UNION SELECT category FROM category_interests WHERE user_id = NEW.user_id
    ) AS m WHERE NEW.promotions AND m.category NOT IN (SELECT category FROM promotion_audience);
    UPDATE promotion_audience SET users = users + 1 WHERE NEW.promotions AND category IN (
        SELECT ''
        UNION SELECT lower(value) FROM json_each(NEW.categories)
        UNION SELECT category FROM category_interests WHERE user_id = NEW.user_id
    );
END;

CREATE TRIGGER promotion_audience_on_interest AFTER INSERT ON category_interests
FOR EACH ROW WHEN EXISTS (
    SELECT 1 FROM recipients r
    WHERE r.user_id = NEW.user_id AND r.promotions
      AND NOT EXISTS (SELECT 1 FROM json_each(r.categories) WHERE lower(value) = NEW.category)
)
BEGIN
    INSERT INTO promotion_audience (category, users)
    SELECT NEW.category, 0
    WHERE NEW.category NOT IN (SELECT category FROM promotion_audience);
    UPDATE promotion_audience SET users = users + 1 WHERE category = NEW.category;
END;

INSERT INTO promotion_audience (category, users)
SELECT category, COUNT(*) FROM (
    SELECT '' AS category, r.user_id FROM recipients r WHERE r.promotions
    UNION
    SELECT lower(j.value), r.user_id FROM recipients r, json_each(r.categories) AS j
    WHERE r.promotions
    UNION
    SELECT i.category, r.user_id
    FROM recipients r JOIN category_interests i ON i.user_id = r.user_id
    WHERE r.promotions
)
GROUP BY category;
