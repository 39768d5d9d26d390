/*
 * ims_nf: the start-up steps every NF's main() shares, so the mains stay thin and alike.
 *
 *   const char *path = ims_nf_args(argc, argv, "scscf", scscf_config_fields);
 *   ims_signals_block();
 *   ims_cfg_load_or_exit(path, "scscf", scscf_config_fields, &cfg);
 *   ims_nf_apply_log(&cfg.log);
 *   ... create the NF; on failure ims_nf_die("scscf", 1, "SIP start failed", err) ...
 *   ims_nf_stop_sip_on_signal(sip, "scscf");   // SIGTERM/SIGINT -> ims_sip_stop
 *   ims_sip_run(sip);
 */
#ifndef IMS_NF_H
#define IMS_NF_H

#include "ims_config.h"
#include "ims_sip.h"

/* Parses `-c FILE`, `--config-reference` (prints the schema's reference, exits 0) and `-h`
 * (exits 0); anything else prints the usage and exits 2. Returns the config path or NULL. */
const char *ims_nf_args(int argc, char **argv, const char *nf, const ims_cfg_field *schema);

/* Sets the process log level from the log: section (info when unset). */
void ims_nf_apply_log(const ims_log_cfg *log);

/* Logs "<what>: <err>" and exits with `code` (1 runtime failure, 2 configuration). */
void ims_nf_die(const char *nf, int code, const char *what, const char *err)
    __attribute__((noreturn));

/* Starts a detached thread that waits for a termination signal (ims_signals_wait), logs it and
 * calls ims_sip_stop(sip). Signals must already be blocked (ims_signals_block). 0 / -1. */
int ims_nf_stop_sip_on_signal(ims_sip *sip, const char *nf);

#endif
