/*
 * defer.c — deferred frees. Every entry point of the wiring runs between
 * mig__defer_enter and mig__defer_leave; what is
 * released meanwhile (carriers net freed, streams let go, peers released) is
 * freed here at the outermost leave, so a pointer handed to a callback stays
 * valid for the whole callback and a loop over a list never sees an entry
 * vanish.
 */
#include <stdlib.h>

#include "mig_internal.h"

static void defer_reap(mig_node_t *n);

void mig__defer_enter(mig_node_t *n) {
  n->nest++;
}

void mig__defer_leave(mig_node_t *n) {
  if (--n->nest == 0 && n->reap_needed) defer_reap(n);
}

static bool peer_reapable(const mig_peer_t *p) {
  return (p->released || !p->owner) && !p->streams && !p->carriers && !p->ctls && !p->probing;
}

static void defer_reap(mig_node_t *n) {
  n->reap_needed = false;
  for (mig_peer_t **pp = &n->peers; *pp;) {
    mig_peer_t *p = *pp;
    for (mig_carrier_t **cp = &p->carriers; *cp;) {
      mig_carrier_t *car = *cp;
      if (!car->gone) {
        cp = &car->next;
        continue;
      }
      *cp = car->next;
      mig__carrier_destroy(car);
    }
    for (mig_ctl_t **kp = &p->ctls; *kp;) {
      mig_ctl_t *k = *kp;
      if (!k->gone) {
        kp = &k->next;
        continue;
      }
      *kp = k->next;
      mig__defer_free_ctl(k);
    }
    for (mig_stream_t **sp = &p->streams; *sp;) {
      mig_stream_t *ls = *sp;
      if (!ls->released) {
        sp = &ls->next;
        continue;
      }
      *sp = ls->next;
      if (ls->m) (void)mig_reg_sm_free(&p->mig, ls->m);
      mig__defer_free_stream(ls);
    }
    if (peer_reapable(p)) {
      *pp = p->next;
      mig_reg_free(&p->mig);
      free(p);
      continue;
    }
    pp = &p->next;
  }
}

void mig__defer_free_ctl(mig_ctl_t *k) {
  bn_buf_free(&k->out);
  free(k->rd);
  free(k);
}

void mig__defer_free_stream(mig_stream_t *ls) {
  bn_buf_free(&ls->neg);
  bn_buf_free(&ls->carry);
  free(ls);
}
