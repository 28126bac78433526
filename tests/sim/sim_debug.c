/*
 * sim_debug.c — a failing seed's report can show what the library holds
 * inside (each member's send and receive side, their logical streams):
 * test-only code that reads the private structures of node/, migration/,
 * dispatcher/ and receiver/ (their src/ folders are include directories of
 * the simulator only).
 */
#include "mig_internal.h"
#include "node_internal.h"
#include "sim.h"

static void dump_sm(FILE *f, const char *what, const mig_stream_t *ls) {
  if (!ls) {
    fprintf(f, "      %s: none\n", what);
    return;
  }
  const mig_sm_t *s = ls->m;
  if (!s) {
    fprintf(f, "      %s: plain, debt %llu\n", what, (unsigned long long)ls->debt);
    return;
  }
  fprintf(f,
          "      %s: id %llu %s/%s written %llu confirmed %llu base %llu sent_max %llu | "
          "delivered %llu held %llu debt %llu | cur h%llu in %llu+%llu out %llu+%llu cred %llu "
          "owed %llu%s | pend h%llu old h%llu%s\n",
          what, (unsigned long long)s->id, mig_state_str(s->state),
          mig_xstate_str(mig_sm_xstate(s)), (unsigned long long)s->w_written,
          (unsigned long long)s->w_confirmed, (unsigned long long)s->w_base,
          (unsigned long long)s->w_sent_max, (unsigned long long)s->r_delivered,
          (unsigned long long)s->r_held, (unsigned long long)ls->debt, (unsigned long long)s->cur.h,
          (unsigned long long)s->cur.in_start, (unsigned long long)s->cur.in_recv,
          (unsigned long long)s->cur.out_start, (unsigned long long)s->cur.out_sent,
          (unsigned long long)s->cur.credited, (unsigned long long)s->cur.owed,
          s->cur.frozen ? " frozen" : "", (unsigned long long)s->pend.h,
          (unsigned long long)s->old.h, s->uncertain ? " uncertain" : "");
}

void sim_debug_dump(sim_run_t *run, FILE *f) {
  for (int i = 0; i < run->p.nnodes; i++) {
    sim_node_t *n = &run->nodes[i];
    if (!n->alive) continue;
    msnap_t *s = n->b->snap;
    for (size_t k = 0; k < s->n; k++) {
      mbr_t *m = s->m[k];
      for (unsigned c = 0; c < m->r.ncls && c < m->d.ncls; c++) {
        rx_cls_t *rk = &m->r.cls[c];
        disp_cls_t *dk = &m->d.cls[c];
        fprintf(f,
                "    %s#%d member %s class %u: rx throttled %d uncredited %zu in %p; disp out %p "
                "framer %s\n",
                n->name, n->inc, m->node_id, c, rk->throttled, rk->uncredited, (void *)rk->in,
                (void *)dk->out, dk->framer.cur ? "busy" : "idle");
        dump_sm(f, "in ", rk->in);
        dump_sm(f, "out", dk->out);
      }
    }
  }
}
