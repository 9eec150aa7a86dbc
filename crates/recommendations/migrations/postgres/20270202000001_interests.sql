-- The categories each user showed interest in (bought, carted, wished for, viewed), each
-- announced once as recommendation.category_interest.
CREATE TABLE interests (
    user_id TEXT NOT NULL,
    category TEXT NOT NULL,
    PRIMARY KEY (user_id, category)
);
