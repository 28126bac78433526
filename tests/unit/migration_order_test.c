/* migration_order_test.c — which of two streams one opener incarnation
 * opened is the newer, in the pure migration core (PROTOCOL.md §11.3):
 * - stream IDs drawn from one counter rise across every registry of an
 *   incarnation, also one made again for a peer removed and added back
 *   (per-registry counters, the old way, can go back);
 * - the opening ID and opener incarnation are recorded on both sides and
 *   stay when a migration changes the stream's current ID;
 * - the case the rule exists for: the opener aborts S1 and opens S2, the
 *   acceptor hears of S2 first and of S1 late; the core takes both (they
 *   are distinct IDs), their opening IDs say S1 is the older. */
#include "harness.h"
#include "mig_core.h"

#define T_INC_O 11u /* the opener's incarnation */
#define T_INC_A 22u /* the acceptor's */

static mig_reg_t O, A; /* opener's registry for the acceptor, and the acceptor's */
static mig_actions_t acts;

static void t_init(uint64_t *ids) {
  peerid_t o = {.len = 4, .bytes = {1, 2, 3, 4}}, a = {.len = 4, .bytes = {1, 2, 3, 5}};
  mig_reg_config_t cfg = {
      .self = o, .peer = a, .incarnation = T_INC_O, .detach_timeout = 100, .window_max = 1000};
  mig_reg_free(&O);
  mig_reg_free(&A);
  assert_ok(mig_reg_init(&O, &cfg));
  O.ids = ids;
  cfg.self = a;
  cfg.peer = o;
  cfg.incarnation = T_INC_A;
  assert_ok(mig_reg_init(&A, &cfg));
  assert_ok(mig_reg_set_mode(&O, MIG_MODE_ON, &acts));
  assert_ok(mig_reg_set_mode(&A, MIG_MODE_ON, &acts));
  mig_actions_clear(&acts);
}

/* The opener opens a stream on carrier h; the Label it sent. */
static mig_msg_t t_open(uint64_t h, mig_sm_t **out) {
  mig_actions_clear(&acts);
  assert_ok(mig_reg_open(&O, h, &acts, out));
  assert_int_equal(acts.n, 1);
  assert_int_equal(acts.a[0].type, MIG_ACT_SEND_MSG);
  assert_int_equal(acts.a[0].msg.type, MIG_MSG_LABEL);
  assert_int_equal((*out)->open_id, (*out)->id);
  assert_int_equal((*out)->open_inc, T_INC_O);
  assert_true((*out)->open_inc_known);
  return acts.a[0].msg;
}

/* The acceptor reads Label l on carrier h. */
static mig_sm_t *t_accept(uint64_t h, const mig_msg_t *l) {
  mig_sm_t *s = NULL;
  mig_actions_clear(&acts);
  assert_ok(mig_reg_on_msg(&A, h, l, 0, &acts, &s));
  assert_non_null(s);
  assert_int_equal(s->open_id, l->id);
  assert_int_equal(s->open_inc, l->incarnation);
  assert_true(s->open_inc_known);
  return s;
}

static void test_ids_rise_across_registries(void **state) {
  (void)state;
  uint64_t ids = 5000; /* the node's counter (its random start per incarnation) */
  t_init(&ids);
  mig_sm_t *s1, *s2;
  mig_msg_t l1 = t_open(1, &s1);
  /* Another peer's registry draws from the same counter meanwhile. */
  mig_reg_t other;
  peerid_t o = O.cfg.self, x = {.len = 4, .bytes = {9, 9, 9, 9}};
  mig_reg_config_t cfg = {
      .self = o, .peer = x, .incarnation = T_INC_O, .detach_timeout = 100, .window_max = 1000};
  assert_ok(mig_reg_init(&other, &cfg));
  other.ids = &ids;
  uint64_t lx = mig_reg_next_id(&other);
  mig_msg_t l2 = t_open(2, &s2);
  assert_int_equal(l1.id / 2, 5000); /* IDs are 2k or 2k + 1 */
  assert_int_equal(lx / 2, 5001);
  assert_int_equal(l2.id / 2, 5002);
  /* The acceptor is removed and added back: a new registry for it. */
  t_init(&ids);
  mig_sm_t *s3;
  mig_msg_t l3 = t_open(1, &s3);
  assert_true(l3.id > l2.id);
  assert_true(mig_id_parity_ok(l3.id, O.lower));
  mig_reg_free(&other);

  /* Without the shared counter a registry made again starts over (here at
   * the same point as the first), and its new stream looks older. */
  t_init(NULL);
  O.next_k = 2500;
  mig_msg_t m1 = t_open(1, &s1);
  mig_msg_t m2 = t_open(2, &s2);
  assert_true(m2.id > m1.id);
  t_init(NULL);
  O.next_k = 2500;
  mig_msg_t m3 = t_open(1, &s3);
  assert_true(m3.id <= m2.id);
  mig_reg_free(&O);
  mig_reg_free(&A);
}

/* Moves the stream s (opener side) / t (acceptor side) onto carrier h by
 * the pair's leader; returns the new current ID. */
static uint64_t t_migrate(mig_sm_t *s, mig_sm_t *t, uint64_t h) {
  mig_reg_t *lp = O.leader ? &O : &A, *fp = O.leader ? &A : &O;
  mig_sm_t *ls = O.leader ? s : t, *fs = O.leader ? t : s;
  mig_actions_clear(&acts);
  assert_ok(mig_sm_migrate(lp, ls, h, &acts));
  mig_msg_t mg = acts.a[acts.n - 1].msg;
  assert_int_equal(mg.type, MIG_MSG_MIGRATE);
  mig_sm_t *got = NULL;
  mig_actions_clear(&acts);
  assert_ok(mig_reg_on_msg(fp, h, &mg, 0, &acts, &got));
  assert_ptr_equal(got, fs);
  mig_msg_t ack = {0};
  for (size_t i = 0; i < acts.n; i++)
    if (acts.a[i].type == MIG_ACT_SEND_MSG) ack = acts.a[i].msg;
  assert_int_equal(ack.type, MIG_MSG_ACK);
  assert_false(ack.deny);
  mig_actions_clear(&acts);
  assert_ok(mig_reg_on_msg(lp, h, &ack, 0, &acts, NULL));
  assert_int_equal(ls->id, mg.id);
  assert_int_equal(fs->id, mg.id);
  return mg.id;
}

static void test_late_label_is_older(void **state) {
  (void)state;
  uint64_t ids = 77;
  t_init(&ids);
  /* S1 opened, then aborted by its opener (as on a peer restart) ... */
  mig_sm_t *s1, *s2;
  mig_msg_t l1 = t_open(1, &s1);
  assert_ok(mig_sm_on_echo(&O, s1, &acts));
  mig_actions_clear(&acts);
  assert_ok(mig_sm_abort(&O, s1, &acts));
  assert_int_equal(s1->state, MIG_S_ABORTED);
  assert_int_equal(s1->open_id, l1.id);
  /* ... and S2 opened on another connection. */
  mig_msg_t l2 = t_open(2, &s2);
  assert_ok(mig_sm_on_echo(&O, s2, &acts));
  /* The acceptor hears of S2 first, and of S1 late: the core takes both. */
  mig_sm_t *t2 = t_accept(20, &l2);
  mig_sm_t *t1 = t_accept(10, &l1);
  assert_true(t1 != t2);
  /* S2 migrates: its current ID changes, its opening ID does not. */
  uint64_t nid = t_migrate(s2, t2, 3);
  assert_true(nid != l2.id);
  assert_int_equal(s2->open_id, l2.id);
  assert_int_equal(t2->open_id, l2.id);
  /* The opening IDs, of one opener incarnation, say which is older. */
  assert_int_equal(t1->open_inc, t2->open_inc);
  assert_true(t1->open_id < t2->open_id);
  /* A Label without incarnation tells no age. */
  mig_sm_t *s4;
  mig_msg_t l4 = t_open(4, &s4);
  l4.has_incarnation = false;
  mig_sm_t *t4 = NULL;
  mig_actions_clear(&acts);
  assert_ok(mig_reg_on_msg(&A, 40, &l4, 0, &acts, &t4));
  assert_false(t4->open_inc_known);
  mig_reg_free(&O);
  mig_reg_free(&A);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ids_rise_across_registries),
      cmocka_unit_test(test_late_label_is_older),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
