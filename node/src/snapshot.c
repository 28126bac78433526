/*
 * snapshot.c — the member snapshot. Application threads find members
 * through an immutable snapshot (msnap_t) read inside an epoch section
 * (Concurrency Kit ck_epoch); the loop thread publishes a new snapshot on
 * every membership change and frees the old one, and removed members, only
 * after ck_epoch_synchronize.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "node_internal.h"

/* Application threads keep one epoch record per node across calls.
 * Taking one from ck_epoch's pool per call (ck_epoch_recycle: a scan and a
 * CAS, then unregister) showed in a small send's cost (docs/BENCHMARKS.md).
 * A thread's cache names a node by its serial (never reused), not by its
 * address, so a freed node's entries are simply stale. A thread that exits
 * hands its records back to their pools (a pthread key's destructor) if
 * their node still lives; g_nodes_mu makes that check and the node's free
 * exclusive. */
#define TL_RECS 4
typedef struct tl_rec {
  uint64_t serial;
  ck_epoch_record_t *r;
} tl_rec_t;
typedef struct tl_cache {
  tl_rec_t e[TL_RECS];
  unsigned next; /* the slot replaced next */
} tl_cache_t;

static pthread_mutex_t g_nodes_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_serial; /* the last serial given */
static uint64_t *g_live;  /* serials of the nodes alive */
static size_t g_nlive, g_caplive;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static _Thread_local tl_cache_t *tl_cache;

static bool node_live_locked(uint64_t serial) {
  for (size_t i = 0; i < g_nlive; i++)
    if (g_live[i] == serial) return true;
  return false;
}

/* Gives a cached record back to its node's pool, if the node lives. */
static void tl_drop_locked(tl_rec_t *t) {
  if (t->serial && node_live_locked(t->serial)) {
    BN_TSAN_RELEASE(t->r);
    ck_epoch_unregister(t->r);
  }
  t->serial = 0;
  t->r = NULL;
}

static void tl_cache_free(void *p) {
  tl_cache_t *c = p;
  pthread_mutex_lock(&g_nodes_mu);
  for (unsigned i = 0; i < TL_RECS; i++)
    tl_drop_locked(&c->e[i]);
  pthread_mutex_unlock(&g_nodes_mu);
  free(c);
}

static void tl_key_init(void) {
  (void)pthread_key_create(&g_key, tl_cache_free);
}

static int node_serial_add(bftnet_t *b) {
  pthread_once(&g_key_once, tl_key_init);
  pthread_mutex_lock(&g_nodes_mu);
  int rc = 0;
  if (g_nlive == g_caplive) {
    size_t ncap = g_caplive ? 2 * g_caplive : 8;
    uint64_t *nv = realloc(g_live, ncap * sizeof *nv);
    if (nv) {
      g_live = nv;
      g_caplive = ncap;
    } else {
      rc = BFTNET_ENOMEM;
    }
  }
  if (rc == 0) {
    b->serial = ++g_serial;
    g_live[g_nlive++] = b->serial;
  }
  pthread_mutex_unlock(&g_nodes_mu);
  return rc;
}

static void node_serial_remove(bftnet_t *b) {
  pthread_mutex_lock(&g_nodes_mu);
  for (size_t i = 0; i < g_nlive; i++) {
    if (g_live[i] != b->serial) continue;
    g_live[i] = g_live[--g_nlive];
    break;
  }
  pthread_mutex_unlock(&g_nodes_mu);
  b->serial = 0;
}

/* A record from the node's pool, or a new one. */
static ck_epoch_record_t *epoch_take(bftnet_t *b) {
  ck_epoch_record_t *r = ck_epoch_recycle(&b->epoch, NULL);
  if (r) {
    BN_TSAN_ACQUIRE(r); /* handed over by ck's CAS from the last user */
    return r;
  }
  epoch_rec_t *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  do {
    e->next = ck_pr_load_ptr(&b->recs);
  } while (!ck_pr_cas_ptr(&b->recs, e->next, e));
  r = &e->rec;
  ck_epoch_register(&b->epoch, r, NULL);
  return r;
}

ck_epoch_record_t *node__snapshot_enter(bftnet_t *b, ck_epoch_section_t *sec) {
  tl_cache_t *c = tl_cache;
  ck_epoch_record_t *r = NULL;
  if (c) {
    for (unsigned i = 0; i < TL_RECS && !r; i++)
      if (c->e[i].serial == b->serial) r = c->e[i].r;
  } else if ((c = calloc(1, sizeof *c)) != NULL) {
    if (pthread_setspecific(g_key, c) == 0) {
      tl_cache = c;
    } else {
      free(c);
      c = NULL;
    }
  }
  if (!r) {
    r = epoch_take(b);
    if (!r) return NULL;
    if (c) { /* keep it; the slot's old record goes back to its node */
      tl_rec_t *t = &c->e[c->next++ % TL_RECS];
      if (t->serial) {
        pthread_mutex_lock(&g_nodes_mu);
        tl_drop_locked(t);
        pthread_mutex_unlock(&g_nodes_mu);
      }
      t->serial = b->serial;
      t->r = r;
    }
  }
  ck_epoch_begin(r, sec);
  return r;
}

void node__snapshot_exit(bftnet_t *b, ck_epoch_record_t *r, ck_epoch_section_t *sec) {
  BN_TSAN_RELEASE(&b->epoch); /* our reads happen before the grace period ends */
  ck_epoch_end(r, sec);
  if (!tl_cache) { /* no cache (out of memory): back to the pool */
    BN_TSAN_RELEASE(r);
    ck_epoch_unregister(r);
  }
}

static int mbr_ptr_cmp(const void *a, const void *b) {
  return strcmp((*(mbr_t *const *)a)->node_id, (*(mbr_t *const *)b)->node_id);
}

int node__snapshot_publish(bftnet_t *b, mbr_t **live, size_t n, const char *self_id) {
  msnap_t *s = calloc(1, sizeof *s);
  if (!s) return BFTNET_ENOMEM;
  s->m = n ? malloc(n * sizeof *s->m) : NULL;
  s->d = n ? malloc(n * sizeof *s->d) : NULL;
  if (n && (!s->m || !s->d)) {
    free(s->m);
    free(s->d);
    free(s);
    return BFTNET_ENOMEM;
  }
  if (n) memcpy(s->m, live, n * sizeof *live);
  s->n = n;
  if (n) qsort(s->m, n, sizeof *s->m, mbr_ptr_cmp);
  for (size_t i = 0; i < n; i++)
    s->d[i] = &s->m[i]->d;
  snprintf(s->self_id, sizeof s->self_id, "%s", self_id);
  s->ver = ++b->snap_ver; /* run_connect gave members new in it this version */
  msnap_t *old = b->snap;
  BN_TSAN_RELEASE(s);
  ck_pr_fence_store();
  ck_pr_store_ptr(&b->snap, s);
  ck_epoch_synchronize(&b->loop_rec);
  BN_TSAN_ACQUIRE(&b->epoch); /* every reader of old has left its section */
  if (old) {
    free(old->m);
    free(old->d);
    free(old);
  }
  return 0;
}

int node__snapshot_init(bftnet_t *b) {
  ck_epoch_init(&b->epoch);
  ck_epoch_register(&b->epoch, &b->loop_rec, NULL);
  b->snap = calloc(1, sizeof *b->snap);
  if (!b->snap) return BFTNET_ENOMEM;
  return node_serial_add(b);
}

void node__snapshot_destroy(bftnet_t *b) {
  msnap_t *s = b->snap;
  if (s) {
    free(s->m);
    free(s->d);
    free(s);
    b->snap = NULL;
  }
  /* No application thread may be inside a bftnet call now (bftnet_free),
   * and none may give a record back once the serial is gone. */
  if (b->serial) node_serial_remove(b);
  for (epoch_rec_t *e = b->recs, *next; e; e = next) {
    next = e->next;
    free(e);
  }
  b->recs = NULL;
}
