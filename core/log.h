/* SPDX-License-Identifier: MIT */
/* Logging to stderr (and, when configured, syslog), safe from any thread. */
#ifndef AIMX_LOG_H
#define AIMX_LOG_H

#include <stdarg.h>

/* Levels are syslog's (see enum aimx_log_level in <aimx/plugin.h>). */
void aimx__log_set_threshold(int max_level);
int aimx__log_threshold(void);
/* Also send lines to syslog(3) with this facility (LOG_MAIL...). */
void aimx__log_open_syslog(int facility);
/* Maps "mail", "daemon", "user", "local0".."local7" to LOG_*; -1 if unknown. */
int aimx__log_facility_from_name(const char *name);

/* A line for syslog only (when syslog = true), such as the one-line
 * summary of each recipient's fate. */
void aimx__syslog_only(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* source: NULL for the core, or a plugin's name. */
void aimx__log(int level, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void aimx__vlog(int level, const char *source, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define aimx__err(...)    aimx__log(3, NULL, __VA_ARGS__)
#define aimx__warn(...)   aimx__log(4, NULL, __VA_ARGS__)
#define aimx__notice(...) aimx__log(5, NULL, __VA_ARGS__)
#define aimx__info(...)   aimx__log(6, NULL, __VA_ARGS__)
#define aimx__debug(...)  aimx__log(7, NULL, __VA_ARGS__)

#endif
