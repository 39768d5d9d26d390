/*
 * redis_test_server: a real redis-server (Debian `redis-server`) for unit tests, on a free
 * loopback port in a fresh temporary directory, without persistence; stopped (and the directory
 * removed) at the end. The tests reach it through hiredis's blocking API for checks behind the
 * store's back.
 */
#ifndef REDIS_TEST_SERVER_H
#define REDIS_TEST_SERVER_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

typedef struct {
    pid_t pid;
    int port;
    char dir[64];
} redis_test_server;

static inline int redis_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &l)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Connects with the blocking API (NULL when the server does not answer). Caller frees. */
static inline redisContext *redis_test_connect(const redis_test_server *s)
{
    struct timeval tv = { 1, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Starts the server on s->port (or a new free port when 0); 0 once it answers PING. */
static inline int redis_test_start(redis_test_server *s)
{
    if (!s->dir[0]) {
        snprintf(s->dir, sizeof(s->dir), "/tmp/imsredisXXXXXX");
        if (!mkdtemp(s->dir))
            return -1;
    }
    if (!s->port)
        s->port = redis_test_free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    s->pid = fork();
    if (s->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", s->dir, "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        redisContext *c = redis_test_connect(s);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        }
        usleep(50000);
    }
    return -1;
}

/* Stops the server (SIGKILL when `hard`, as a crash); the port stays reserved in s. */
static inline void redis_test_stop(redis_test_server *s, int hard)
{
    if (s->pid > 0) {
        kill(s->pid, SIGCONT);
        kill(s->pid, hard ? SIGKILL : SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}

static inline void redis_test_cleanup(redis_test_server *s)
{
    redis_test_stop(s, 1);
    if (s->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", s->dir);
    }
}

#endif
