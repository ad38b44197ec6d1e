#!/usr/bin/python3
"""Postfix as a full MTA, as the peer of aimx in the benchmark.

Path measured: ``/usr/sbin/sendmail`` -> postdrop -> maildrop queue -> pickup
-> cleanup -> qmgr -> smtp(8) with a real MX lookup (DNS) -> receiving MX.
Elapsed time runs from just before ``sendmail`` is started until the mail log
shows ``status=sent`` for the last recipient.

Environment this expects (the benchmark harness sets it up):

* The whole process runs inside a network namespace via
  ``ip netns exec <ns> /usr/bin/python3 ...``.
* ``/etc/netns/<ns>/postfix/`` exists *before* ``ip netns exec`` is called, so
  that inside the namespace it is bind-mounted over ``/etc/postfix``.  That
  directory is passed as ``config_dir``.  Postfix's setgid ``postdrop`` only
  trusts the default configuration directory, which is why the bind mount is
  used instead of ``MAIL_CONFIG``.  This class refuses to run if
  ``config_dir`` is not what ``/etc/postfix`` resolves to, or if it *is* the
  host's real ``/etc/postfix``.
* ``/etc/netns/<ns>/resolv.conf`` points at a DNS server (dnsmasq on
  127.0.0.1) that serves the MX and A records; the MX hosts resolve to a
  non-loopback address of the namespace where the receiving MX (smtp-sink)
  listens on port 25.

Everything Postfix writes goes to ``config_dir`` (main.cf, master.cf and the
small meta files ``postfix-files``/``dynamicmaps.cf``) and ``work_dir``
(``queue/``, ``data/``, ``maillog``).  Nothing is written to the host's
``/etc/postfix`` or ``/var/spool/postfix``; the system Postfix is never
started.

Standard library only (Python 3.11).  Self-test: run this file with
``--help`` (inside the namespace).
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
SENDMAIL = "/usr/sbin/sendmail"
MASTER_CF_DIST = "/usr/share/postfix/master.cf.dist"
DEFAULT_CONFIG_DIR = "/etc/postfix"

# Queue sub-directories that hold message files (and their logs).  Any file
# left in them from an earlier run is discarded before Postfix is started.
_MESSAGE_QUEUES = ("maildrop", "incoming", "active", "deferred", "defer",
                   "bounce", "hold", "trace", "saved", "corrupt", "flush")

# A minimal postfix-files for $meta_directory (which defaults to
# $config_directory = /etc/postfix, i.e. config_dir).  The host's copy is
# hidden by the bind mount, so we write our own; post-install uses it (via
# `postfix start` -> check-fatal -> `post-install create-missing`) to create
# the queue and data directories with the right owners and modes.
_POSTFIX_FILES = """\
# Written by aimx bench/postfix_mta.py (directory entries of Debian's
# postfix-files only: enough for `post-install create-missing`).
$config_directory:d:root:-:755:u
$data_directory:d:$mail_owner:-:700:uc
$daemon_directory:d:root:-:755:u
$queue_directory:d:root:-:755:uc
$queue_directory/active:d:$mail_owner:-:700:ucr
$queue_directory/bounce:d:$mail_owner:-:700:ucr
$queue_directory/corrupt:d:$mail_owner:-:700:ucr
$queue_directory/defer:d:$mail_owner:-:700:ucr
$queue_directory/deferred:d:$mail_owner:-:700:ucr
$queue_directory/flush:d:$mail_owner:-:700:ucr
$queue_directory/hold:d:$mail_owner:-:700:ucr
$queue_directory/incoming:d:$mail_owner:-:700:ucr
$queue_directory/private:d:$mail_owner:-:700:uc
$queue_directory/maildrop:d:$mail_owner:$setgid_group:730:uc
$queue_directory/public:d:$mail_owner:$setgid_group:710:uc
$queue_directory/pid:d:root:-:755:uc
$queue_directory/saved:d:$mail_owner:-:700:ucr
$queue_directory/trace:d:$mail_owner:-:700:ucr
$meta_directory/dynamicmaps.cf.d:d:root:-:755
$meta_directory/postfix-files.d:d:root:-:755
"""

_DYNAMICMAPS_CF = "# dict-type\tso-name (pathname)\tdict-function\tmkmap-function\n"

# One log record: "<date> <host> postfix/<prog>[<pid>]: <QID>: <text>"
_LOG_QID_RE = re.compile(r" postfix/([\w/.-]+)\[\d+\]: ([0-9A-Za-z]+): (.*)$")
_FAIL_RE = re.compile(r"status=(deferred|bounced|expired|undeliverable)")


def _proc_stat(pid):
    """Return /proc/<pid>/stat fields as a list where index 0 is the pid,
    1 the comm, 2 the state, ... (same numbering as proc(5) minus one), or
    None if the process is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    lpar = data.find("(")
    rpar = data.rfind(")")
    if lpar < 0 or rpar < 0:
        return None
    return [data[:lpar].strip(), data[lpar + 1:rpar]] + data[rpar + 2:].split()


def _set_child_subreaper(on):
    """prctl(PR_SET_CHILD_SUBREAPER): while on, processes orphaned below us
    (the Postfix master after `postfix start` returns, its daemons after the
    master exits) are re-parented to this process instead of PID 1, so we can
    reap them ourselves and leave no zombies.  Returns True on success."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1 if on else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _all_pids():
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def _tail(path, nbytes=4000, start=0):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(start, size - nbytes))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)


class PostfixMTA:
    """Context manager running one private Postfix instance.

    Extra keyword arguments (tuning; all reported by describe()):
      process_limit  default_process_limit (max concurrent smtp(8) etc.)
      destination_concurrency_limit  default_destination_concurrency_limit
      extra_main_cf  {parameter: value} appended to main.cf
      subreaper      (default True) make this process a child subreaper
                     (prctl PR_SET_CHILD_SUBREAPER) between `postfix start`
                     and the end of __exit__, so the Postfix daemons, which
                     are orphaned when `postfix start` returns and when the
                     master exits, are re-parented to us and reaped here
                     (by PID) instead of lingering as zombies under PID 1.
                     Side effect while Postfix runs: any *other* process
                     that is orphaned below this Python process (e.g. a
                     daemon that double-forks) is re-parented to it too
                     and stays a zombie until this process exits.  Pass
                     False to avoid that.
    """

    def __init__(self, config_dir, work_dir, myhostname="sender.bench.test",
                 process_limit=100, destination_concurrency_limit=20,
                 extra_main_cf=None, subreaper=True):
        self.config_dir = os.path.abspath(config_dir)
        self.work_dir = os.path.abspath(work_dir)
        self.myhostname = myhostname
        self.process_limit = int(process_limit)
        self.destination_concurrency_limit = int(destination_concurrency_limit)
        self.extra_main_cf = dict(extra_main_cf or {})
        self.use_subreaper = bool(subreaper)
        self._subreaper = False
        self.queue_dir = os.path.join(self.work_dir, "queue")
        self.data_dir = os.path.join(self.work_dir, "data")
        self.log_path = os.path.join(self.work_dir, "maillog")
        self.master_pid = None
        self.start_seconds = None      # wall time `postfix start` + readiness
        self.start_warnings = []       # "warning:" lines logged during start
        self._client_cpu = 0.0         # sendmail+postdrop CPU (from wait4)
        # Timeline of the last send_and_wait(), seconds after sendmail was
        # started: sendmail_exit, pickup_seen, first_sent_seen,
        # last_sent_seen ("seen" = when the poller read the log line).
        self.last_marks = {}
        self._env = self._make_env()

    # ------------------------------------------------------------------
    # configuration
    def main_cf_settings(self):
        """Ordered list of (parameter, value, reason) written to main.cf."""
        w = self.work_dir
        base = [
            ("compatibility_level", "3.7",
             "current behaviour, no backwards-compatibility warnings"),
            ("queue_directory", self.queue_dir, "private queue in the work dir"),
            ("data_directory", self.data_dir, "private data dir in the work dir"),
            ("maillog_file", self.log_path,
             "log through postlogd(8) into the work dir (no syslog needed)"),
            ("maillog_file_prefixes", w, "allow maillog_file in the work dir"),
            ("myhostname", self.myhostname, "sender's host name (HELO/EHLO)"),
            ("mydestination", "", "no local delivery: every domain is remote"),
            ("relayhost", "", "direct delivery to each domain's MX"),
            ("inet_interfaces", "loopback-only", "no external listener"),
            ("inet_protocols", "ipv4",
             "IPv4 only (no AAAA lookups; the MX is IPv4)"),
            ("smtp_host_lookup", "dns", "real DNS MX/A lookups"),
            ("smtp_dns_support_level", "enabled",
             "DNS lookups on (via the namespace's resolv.conf)"),
            ("smtp_tls_security_level", "none", "smtp-sink offers no TLS"),
            ("in_flow_delay", "0s", "speed: never throttle sendmail/postdrop"),
            ("default_process_limit", str(self.process_limit),
             "speed: enough smtp(8) processes for all destinations at once"),
            ("default_destination_concurrency_limit",
             str(self.destination_concurrency_limit),
             "parallel deliveries per destination"),
            ("smtp_connection_cache_on_demand", "yes",
             "speed: reuse SMTP connections (the built-in default, stated)"),
            ("alias_maps", "", "local(8) unused; do not touch /etc/aliases"),
            ("alias_database", "", "local(8) unused"),
            ("biff", "no", "local(8) unused"),
            ("append_dot_mydomain", "no", "addresses are fully qualified"),
        ]
        # Harness extras override a setting above in place (a parameter given
        # twice in main.cf makes every Postfix program warn) or are appended.
        extra = dict(self.extra_main_cf)
        out = []
        for k, v, why in base:
            if k in extra:
                out.append((k, str(extra.pop(k)), "set by the harness"))
            else:
                out.append((k, v, why))
        out += [(k, str(v), "set by the harness") for k, v in extra.items()]
        return out

    def _main_cf(self):
        lines = ["# Written by aimx bench/postfix_mta.py -- do not edit."]
        for k, v, why in self.main_cf_settings():
            lines.append("# %s" % why)
            lines.append("%s = %s" % (k, v))
        return "\n".join(lines) + "\n"

    def _master_cf(self):
        """master.cf.dist with every service chroot=n and no smtpd listener."""
        with open(MASTER_CF_DIST) as f:
            dist = f.read().splitlines()
        out = ["# Written by aimx bench/postfix_mta.py from %s:" % MASTER_CF_DIST,
               "# chroot=n everywhere, inet smtpd listener disabled.", ""]
        self._master_changes = []
        self._chroot_changed = []
        skipping = False
        for line in dist:
            if line[:1] in (" ", "\t") and line.strip():
                # continuation of the previous entry
                out.append(("#" + line) if skipping else line)
                continue
            skipping = False
            if not line.strip() or line.startswith("#"):
                out.append(line)
                continue
            f = line.split(None, 7)
            if len(f) < 8:
                out.append(line)
                continue
            name, typ, private, unpriv, chroot, wakeup, maxproc, command = f
            if typ == "inet":
                skipping = True
                self._master_changes.append(
                    "`%s/%s` (%s) commented out: nothing is received"
                    % (name, typ, command))
                out.append("#" + line)
                continue
            if chroot != "n":
                self._chroot_changed.append(name)
                chroot = "n"
            out.append("%-9s %-5s %-7s %-7s %-7s %-7s %-7s %s" % (
                name, typ, private, unpriv, chroot, wakeup, maxproc, command))
        if self._chroot_changed:
            self._master_changes.append(
                "chroot `y` -> `n` for %s (every other service already has "
                "`n`)" % ", ".join("`%s`" % n for n in self._chroot_changed))
        return "\n".join(out) + "\n"

    def _check_config_dir(self):
        real = os.path.realpath(self.config_dir)
        if real == DEFAULT_CONFIG_DIR:
            raise RuntimeError(
                "config_dir %s is the host's real /etc/postfix; pass "
                "/etc/netns/<ns>/postfix and run inside `ip netns exec <ns>`"
                % self.config_dir)
        if not os.path.isdir(self.config_dir):
            raise RuntimeError("config_dir %s does not exist (create "
                               "/etc/netns/<ns>/postfix before `ip netns exec`)"
                               % self.config_dir)
        try:
            same = os.path.samefile(DEFAULT_CONFIG_DIR, self.config_dir)
        except OSError:
            same = False
        if not same:
            raise RuntimeError(
                "/etc/postfix is not %s: this must run inside `ip netns exec "
                "<ns>` and /etc/netns/<ns>/postfix must exist before that "
                "command starts (it bind-mounts it over /etc/postfix)"
                % self.config_dir)

    def _write_config(self):
        self._check_config_dir()  # never write anywhere but the bind mount
        os.chmod(self.config_dir, 0o755)
        files = {
            "main.cf": self._main_cf(),
            "master.cf": self._master_cf(),
            "postfix-files": _POSTFIX_FILES,
            "dynamicmaps.cf": _DYNAMICMAPS_CF,
        }
        for name, text in files.items():
            path = os.path.join(self.config_dir, name)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        for d in ("postfix-files.d", "dynamicmaps.cf.d"):
            p = os.path.join(self.config_dir, d)
            os.makedirs(p, exist_ok=True)
            os.chmod(p, 0o755)

    # ------------------------------------------------------------------
    # helpers
    @staticmethod
    def _make_env():
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MAIL_") and k != "POSTLOG_SERVICE"}
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
        env.setdefault("LANG", "C")
        return env

    def _run(self, argv, timeout=60):
        return subprocess.run(argv, env=self._env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, text=True, errors="replace")

    def _read_master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _alive_master(self, pid):
        st = _proc_stat(pid) if pid else None
        return st is not None and st[1] == "master" and st[2] != "Z"

    def _session_members(self, sid):
        """{pid: starttime} of processes in the master's session (master
        calls setsid(), so its daemons share session id == master pid)."""
        out = {}
        for pid in _all_pids():
            st = _proc_stat(pid)
            if st is None or len(st) < 22:
                continue
            if int(st[5]) == sid:
                out[pid] = st[21]
        return out

    def _children(self, ppid):
        res = []
        for pid in _all_pids():
            st = _proc_stat(pid)
            if st is not None and len(st) > 3 and int(st[3]) == ppid:
                res.append((pid, st[1]))
        return res

    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def _discard_stale_queue(self):
        for q in _MESSAGE_QUEUES:
            top = os.path.join(self.queue_dir, q)
            if not os.path.isdir(top):
                continue
            for root, dirs, files in os.walk(top):
                for name in files:
                    try:
                        os.unlink(os.path.join(root, name))
                    except OSError:
                        pass

    # ------------------------------------------------------------------
    # lifecycle
    def __enter__(self):
        t0 = time.monotonic()
        if not os.path.isdir(self.work_dir):
            raise RuntimeError("work_dir %s does not exist" % self.work_dir)
        self._check_config_dir()
        old = self._read_master_pid()
        if old and self._alive_master(old):
            raise RuntimeError("a Postfix master (pid %d) is already running "
                               "on %s" % (old, self.queue_dir))
        # Postfix daemons run as user postfix and must traverse work_dir.
        os.chmod(self.work_dir, 0o755)
        parent = os.path.dirname(self.work_dir)
        while True:
            if not os.stat(parent).st_mode & 0o001:
                raise RuntimeError(
                    "%s is not searchable by others (mode %o): the Postfix "
                    "daemons (user postfix) cannot reach %s; chmod o+x it or "
                    "use another work_dir"
                    % (parent, os.stat(parent).st_mode & 0o7777, self.queue_dir))
            if parent == "/":
                break
            parent = os.path.dirname(parent)
        self._write_config()
        # `postfix` chdir()s to queue_directory before post-install can create
        # it, so make the top level here (root:root 0755, as Postfix wants).
        os.makedirs(self.queue_dir, mode=0o755, exist_ok=True)
        os.chmod(self.queue_dir, 0o755)
        self._discard_stale_queue()
        log_start = self._log_size()
        self._subreaper = self.use_subreaper and _set_child_subreaper(True)
        try:
            r = self._start(log_start)
        except BaseException:
            try:
                self._shutdown()
            except Exception:
                pass
            raise
        self.start_seconds = time.monotonic() - t0
        pat = re.compile(r"\b(warning|error|fatal|panic):")
        start_text = _tail(self.log_path, nbytes=1 << 20, start=log_start)
        self.start_warnings = [l for l in start_text.splitlines() if pat.search(l)]
        self.start_warnings += [l for l in r.stdout.splitlines() if pat.search(l)]
        return self

    def _start(self, log_start):
        try:
            r = self._run([POSTFIX, "start"], timeout=120)
        except subprocess.TimeoutExpired:
            raise RuntimeError("`postfix start` timed out\n--- log tail ---\n%s"
                               % _tail(self.log_path, start=log_start))
        if r.returncode != 0:
            raise RuntimeError(
                "`postfix start` failed (exit %d):\n%s\n--- log tail ---\n%s"
                % (r.returncode, r.stdout.strip(),
                   _tail(self.log_path, start=log_start)))
        try:
            self._wait_ready(time.monotonic() + 30.0)
        except RuntimeError as e:
            raise RuntimeError("%s\n--- postfix start output ---\n%s\n"
                               "--- log tail ---\n%s"
                               % (e, r.stdout.strip(),
                                  _tail(self.log_path, start=log_start)))
        return r

    def _wait_ready(self, deadline):
        kicked = False
        while True:
            pid = self._read_master_pid()
            if pid and self._alive_master(pid):
                names = {n for _, n in self._children(pid)}
                if {"pickup", "qmgr"} <= names:
                    self.master_pid = pid
                    return
                if not kicked and time.monotonic() > deadline - 25.0:
                    # Nudge the wakeup services in case the master did not
                    # spawn them yet (it normally does at start-up).
                    self._run(["/usr/sbin/postkick", "public", "pickup", "W"])
                    self._run(["/usr/sbin/postkick", "public", "qmgr", "W"])
                    kicked = True
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "Postfix did not become ready (master pid %s, children %s)"
                    % (pid, self._children(pid) if pid else []))
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._shutdown()
        return False

    def _shutdown(self):
        pid = file_pid = self.master_pid or self._read_master_pid()
        if not pid or not self._alive_master(pid):
            pid = None
        members = self._session_members(pid) if pid else {}
        try:
            self._run([POSTFIX, "stop"], timeout=30)
        except (subprocess.TimeoutExpired, OSError):
            pass
        if not pid:
            # not running (or a master that died at start: reap it if ours)
            self.master_pid = None
            self._reap_adopted({file_pid: None} if file_pid else {})
            return
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            left = self._survivors(members)
            if not left:
                break
            time.sleep(0.05)
        for p in self._survivors(members):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5.0
        while self._survivors(members) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self._survivors(members)
        self.master_pid = None
        self._reap_adopted(members)
        if left:
            raise RuntimeError("Postfix processes survived SIGKILL: %s" % left)

    def _reap_adopted(self, members):
        """Reap the Postfix processes that were re-parented to us (see
        _set_child_subreaper); only those PIDs, so the caller's own
        subprocess children are never touched.  Then stop being a
        subreaper."""
        if getattr(self, "_subreaper", False):
            for p in members:
                try:
                    os.waitpid(p, os.WNOHANG)
                except ChildProcessError:
                    pass
            _set_child_subreaper(False)
            self._subreaper = False

    def _survivors(self, members):
        left = []
        for p, start in members.items():
            st = _proc_stat(p)
            # same process (pid not reused) and not yet a reaped zombie
            if st is not None and len(st) > 21 and st[21] == start \
                    and st[2] != "Z":
                left.append(p)
        return left

    # ------------------------------------------------------------------
    # measurement
    def send_and_wait(self, sender, rcpts, msg_path, timeout=120.0,
                      settle=True):
        """See the module documentation.  Returns the elapsed seconds from
        just before sendmail starts until the last status=sent line is seen.
        With settle=True (default) it then also waits (outside the measured
        interval, at most 10 s) for the queue manager's "<queue id>: removed"
        line, so that the message is fully finished: cpu_seconds() read
        afterwards includes that work and the next send starts from an idle
        Postfix.  Recipients must be distinct (Postfix removes duplicates).
        """
        rcpts = list(rcpts)
        want = len(rcpts)
        if want == 0:
            raise ValueError("no recipients")
        if not self.master_pid or not self._alive_master(self.master_pid):
            raise RuntimeError("Postfix is not running (use `with PostfixMTA(...)`)")
        offset = start_offset = self._log_size()
        fd = None
        msg = open(msg_path, "rb")
        errf = tempfile.TemporaryFile()
        marks = {}            # event -> seconds since t0 (see last_marks)
        mine = set()          # queue IDs picked up after this call started
        sent = {}             # queue ID -> status=sent count
        removed = set()       # queue IDs qmgr has removed (finished)
        failures = []
        got = 0
        partial = b""
        t_end = None
        proc = None
        proc_status = None
        try:
            t0 = time.monotonic()
            proc = subprocess.Popen([SENDMAIL, "-f", sender, "--"] + rcpts,
                                    stdin=msg, stdout=errf, stderr=errf,
                                    env=self._env, close_fds=True)
            deadline = t0 + timeout
            while True:
                if proc_status is None:
                    proc_status = self._reap(proc, block=False)
                    if proc_status is not None:
                        marks["sendmail_exit"] = time.monotonic() - t0
                    if proc_status is not None and proc_status != 0:
                        errf.seek(0)
                        raise RuntimeError(
                            "sendmail exited %d: %s" % (
                                proc_status,
                                errf.read().decode("utf-8", "replace").strip()))
                if fd is None:
                    try:
                        fd = os.open(self.log_path, os.O_RDONLY)
                    except FileNotFoundError:
                        fd = None
                chunk = os.pread(fd, 1 << 20, offset) if fd is not None else b""
                if chunk:
                    offset += len(chunk)
                    data = partial + chunk
                    lines = data.split(b"\n")
                    partial = lines.pop()
                    for raw in lines:
                        line = raw.decode("utf-8", "replace")
                        m = _LOG_QID_RE.search(line)
                        if not m:
                            continue
                        prog, qid, text = m.groups()
                        if prog.endswith("pickup") and text.startswith("uid="):
                            mine.add(qid)
                            marks.setdefault("pickup_seen", time.monotonic() - t0)
                        elif "status=sent" in text:
                            sent[qid] = sent.get(qid, 0) + 1
                            marks.setdefault("first_sent_seen",
                                             time.monotonic() - t0)
                        elif text == "removed":
                            removed.add(qid)
                        elif _FAIL_RE.search(text) and qid in mine:
                            # Only failures of our own message count: a
                            # leftover bounce notification of an earlier
                            # failed call (its own queue ID, not picked up
                            # from sendmail) must not fail this one.
                            failures.append(line)
                    got = sum(sent.get(q, 0) for q in mine)
                    if failures:
                        raise RuntimeError(
                            "delivery failed after %d/%d recipients sent:\n%s"
                            % (got, want, "\n".join(failures[:20])))
                    if got >= want and t_end is None:
                        t_end = time.monotonic()
                        deadline = t_end + 10.0  # for settling only
                    if t_end is not None and (not settle or mine <= removed):
                        break
                now = time.monotonic()
                if now > deadline and t_end is not None:
                    break  # delivered; qmgr's "removed" line did not come
                if now > deadline:
                    raise RuntimeError(
                        "timeout after %.3fs: %d/%d recipients sent "
                        "(queue ids %s)\n--- log tail ---\n%s"
                        % (now - t0, got, want, sorted(mine),
                           _tail(self.log_path, start=start_offset)))
                if not chunk:
                    time.sleep(0.002)  # else more may be waiting: read again
            if proc_status is None:
                proc_status = self._reap(proc, block=True)
                if proc_status != 0:
                    raise RuntimeError("sendmail exited %d after delivery"
                                       % proc_status)
            marks["last_sent_seen"] = t_end - t0
            if mine <= removed:
                marks["removed_seen"] = time.monotonic() - t0
            self.last_marks = marks
            return t_end - t0
        finally:
            if proc is not None and proc_status is None:
                try:
                    proc.kill()
                except OSError:
                    pass
                self._reap(proc, block=True)
            if fd is not None:
                os.close(fd)
            msg.close()
            errf.close()

    def _reap(self, proc, block):
        """Reap sendmail with wait4() so that its CPU (and that of the
        postdrop child it waited for) can be added to cpu_seconds()."""
        try:
            pid, status, ru = os.wait4(proc.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return proc.returncode if proc.returncode is not None else 0
        if pid == 0:
            return None
        self._client_cpu += ru.ru_utime + ru.ru_stime
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode

    def cpu_seconds(self):
        """User+system CPU seconds used so far by this Postfix instance.

        = CPU of the master itself
        + master's cutime+cstime: every daemon it has reaped (smtp, cleanup,
          pickup, trivial-rewrite, ... that exited; these daemons do not fork
          further, except pipe/local, which are unused here)
        + CPU of the daemons alive now (qmgr, pickup, postlogd, idle smtp
          processes, ...) plus their own cutime+cstime
        + sendmail and the postdrop it runs, for every send_and_wait()
          (rusage from wait4(), microseconds).

        The CPU of a live process is read from /proc/<pid>/schedstat
        (sum_exec_runtime, nanoseconds) where available, because
        /proc/<pid>/stat utime/stime are truncated to clock ticks (10 ms)
        *per process*, which would drop most of the CPU of 100 smtp processes
        that used ~1 ms each.  Reaped children's time (cutime/cstime) is
        accumulated by the kernel precisely and truncated to 10 ms once.

        Limits: a daemon that exits between reading the master and listing
        its children is missed by that one sample (it is counted again by
        the next); `postfix start`/`stop` (postfix-script, its `find` checks,
        postsuper) are not included; DNS (dnsmasq) and the receiving MX
        (smtp-sink) are not included; kernel work done outside process
        context (softirq network processing) is not attributed.  Take the
        difference of two calls around a send (after send_and_wait() returns
        with settle=True, so the queue manager has finished the message).
        """
        pid = self.master_pid
        if not pid or not self._alive_master(pid):
            raise RuntimeError("Postfix is not running")
        hz = float(os.sysconf("SC_CLK_TCK"))

        def proc_cpu(p):
            st = _proc_stat(p)
            if st is None or len(st) < 17:
                return 0.0
            reaped = (int(st[15]) + int(st[16])) / hz
            try:
                with open("/proc/%d/schedstat" % p) as f:
                    own = int(f.read().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                own = (int(st[13]) + int(st[14])) / hz
            return own + reaped

        total = proc_cpu(pid)
        for cpid, _ in self._children(pid):
            total += proc_cpu(cpid)
        return total + self._client_cpu

    def version(self):
        r = self._run([POSTCONF, "-h", "mail_version"])
        if r.returncode != 0 or not r.stdout.strip():
            r = self._run([POSTCONF, "-dh", "mail_version"])
        return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "?"

    def describe(self):
        settings = self.main_cf_settings()
        names = [k for k, _, _ in settings]
        defaults = {}
        try:
            r = self._run([POSTCONF, "-d"] + names)
            for line in r.stdout.splitlines():
                k, sep, v = line.partition(" = ")
                if sep:
                    defaults[k.strip()] = v.strip()
                elif line.endswith(" ="):
                    defaults[line[:-2].strip()] = ""
        except (OSError, subprocess.TimeoutExpired):
            pass
        if not hasattr(self, "_master_changes"):
            self._master_cf()

        def cell(v):
            return "`%s`" % v if v != "" else "(empty)"

        out = []
        out.append("### Postfix %s as a full MTA" % self.version())
        out.append("")
        out.append("Private instance inside the benchmark's network namespace "
                   "(configuration directory bind-mounted over `/etc/postfix`, "
                   "queue, data directory and log in a scratch directory).")
        out.append("")
        out.append("Commands:")
        out.append("")
        out.append("- `postfix start` (then wait until master has spawned "
                   "`pickup` and `qmgr`)")
        out.append("- per measurement: `/usr/sbin/sendmail -f <sender> -- "
                   "<rcpt>...` with the message on stdin; the clock starts just "
                   "before sendmail is started and stops when the mail log "
                   "(`maillog_file`, written by postlogd) shows `status=sent` "
                   "for the last recipient of that queue ID (log polled every "
                   "~2 ms); any `status=deferred`/`bounced` fails the run; "
                   "the call then waits (unmeasured) for qmgr's `removed` "
                   "line before the next send")
        out.append("- `postfix stop`")
        out.append("")
        out.append("Postfix CPU = master + all its daemons (live ones from "
                   "`/proc/<pid>/schedstat`, exited ones from the master's "
                   "cutime/cstime) + sendmail/postdrop (wait4 rusage).")
        out.append("")
        out.append("Path: sendmail → postdrop → maildrop → pickup → cleanup → "
                   "qmgr → smtp(8), with DNS MX and A lookups for every "
                   "destination domain.")
        out.append("")
        out.append("main.cf (every line written; built-in default from "
                   "`postconf -d`):")
        out.append("")
        out.append("| parameter | value | built-in default | why |")
        out.append("| --- | --- | --- | --- |")
        for k, v, why in settings:
            d = defaults.get(k, "?")
            out.append("| `%s` | %s | %s | %s |" % (k, cell(v), cell(d), why))
        out.append("")
        out.append("master.cf: Debian's `%s` with these changes:" % MASTER_CF_DIST)
        out.append("")
        for c in self._master_changes:
            out.append("- %s" % c)
        out.append("")
        out.append("Everything else is at Postfix's built-in defaults, among "
                   "them `default_destination_recipient_limit = 50` (one SMTP "
                   "transaction per destination domain carries all its "
                   "recipients), `initial_destination_concurrency = 5`, "
                   "`smtp_connection_cache_time_limit = 2s`, PIPELINING used "
                   "when offered, `max_idle = 100s` (idle smtp(8) processes are "
                   "reused by later sends in the same instance).")
        return "\n".join(out) + "\n"


# ----------------------------------------------------------------------
# self-test
def _make_message(path, sender, to_hdr, size):
    now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    head = ("From: <%s>\nTo: %s\nSubject: postfix_mta self-test\nDate: %s\n"
            "Message-ID: <selftest.%d.%d@sender.bench.test>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
            % (sender, to_hdr, now, os.getpid(), time.time_ns()))
    body = []
    n = len(head)
    i = 0
    while n < size:
        line = ("line %05d of the benchmark body, "
                "abcdefghijklmnopqrstuvwxyz0123456789\n" % i)
        line = line[:max(1, min(len(line), size - n))]
        if not line.endswith("\n"):
            line = line[:-1] + "\n" if len(line) > 1 else "\n"
        body.append(line)
        n += len(line)
        i += 1
    with open(path, "w") as f:
        f.write(head + "".join(body))
    return os.path.getsize(path)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Self-test: start a private Postfix, send one message to "
                    "DOMAINS x PER_DOMAIN recipients u{j}@d{i}.fan.bench.test, "
                    "print elapsed time, recipients/s and CPU. Run inside the "
                    "namespace (ip netns exec <ns> /usr/bin/python3 ...).")
    ap.add_argument("--config-dir", required=True,
                    help="/etc/netns/<ns>/postfix (is /etc/postfix in the ns)")
    ap.add_argument("--work-dir", required=True,
                    help="scratch directory (created if missing)")
    ap.add_argument("--domains", type=int, default=100)
    ap.add_argument("--per-domain", type=int, default=10)
    ap.add_argument("--zone", default="fan.bench.test")
    ap.add_argument("--sender", default="bench@sender.bench.test")
    ap.add_argument("--size", type=int, default=2048, help="message bytes")
    ap.add_argument("--sends", type=int, default=1,
                    help="messages to send one after the other in the same "
                         "Postfix instance")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--process-limit", type=int, default=100)
    ap.add_argument("--describe", action="store_true",
                    help="also print describe()")
    a = ap.parse_args(argv)

    os.makedirs(a.work_dir, exist_ok=True)
    rcpts = ["u%d@d%d.%s" % (j, i, a.zone)
             for i in range(1, a.domains + 1)
             for j in range(1, a.per_domain + 1)]
    msg_path = os.path.join(a.work_dir, "selftest-message.eml")
    size = _make_message(msg_path, a.sender,
                         "<u1@d1.%s>, undisclosed-recipients:;" % a.zone, a.size)
    mta = PostfixMTA(a.config_dir, a.work_dir, process_limit=a.process_limit)
    with mta:
        print("postfix %s started in %.2fs (master pid %d)"
              % (mta.version(), mta.start_seconds, mta.master_pid))
        for w in mta.start_warnings:
            print("start warning: %s" % w)
        for k in range(a.sends):
            c0 = mta.cpu_seconds()
            dt = mta.send_and_wait(a.sender, rcpts, msg_path, timeout=a.timeout)
            c1 = mta.cpu_seconds()
            print("send %d: %d recipients (%d domains x %d), %d-byte message: "
                  "elapsed %.3f s, %.1f recipients/s, postfix CPU %.2f s"
                  % (k + 1, len(rcpts), a.domains, a.per_domain, size, dt,
                     len(rcpts) / dt, c1 - c0))
            print("        timeline (s): %s" % ", ".join(
                "%s %.3f" % kv for kv in sorted(mta.last_marks.items(),
                                                key=lambda kv: kv[1])))
        print("cpu_seconds() total since start: %.2f s" % mta.cpu_seconds())
        if a.describe:
            print()
            print(mta.describe())
    print("postfix stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
