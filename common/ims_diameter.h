/*
 * ims_diameter: the freeDiameter node of an NF, configured from our YAML (ims_diameter_cfg).
 *
 * freeDiameter 1.2.1 facts this module encodes (docs/pitfalls.md):
 *  - it reads its own config file: we generate one (Identity, Realm, Port, SecPort = 0 unless TLS
 *    is configured, No_SCTP, NoRelay, TcTimer, the dictionary extensions, ConnectPeer entries);
 *  - Cx is in no shipped dictionary: dict_nasreq, dict_dcca, dict_dcca_3gpp are loaded (in that
 *    order) for the AVPs, then ims_cx_dict_init() adds the application and commands;
 *  - unknown peers are refused unless a validator accepts them;
 *  - all signals must be blocked before fd_core_initialize (ims_signals_block), one thread waits.
 *
 * Sequence in an NF main():
 *   ims_signals_block();
 *   ims_diameter_init(&cfg.diameter, "hss", err, sizeof err);   // dictionary ready after this
 *   fd_disp_register(...)                                        // NF handlers
 *   ims_diameter_start(err, sizeof err);
 *   ... ims_signals_wait() ...
 *   ims_diameter_stop();
 */
#ifndef IMS_DIAMETER_H
#define IMS_DIAMETER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ims_config.h"

/* Blocks SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1 in the calling thread (and so in every
 * thread created after it). Call first in main(). */
void ims_signals_block(void);
/* Waits for one of the blocked termination signals (SIGPIPE is swallowed). Returns its number. */
int ims_signals_wait(void);

/* Writes the freeDiameter configuration, initialises the core and the Cx dictionary, declares Cx
 * support (auth) and, with accept_unknown_peers, a validator that accepts any peer. */
int ims_diameter_init(const ims_diameter_cfg *cfg, const char *nf, char *err, size_t errlen);
/* Starts the core (listening, connecting to peers). */
int ims_diameter_start(char *err, size_t errlen);
/* Orderly shutdown (DPR to peers); waits for completion. Safe to call when not started. */
void ims_diameter_stop(void);

/* Our Origin-Host / Origin-Realm. */
const char *ims_diameter_identity(void);
const char *ims_diameter_realm(void);

/* Number of peers in state OPEN. With `why`, lists the configured peers that are not open. */
int ims_diameter_open_peers(char *why, size_t whylen);
/* True when the peer with this Diameter identity is OPEN. */
bool ims_diameter_peer_is_open(const char *identity);
/* Timeout to use for requests we send (from config, request_timeout_ms). */
long ims_diameter_request_timeout_ms(void);
/* CLOCK_REALTIME now + ms: the absolute deadline fd_msg_send_timeout and pthread_cond_timedwait
 * take. */
struct timespec ims_diameter_deadline(long ms);

/* Neutralises, in a received Diameter message (raw bytes), what freeDiameter 1.2.1 would abort the
 * process on: a top-level Session-Id with the V bit set is renamed to AVP code 0. Returns how many
 * AVPs were changed. Called on every received message (HOOK_DATA_RECEIVED); fuzz_cx calls it too. */
int ims_diameter_sanitize(uint8_t *buf, size_t len);

#endif
