/*
 * changeset_internal.h — what the files of src/changeset/ share and nobody else sees.
 */
#ifndef PE_CHANGESET_INTERNAL_H
#define PE_CHANGESET_INTERNAL_H

#include "pe/changeset.h"

/* The service (service.c builds it; notify.c reads the notifiers). Read-only after
 * pe_changeset_service_new, hence shared by threads without a lock. */
struct pe_changeset_service {
    pe_changeset_config_t cfg;
    char *webhook_url;
    char *webhook_secret;
    pe_changeset_notifier_t notifiers[PE_CHANGESET_MAX_NOTIFIERS]; /* in delivery order */
    size_t nnotifiers;
};

/* True for 1..32 of [a-z0-9_.-] (a name stored in notification_outbox.delivered_to). Pure. */
bool pe_changeset_notifier_name_valid(const char *name);
/* The built-in notifiers (notify.c). in_app needs no ctx; webhook's ctx is the service. */
int pe_changeset_deliver_in_app(void *ctx, const pe_changeset_notification_t *n, char *err,
                                size_t errlen);
int pe_changeset_deliver_webhook(void *ctx, const pe_changeset_notification_t *n, char *err,
                                 size_t errlen);

/* Appends the metadata text that is stored and hashed: canonical JSON (keys sorted bytewise,
 * one number format) of metadata, "{}" for NULL. Returns 0, PE_EINVAL (nested too deep) or
 * PE_ENOMEM. Pure. */
int pe_audit_metadata_text(const cJSON *metadata, pe_buf_t *out);
/* Row i of a result with the audit columns (audit.c ROW_COLUMNS) as an AuditEvent object, or
 * NULL on ENOMEM / unreadable metadata. Caller deletes. */
cJSON *pe_audit_row_json(const pe_db_result_t *res, size_t i);
/* Appends the AuditEvents of one ChangeSet, oldest first, to arr. Returns 0 or a PE_E… code. */
int pe_audit_timeline_rows(pe_db_conn_t *conn, const char *store_id, const char *id, cJSON *arr);

#endif /* PE_CHANGESET_INTERNAL_H */
