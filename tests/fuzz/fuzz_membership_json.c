/* fuzz_membership_json.c — mb_table_from_json on arbitrary bytes: a rejection
 * leaves an empty table and a printable message; an accepted table is
 * sorted, valid, found by both lookups, and diffs as expected against the
 * empty table, itself and its copy (all UNCHANGED). */
#include <stdlib.h>

#include "membership.h"

#define FZ_CHECK(c) ((c) ? (void)0 : abort()) /* a violated property */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check_rejected(int rc, const mb_table_t *t, const char *err, size_t cap) {
  FZ_CHECK(rc == BFTNET_EINVAL || rc == BFTNET_EBADADDR || rc == BFTNET_EDUPLICATE ||
           rc == BFTNET_ETOOBIG || rc == BFTNET_ENOMEM);
  FZ_CHECK(t->m == NULL && t->n == 0);
  const char *end = memchr(err, '\0', cap);
  FZ_CHECK(end != NULL && end != err);
  for (const char *p = err; p < end; p++)
    FZ_CHECK(*p >= 0x20 && *p <= 0x7e);
}

static void fz_check_member(const mb_table_t *t, const mb_member_t *m) {
  size_t len = strnlen(m->node_id, sizeof(m->node_id));
  FZ_CHECK(len >= 1 && len < sizeof(m->node_id));
  for (size_t i = 0; i < len; i++)
    FZ_CHECK(m->node_id[i] > 0x20 && m->node_id[i] < 0x7f && m->node_id[i] != '/');
  FZ_CHECK(m->naddrs >= 1 && m->naddrs <= BFTNET_MAX_ADDRS);
  for (size_t j = 0; j < m->naddrs; j++) {
    FZ_CHECK(m->addrs[j].has_peer && peerid_equal(&m->addrs[j].peer, &m->peer));
    maddr_t again;
    char text[BFTNET_ADDR_MAX];
    FZ_CHECK(maddr_parse(m->addr_text[j], &again, NULL, 0) == 0);
    FZ_CHECK(maddr_format(&again, text, sizeof(text)) == 0);
    FZ_CHECK(strcmp(text, m->addr_text[j]) == 0);
    for (size_t k = 0; k < j; k++)
      FZ_CHECK(strcmp(m->addr_text[k], m->addr_text[j]) != 0);
  }
  FZ_CHECK(mb_find_node(t, m->node_id) == m);
  FZ_CHECK(mb_find_peer(t, &m->peer) == m);
}

/* diff(a, b) where every entry must be `kind` and name t's members in order. */
static void fz_check_diff(const mb_table_t *a, const mb_table_t *b, const mb_table_t *t,
                          mb_change_kind_t kind) {
  mb_change_t *ch;
  size_t n;
  if (mb_diff(a, b, &ch, &n) != 0) return; /* ENOMEM only */
  FZ_CHECK(n == t->n);
  for (size_t i = 0; i < n; i++) {
    FZ_CHECK(ch[i].kind == kind);
    const mb_member_t *m = kind == MB_REMOVED ? ch[i].old_m : ch[i].new_m;
    FZ_CHECK(m != NULL && strcmp(m->node_id, t->m[i].node_id) == 0);
    FZ_CHECK(kind == MB_ADDED ? ch[i].old_m == NULL : ch[i].old_m == &a->m[i]);
    FZ_CHECK(kind == MB_REMOVED ? ch[i].new_m == NULL : ch[i].new_m == &b->m[i]);
  }
  free(ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mb_table_t t = {(mb_member_t *)(uintptr_t)1, 7}; /* must be overwritten */
  char err[256];
  memset(err, 0x55, sizeof(err));
  int rc = mb_table_from_json(&t, (const char *)data, size, err, sizeof(err));
  if (rc != 0) {
    fz_check_rejected(rc, &t, err, sizeof(err));
    return 0;
  }
  FZ_CHECK(err[0] == '\0' && t.n <= BFTNET_MAX_MEMBERS && (t.n == 0) == (t.m == NULL));
  for (size_t i = 0; i < t.n; i++) {
    if (i > 0) FZ_CHECK(strcmp(t.m[i - 1].node_id, t.m[i].node_id) < 0);
    fz_check_member(&t, &t.m[i]);
  }
  mb_table_t empty = {NULL, 0}, copy;
  fz_check_diff(&empty, &t, &t, MB_ADDED);
  fz_check_diff(&t, &empty, &t, MB_REMOVED);
  fz_check_diff(&t, &t, &t, MB_UNCHANGED);
  if (mb_table_copy(&copy, &t) == 0) {
    fz_check_diff(&t, &copy, &t, MB_UNCHANGED);
    mb_table_free(&copy);
  }
  mb_table_free(&t);
  return 0;
}
