/* brain/bledger — the gateway's money and memory in the store: the credit budget with an atomic
 * reserve-then-settle, and one audit record per request.
 *
 * Budget: one row {credits, spent}; in-flight requests hold rows in brain_reservations. A reservation is
 * admitted inside one transaction only when spent + (sum of reservations) + amount <= credits, so
 * concurrent requests can never overspend and nothing is a cached counter that can drift: the only
 * running total is `spent`, changed in the same transaction that deletes the reservation and writes the
 * audit record (bl_settle). Reservations left by a crash are dropped at open (nothing was settled for
 * them). Without configured credits there is no budget: reserve always succeeds and nothing is held.
 * Loop thread only (one SQLite connection). */
#ifndef CG_BRAIN_BLEDGER_H
#define CG_BRAIN_BLEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"

struct store;

/* Migrates, drops stale reservations, and sets the budget: credits is a decimal amount, or NULL for none
 * (spent is kept across restarts and credit changes). */
int bl_open(struct store *st, const char *credits, cg_err *e);
/* Holds amount for request id. E_QUOTA_EXCEEDED (no Retry-After: waiting does not refill credits) when it
 * does not fit. */
int bl_reserve(struct store *st, const char *id, const char *amount, cg_err *e);

struct bl_audit {
	const char *id, *model, *brain, *source, *upstream, *outcome, *usage_source, *error;
	const char *cost;   /* decimal amount actually charged */
	json_t *attempts;   /* borrowed: [{brain, upstream, reason, ms}] */
	int64_t ts;         /* Unix ms */
	int status;         /* HTTP status the client got */
	bool stream;
	int64_t prompt_tokens, completion_tokens;
	double ttft_ms, duration_ms, overhead_ms; /* < 0: not applicable */
};
/* In one transaction: releases id's reservation (if any), adds a->cost to spent, writes the audit record. */
int bl_settle(struct store *st, const struct bl_audit *a, cg_err *e);
/* The same for n requests in one transaction (group commit): all of them or none. */
int bl_settle_many(struct store *st, const struct bl_audit *const *a, size_t n, cg_err *e);

/* {status: active|exhausted|unbound, credits, spent, reserved, remaining} (caller frees). */
int bl_status(struct store *st, json_t **out, cg_err *e);
/* Audit records, newest first: params {limit? (1..1000, 100), before? (ts ms), requestId?, outcome?}. */
int bl_audit_query(struct store *st, json_t *params, json_t **out, cg_err *e);

#endif
