/*
 * yamux_table_test.c — the yamux stream state machine as tables:
 *   1. every (stream state, inbound DATA/WINDOW frame x 16 flag sets) pair,
 *      with the exact resulting state or violation;
 *   2. every local operation (write, close, reset) in every state, with the
 *      return code, the resulting state and the frames it sends.
 * The session under test is a client (its streams are odd, the peer's even).
 */
#include "harness.h"
#include "yamux.h"

#define OUT_ID 1u /* a stream we open */
#define IN_ID  2u /* a stream the peer opens */
#define MAX_ID 8u

typedef struct cap_frame {
  uint8_t type;
  uint16_t flags;
  uint32_t id, len;
  size_t blen;
} cap_frame_t;

enum op { OP_NONE, OP_WRITE, OP_CLOSE, OP_RESET };
enum when { AT_ONCE, IN_ACCEPT, IN_FIN, IN_RESET };

typedef struct env {
  yamux_session_t *s;
  cap_frame_t out[64];
  size_t nout;
  yamux_stream_t *by_id[MAX_ID];
  bool freed[MAX_ID];
  yamux_stream_state_t freed_state[MAX_ID];
  int events[MAX_ID]; /* callbacks seen per id */
  int resets[MAX_ID];
  /* an operation to run inside a callback */
  enum op op;
  enum when when;
  bool op_done;
  int op_rc;
  yamux_stream_state_t op_state;
  bool op_freed_during;
  size_t op_out_from, op_out_to;
} env_t;

static void cb_output(void *ud, const uint8_t hdr[BN_YAMUX_HEADER], const uint8_t *body,
                      size_t blen) {
  env_t *e = ud;
  assert_true(e->nout < BN_ARRAY_LEN(e->out));
  cap_frame_t *f = &e->out[e->nout++];
  assert_int_equal(hdr[0], 0);
  f->type = hdr[1];
  f->flags = bn_load_be16(hdr + 2);
  f->id = bn_load_be32(hdr + 4);
  f->len = bn_load_be32(hdr + 8);
  f->blen = blen;
  if (f->type == YAMUX_TYPE_DATA) assert_int_equal(f->len, blen);
  (void)body;
}

static void run_op(env_t *e, yamux_stream_t *st) {
  uint32_t id = yamux_stream_id(st);
  static const uint8_t byte = 'x';
  e->op_out_from = e->nout;
  switch (e->op) {
  case OP_WRITE:
    e->op_rc = yamux_stream_write(st, &byte, 1);
    break;
  case OP_CLOSE:
    e->op_rc = yamux_stream_close(st);
    break;
  case OP_RESET:
    e->op_rc = yamux_stream_reset(st);
    break;
  default:
    fail();
  }
  e->op_out_to = e->nout;
  e->op_freed_during = e->freed[id];
  if (!e->freed[id]) e->op_state = yamux_stream_state(st);
  e->op_done = true;
}

static int cb_accept(void *ud, yamux_stream_t *st) {
  env_t *e = ud;
  uint32_t id = yamux_stream_id(st);
  assert_true(id < MAX_ID);
  assert_int_equal(yamux_stream_state(st), YAMUX_SYN_RECEIVED);
  e->by_id[id] = st;
  e->freed[id] = false;
  e->events[id]++;
  if (e->op && e->when == IN_ACCEPT && !e->op_done) run_op(e, st);
  return 0;
}

static void cb_data(void *ud, yamux_stream_t *st, const uint8_t *p, size_t n) {
  env_t *e = ud;
  e->events[yamux_stream_id(st)]++;
  yamux_stream_consume(st, n, false);
  (void)p;
}

static void cb_fin(void *ud, yamux_stream_t *st) {
  env_t *e = ud;
  e->events[yamux_stream_id(st)]++;
  if (e->op && e->when == IN_FIN && !e->op_done) run_op(e, st);
}

static void cb_reset(void *ud, yamux_stream_t *st) {
  env_t *e = ud;
  e->events[yamux_stream_id(st)]++;
  e->resets[yamux_stream_id(st)]++;
  if (e->op && e->when == IN_RESET && !e->op_done) run_op(e, st);
}

static void cb_free(void *ud, yamux_stream_t *st) {
  env_t *e = ud;
  uint32_t id = yamux_stream_id(st);
  assert_true(id < MAX_ID);
  if (e->by_id[id] == st) {
    e->by_id[id] = NULL;
    e->freed[id] = true;
    e->freed_state[id] = yamux_stream_state(st);
  }
  e->events[id]++;
}

static void env_init(env_t *e) {
  memset(e, 0, sizeof(*e));
  yamux_config_t cfg = {.window = 512 * 1024, .max_streams = 16, .max_frame = 0};
  yamux_cbs_t cbs = {.output = cb_output,
                     .on_accept = cb_accept,
                     .on_data = cb_data,
                     .on_fin = cb_fin,
                     .on_reset = cb_reset,
                     .on_free = cb_free};
  assert_ok(yamux_session_new(&e->s, true, &cfg, &cbs, e));
}

static void env_free(env_t *e) {
  yamux_session_free(e->s);
}

static int feed_frame(env_t *e, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
  uint8_t buf[BN_YAMUX_HEADER + 16] = {0};
  buf[1] = type;
  bn_store_be16(buf + 2, flags);
  bn_store_be32(buf + 4, id);
  bn_store_be32(buf + 8, len);
  size_t blen = type == YAMUX_TYPE_DATA ? len : 0;
  assert_true(blen <= 16);
  return yamux_session_feed(e->s, buf, BN_YAMUX_HEADER + blen);
}

static void open_out(env_t *e) {
  yamux_stream_t *st;
  assert_ok(yamux_stream_open(e->s, &st));
  assert_int_equal(yamux_stream_id(st), OUT_ID);
  e->by_id[OUT_ID] = st;
}

/* ---------------------------------------------------------- setups */

enum setup {
  OUT_SYN_SENT,
  OUT_EST,
  OUT_LC,
  OUT_RC,
  OUT_GONE_CLOSED,
  OUT_GONE_RESET,
  IN_EST,
  IN_LC,
  IN_RC,
  IN_GONE_CLOSED,
  IN_GONE_RESET,
  SETUP_COUNT
};

static const char *const setup_name[] = {
    "out SYN_SENT",     "out ESTABLISHED", "out LOCAL_CLOSED", "out REMOTE_CLOSED",
    "out closed+freed", "out reset+freed", "in ESTABLISHED",   "in LOCAL_CLOSED",
    "in REMOTE_CLOSED", "in closed+freed", "in reset+freed"};

static uint32_t setup_id(enum setup su) {
  return su < IN_EST ? OUT_ID : IN_ID;
}

static void setup(env_t *e, enum setup su) {
  env_init(e);
  uint32_t id = setup_id(su);
  if (id == OUT_ID) {
    open_out(e);
    if (su != OUT_SYN_SENT) assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_ACK, id, 0));
  } else {
    assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_SYN, id, 0));
  }
  yamux_stream_t *st = e->by_id[id];
  assert_non_null(st);
  switch (su) {
  case OUT_LC:
  case IN_LC:
    assert_ok(yamux_stream_close(st));
    break;
  case OUT_RC:
  case IN_RC:
    assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_FIN, id, 0));
    break;
  case OUT_GONE_CLOSED:
  case IN_GONE_CLOSED:
    assert_ok(yamux_stream_close(st));
    assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_FIN, id, 0));
    assert_true(e->freed[id]);
    break;
  case OUT_GONE_RESET:
  case IN_GONE_RESET:
    assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_RST, id, 0));
    assert_true(e->freed[id]);
    break;
  default:
    break;
  }
  memset(e->events, 0, sizeof(e->events));
  memset(e->resets, 0, sizeof(e->resets));
  e->nout = 0;
}

/* --------------------------------------------- table 1: inbound frames */

/* Outcomes. Alive streams: their state. Others as named. */
enum res {
  SS = YAMUX_SYN_SENT,
  ES = YAMUX_ESTABLISHED,
  LC = YAMUX_LOCAL_CLOSED,
  RC = YAMUX_REMOTE_CLOSED,
  CL = 100, /* freed after both FINs (on_fin, on_free) */
  RS,       /* freed after the peer's RST (on_reset, on_free) */
  GN,       /* unknown stream: ignored, no callback, no output */
  BF = 200 + YAMUX_BAD_FLAGS,
  BI = 200 + YAMUX_BAD_STREAM_ID,
  DS = 200 + YAMUX_DUPLICATE_SYN,
  DF = 200 + YAMUX_DATA_AFTER_FIN
};

typedef struct frame_row {
  enum setup su;
  uint8_t type; /* DATA frames carry 1 byte; WINDOW frames a delta of 0 */
  int res[16];  /* by flags: SYN 1 | ACK 2 | FIN 4 | RST 8 */
} frame_row_t;

/* Flags:              0   S   A   SA  F   SF  AF  SAF R   SR  AR  SAR FR  SFR AFR SAFR */
static const frame_row_t frame_rows[] = {
    {OUT_SYN_SENT, 0, {SS, BI, ES, BF, RC, BI, RC, BF, RS, BI, RS, BF, RS, BI, RS, BF}},
    {OUT_SYN_SENT, 1, {SS, BI, ES, BF, RC, BI, RC, BF, RS, BI, RS, BF, RS, BI, RS, BF}},
    {OUT_EST, 0, {ES, BI, ES, BF, RC, BI, RC, BF, RS, BI, RS, BF, RS, BI, RS, BF}},
    {OUT_EST, 1, {ES, BI, ES, BF, RC, BI, RC, BF, RS, BI, RS, BF, RS, BI, RS, BF}},
    {OUT_LC, 0, {LC, BI, LC, BF, CL, BI, CL, BF, RS, BI, RS, BF, RS, BI, RS, BF}},
    {OUT_LC, 1, {LC, BI, LC, BF, CL, BI, CL, BF, RS, BI, RS, BF, RS, BI, RS, BF}},
    {OUT_RC, 0, {DF, BI, DF, BF, DF, BI, DF, BF, RS, BI, RS, BF, RS, BI, RS, BF}},
    {OUT_RC, 1, {RC, BI, RC, BF, DF, BI, DF, BF, RS, BI, RS, BF, RS, BI, RS, BF}},
    {OUT_GONE_CLOSED, 0, {GN, BI, GN, BF, GN, BI, GN, BF, GN, BI, GN, BF, GN, BI, GN, BF}},
    {OUT_GONE_CLOSED, 1, {GN, BI, GN, BF, GN, BI, GN, BF, GN, BI, GN, BF, GN, BI, GN, BF}},
    {OUT_GONE_RESET, 0, {GN, BI, GN, BF, GN, BI, GN, BF, GN, BI, GN, BF, GN, BI, GN, BF}},
    {OUT_GONE_RESET, 1, {GN, BI, GN, BF, GN, BI, GN, BF, GN, BI, GN, BF, GN, BI, GN, BF}},
    {IN_EST, 0, {ES, DS, BF, BF, RC, DS, BF, BF, RS, DS, BF, BF, RS, DS, BF, BF}},
    {IN_EST, 1, {ES, DS, BF, BF, RC, DS, BF, BF, RS, DS, BF, BF, RS, DS, BF, BF}},
    {IN_LC, 0, {LC, DS, BF, BF, CL, DS, BF, BF, RS, DS, BF, BF, RS, DS, BF, BF}},
    {IN_LC, 1, {LC, DS, BF, BF, CL, DS, BF, BF, RS, DS, BF, BF, RS, DS, BF, BF}},
    {IN_RC, 0, {DF, DS, BF, BF, DF, DS, BF, BF, RS, DS, BF, BF, RS, DS, BF, BF}},
    {IN_RC, 1, {RC, DS, BF, BF, DF, DS, BF, BF, RS, DS, BF, BF, RS, DS, BF, BF}},
    /* A gone id of the peer's parity is free again: a SYN opens a new stream. */
    {IN_GONE_CLOSED, 0, {GN, ES, GN, BF, GN, RC, GN, BF, GN, GN, GN, BF, GN, GN, GN, BF}},
    {IN_GONE_CLOSED, 1, {GN, ES, GN, BF, GN, RC, GN, BF, GN, GN, GN, BF, GN, GN, GN, BF}},
    {IN_GONE_RESET, 0, {GN, ES, GN, BF, GN, RC, GN, BF, GN, GN, GN, BF, GN, GN, GN, BF}},
    {IN_GONE_RESET, 1, {GN, ES, GN, BF, GN, RC, GN, BF, GN, GN, GN, BF, GN, GN, GN, BF}},
};

static int observe(env_t *e, uint32_t id, int rc) {
  if (rc != 0) {
    assert_int_equal(rc, BFTNET_EPROTO);
    /* sticky */
    assert_int_equal(feed_frame(e, YAMUX_TYPE_PING, YAMUX_FLAG_SYN, 0, 1), BFTNET_EPROTO);
    return 200 + (int)yamux_session_error(e->s);
  }
  assert_int_equal(yamux_session_error(e->s), YAMUX_OK);
  if (e->by_id[id]) return (int)yamux_stream_state(e->by_id[id]);
  if (e->events[id] == 0) {
    assert_int_equal(e->nout, 0);
    return GN;
  }
  assert_true(e->freed[id]);
  if (e->freed_state[id] == YAMUX_RESET) {
    assert_int_equal(e->resets[id], 1);
    return RS;
  }
  assert_int_equal(e->freed_state[id], YAMUX_CLOSED);
  return CL;
}

static void test_inbound_frame_table(void **state) {
  (void)state;
  for (size_t r = 0; r < BN_ARRAY_LEN(frame_rows); r++) {
    const frame_row_t *row = &frame_rows[r];
    for (uint16_t flags = 0; flags < 16; flags++) {
      env_t e;
      setup(&e, row->su);
      uint32_t id = setup_id(row->su);
      int rc = feed_frame(&e, row->type, flags, id, row->type == YAMUX_TYPE_DATA ? 1 : 0);
      int got = observe(&e, id, rc);
      if (got != row->res[flags])
        fail_msg("%s, %s flags 0x%x: got %d, want %d", setup_name[row->su],
                 row->type == YAMUX_TYPE_DATA ? "DATA" : "WINDOW", flags, got, row->res[flags]);
      env_free(&e);
    }
  }
}

/* Session frames (PING, GOAWAY) aimed at a stream id: the same in every
 * state, which is the point. Flags as above. */
static const int ping_on_stream[16] = {BF, BI, BI, BF, BF, BF, BF, BF,
                                       BF, BF, BF, BF, BF, BF, BF, BF};
static const int goaway_on_stream[16] = {BI, BF, BF, BF, BF, BF, BF, BF,
                                         BF, BF, BF, BF, BF, BF, BF, BF};

static void test_session_frame_table(void **state) {
  (void)state;
  for (int su = 0; su < SETUP_COUNT; su++) {
    for (uint8_t type = YAMUX_TYPE_PING; type <= YAMUX_TYPE_GOAWAY; type++) {
      const int *want = type == YAMUX_TYPE_PING ? ping_on_stream : goaway_on_stream;
      for (uint16_t flags = 0; flags < 16; flags++) {
        env_t e;
        setup(&e, (enum setup)su);
        uint32_t id = setup_id((enum setup)su);
        int got = observe(&e, id, feed_frame(&e, type, flags, id, 7));
        if (got != want[flags])
          fail_msg("%s, type %u flags 0x%x: got %d, want %d", setup_name[su], type, flags, got,
                   want[flags]);
        env_free(&e);
      }
    }
  }
}

/* ------------------------------------------- table 2: local operations */

enum lstate { L_SYN_SENT, L_SYN_RECEIVED, L_EST, L_LC, L_RC, L_CLOSED, L_RESET, L_COUNT };

typedef struct want_frame {
  uint8_t type;
  uint16_t flags;
} want_frame_t;

typedef struct op_row {
  enum lstate ls;
  enum op op;
  int rc;
  yamux_stream_state_t after;
  bool freed;        /* on_free ran by the end of the outermost call */
  want_frame_t f[2]; /* frames sent by the operation (type 0xff = none) */
} op_row_t;

#define NOF                                                                                        \
  { 0xff, 0 }
#define W(fl)                                                                                      \
  { YAMUX_TYPE_WINDOW, (fl) }
#define D                                                                                          \
  { YAMUX_TYPE_DATA, 0 }
#define ACK YAMUX_FLAG_ACK
#define FIN YAMUX_FLAG_FIN
#define RST YAMUX_FLAG_RST

static const op_row_t op_rows[] = {
    {L_SYN_SENT, OP_WRITE, 1, YAMUX_SYN_SENT, false, {D, NOF}},
    {L_SYN_RECEIVED, OP_WRITE, 1, YAMUX_ESTABLISHED, false, {W(ACK), D}},
    {L_EST, OP_WRITE, 1, YAMUX_ESTABLISHED, false, {D, NOF}},
    {L_LC, OP_WRITE, BFTNET_ESTATE, YAMUX_LOCAL_CLOSED, false, {NOF, NOF}},
    {L_RC, OP_WRITE, 1, YAMUX_REMOTE_CLOSED, false, {D, NOF}},
    {L_CLOSED, OP_WRITE, BFTNET_ESTATE, YAMUX_CLOSED, true, {NOF, NOF}},
    {L_RESET, OP_WRITE, BFTNET_ESTATE, YAMUX_RESET, true, {NOF, NOF}},

    {L_SYN_SENT, OP_CLOSE, 0, YAMUX_LOCAL_CLOSED, false, {W(FIN), NOF}},
    {L_SYN_RECEIVED, OP_CLOSE, 0, YAMUX_LOCAL_CLOSED, false, {W(ACK | FIN), NOF}},
    {L_EST, OP_CLOSE, 0, YAMUX_LOCAL_CLOSED, false, {W(FIN), NOF}},
    {L_LC, OP_CLOSE, 0, YAMUX_LOCAL_CLOSED, false, {NOF, NOF}},
    {L_RC, OP_CLOSE, 0, YAMUX_CLOSED, true, {W(FIN), NOF}},
    {L_CLOSED, OP_CLOSE, 0, YAMUX_CLOSED, true, {NOF, NOF}},
    {L_RESET, OP_CLOSE, BFTNET_ESTATE, YAMUX_RESET, true, {NOF, NOF}},

    {L_SYN_SENT, OP_RESET, 0, YAMUX_RESET, true, {W(RST), NOF}},
    {L_SYN_RECEIVED, OP_RESET, 0, YAMUX_RESET, true, {W(RST), NOF}},
    {L_EST, OP_RESET, 0, YAMUX_RESET, true, {W(RST), NOF}},
    {L_LC, OP_RESET, 0, YAMUX_RESET, true, {W(RST), NOF}},
    {L_RC, OP_RESET, 0, YAMUX_RESET, true, {W(RST), NOF}},
    {L_CLOSED, OP_RESET, 0, YAMUX_CLOSED, true, {NOF, NOF}},
    {L_RESET, OP_RESET, 0, YAMUX_RESET, true, {NOF, NOF}},
};

static void local_setup_and_run(env_t *e, const op_row_t *row) {
  env_init(e);
  e->op = row->op;
  uint32_t id = IN_ID;
  switch (row->ls) {
  case L_SYN_RECEIVED:
    e->when = IN_ACCEPT;
    assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_SYN, id, 0));
    return;
  case L_CLOSED:
    e->when = IN_FIN;
    assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_SYN, id, 0));
    assert_ok(yamux_stream_close(e->by_id[id]));
    assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_FIN, id, 0));
    return;
  case L_RESET:
    e->when = IN_RESET;
    assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_SYN, id, 0));
    assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_RST, id, 0));
    return;
  case L_SYN_SENT:
    open_out(e);
    id = OUT_ID;
    break;
  default:
    assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_SYN, id, 0));
    if (row->ls == L_LC) assert_ok(yamux_stream_close(e->by_id[id]));
    if (row->ls == L_RC) assert_ok(feed_frame(e, YAMUX_TYPE_WINDOW, YAMUX_FLAG_FIN, id, 0));
    break;
  }
  e->when = AT_ONCE;
  run_op(e, e->by_id[id]);
}

static void test_local_op_table(void **state) {
  (void)state;
  static const char *const opn[] = {"", "write", "close", "reset"};
  for (size_t r = 0; r < BN_ARRAY_LEN(op_rows); r++) {
    const op_row_t *row = &op_rows[r];
    env_t e;
    local_setup_and_run(&e, row);
    uint32_t id = row->ls == L_SYN_SENT ? OUT_ID : IN_ID;
    if (!e.op_done) fail_msg("row %zu: op did not run", r);
    if (e.op_rc != row->rc)
      fail_msg("row %zu (%s in state %d): rc %d %s, want %d", r, opn[row->op], row->ls, e.op_rc,
               bftnet_err_name(e.op_rc), row->rc);
    yamux_stream_state_t after = e.op_freed_during ? e.freed_state[id] : e.op_state;
    if (after != row->after)
      fail_msg("row %zu (%s): state %s, want %s", r, opn[row->op], yamux_stream_state_str(after),
               yamux_stream_state_str(row->after));
    if (e.freed[id] != row->freed) fail_msg("row %zu: freed %d", r, e.freed[id]);
    size_t n = e.op_out_to - e.op_out_from, k = 0;
    for (; k < 2 && row->f[k].type != 0xff; k++) {
      if (k >= n) fail_msg("row %zu: frame %zu missing", r, k);
      const cap_frame_t *f = &e.out[e.op_out_from + k];
      assert_int_equal(f->type, row->f[k].type);
      assert_int_equal(f->flags, row->f[k].flags);
      assert_int_equal(f->id, id);
      if (f->flags & YAMUX_FLAG_ACK) assert_int_equal(f->len, 256 * 1024); /* the extra grant */
    }
    if (n != k) fail_msg("row %zu: %zu frames, want %zu", r, n, k);
    if (row->ls == L_SYN_RECEIVED && row->op == OP_RESET)
      assert_int_equal(e.nout, e.op_out_to); /* no ACK after the refusal */
    assert_int_equal(yamux_session_error(e.s), YAMUX_OK);
    env_free(&e);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_inbound_frame_table),
      cmocka_unit_test(test_session_frame_table),
      cmocka_unit_test(test_local_op_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
