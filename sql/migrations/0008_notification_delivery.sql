-- 0008_notification_delivery.sql — per-notifier delivery of the ChangeSet notification outbox
-- (src/changeset/notify.c) and keyset reading of in-app notifications.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. An outbox row is delivered to every registered notifier (in-app, webhook, extensions);
--     delivered_to names those that succeeded, so a retry calls only the ones that failed and
--     a notifier that succeeded is never called twice for a row (short of a crash between its
--     success and the commit: at-least-once).
--  2. delivered_at is set only when every notifier has succeeded. A row that exhausted its
--     attempts keeps delivered_at NULL and gets abandoned_at: it is never mistaken for a
--     delivered one and stays for inspection.
--  3. Unread in-app notifications are listed newest first by (store_id, id) keyset.

ALTER TABLE notification_outbox
    ADD COLUMN delivered_to text[] NOT NULL DEFAULT '{}',
    ADD COLUMN abandoned_at timestamptz NULL;

DROP INDEX notification_outbox_due_idx;
CREATE INDEX notification_outbox_due_idx ON notification_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;

CREATE INDEX notifications_unread_idx ON notifications (store_id, id DESC) WHERE read_at IS NULL;
