/*
 * changeset_internal.h — what the files of src/changeset/ share and nobody else sees.
 */
#ifndef PE_CHANGESET_INTERNAL_H
#define PE_CHANGESET_INTERNAL_H

#include "pe/changeset.h"

/* The service (service.c builds it; notify.c reads the notifiers, lifecycle.c the config).
 * Read-only after pe_changeset_service_new, hence shared by threads without a lock. */
struct pe_changeset_service {
    pe_changeset_config_t cfg;
    char *webhook_url;
    char *webhook_secret;
    pe_changeset_notifier_t notifiers[PE_CHANGESET_MAX_NOTIFIERS]; /* in delivery order */
    size_t nnotifiers;
};

/* The service's now (cfg.clock, else the wall clock), Unix µs. */
int64_t pe_changeset_now(const pe_changeset_service_t *svc);

/* ---- service.c: the ChangeSet row, shared with lifecycle.c ---------------------------------- */

/* One ChangeSet row as a write sees it: the document (owned; edited in place by a write) and
 * the columns that are not part of it. */
typedef struct {
    cJSON *doc;
    pe_changeset_state_t state;
    int64_t version;
    int64_t audit_seq;
    char audit_head[PE_AUDIT_HASH_LEN]; /* "" before the first audit event */
} pe_changeset_row_t;

/* Empties res before a call fills it. */
void pe_changeset_result_init(pe_changeset_result_t *res);
/* Reads the row of id (locking it FOR UPDATE when lock, for the caller's transaction). Returns
 * 0 and *out (free with pe_changeset_row_free), PE_ENOTFOUND (no such ChangeSet in store_id, or
 * not an id) or a PE_E… code; *out is empty on failure. */
int pe_changeset_row_load(pe_db_conn_t *conn, const char *store_id, const char *id, bool lock,
                          pe_changeset_row_t *out);
/* Frees what the row owns; the row stays reusable. */
void pe_changeset_row_free(pe_changeset_row_t *r);
/* Adds the JSON document the database built in (row, 0) of r to arr (a page of a list).
 * Returns 0, PE_EINTERNAL (not JSON) or PE_ENOMEM. */
int pe_changeset_json_row_add(cJSON *arr, const pe_db_result_t *r, size_t row);
/* The document as GET returns it (auditTrail included). Returns 0 and *out (caller deletes), or
 * a PE_E… code. */
int pe_changeset_doc_read(pe_db_conn_t *conn, const char *store_id, const char *id, cJSON **out);
/* Appends one audit event to the chain of row (locked by the caller, in its transaction) and
 * moves row's head; now_us is the event's time. metadata is borrowed (NULL = {}). Returns 0 or a
 * PE_E… code. */
int pe_changeset_audit_append(pe_db_conn_t *conn, const char *store_id, const char *cs_id,
                              pe_changeset_row_t *row, const pe_changeset_actor_info_t *actor,
                              int64_t now_us, const char *action, const char *prev_state,
                              const char *new_state, const char *reason, const cJSON *metadata);
/* Inserts one notification_outbox row (kind "changeset.…") in the caller's transaction, for the
 * dispatcher of notify.c (now_us: its occurredAt). from may be NULL (a creation). Returns 0 or a
 * PE_E… code. */
int pe_changeset_outbox_queue(pe_db_conn_t *conn, const char *store_id, const char *cs_id,
                              int64_t now_us, const char *kind, const char *title, const char *from,
                              const char *to, const char *reason,
                              const pe_changeset_actor_info_t *actor);

/* ---- notify.c ------------------------------------------------------------------------------ */

/* True for 1..32 of [a-z0-9_.-] (a name stored in notification_outbox.delivered_to). Pure. */
bool pe_changeset_notifier_name_valid(const char *name);
/* The built-in notifiers (notify.c). in_app needs no ctx; webhook's ctx is the service. */
int pe_changeset_deliver_in_app(void *ctx, const pe_changeset_notification_t *n, char *err,
                                size_t errlen);
int pe_changeset_deliver_webhook(void *ctx, const pe_changeset_notification_t *n, char *err,
                                 size_t errlen);

/* ---- audit.c ------------------------------------------------------------------------------- */

/* Appends the metadata text that is stored and hashed: canonical JSON (keys sorted bytewise,
 * one number format) of metadata, "{}" for NULL. Returns 0, PE_EINVAL (nested too deep) or
 * PE_ENOMEM. Pure. */
int pe_changeset_audit_metadata_text(const cJSON *metadata, pe_buf_t *out);
/* Row i of a result with the audit columns (audit.c ROW_COLUMNS) as an AuditEvent object, or
 * NULL on ENOMEM / unreadable metadata. Caller deletes. */
cJSON *pe_changeset_audit_row_json(const pe_db_result_t *res, size_t i);
/* Appends the AuditEvents of one ChangeSet, oldest first, to arr. Returns 0 or a PE_E… code. */
int pe_changeset_audit_timeline_rows(pe_db_conn_t *conn, const char *store_id, const char *id,
                                     cJSON *arr);

#endif /* PE_CHANGESET_INTERNAL_H */
