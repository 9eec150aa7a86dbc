-- Who showed interest in which category (from recommendation.category_interest): a
-- promotion naming a category reaches them besides those who prefer it.
CREATE TABLE category_interests (
    category TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (category, user_id)
);
