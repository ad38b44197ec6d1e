/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static const char *level_name(int level);

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int threshold = LOG_NOTICE;
static int use_syslog;

static const struct {
    const char *name;
    int facility;
} facilities[] = {
    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},
    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

void
aimx__log_set_threshold(int max_level)
{
    threshold = max_level;
}

int
aimx__log_threshold(void)
{
    return threshold;
}

int
aimx__log_facility_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof facilities / sizeof facilities[0]; i++)
        if (strcmp(name, facilities[i].name) == 0)
            return facilities[i].facility;
    return -1;
}

void
aimx__log_open_syslog(int facility)
{
    openlog("aimx", LOG_PID, facility);
    use_syslog = 1;
}

static const char *
level_name(int level)
{
    switch (level) {
    case LOG_EMERG:
    case LOG_ALERT:
    case LOG_CRIT:
    case LOG_ERR:
        return "error";
    case LOG_WARNING:
        return "warning";
    case LOG_NOTICE:
        return "notice";
    case LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void
aimx__vlog(int level, const char *source, const char *fmt, va_list ap)
{
    char text[2048];

    if (level > threshold && !use_syslog)
        return;
    vsnprintf(text, sizeof text, fmt, ap);
    /* One write per line under one lock: lines of concurrent workers never
     * interleave. */
    pthread_mutex_lock(&log_lock);
    if (level <= threshold) {
        if (source != NULL)
            fprintf(stderr, "aimx: %s: %s: %s\n", source, level_name(level),
                    text);
        else
            fprintf(stderr, "aimx: %s: %s\n", level_name(level), text);
    }
    if (use_syslog && level <= LOG_INFO) {
        if (source != NULL)
            syslog(level, "%s: %s", source, text);
        else
            syslog(level, "%s", text);
    }
    pthread_mutex_unlock(&log_lock);
}

void
aimx__syslog_only(int level, const char *fmt, ...)
{
    va_list ap;

    if (!use_syslog)
        return;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    vsyslog(level, fmt, ap);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}

void
aimx__log(int level, const char *source, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    aimx__vlog(level, source, fmt, ap);
    va_end(ap);
}
