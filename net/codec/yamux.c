/*
 * yamux.c — yamux sessions and streams (hashicorp/yamux spec.md) as a pure
 * state machine: bytes in through yamux_session_feed, frames out through
 * cbs.output. No I/O, no clock, no buffering of stream data: a data frame's
 * body is handed to on_data as it arrives and written data goes straight to
 * output, so the only memory a peer can make us hold is one stream object
 * per open stream (bounded by cfg.max_streams).
 *
 * Legal frames (checked on every header, in this order, before anything is
 * looked up or changed):
 *   1. version == 0                                     else BAD_VERSION
 *   2. type <= 3                                        else BAD_TYPE
 *   3. flags, by type:                                  else BAD_FLAGS
 *        DATA, WINDOW  any subset of SYN|ACK|FIN|RST except one holding both
 *                      SYN and ACK (open and accept at once is meaningless).
 *                      RST may ride with SYN, ACK or FIN: it wins (the body
 *                      is discarded; SYN|RST opens nothing).
 *        PING          exactly SYN (request) or exactly ACK (reply)
 *        GOAWAY        none
 *      Bits above RST (0x8) are never legal.
 *   4. stream id: != 0 for DATA/WINDOW, == 0 for PING/GOAWAY; a SYN must
 *      carry the peer's parity (odd from a client, even from a server)
 *                                                        else BAD_STREAM_ID
 *   5. DATA length <= BN_YAMUX_MAX_WINDOW               else FRAME_TOO_LARGE
 *      (only DATA lengths are sizes: a WINDOW length is a delta checked by
 *      the overflow rule, or with RST an error code; PING's is an opaque
 *      value and GOAWAY's an error code, all arbitrary 32-bit values.)
 * Then, per stream:
 *   SYN for a live id                                   -> DUPLICATE_SYN
 *   ACK on a stream the peer opened (only it may be ACKed by us) -> BAD_FLAGS
 *   ACK on a stream we opened: SYN_SENT -> ESTABLISHED, else no effect
 *   data (length > 0) or FIN after the peer's FIN       -> DATA_AFTER_FIN
 *   data beyond the receive window we granted           -> WINDOW_EXCEEDED
 *   send window + delta > 2^32-1                        -> WINDOW_OVERFLOW
 *   any frame for an unknown id (never opened, or closed/reset and gone)
 *   without SYN is ignored; its body is skipped, never stored.
 * Within a legal frame the order is: SYN (accept) or ACK, RST, window delta,
 * data, and FIN last (after the whole body).
 *
 * Reentrancy (hiredis REDIS_IN_CALLBACK): every public entry point bumps
 * sess->nest; streams that end are taken out of the id table at once (so a
 * later frame for the id is "unknown" whatever the split of the input) but
 * are freed, with on_free, only when the outermost call returns or, inside
 * feed, at a frame boundary outside any callback.
 */
#include <limits.h>
#include <search.h>
#include <stdlib.h>

#include "yamux.h"

#define YAMUX_DEFAULT_FRAME (64u * 1024u)
#define YAMUX_FLAGS_ALL     (YAMUX_FLAG_SYN | YAMUX_FLAG_ACK | YAMUX_FLAG_FIN | YAMUX_FLAG_RST)

struct yamux_stream {
  uint32_t id; /* first member: the id table compares streams and ids alike */
  yamux_stream_state_t state;
  yamux_session_t *sess;
  bool outbound;        /* we opened it (our id parity) */
  bool blocked;         /* a write came back short: on_writable is owed */
  bool in_table;        /* findable by id; false once CLOSED or RESET */
  uint32_t send_window; /* bytes the peer lets us send */
  uint32_t recv_window; /* bytes we let the peer send, not yet received */
  uint32_t unconsumed;  /* handed to on_data, not yet consumed */
  uint32_t credit;      /* consumed, not yet granted back */
  void *user;
  yamux_stream_t *prev, *next; /* every allocated stream */
  yamux_stream_t *reap_next;   /* retired, waiting for on_free */
};

struct yamux_session {
  yamux_config_t cfg;
  yamux_cbs_t cbs;
  void *ud;
  bool is_client;
  bool freeing;
  int err; /* sticky: 0, BFTNET_EPROTO, BFTNET_ENOMEM */
  yamux_violation_t violation;
  unsigned nest; /* public calls in progress (reentrancy) */
  /* framing: a header being collected, or the rest of a body */
  uint8_t hdr[BN_YAMUX_HEADER];
  size_t hdr_len;
  uint32_t body_left;
  yamux_stream_t *body_st; /* receives the body; NULL: discard it */
  bool body_fin;           /* FIN to apply once the body is in */
  /* streams */
  void *table; /* tsearch tree keyed by id: no hash flooding */
  size_t count, n_inbound, n_outbound;
  yamux_stream_t *all, *reap;
  uint64_t next_id;
  bool goaway_sent, goaway_received;
  uint32_t goaway_code;
  yamux_stats_t stats;
};

/* ------------------------------------------------------------- strings */

const char *yamux_violation_str(yamux_violation_t v) {
  switch (v) {
  case YAMUX_OK:
    return "ok";
  case YAMUX_BAD_VERSION:
    return "bad version";
  case YAMUX_BAD_TYPE:
    return "bad frame type";
  case YAMUX_BAD_FLAGS:
    return "illegal flags";
  case YAMUX_BAD_STREAM_ID:
    return "bad stream id";
  case YAMUX_DUPLICATE_SYN:
    return "SYN for an existing stream";
  case YAMUX_WINDOW_EXCEEDED:
    return "data beyond the receive window";
  case YAMUX_WINDOW_OVERFLOW:
    return "send window overflow";
  case YAMUX_DATA_AFTER_FIN:
    return "data or FIN after FIN";
  case YAMUX_FRAME_TOO_LARGE:
    return "frame too large";
  case YAMUX_INTERNAL:
    return "internal error";
  }
  return "unknown violation";
}

const char *yamux_stream_state_str(yamux_stream_state_t state) {
  switch (state) {
  case YAMUX_SYN_SENT:
    return "SYN_SENT";
  case YAMUX_SYN_RECEIVED:
    return "SYN_RECEIVED";
  case YAMUX_ESTABLISHED:
    return "ESTABLISHED";
  case YAMUX_LOCAL_CLOSED:
    return "LOCAL_CLOSED";
  case YAMUX_REMOTE_CLOSED:
    return "REMOTE_CLOSED";
  case YAMUX_CLOSED:
    return "CLOSED";
  case YAMUX_RESET:
    return "RESET";
  }
  return "UNKNOWN";
}

/* ---------------------------------------------------------- state sets */

static bool state_can_send(yamux_stream_state_t st) {
  return st == YAMUX_SYN_SENT || st == YAMUX_SYN_RECEIVED || st == YAMUX_ESTABLISHED ||
         st == YAMUX_REMOTE_CLOSED;
}

static bool state_peer_may_send(yamux_stream_state_t st) {
  return st == YAMUX_SYN_SENT || st == YAMUX_SYN_RECEIVED || st == YAMUX_ESTABLISHED ||
         st == YAMUX_LOCAL_CLOSED;
}

static bool id_is_ours(const yamux_session_t *s, uint32_t id) {
  return (id & 1u) == (s->is_client ? 1u : 0u);
}

/* ----------------------------------------------------- reentrancy, reap */

static void sess_reap(yamux_session_t *s) {
  yamux_stream_t *st;
  s->nest++; /* on_free may call in: keep its calls from reaping */
  while ((st = s->reap) != NULL) {
    s->reap = st->reap_next;
    if (s->cbs.on_free) s->cbs.on_free(s->ud, st);
    if (st->prev)
      st->prev->next = st->next;
    else
      s->all = st->next;
    if (st->next) st->next->prev = st->prev;
    free(st);
  }
  s->nest--;
}

static void api_enter(yamux_session_t *s) {
  s->nest++;
}

static void api_leave(yamux_session_t *s) {
  BN_ASSERT(s->nest > 0);
  if (s->nest == 1) sess_reap(s); /* the outermost call */
  s->nest--;
}

/* Records a violation (sticky); returns NULL for the callers' convenience. */
static void *sess_fail(yamux_session_t *s, yamux_violation_t v) {
  BN_ASSERT(v != YAMUX_OK);
  if (!s->err) {
    s->violation = v;
    s->err = v == YAMUX_INTERNAL ? BFTNET_ENOMEM : BFTNET_EPROTO;
  }
  return NULL;
}

/* -------------------------------------------------------------- output */

static void emit(yamux_session_t *s, uint8_t type, uint16_t flags, uint32_t id, uint32_t len,
                 const uint8_t *body, size_t blen) {
  uint8_t h[BN_YAMUX_HEADER];
  h[0] = 0;
  h[1] = type;
  bn_store_be16(h + 2, flags);
  bn_store_be32(h + 4, id);
  bn_store_be32(h + 8, len);
  s->stats.frames_out++;
  s->cbs.output(s->ud, h, body, blen);
}

/* ------------------------------------------------------------ id table */

static int id_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static yamux_stream_t *table_find(const yamux_session_t *s, uint32_t id) {
  void *const *node = tfind(&id, &s->table, id_cmp);
  return node ? *(yamux_stream_t *const *)node : NULL;
}

/* Allocates a stream in `state`, links it and enters it in the table. */
static yamux_stream_t *stream_new(yamux_session_t *s, uint32_t id, yamux_stream_state_t state,
                                  uint32_t send_window, uint32_t recv_window) {
  yamux_stream_t *st = calloc(1, sizeof(*st));
  if (!st) return NULL;
  st->id = id;
  st->state = state;
  st->sess = s;
  st->outbound = id_is_ours(s, id);
  st->send_window = send_window;
  st->recv_window = recv_window;
  void **node = tsearch(st, &s->table, id_cmp);
  if (!node) {
    free(st);
    return NULL;
  }
  BN_ASSERT(*node == st);
  st->in_table = true;
  st->next = s->all;
  if (s->all) s->all->prev = st;
  s->all = st;
  s->count++;
  if (st->outbound)
    s->n_outbound++;
  else
    s->n_inbound++;
  return st;
}

/* The stream ends (CLOSED or RESET): out of the table now, freed at reap. */
static void stream_retire(yamux_stream_t *st, yamux_stream_state_t state) {
  yamux_session_t *s = st->sess;
  BN_ASSERT(st->in_table);
  BN_ASSERT(state == YAMUX_CLOSED || state == YAMUX_RESET);
  void *parent = tdelete(st, &s->table, id_cmp);
  BN_ASSERT(parent != NULL);
  st->in_table = false;
  st->state = state;
  s->count--;
  if (st->outbound)
    s->n_outbound--;
  else
    s->n_inbound--;
  if (s->body_st == st) s->body_st = NULL;
  st->reap_next = s->reap;
  s->reap = st;
}

/* Spec "Opening a stream": our first frame on a stream the peer opened
 * carries ACK, and with it the window we grant beyond the initial 256 KiB. */
static void stream_take_ack(yamux_stream_t *st, uint16_t *flags, uint32_t *delta) {
  if (st->state != YAMUX_SYN_RECEIVED) return;
  uint32_t extra = st->sess->cfg.window - BN_YAMUX_INITIAL_WINDOW;
  *flags |= YAMUX_FLAG_ACK;
  *delta += extra;
  st->recv_window += extra;
  st->state = YAMUX_ESTABLISHED;
}

static void stream_send_ack(yamux_stream_t *st) {
  uint16_t flags = 0;
  uint32_t delta = 0;
  stream_take_ack(st, &flags, &delta);
  if (flags) emit(st->sess, YAMUX_TYPE_WINDOW, flags, st->id, delta, NULL, 0);
}

/* ------------------------------------------------- events from the peer */

/* Peer FIN (spec "Closing a stream"). The caller checked the state
 * (DATA_AFTER_FIN) and skips streams a callback has ended meanwhile. */
static void stream_on_remote_fin(yamux_stream_t *st) {
  yamux_session_t *s = st->sess;
  BN_ASSERT(st->in_table);
  if (st->state == YAMUX_LOCAL_CLOSED) {
    stream_retire(st, YAMUX_CLOSED);
  } else {
    BN_ASSERT(st->state == YAMUX_SYN_SENT || st->state == YAMUX_ESTABLISHED);
    st->state = YAMUX_REMOTE_CLOSED;
  }
  if (s->cbs.on_fin) s->cbs.on_fin(s->ud, st);
}

static void stream_on_remote_reset(yamux_stream_t *st) {
  yamux_session_t *s = st->sess;
  stream_retire(st, YAMUX_RESET);
  if (s->cbs.on_reset) s->cbs.on_reset(s->ud, st);
}

static void stream_on_window(yamux_stream_t *st, uint32_t delta) {
  yamux_session_t *s = st->sess;
  st->send_window += delta; /* overflow checked by the caller */
  if (st->blocked && st->send_window > 0 && state_can_send(st->state)) {
    st->blocked = false;
    if (s->cbs.on_writable) s->cbs.on_writable(s->ud, st);
  }
}

/* ----------------------------------------------------- frame reception */

static yamux_violation_t frame_check(uint8_t ver, uint8_t type, uint16_t flags, uint32_t id,
                                     uint32_t len) {
  if (ver != 0) return YAMUX_BAD_VERSION;
  if (type > YAMUX_TYPE_GOAWAY) return YAMUX_BAD_TYPE;
  if (flags & ~YAMUX_FLAGS_ALL) return YAMUX_BAD_FLAGS;
  switch (type) {
  case YAMUX_TYPE_DATA:
  case YAMUX_TYPE_WINDOW:
    if ((flags & YAMUX_FLAG_SYN) && (flags & YAMUX_FLAG_ACK)) return YAMUX_BAD_FLAGS;
    if (id == 0) return YAMUX_BAD_STREAM_ID;
    if (type == YAMUX_TYPE_DATA && len > BN_YAMUX_MAX_WINDOW) return YAMUX_FRAME_TOO_LARGE;
    return YAMUX_OK;
  case YAMUX_TYPE_PING:
    if (flags != YAMUX_FLAG_SYN && flags != YAMUX_FLAG_ACK) return YAMUX_BAD_FLAGS;
    return id == 0 ? YAMUX_OK : YAMUX_BAD_STREAM_ID;
  default: /* GOAWAY */
    if (flags != 0) return YAMUX_BAD_FLAGS;
    return id == 0 ? YAMUX_OK : YAMUX_BAD_STREAM_ID;
  }
}

/* Checks a frame without SYN for a live stream, before anything changes. */
static yamux_violation_t stream_check(const yamux_stream_t *st, uint16_t flags, uint32_t body,
                                      uint32_t delta) {
  BN_ASSERT(st->state != YAMUX_SYN_RECEIVED); /* only exists inside on_accept */
  if ((flags & YAMUX_FLAG_ACK) && !st->outbound) return YAMUX_BAD_FLAGS;
  if (flags & YAMUX_FLAG_RST) return YAMUX_OK;
  if (st->state == YAMUX_REMOTE_CLOSED && (body > 0 || (flags & YAMUX_FLAG_FIN)))
    return YAMUX_DATA_AFTER_FIN;
  if (body > st->recv_window) return YAMUX_WINDOW_EXCEEDED;
  if ((uint64_t)st->send_window + delta > UINT32_MAX) return YAMUX_WINDOW_OVERFLOW;
  return YAMUX_OK;
}

/* A SYN from the peer: refuse it, or create the stream and ask on_accept.
 * Returns the stream to go on with, or NULL (refused, error, SYN|RST). */
static yamux_stream_t *rx_syn(yamux_session_t *s, uint16_t flags, uint32_t id, uint32_t body,
                              uint32_t delta) {
  if (id_is_ours(s, id)) return sess_fail(s, YAMUX_BAD_STREAM_ID);
  if (table_find(s, id)) return sess_fail(s, YAMUX_DUPLICATE_SYN);
  if (flags & YAMUX_FLAG_RST) return NULL; /* opened and reset at once */
  if (body > BN_YAMUX_INITIAL_WINDOW) return sess_fail(s, YAMUX_WINDOW_EXCEEDED);
  if ((uint64_t)BN_YAMUX_INITIAL_WINDOW + delta > UINT32_MAX)
    return sess_fail(s, YAMUX_WINDOW_OVERFLOW);
  if (s->goaway_sent || s->n_inbound >= s->cfg.max_streams) {
    s->stats.streams_refused++;
    emit(s, YAMUX_TYPE_WINDOW, YAMUX_FLAG_RST, id, 0, NULL, 0);
    return NULL;
  }
  yamux_stream_t *st = stream_new(s, id, YAMUX_SYN_RECEIVED, BN_YAMUX_INITIAL_WINDOW + delta,
                                  BN_YAMUX_INITIAL_WINDOW);
  if (!st) return sess_fail(s, YAMUX_INTERNAL);
  int rc = s->cbs.on_accept ? s->cbs.on_accept(s->ud, st) : 0;
  if (rc < 0) {
    s->stats.streams_refused++;
    if (st->in_table) {
      stream_retire(st, YAMUX_RESET);
      if (!s->err) emit(s, YAMUX_TYPE_WINDOW, YAMUX_FLAG_RST, id, 0, NULL, 0);
    }
    return NULL;
  }
  s->stats.streams_accepted++;
  if (st->state == YAMUX_SYN_RECEIVED && !s->err) stream_send_ack(st);
  return st->in_table ? st : NULL;
}

static void rx_stream_frame(yamux_session_t *s, uint8_t type, uint16_t flags, uint32_t id,
                            uint32_t len) {
  uint32_t body = type == YAMUX_TYPE_DATA ? len : 0;
  uint32_t delta = type == YAMUX_TYPE_WINDOW && !(flags & YAMUX_FLAG_RST) ? len : 0;
  yamux_stream_t *st;
  s->body_left = body; /* discarded unless a stream takes it below */
  s->body_st = NULL;
  s->body_fin = false;
  if (flags & YAMUX_FLAG_SYN) {
    st = rx_syn(s, flags, id, body, delta);
    if (!st) return;
    delta = 0; /* already the stream's initial send window */
  } else {
    st = table_find(s, id);
    if (!st) return; /* unknown or gone: ignored */
    yamux_violation_t v = stream_check(st, flags, body, delta);
    if (v != YAMUX_OK) {
      sess_fail(s, v);
      return;
    }
    if (flags & YAMUX_FLAG_RST) {
      stream_on_remote_reset(st);
      return;
    }
    if ((flags & YAMUX_FLAG_ACK) && st->state == YAMUX_SYN_SENT) st->state = YAMUX_ESTABLISHED;
  }
  if (delta) {
    stream_on_window(st, delta);
    if (type == YAMUX_TYPE_WINDOW && !(flags & (YAMUX_FLAG_SYN | YAMUX_FLAG_ACK)) && st->in_table &&
        s->cbs.on_credit)
      s->cbs.on_credit(s->ud, st, delta);
  }
  if (!st->in_table) return; /* a callback reset it: skip body and FIN */
  if (body > 0) {
    st->recv_window -= body;
    s->body_st = st;
    s->body_fin = (flags & YAMUX_FLAG_FIN) != 0;
    return;
  }
  if (flags & YAMUX_FLAG_FIN) stream_on_remote_fin(st);
}

static void rx_header(yamux_session_t *s) {
  const uint8_t *h = s->hdr;
  uint8_t type = h[1];
  uint16_t flags = bn_load_be16(h + 2);
  uint32_t id = bn_load_be32(h + 4), len = bn_load_be32(h + 8);
  s->stats.frames_in++;
  yamux_violation_t v = frame_check(h[0], type, flags, id, len);
  if (v != YAMUX_OK) {
    sess_fail(s, v);
    return;
  }
  switch (type) {
  case YAMUX_TYPE_PING:
    if (flags == YAMUX_FLAG_SYN) {
      s->stats.pings_answered++;
      emit(s, YAMUX_TYPE_PING, YAMUX_FLAG_ACK, 0, len, NULL, 0);
    } else if (s->cbs.on_pong) {
      s->cbs.on_pong(s->ud, len);
    }
    return;
  case YAMUX_TYPE_GOAWAY:
    s->goaway_received = true;
    s->goaway_code = len;
    if (s->cbs.on_goaway) s->cbs.on_goaway(s->ud, len);
    return;
  default:
    rx_stream_frame(s, type, flags, id, len);
  }
}

static void rx_body(yamux_session_t *s, const uint8_t *p, size_t n) {
  yamux_stream_t *st = s->body_st;
  if (!st) return;
  st->unconsumed += (uint32_t)n;
  if (s->cbs.on_data) s->cbs.on_data(s->ud, st, p, n);
  if (s->body_left == 0) {
    st = s->body_st; /* a callback may have reset it */
    s->body_st = NULL;
    if (st && s->body_fin) stream_on_remote_fin(st);
  }
}

int yamux_session_feed(yamux_session_t *s, const uint8_t *p, size_t n) {
  if (s->nest > 0) return BFTNET_ESTATE;
  if (s->err) return s->err;
  api_enter(s);
  while (n > 0 && !s->err) {
    size_t take;
    if (s->body_left == 0) {
      take = BN_MIN(n, BN_YAMUX_HEADER - s->hdr_len);
      memcpy(s->hdr + s->hdr_len, p, take);
      s->hdr_len += take;
      if (s->hdr_len == BN_YAMUX_HEADER) {
        s->hdr_len = 0;
        rx_header(s);
      }
    } else {
      take = BN_MIN(n, s->body_left);
      s->body_left -= (uint32_t)take;
      rx_body(s, p, take);
    }
    p += take;
    n -= take;
    if (s->hdr_len == 0 && s->body_left == 0) sess_reap(s); /* frame boundary */
  }
  api_leave(s);
  return s->err;
}

/* ------------------------------------------------------------- session */

int yamux_session_new(yamux_session_t **out, bool is_client, const yamux_config_t *cfg,
                      const yamux_cbs_t *cbs, void *ud) {
  *out = NULL;
  if (!cfg || !cbs || !cbs->output) return BFTNET_EINVAL;
  if (cfg->window < BN_YAMUX_INITIAL_WINDOW || cfg->window > BN_YAMUX_MAX_WINDOW)
    return BFTNET_EINVAL;
  if (cfg->max_streams > BN_YAMUX_MAX_STREAMS_CAP || cfg->max_frame > BN_YAMUX_MAX_WINDOW)
    return BFTNET_EINVAL;
  yamux_session_t *s = calloc(1, sizeof(*s));
  if (!s) return BFTNET_ENOMEM;
  s->cfg = *cfg;
  if (s->cfg.max_frame == 0) s->cfg.max_frame = YAMUX_DEFAULT_FRAME;
  s->cbs = *cbs;
  s->ud = ud;
  s->is_client = is_client;
  s->next_id = is_client ? 1 : 2;
  *out = s;
  return 0;
}

void yamux_session_free(yamux_session_t *s) {
  if (!s) return;
  BN_ASSERT(s->nest == 0); /* not from inside a callback */
  s->freeing = true;
  s->nest = 1;
  for (yamux_stream_t *st = s->all; st; st = st->next)
    if (st->in_table) stream_retire(st, YAMUX_RESET); /* silently: no RST */
  sess_reap(s);
  BN_ASSERT(s->all == NULL && s->table == NULL && s->count == 0);
  free(s);
}

yamux_violation_t yamux_session_error(const yamux_session_t *s) {
  return s->violation;
}

int yamux_session_ping(yamux_session_t *s, uint32_t opaque) {
  if (s->err) return s->err;
  if (s->freeing) return BFTNET_ECLOSED;
  api_enter(s);
  emit(s, YAMUX_TYPE_PING, YAMUX_FLAG_SYN, 0, opaque, NULL, 0);
  api_leave(s);
  return 0;
}

/* Spec "Session termination". Allowed after an error too, so the caller
 * can tell the peer why (YAMUX_GOAWAY_PROTOCOL). Sent once. */
int yamux_session_goaway(yamux_session_t *s, uint32_t code) {
  if (s->freeing) return BFTNET_ECLOSED;
  if (s->goaway_sent) return 0;
  api_enter(s);
  s->goaway_sent = true;
  emit(s, YAMUX_TYPE_GOAWAY, 0, 0, code, NULL, 0);
  api_leave(s);
  return 0;
}

bool yamux_session_remote_goaway(const yamux_session_t *s) {
  return s->goaway_received;
}
size_t yamux_session_stream_count(const yamux_session_t *s) {
  return s->count;
}
const yamux_stats_t *yamux_session_stats(const yamux_session_t *s) {
  return &s->stats;
}

/* -------------------------------------------------------------- streams */

int yamux_stream_open(yamux_session_t *s, yamux_stream_t **out) {
  *out = NULL;
  if (s->err) return s->err;
  if (s->freeing || s->goaway_received) return BFTNET_ECLOSED;
  if (s->next_id > UINT32_MAX || s->n_outbound >= BN_YAMUX_MAX_STREAMS_CAP) return BFTNET_ELIMIT;
  yamux_stream_t *st =
      stream_new(s, (uint32_t)s->next_id, YAMUX_SYN_SENT, BN_YAMUX_INITIAL_WINDOW, s->cfg.window);
  if (!st) return BFTNET_ENOMEM;
  s->next_id += 2;
  s->stats.streams_opened++;
  *out = st;
  api_enter(s);
  emit(s, YAMUX_TYPE_WINDOW, YAMUX_FLAG_SYN, st->id, s->cfg.window - BN_YAMUX_INITIAL_WINDOW, NULL,
       0);
  api_leave(s);
  return 0;
}

int yamux_stream_write(yamux_stream_t *st, const uint8_t *p, size_t n) {
  yamux_session_t *s = st->sess;
  if (s->err) return s->err;
  if (!state_can_send(st->state)) return BFTNET_ESTATE;
  api_enter(s);
  stream_send_ack(st);
  size_t done = 0, limit = BN_MIN(n, (size_t)INT_MAX);
  while (done < limit && st->send_window > 0 && state_can_send(st->state) && !s->err) {
    size_t chunk = BN_MIN(limit - done, (size_t)st->send_window);
    chunk = BN_MIN(chunk, (size_t)s->cfg.max_frame);
    st->send_window -= (uint32_t)chunk; /* commit before output may call in */
    emit(s, YAMUX_TYPE_DATA, 0, st->id, (uint32_t)chunk, p + done, chunk);
    done += chunk;
  }
  if (done < n) st->blocked = true;
  api_leave(s);
  return (int)done;
}

size_t yamux_stream_send_window(const yamux_stream_t *st) {
  return state_can_send(st->state) ? st->send_window : 0;
}

void yamux_stream_want_writable(yamux_stream_t *st) {
  st->blocked = true;
}

int yamux_stream_close(yamux_stream_t *st) {
  yamux_session_t *s = st->sess;
  switch (st->state) {
  case YAMUX_LOCAL_CLOSED:
  case YAMUX_CLOSED:
    return 0;
  case YAMUX_RESET:
    return BFTNET_ESTATE;
  default:
    break;
  }
  if (s->err) return s->err;
  api_enter(s);
  uint16_t flags = YAMUX_FLAG_FIN;
  uint32_t delta = 0;
  stream_take_ack(st, &flags, &delta);
  if (st->state == YAMUX_REMOTE_CLOSED)
    stream_retire(st, YAMUX_CLOSED);
  else
    st->state = YAMUX_LOCAL_CLOSED;
  emit(s, YAMUX_TYPE_WINDOW, flags, st->id, delta, NULL, 0);
  api_leave(s);
  return 0;
}

int yamux_stream_reset(yamux_stream_t *st) {
  yamux_session_t *s = st->sess;
  if (!st->in_table) return 0; /* CLOSED or RESET: already on its way out */
  api_enter(s);
  stream_retire(st, YAMUX_RESET);
  if (!s->err && !s->freeing) emit(s, YAMUX_TYPE_WINDOW, YAMUX_FLAG_RST, st->id, 0, NULL, 0);
  api_leave(s);
  return 0;
}

void yamux_stream_consume(yamux_stream_t *st, size_t n, bool flush) {
  yamux_session_t *s = st->sess;
  BN_ASSERT(n <= st->unconsumed); /* consuming bytes never delivered is misuse */
  st->unconsumed -= (uint32_t)n;
  st->credit += (uint32_t)n;
  if (st->credit == 0 || !state_peer_may_send(st->state) || s->err || s->freeing) return;
  if (!flush && st->credit < s->cfg.window / 2) return;
  api_enter(s);
  uint16_t flags = 0;
  uint32_t delta = st->credit;
  st->credit = 0;
  st->recv_window += delta;
  stream_take_ack(st, &flags, &delta);
  emit(s, YAMUX_TYPE_WINDOW, flags, st->id, delta, NULL, 0);
  api_leave(s);
}

uint32_t yamux_stream_id(const yamux_stream_t *st) {
  return st->id;
}
void *yamux_stream_get_user(const yamux_stream_t *st) {
  return st->user;
}
void yamux_stream_set_user(yamux_stream_t *st, void *user) {
  st->user = user;
}
yamux_stream_state_t yamux_stream_state(const yamux_stream_t *st) {
  return st->state;
}

bool yamux_stream_remote_closed(const yamux_stream_t *st) {
  return st->state == YAMUX_REMOTE_CLOSED || st->state == YAMUX_CLOSED || st->state == YAMUX_RESET;
}

bool yamux_stream_local_closed(const yamux_stream_t *st) {
  return st->state == YAMUX_LOCAL_CLOSED || st->state == YAMUX_CLOSED || st->state == YAMUX_RESET;
}
