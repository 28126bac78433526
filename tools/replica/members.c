/* members.c — the membership file: read, applied to bftnet
 * (bftnet_connect_file) and to the peer table; SIGHUP reloads it. */
#include <stdlib.h>
#include <string.h>

#include "replica.h"

typedef struct rp_member {
  char id[BFTNET_NODE_ID_MAX];
  char peer[BFTNET_PEER_ID_MAX];
  bool self;
} rp_member_t;

/* Reads node IDs and peer IDs from the membership file (docs/MEMBERSHIP.md).
 * bftnet validates the file in full; this only needs the names. The file is
 * read twice per load (here, then by bftnet_connect_file): whoever rewrites
 * it should do so atomically (write a temporary file, rename it). */
static int members_read(const char *path, rp_member_t **out, size_t *nout, char *err, size_t cap) {
  json_error_t je;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!root && je.line > 0)
    return snprintf(err, cap, "%s: line %d: %s", path, je.line, je.text), BFTNET_EINVAL;
  if (!root) return snprintf(err, cap, "%s", je.text), BFTNET_EINVAL;
  json_t *arr = json_object_get(root, "members");
  size_t n = json_array_size(arr);
  rp_member_t *m = calloc(n ? n : 1, sizeof *m);
  int rc = 0;
  if (!json_is_array(arr) || n > RP_MAX_PEERS || !m) {
    snprintf(err, cap, "%s: no \"members\" array (or too large)", path);
    rc = BFTNET_EINVAL;
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    json_t *e = json_array_get(arr, i);
    const char *id = json_string_value(json_object_get(e, "id"));
    const char *a0 = json_string_value(json_array_get(json_object_get(e, "addrs"), 0));
    const char *p2p = a0 ? strstr(a0, "/p2p/") : NULL;
    while (p2p && strstr(p2p + 1, "/p2p/"))
      p2p = strstr(p2p + 1, "/p2p/");
    if (!id || !p2p || strlen(id) >= sizeof m[i].id || strlen(p2p + 5) >= sizeof m[i].peer) {
      snprintf(err, cap, "%s: member %zu: needs \"id\" and \"addrs\" ending in /p2p/<peer ID>",
               path, i + 1);
      rc = BFTNET_EINVAL;
      break;
    }
    snprintf(m[i].id, sizeof m[i].id, "%s", id);
    snprintf(m[i].peer, sizeof m[i].peer, "%s", p2p + 5);
  }
  json_decref(root);
  if (rc) return free(m), rc;
  *out = m;
  *nout = n;
  return 0;
}

/* Ourselves: our peer ID, or our node ID (warned about if they disagree). */
static bool member_is_self(const rp_member_t *m) {
  bool by_peer = strcmp(m->peer, rp.self_peer) == 0, by_id = strcmp(m->id, rp.o.id) == 0;
  if (by_peer != by_id)
    rp_log("membership: entry \"%s\" (%s) has our %s; treated as ourselves (no load sent)", m->id,
           m->peer, by_peer ? "peer ID under another node ID" : "node ID, another peer ID");
  return by_peer || by_id;
}

static const rp_member_t *member_lookup(const rp_member_t *m, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(m[i].id, id) == 0) return &m[i];
  return NULL;
}

/* Stops sending to the peers in `going` and gives them up to
 * RP_REMOVE_WAIT_NS to settle — our ring to them empty, every byte we wrote
 * confirmed read (bftnet's `unconfirmed`), what they sent us taken from the
 * inbound queue — so that removal releases (and loses) as little as
 * possible; then snapshots their counters. */
static void members_quiesce(rp_peer_t **going, size_t n) {
  if (n == 0) return;
  for (size_t i = 0; i < n; i++)
    atomic_store(&going[i]->active, 0);
  pthread_mutex_lock(&rp.send_mu); /* the sender is now past any send to them */
  pthread_mutex_unlock(&rp.send_mu);
  uint64_t until = rp_now_ns() + RP_REMOVE_WAIT_NS;
  for (;;) {
    bool drained = true;
    for (size_t i = 0; i < n; i++) {
      peers_refresh(going[i]);
      const bftnet_peer_stats_t *c = &going[i]->lib_cur;
      if (going[i]->lib_live && (c->ring_depth || c->unconfirmed || c->inbound_depth))
        drained = false;
    }
    if (drained || rp_now_ns() >= until) return;
    rp_sleep_until(rp_now_ns() + 5 * NS_PER_MS);
  }
}

/* id joins a JSON array and a ", "-separated text for the log. */
static void json_list_add(json_t *arr, text_buf_t *txt, const char *id) {
  json_array_append_new(arr, json_string(id));
  text_sep(txt, ", ");
  text_addf(txt, "%s", id);
}

/* Applies the new member set to the peer table once bftnet accepted it. */
static void members_commit(const rp_member_t *m, size_t n, json_t *added, json_t *removed) {
  char add_txt[512], rm_txt[512];
  text_buf_t add_b, rm_b;
  text_buf_init(&add_b, add_txt, sizeof add_txt);
  text_buf_init(&rm_b, rm_txt, sizeof rm_txt);
  size_t np = atomic_load(&rp.npeers);
  for (size_t i = 0; i < np; i++) {
    rp_peer_t *p = rp.peers[i];
    const rp_member_t *e = member_lookup(m, n, p->id);
    bool stays = e && !e->self && strcmp(e->peer, p->peer_id) == 0;
    if (p->member && !stays) {
      peers_retire(p);
      atomic_store(&p->active, 0);
      p->member = false;
      p->removals++; /* what bftnet still held of it counts only node-wide, per class */
      json_list_add(removed, &rm_b, p->id);
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (m[i].self) continue;
    rp_peer_t *p = peers_get(m[i].id); /* exists: members_apply made it */
    if (!p || p->member) continue;
    snprintf(p->peer_id, sizeof p->peer_id, "%s", m[i].peer);
    p->member = true;
    peers_refresh(p);
    atomic_store(&p->active, 1);
    json_list_add(added, &add_b, p->id);
  }
  rp_log("membership %s: %zu members; added: %s; removed: %s", rp.o.members, n,
         add_txt[0] ? add_txt : "-", rm_txt[0] ? rm_txt : "-");
}

/* Loads the membership file into bftnet and the peer table. On error,
 * nothing changes (and the error is logged). */
int members_apply(void) {
  char err[512] = "";
  rp_member_t *m = NULL;
  size_t n = 0;
  json_t *line = json_pack("{s:s, s:s, s:o, s:s}", "type", "membership", "id", rp.o.id, "t_ms",
                           jsonx_u64(rp_ms_since_start()), "file", rp.o.members);
  int rc = members_read(rp.o.members, &m, &n, err, sizeof err);
  rp_peer_t *going[RP_MAX_PEERS];
  size_t ngoing = 0, np = atomic_load(&rp.npeers);
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (!(m[i].self = member_is_self(&m[i])) && !peers_get(m[i].id)) {
      snprintf(err, sizeof err, "peer table full (%d node IDs)", RP_MAX_PEERS);
      rc = BFTNET_ELIMIT;
    }
  for (size_t i = 0; rc == 0 && i < np; i++) {
    rp_peer_t *p = rp.peers[i];
    const rp_member_t *e = member_lookup(m, n, p->id);
    if (p->member && (!e || e->self || strcmp(e->peer, p->peer_id) != 0)) going[ngoing++] = p;
  }
  if (rc == 0) {
    members_quiesce(going, ngoing);
    rc = bftnet_connect_file(rp.net, rp.o.members, err, sizeof err);
    if (rc != 0) {
      size_t len = strlen(err);
      snprintf(err + len, sizeof err - len, "%s%s", len ? ": " : "", bftnet_strerror(rc));
      for (size_t i = 0; i < ngoing; i++)
        atomic_store(&going[i]->active, 1);
    }
  }
  if (rc == 0) {
    json_t *added = json_array(), *removed = json_array();
    members_commit(m, n, added, removed);
    rp.loaded = true;
    json_object_set_new(line, "ok", json_true());
    json_object_set_new(line, "members", jsonx_u64(n));
    json_object_set_new(line, "added", added);
    json_object_set_new(line, "removed", removed);
  } else {
    rp_log("membership %s not applied: %s%s", rp.o.members, err,
           rp.loaded ? "; keeping the current membership" : "");
    json_object_set_new(line, "ok", json_false());
    json_object_set_new(line, "error", json_string(err));
  }
  lines_emit(line);
  free(m);
  return rc;
}
