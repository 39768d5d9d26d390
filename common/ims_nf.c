/*
 * ims_nf: shared NF start-up steps. See ims_nf.h.
 */
#include "ims_nf.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_diameter.h"
#include "ims_log.h"

static void usage(FILE *f, const char *nf)
{
    char upper[32];
    size_t i = 0;
    for (; nf[i] && i < sizeof(upper) - 1; i++)
        upper[i] = (char)(nf[i] >= 'a' && nf[i] <= 'z' ? nf[i] - 32 : nf[i]);
    upper[i] = '\0';
    fprintf(f, "usage: %s -c CONFIG.yaml\n"
               "       %s --config-reference\n"
               "Every key can be overridden by IMS_%s_<PATH> (see README).\n", nf, nf, upper);
}

const char *ims_nf_args(int argc, char **argv, const char *nf, const ims_cfg_field *schema)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "config-reference", no_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        case 'R': ims_cfg_print_reference(nf, schema, stdout); exit(0);
        case 'h': usage(stdout, nf); exit(0);
        default: usage(stderr, nf); exit(2);
        }
    }
    if (optind != argc) {
        usage(stderr, nf);
        exit(2);
    }
    return config;
}

void ims_nf_apply_log(const ims_log_cfg *log)
{
    int level = ims_log_level_from_name(log->level);
    ims_log_set_level(level < 0 ? IMS_LOG_INFO : (ims_log_level)level);
}

void ims_nf_die(const char *nf, int code, const char *what, const char *err)
{
    IMS_ERROR(nf, "%s: %s", what, err);
    exit(code);
}

typedef struct {
    ims_sip *sip;
    const char *nf;
} signal_arg;

static void *signal_thread(void *p)
{
    signal_arg *a = p;
    int sig = ims_signals_wait();
    IMS_INFO(a->nf, "signal %d (%s): shutting down", sig, strsignal(sig));
    ims_sip_stop(a->sip);
    return NULL;
}

int ims_nf_stop_sip_on_signal(ims_sip *sip, const char *nf)
{
    static signal_arg arg;   /* one per process: the thread outlives main's locals */
    arg.sip = sip;
    arg.nf = nf;
    pthread_t th;
    if (pthread_create(&th, NULL, signal_thread, &arg))
        return -1;
    pthread_detach(th);
    return 0;
}
