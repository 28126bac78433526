/*
 * membership.h — the member table: validation, the JSON membership file,
 * and the diff between two memberships. Pure (no I/O but reading the file
 * in mb_table_load_file), single-threaded: the caller owns the tables.
 * The only header membership/ exposes.
 */
#ifndef BFTNET_MEMBERSHIP_H
#define BFTNET_MEMBERSHIP_H

#include "proto.h"

typedef struct mb_member {
  char node_id[BFTNET_NODE_ID_MAX];                  /* 1..63 printable bytes, no spaces */
  peerid_t peer;                                     /* the same in every address */
  uint8_t naddrs;                                    /* 1..BFTNET_MAX_ADDRS */
  maddr_t addrs[BFTNET_MAX_ADDRS];                   /* most preferred first */
  char addr_text[BFTNET_MAX_ADDRS][BFTNET_ADDR_MAX]; /* canonical text (maddr_format) */
} mb_member_t;

typedef struct mb_table {
  mb_member_t *m; /* sorted by node_id (strcmp) */
  size_t n;
} mb_table_t;

/* Validates members and builds a table (out is overwritten; free with
 * mb_table_free). All or nothing. Errors, with errbuf naming the entry
 * (e.g. `member 3 "r4": address 2: unsupported protocol 'dns4'`):
 *   BFTNET_EINVAL     NULL/empty/too long/non-printable node ID, 0 or more
 *                     than BFTNET_MAX_ADDRS addresses, n > BFTNET_MAX_MEMBERS
 *   BFTNET_EBADADDR   an address that does not parse, lacks /p2p/<id>, or
 *                     names another peer ID than the member's first address
 *   BFTNET_EDUPLICATE two entries with one node ID, or two node IDs with one
 *                     peer ID, or one address listed twice in a member
 *   BFTNET_ENOMEM */
#define BFTNET_MAX_MEMBERS 1024
int mb_table_build(mb_table_t *out, const bftnet_member_t *members, size_t n, char *errbuf,
                   size_t errcap) BFTNET_WUR;

/* The file format (strict: unknown keys are rejected and named):
 *   {"members": [{"id": "r1", "addrs": ["/ip4/127.0.0.1/tcp/9001/p2p/12D3…"]}, …]}
 * Parsed with jansson, then mb_table_build. Errors as above plus
 * BFTNET_EINVAL for malformed JSON (errbuf gives line and column) and -errno
 * for file errors. Files above 4 MiB are refused (BFTNET_ETOOBIG). */
int mb_table_from_json(mb_table_t *out, const char *json, size_t len, char *errbuf,
                       size_t errcap) BFTNET_WUR;
int mb_table_load_file(mb_table_t *out, const char *path, char *errbuf, size_t errcap) BFTNET_WUR;

void mb_table_free(mb_table_t *t);
/* Deep copy (for handing a table to another thread). */
int mb_table_copy(mb_table_t *out, const mb_table_t *in) BFTNET_WUR;

const mb_member_t *mb_find_node(const mb_table_t *t, const char *node_id);
const mb_member_t *mb_find_peer(const mb_table_t *t, const peerid_t *peer);

/* old -> new, keyed by node ID. A node ID whose peer ID changed is REMOVED
 * then ADDED (a different identity is a different member). ADDRS_CHANGED
 * means same peer ID, different address list (order matters: preference). */
typedef enum mb_change_kind {
  MB_ADDED,
  MB_REMOVED,
  MB_ADDRS_CHANGED,
  MB_UNCHANGED
} mb_change_kind_t;

typedef struct mb_change {
  mb_change_kind_t kind;
  const mb_member_t *old_m; /* NULL for ADDED; points into old */
  const mb_member_t *new_m; /* NULL for REMOVED; points into new */
} mb_change_t;

/* Every node ID of old and new appears once (twice for a peer-ID change:
 * REMOVED then ADDED), REMOVED entries first. *out is malloc'd (caller frees). */
int mb_diff(const mb_table_t *old_t, const mb_table_t *new_t, mb_change_t **out,
            size_t *n) BFTNET_WUR;

#endif
