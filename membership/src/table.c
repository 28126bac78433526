/* table.c — the member table: validation (everything is checked before the
 * table is handed out), sorting by node ID, lookups and copies. */
#include <stdlib.h>

#include "mb_internal.h"

#define MB_PEER_TEXT 128u /* base58 of any peerid_t (64 bytes -> <= 88 chars) */

/* ------------------------------------------------------------ one member */

/* Node IDs: 1..63 bytes of printable ASCII, no whitespace, no '/'. */
static int mb_check_node_id(size_t idx, const char *id, char *errbuf, size_t errcap) {
  char show[MB_SHOW_BUF];
  if (!id) {
    mb_errf(errbuf, errcap, "member %zu: node ID is NULL", idx);
    return BFTNET_EINVAL;
  }
  size_t len = strnlen(id, BFTNET_NODE_ID_MAX);
  if (len == 0) {
    mb_errf(errbuf, errcap, "member %zu \"\": empty node ID", idx);
    return BFTNET_EINVAL;
  }
  if (len >= BFTNET_NODE_ID_MAX) {
    mb_errf(errbuf, errcap, "member %zu \"%s\": node ID longer than %u bytes", idx,
            mb_show(id, len, show), BFTNET_NODE_ID_MAX - 1);
    return BFTNET_EINVAL;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)id[i];
    if (ch < 0x21 || ch > 0x7e) {
      mb_errf(errbuf, errcap,
              "member %zu \"%s\": node ID byte %zu (0x%02x) is whitespace or not printable ASCII",
              idx, mb_show(id, len, show), i + 1, ch);
      return BFTNET_EINVAL;
    }
    if (ch == '/') {
      mb_errf(errbuf, errcap, "member %zu \"%s\": node ID must not contain '/'", idx,
              mb_show(id, len, show));
      return BFTNET_EINVAL;
    }
  }
  return 0;
}

/* Address j (0-based) of a member whose node ID is already valid: parsed,
 * /p2p/ present, the member's peer ID, not a repeat of an earlier one. */
static int mb_check_addr(size_t idx, const bftnet_member_t *src, size_t j, mb_member_t *dst,
                         char *errbuf, size_t errcap) {
  const char *id = src->node_id;
  const char *text = src->addrs[j];
  if (!text) {
    mb_errf(errbuf, errcap, "member %zu \"%s\": address %zu is NULL", idx, id, j + 1);
    return BFTNET_EINVAL;
  }
  char why[128];
  maddr_t *m = &dst->addrs[j];
  if (maddr_parse(text, m, why, sizeof(why)) != 0) {
    mb_errf(errbuf, errcap, "member %zu \"%s\": address %zu: %s", idx, id, j + 1, why);
    return BFTNET_EBADADDR;
  }
  if (!m->has_peer) {
    mb_errf(errbuf, errcap, "member %zu \"%s\": address %zu: missing /p2p/<peer ID>", idx, id,
            j + 1);
    return BFTNET_EBADADDR;
  }
  if (maddr_format(m, dst->addr_text[j], sizeof(dst->addr_text[j])) != 0) {
    mb_errf(errbuf, errcap, "member %zu \"%s\": address %zu: too long", idx, id, j + 1);
    return BFTNET_EBADADDR;
  }
  if (j > 0 && !peerid_equal(&m->peer, &dst->addrs[0].peer)) {
    char a[MB_PEER_TEXT], b[MB_PEER_TEXT];
    if (peerid_to_string(&m->peer, a, sizeof(a)) != 0) a[0] = '\0';
    if (peerid_to_string(&dst->addrs[0].peer, b, sizeof(b)) != 0) b[0] = '\0';
    mb_errf(errbuf, errcap,
            "member %zu \"%s\": address %zu: peer ID %s differs from address 1's %s", idx, id,
            j + 1, a, b);
    return BFTNET_EBADADDR;
  }
  for (size_t k = 0; k < j; k++) {
    if (strcmp(dst->addr_text[k], dst->addr_text[j]) == 0) {
      mb_errf(errbuf, errcap, "member %zu \"%s\": address %zu repeats address %zu", idx, id, j + 1,
              k + 1);
      return BFTNET_EDUPLICATE;
    }
  }
  return 0;
}

/* Member idx (1-based) from src into dst, or an error naming it. */
static int mb_check_member(size_t idx, const bftnet_member_t *src, mb_member_t *dst, char *errbuf,
                           size_t errcap) {
  int rc = mb_check_node_id(idx, src->node_id, errbuf, errcap);
  if (rc) return rc;
  const char *id = src->node_id;
  /* The count is checked before addrs is touched: the JSON layer relies on
   * it (it fills at most BFTNET_MAX_ADDRS pointers). */
  if (!mb_naddrs_ok(src->naddrs)) {
    mb_errf(errbuf, errcap, "member %zu \"%s\": %zu addresses (must be 1..%u)", idx, id,
            src->naddrs, BFTNET_MAX_ADDRS);
    return BFTNET_EINVAL;
  }
  if (!src->addrs) {
    mb_errf(errbuf, errcap, "member %zu \"%s\": address list is NULL", idx, id);
    return BFTNET_EINVAL;
  }
  memset(dst, 0, sizeof(*dst));
  memcpy(dst->node_id, id, strlen(id) + 1);
  for (size_t j = 0; j < src->naddrs; j++) {
    rc = mb_check_addr(idx, src, j, dst, errbuf, errcap);
    if (rc) return rc;
  }
  dst->naddrs = (uint8_t)src->naddrs;
  dst->peer = dst->addrs[0].peer;
  return 0;
}

/* ------------------------------------------------------------ duplicates */

static int mb_cmp_node_ptr(const void *a, const void *b) {
  const mb_member_t *x = *(const mb_member_t *const *)a, *y = *(const mb_member_t *const *)b;
  int c = strcmp(x->node_id, y->node_id);
  if (c) return c;
  return (x > y) - (x < y); /* ties in input order */
}

static int mb_cmp_peer_ptr(const void *a, const void *b) {
  const mb_member_t *x = *(const mb_member_t *const *)a, *y = *(const mb_member_t *const *)b;
  int c = peerid_cmp(&x->peer, &y->peer);
  if (c) return c;
  return (x > y) - (x < y);
}

/* In ptrs sorted by key then input order, the duplicate whose later entry
 * comes first in the input (the first a reader of the input would see):
 * returns its index into ptrs (> 0), or 0 if there is none. */
static size_t mb_first_dup(const mb_member_t *const *ptrs, size_t n, bool by_peer) {
  size_t best = 0;
  for (size_t k = 1; k < n; k++) {
    bool dup = by_peer ? peerid_equal(&ptrs[k]->peer, &ptrs[k - 1]->peer)
                       : strcmp(ptrs[k]->node_id, ptrs[k - 1]->node_id) == 0;
    if (dup && (best == 0 || ptrs[k] < ptrs[best])) best = k;
  }
  return best;
}

/* Two entries with one node ID, or two node IDs with one peer ID. */
static int mb_check_dups(const mb_member_t *m, size_t n, char *errbuf, size_t errcap) {
  if (n < 2) return 0;
  const mb_member_t **ptrs = malloc(n * sizeof(*ptrs));
  if (!ptrs) {
    mb_errf(errbuf, errcap, "out of memory");
    return BFTNET_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    ptrs[i] = &m[i];
  int rc = 0;
  qsort(ptrs, n, sizeof(*ptrs), mb_cmp_node_ptr);
  size_t k = mb_first_dup(ptrs, n, false);
  if (k) {
    mb_errf(errbuf, errcap, "member %zu \"%s\": duplicate node ID (also member %zu)",
            (size_t)(ptrs[k] - m) + 1, ptrs[k]->node_id, (size_t)(ptrs[k - 1] - m) + 1);
    rc = BFTNET_EDUPLICATE;
    goto out_free;
  }
  qsort(ptrs, n, sizeof(*ptrs), mb_cmp_peer_ptr);
  k = mb_first_dup(ptrs, n, true);
  if (k) {
    char p[MB_PEER_TEXT];
    if (peerid_to_string(&ptrs[k]->peer, p, sizeof(p)) != 0) p[0] = '\0';
    mb_errf(errbuf, errcap, "member %zu \"%s\": peer ID %s is also member %zu \"%s\"",
            (size_t)(ptrs[k] - m) + 1, ptrs[k]->node_id, p, (size_t)(ptrs[k - 1] - m) + 1,
            ptrs[k - 1]->node_id);
    rc = BFTNET_EDUPLICATE;
  }
out_free:
  free(ptrs);
  return rc;
}

/* ------------------------------------------------------------ the table */

static int mb_cmp_node(const void *a, const void *b) {
  return strcmp(((const mb_member_t *)a)->node_id, ((const mb_member_t *)b)->node_id);
}

int mb__table_begin(mb_table_t *out, bool has_input, const char *missing, char *errbuf,
                    size_t errcap) {
  mb_errf(errbuf, errcap, "%s", "");
  if (!out) {
    mb_errf(errbuf, errcap, "no output table");
    return BFTNET_EINVAL;
  }
  out->m = NULL;
  out->n = 0;
  if (!has_input) {
    mb_errf(errbuf, errcap, "%s", missing);
    return BFTNET_EINVAL;
  }
  return 0;
}

int mb_table_build(mb_table_t *out, const bftnet_member_t *members, size_t n, char *errbuf,
                   size_t errcap) {
  /* A NULL list is no error when it is empty, and a count over the limit is
   * reported as such, NULL or not. */
  bool has_input = members || n == 0 || n > BFTNET_MAX_MEMBERS;
  int rc = mb__table_begin(out, has_input, "member list is NULL", errbuf, errcap);
  if (rc) return rc;
  if (n > BFTNET_MAX_MEMBERS) {
    mb_errf(errbuf, errcap, "%zu members (at most %u)", n, BFTNET_MAX_MEMBERS);
    return BFTNET_EINVAL;
  }
  if (n == 0) return 0; /* the empty membership is valid: everyone removed */
  mb_member_t *m = calloc(n, sizeof(*m));
  if (!m) {
    mb_errf(errbuf, errcap, "out of memory");
    return BFTNET_ENOMEM;
  }
  for (size_t i = 0; i < n && !rc; i++)
    rc = mb_check_member(i + 1, &members[i], &m[i], errbuf, errcap);
  if (!rc) rc = mb_check_dups(m, n, errbuf, errcap);
  if (rc) {
    free(m);
    return rc;
  }
  qsort(m, n, sizeof(*m), mb_cmp_node); /* node IDs are unique now */
  out->m = m;
  out->n = n;
  return 0;
}

void mb_table_free(mb_table_t *t) {
  if (!t) return;
  free(t->m);
  t->m = NULL;
  t->n = 0;
}

int mb_table_copy(mb_table_t *out, const mb_table_t *in) {
  if (!out || !in) return BFTNET_EINVAL;
  out->m = NULL;
  out->n = 0;
  if (in->n == 0) return 0;
  mb_member_t *m = malloc(in->n * sizeof(*m));
  if (!m) return BFTNET_ENOMEM;
  memcpy(m, in->m, in->n * sizeof(*m));
  out->m = m;
  out->n = in->n;
  return 0;
}

const mb_member_t *mb_find_node(const mb_table_t *t, const char *node_id) {
  if (!t || !node_id || t->n == 0) return NULL;
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(node_id, t->m[mid].node_id);
    if (c == 0) return &t->m[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

/* A scan: at most BFTNET_MAX_MEMBERS entries, called per accepted
 * connection, not per message. */
const mb_member_t *mb_find_peer(const mb_table_t *t, const peerid_t *peer) {
  if (!t || !peer) return NULL;
  for (size_t i = 0; i < t->n; i++)
    if (peerid_equal(&t->m[i].peer, peer)) return &t->m[i];
  return NULL;
}
