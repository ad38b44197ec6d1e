/* SPDX-License-Identifier: MIT */
/*
 * The settings of transport-smtp's config group: port, helo_name,
 * max_recipients, the timeouts group, tls and ca_file,
 * connection_attempt_delay, bind_ipv4 and bind_ipv6.
 */
#ifndef SMTP_CONFIG_H
#define SMTP_CONFIG_H

#include "smtp_session.h"

#include <aimx/plugin.h>

/* Reads every key (so that the host knows them all, even absent ones),
 * then checks them; each bad value is reported by the host's getters or
 * with cfg_error naming its key.  AIMX_OK fills *set. */
aimx_status smtp_config_read(const aimx_host_api *api, aimx_host *host,
                             struct smtp_settings *set);

/* 1 if name can follow EHLO: a host name (LDH labels of 1..63 octets, 253
 * at most, no trailing dot) or an address literal ("[192.0.2.1]",
 * "[IPv6:2001:db8::1]"). */
int smtp_helo_valid(const char *name);

#endif /* SMTP_CONFIG_H */
