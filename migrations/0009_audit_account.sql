-- The account (connected number) a command acted on, when it acted on one.
ALTER TABLE audit ADD COLUMN account TEXT;
