#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""aimx send --dry-run, end to end: every compose option, raw input with
sendmail's envelope rules, the checks and their exit codes, the canonical
spool (bounded memory, nothing left in spool_dir even after SIGKILL), and
DKIM signatures verified by dkimpy (Debian python3-dkim) with a DNS lookup
that answers with the test's own key.

No plugin is needed: a dry run loads none, which one test proves by naming
plugins that do not exist."""

import base64
import datetime
import email
import email.policy
import email.utils
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import dkim

AIMX = os.environ["AIMX_BIN"]
SANITIZED = os.environ.get("AIMX_SANITIZED") == "1"

RAW = (b"From: Sender <sender@sender.test>\n"
       b"To: a@example.com, B <b@example.org>\n"
       b"Cc: c@example.net\n"
       b"Bcc: hidden@example.com,\n"
       b"\tother@example.com\n"
       b"Subject: raw\n"
       b"Message-ID: <raw.1@sender.test>\n"
       b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
       b"\n"
       b"line one\n"
       b"line two  \n")


def lines(msg):
    """The lines of a canonical message; fails on a bare LF or CR."""
    assert msg.endswith(b"\r\n"), msg[-20:]
    parts = msg[:-2].split(b"\r\n")
    for p in parts:
        assert b"\n" not in p and b"\r" not in p, p
    return parts


def parse(msg):
    return email.message_from_bytes(msg, policy=email.policy.default)


def text(part):
    """A text part's content; from CRLF bytes the parser keeps the CR."""
    return part.get_content().replace("\r\n", "\n")


class Base(unittest.TestCase):
    key_dir = None

    @classmethod
    def setUpClass(cls):
        # One RSA key for the whole class: generating one takes a while.
        cls.key_dir = tempfile.mkdtemp(prefix="aimx-send-key-")
        cls.key = os.path.join(cls.key_dir, "k.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA",
                        "-pkeyopt", "rsa_keygen_bits:2048", "-out", cls.key],
                       check=True, capture_output=True)
        os.chmod(cls.key, 0o600)
        der = subprocess.run(["openssl", "pkey", "-in", cls.key, "-pubout",
                              "-outform", "DER"],
                             check=True, capture_output=True).stdout
        cls.txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.key_dir)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="aimx-send-")
        self.spool = os.path.join(self.dir, "spool")
        os.mkdir(self.spool)
        self.plain = self.conf("")
        self.signing = self.conf(
            f'dkim: {{ selector = "s1"; key_file = "{self.key}"; }};\n',
            "dkim.conf")
        self.lookups = []

    def tearDown(self):
        # Every run leaves spool_dir as it found it.
        self.assertEqual(os.listdir(self.spool), [])
        shutil.rmtree(self.dir)

    def conf(self, extra, name="aimx.conf"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write('domain = "sender.test";\n'
                    f'spool_dir = "{self.spool}";\n' + extra)
        return path

    def file(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run_aimx(self, *args, config=None, stdin=b"", env=None):
        e = {k: v for k, v in os.environ.items()
             if k not in ("AIMX_CONFIG", "AIMX_PLUGIN_PATH")}
        if env:
            e.update(env)
        argv = [AIMX, "--config", config or self.plain] + list(args)
        p = subprocess.run(argv, input=stdin, capture_output=True, env=e,
                           timeout=300)
        return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")

    def dry(self, *args, config=None, stdin=b""):
        """--dry-run --json; returns (object, message bytes, stderr)."""
        code, out, err = self.run_aimx("send", "--dry-run", "--json", *args,
                                       config=config, stdin=stdin)
        self.assertEqual(code, 0, err)
        obj = json.loads(out)
        self.assertEqual(obj["schema"], 1)
        self.assertEqual(obj["status"], "dry_run")
        if obj["message_encoding"] == "utf-8":
            msg = obj["message"].encode("utf-8")
        else:
            self.assertEqual(obj["message_encoding"], "base64")
            msg = base64.b64decode(obj["message"])
        self.assertEqual(obj["envelope"]["size"], len(msg))
        lines(msg)
        return obj, msg, err

    def dnsfunc(self, name, timeout=5):
        self.lookups.append(name)
        if name == b"s1._domainkey.sender.test.":
            return self.txt
        return None

    def verify(self, msg):
        return dkim.verify(msg, dnsfunc=self.dnsfunc)


COMPOSE = ["--from", "Agent <agent@sender.test>", "--to", "bob@example.com"]


class Compose(Base):
    def test_every_option(self):
        a = self.file("a.txt", b"plain text attachment\n")
        pdf = bytes(range(256)) * 40
        b = self.file("b.pdf", pdf)
        obj, msg, _ = self.dry(
            "--from", "Agent Smith <agent@sender.test>",
            "--to", 'bob@example.com, "Doe, Jane" <jane@example.org>',
            "--to", "carol@example.net",
            "--cc", "dave@example.com",
            "--bcc", "eve@example.com,frank@example.com",
            "--reply-to", "replies@sender.test",
            "--subject", "Quarterly report",
            "--in-reply-to", "<parent.1@example.com>",
            "--references", "<root.0@example.com>",
            "--references", "parent.1@example.com",
            "--message-id", "<fixed.42@sender.test>",
            "--header", "X-Agent: run-7",
            "--header", "X-Priority: 3",
            "--attach", a, "--attach", b,
            "--body", "See attached.")
        env = obj["envelope"]
        self.assertEqual(env["from"], "agent@sender.test")
        self.assertEqual(env["recipients"],
                         ["bob@example.com", "jane@example.org",
                          "carol@example.net", "dave@example.com",
                          "eve@example.com", "frank@example.com"])
        self.assertFalse(env["8bit"])
        self.assertFalse(env["smtputf8"])
        self.assertFalse(env["utf8_addresses"])
        self.assertEqual(obj["dkim"], {"signed": False, "domain": None,
                                       "selector": None, "aligned": None})
        m = parse(msg)
        self.assertEqual(m["From"].addresses[0].display_name, "Agent Smith")
        self.assertEqual(m["From"].addresses[0].addr_spec,
                         "agent@sender.test")
        self.assertEqual([(x.display_name, x.addr_spec)
                          for x in m["To"].addresses],
                         [("", "bob@example.com"),
                          ("Doe, Jane", "jane@example.org"),
                          ("", "carol@example.net")])
        self.assertEqual(m["Cc"].addresses[0].addr_spec, "dave@example.com")
        self.assertEqual(m["Reply-To"].addresses[0].addr_spec,
                         "replies@sender.test")
        self.assertEqual(m["Subject"], "Quarterly report")
        self.assertEqual(m["Message-ID"], "<fixed.42@sender.test>")
        self.assertEqual(m["In-Reply-To"], "<parent.1@example.com>")
        self.assertEqual(m["References"],
                         "<root.0@example.com> <parent.1@example.com>")
        self.assertEqual(m["X-Agent"], "run-7")
        self.assertEqual(m["X-Priority"], "3")
        self.assertEqual(m["MIME-Version"], "1.0")
        when = email.utils.parsedate_to_datetime(m["Date"])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - when).total_seconds()), 300)
        # Bcc never appears, neither the field nor its addresses.
        self.assertIsNone(m["Bcc"])
        self.assertNotIn(b"eve@", msg)
        self.assertNotIn(b"frank@", msg)
        self.assertNotIn(b"\nBcc", msg)
        self.assertEqual(m.get_content_type(), "multipart/mixed")
        parts = list(m.iter_parts())
        self.assertEqual(len(parts), 3)
        self.assertEqual(parts[0].get_content_type(), "text/plain")
        self.assertEqual(text(parts[0]), "See attached.\n")
        self.assertEqual(parts[1].get_filename(), "a.txt")
        self.assertEqual(parts[1].get_content_type(), "text/plain")
        self.assertEqual(parts[1].get_payload(decode=True),
                         b"plain text attachment\n")
        self.assertEqual(parts[1]["Content-Transfer-Encoding"], "base64")
        self.assertEqual(parts[2].get_filename(), "b.pdf")
        self.assertEqual(parts[2].get_content_type(), "application/pdf")
        self.assertEqual(parts[2].get_payload(decode=True), pdf)
        for line in lines(msg):
            self.assertLessEqual(len(line), 78, line)

    def test_bcc_only(self):
        obj, msg, _ = self.dry("--from", "a@sender.test", "--bcc",
                               "hidden@example.com", "--body", "x")
        self.assertEqual(obj["envelope"]["recipients"], ["hidden@example.com"])
        m = parse(msg)
        self.assertIsNone(m["To"])
        self.assertIsNone(m["Bcc"])
        self.assertNotIn(b"hidden", msg)

    def test_message_id_is_new_each_time_and_on_domain(self):
        ids = set()
        for _ in range(3):
            _, msg, _ = self.dry(*COMPOSE, "--body", "x")
            mid = parse(msg)["Message-ID"]
            self.assertRegex(mid, r"^<[0-9a-f]+\.[0-9a-f]{32}@sender\.test>$")
            ids.add(mid)
        self.assertEqual(len(ids), 3)

    def test_references_default_to_in_reply_to(self):
        _, msg, _ = self.dry(*COMPOSE, "--in-reply-to", "p@x.test",
                             "--body", "x")
        m = parse(msg)
        self.assertEqual(m["In-Reply-To"], "<p@x.test>")
        self.assertEqual(m["References"], "<p@x.test>")

    def test_non_ascii_round_trip(self):
        subject = "Grüße aus Köln – 报告 " * 6 + "end"
        body = ("Héllo wörld\n" + "ü" * 1500 + "\n"
                "trailing spaces   \nlast line without break")
        name1 = "Über résumé 报告 with a rather long file name indeed.txt"
        name2 = "naïve.bin"
        data2 = bytes(range(256))
        f1 = self.file(name1, "Inhalt: äöü\n".encode())
        f2 = self.file(name2, data2)
        obj, msg, _ = self.dry(
            "--from", "Jürgen Müller <j@sender.test>",
            "--to", "Zoë Ünal <zoe@example.com>",
            "--subject", subject, "--body", body,
            "--attach", f1, "--attach", f2,
            "--header", "X-Note: Ça va")
        # Everything was encoded: the message itself is ASCII.
        self.assertFalse(obj["envelope"]["8bit"])
        msg.decode("ascii")
        for line in lines(msg):
            self.assertLessEqual(len(line), 78, line)
        m = parse(msg)
        self.assertEqual(m["Subject"], subject)
        self.assertEqual(m["From"].addresses[0].display_name, "Jürgen Müller")
        self.assertEqual(m["To"].addresses[0].display_name, "Zoë Ünal")
        self.assertEqual(m["X-Note"], "Ça va")
        parts = list(m.iter_parts())
        self.assertEqual(parts[0]["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(text(parts[0]), body + "\n")
        self.assertEqual(parts[1].get_filename(), name1)
        self.assertEqual(parts[1].get_payload(decode=True),
                         "Inhalt: äöü\n".encode())
        self.assertEqual(parts[2].get_filename(), name2)
        self.assertEqual(parts[2].get_content_type(),
                         "application/octet-stream")
        self.assertEqual(parts[2].get_payload(decode=True), data2)

    def test_seven_bit_when_possible(self):
        _, msg, _ = self.dry(*COMPOSE, "--body", "plain\nascii = fine\n")
        m = parse(msg)
        self.assertEqual(m["Content-Transfer-Encoding"], "7bit")
        self.assertTrue(msg.endswith(b"\r\n\r\nplain\r\nascii = fine\r\n"))
        long_line = "x" * 1200 + "\n"
        _, msg, _ = self.dry(*COMPOSE, "--body", long_line)
        m = parse(msg)
        self.assertEqual(m["Content-Transfer-Encoding"], "quoted-printable")
        self.assertEqual(text(m), long_line)
        for line in lines(msg):
            self.assertLessEqual(len(line), 78)

    def test_body_sources_agree(self):
        text = "first line\nsécond line\n\nlast\n"
        crlf = text.replace("\n", "\r\n")
        bodies = []

        def body_of(msg):
            return msg.split(b"\r\n\r\n", 1)[1]

        _, msg, _ = self.dry(*COMPOSE, "--body", text)
        bodies.append(body_of(msg))
        _, msg, _ = self.dry(*COMPOSE, "--body", crlf)
        bodies.append(body_of(msg))
        path = self.file("body.txt", text.encode())
        _, msg, _ = self.dry(*COMPOSE, "--body-file", path)
        bodies.append(body_of(msg))
        # stdin as a pipe, and as a file (read in place).
        _, msg, _ = self.dry(*COMPOSE, stdin=crlf.encode())
        bodies.append(body_of(msg))
        with open(path, "rb") as f:
            p = subprocess.run([AIMX, "--config", self.plain, "send",
                                "--dry-run", *COMPOSE], stdin=f,
                               capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        bodies.append(body_of(p.stdout))
        self.assertEqual(len(set(bodies)), 1, bodies)

    def test_idn_and_utf8_addresses(self):
        obj, msg, _ = self.dry("--from", "a@sender.test", "--to",
                               "user@bücher.example", "--body", "x")
        self.assertEqual(obj["envelope"]["recipients"],
                         ["user@xn--bcher-kva.example"])
        self.assertIn(b"To: user@xn--bcher-kva.example\r\n", msg)
        self.assertFalse(obj["envelope"]["smtputf8"])
        obj, msg, _ = self.dry("--from", "a@sender.test", "--to",
                               "jörg@example.com", "--body", "x")
        self.assertTrue(obj["envelope"]["smtputf8"])
        self.assertTrue(obj["envelope"]["utf8_addresses"])
        self.assertTrue(obj["envelope"]["8bit"])
        self.assertIn("\r\nTo: jörg@example.com\r\n".encode(), msg)

    def test_text_output_is_the_message(self):
        code, out, err = self.run_aimx("send", "--dry-run", *COMPOSE,
                                       "--cc", "c@example.com",
                                       "--body", "hello")
        self.assertEqual(code, 0, err)
        lines(out)
        self.assertEqual(parse(out)["To"], "bob@example.com")
        self.assertIn("MAIL FROM:<agent@sender.test> SIZE=%d" % len(out), err)
        self.assertIn("RCPT TO:<bob@example.com>", err)
        self.assertIn("RCPT TO:<c@example.com>", err)
        code, out2, err = self.run_aimx("-q", "send", "--dry-run", *COMPOSE,
                                        "--body", "hello")
        self.assertEqual(code, 0)
        self.assertEqual(err, "")

    def test_no_plugin_is_loaded(self):
        conf = self.conf('plugin_dirs = [ "/nonexistent" ];\n'
                         'resolver: { plugin = "no-such-resolver"; };\n'
                         'transport: { plugin = "no-such-transport"; };\n',
                         "noplugins.conf")
        self.dry(*COMPOSE, "--body", "x", config=conf)

    def test_help(self):
        code, out, _ = self.run_aimx("send", "--help")
        self.assertEqual(code, 0)
        out = out.decode()
        for opt in ("--from", "--to", "--cc", "--bcc", "--reply-to",
                    "--subject", "--in-reply-to", "--references",
                    "--message-id", "--header", "--attach", "--body",
                    "--body-file", "--raw", "-t", "--dry-run"):
            self.assertIn(opt, out)


class Raw(Base):
    def expected(self, data):
        """data with CRLF line endings and without its Bcc field."""
        out = re.sub(rb"Bcc:.*\n\t.*\n", b"", data)
        return out.replace(b"\n", b"\r\n")

    def test_lf_and_crlf_give_the_same_bytes(self):
        outputs = []
        for data in (RAW, RAW.replace(b"\n", b"\r\n"),
                     RAW.replace(b"\n", b"\r\n", 3), RAW[:-1]):
            path = self.file("m.eml", data)
            code, out, err = self.run_aimx("send", "--dry-run", "--raw", path,
                                           "--to", "x@example.com")
            self.assertEqual(code, 0, err)
            outputs.append(out)
        self.assertEqual(len(set(outputs)), 1)
        self.assertEqual(outputs[0], self.expected(RAW))

    def test_nothing_else_changes(self):
        data = (b"Received: by x\nFrom: s@sender.test\nSubject:  odd   "
                b"spacing \nX-Long: " + b"y " * 300 + b"\n\n\n\nbody\n\n")
        _, msg, _ = self.dry("--raw", self.file("m.eml", data), "--to",
                             "x@example.com")
        self.assertEqual(msg, data.replace(b"\n", b"\r\n"))

    def test_t_adds_header_recipients_and_removes_bcc(self):
        path = self.file("m.eml", RAW)
        obj, msg, _ = self.dry("--raw", path, "-t", "--to", "extra@example.com")
        self.assertEqual(obj["envelope"]["recipients"],
                         ["extra@example.com", "a@example.com",
                          "b@example.org", "c@example.net",
                          "hidden@example.com", "other@example.com"])
        self.assertEqual(msg, self.expected(RAW))
        self.assertIsNone(parse(msg)["Bcc"])
        self.assertNotIn(b"hidden@", msg)
        # Without -t only --to counts; Bcc still goes.
        obj, msg, _ = self.dry("--raw", path, "--to", "x@example.com")
        self.assertEqual(obj["envelope"]["recipients"], ["x@example.com"])
        self.assertNotIn(b"hidden@", msg)

    def test_t_with_groups_comments_and_no_bcc(self):
        data = (b"From: s@sender.test\nTo: undisclosed-recipients:;\n"
                b"Cc: team: a@example.com (Alice), \"B, x\" <b@example.com>;\n"
                b"\nhi\n")
        obj, _, _ = self.dry("--raw", self.file("m.eml", data), "-t")
        self.assertEqual(obj["envelope"]["recipients"],
                         ["a@example.com", "b@example.com"])

    def test_envelope_defaults(self):
        path = self.file("m.eml", RAW)
        obj, _, _ = self.dry("--raw", path, "--to", "x@example.com")
        self.assertEqual(obj["envelope"]["from"], "sender@sender.test")
        obj, _, _ = self.dry("--raw", path, "--to", "x@example.com",
                             "--from", "bounces@sender.test")
        self.assertEqual(obj["envelope"]["from"], "bounces@sender.test")
        obj, _, _ = self.dry("--raw", path, "--to", "x@example.com",
                             "--from", "<>")
        self.assertEqual(obj["envelope"]["from"], "")

    def test_stdin(self):
        obj, msg, _ = self.dry("--raw", "-", "-t", stdin=RAW)
        self.assertEqual(msg, self.expected(RAW))
        self.assertEqual(len(obj["envelope"]["recipients"]), 5)

    def test_eight_bit_data(self):
        data = b"From: s@sender.test\nSubject: caf\xe9\n\nlatin-1 \xe9t\xe9\n"
        obj, msg, _ = self.dry("--raw", self.file("m.eml", data), "--to",
                               "x@example.com")
        self.assertEqual(obj["message_encoding"], "base64")
        self.assertTrue(obj["envelope"]["8bit"])
        self.assertEqual(msg, data.replace(b"\n", b"\r\n"))
        data = "From: s@sender.test\nSubject: café\n\nok\n".encode()
        obj, msg, _ = self.dry("--raw", self.file("m.eml", data), "--to",
                               "x@example.com")
        self.assertEqual(obj["message_encoding"], "utf-8")
        self.assertTrue(obj["envelope"]["smtputf8"])
        self.assertFalse(obj["envelope"]["utf8_addresses"])


class Dkim(Base):
    def signature(self, msg):
        first = lines(msg)[0]
        self.assertTrue(first.startswith(b"DKIM-Signature: v=1; "
                                         b"a=rsa-sha256; c=relaxed/relaxed;"),
                        first)
        field = msg.split(b"\r\n\r\n", 1)[0].decode()
        field = re.match(r"DKIM-Signature:(.*?)\r\n(?=\S)", field, re.S)
        tags = {}
        for t in re.sub(r"\s+", "", field.group(1)).split(";"):
            if t:
                k, v = t.split("=", 1)
                tags[k] = v
        return tags

    def test_composed_message_verifies(self):
        a = self.file("Überblick.txt", "Ä\n".encode())
        obj, msg, err = self.dry(
            "--from", "Agent <agent@sender.test>",
            "--to", "bob@example.com", "--cc", "c@example.com",
            "--bcc", "hidden@example.com",
            "--reply-to", "r@sender.test", "--subject", "Grüße",
            "--in-reply-to", "p@x.test", "--attach", a,
            "--header", "X-Agent: 1",
            "--body", "Body with trailing   \n\n\n",
            config=self.signing)
        self.assertTrue(self.verify(msg))
        self.assertEqual(self.lookups, [b"s1._domainkey.sender.test."])
        tags = self.signature(msg)
        self.assertEqual(tags["d"], "sender.test")
        self.assertEqual(tags["s"], "s1")
        self.assertEqual(tags["h"],
                         "from:to:cc:reply-to:subject:date:message-id:"
                         "in-reply-to:references:mime-version:content-type")
        self.assertEqual(obj["dkim"], {"signed": True, "domain": "sender.test",
                                       "selector": "s1", "aligned": True})
        self.assertNotIn("align", err)
        for line in lines(msg):
            self.assertLessEqual(len(line), 78)

    def test_text_output_verifies(self):
        code, out, err = self.run_aimx("send", "--dry-run", *COMPOSE,
                                       "--body", "hi", config=self.signing)
        self.assertEqual(code, 0, err)
        self.assertTrue(self.verify(out))
        self.assertEqual(self.signature(out)["h"],
                         "from:to:date:message-id:mime-version:content-type")

    def test_relaxed_edge_cases(self):
        bodies = [b"trailing white space \t \nand  inner\t\tspace\n\n\n\n",
                  b"\n\n\n", b"", b"no final line break   ",
                  b" leading\n \n\t\nx\n \n"]
        for body in bodies:
            with self.subTest(body=body):
                data = b"From: s@sender.test\nTo: x@example.com\n\n" + body
                _, msg, _ = self.dry("--raw", self.file("m.eml", data), "-t",
                                     config=self.signing)
                self.assertTrue(self.verify(msg))
                # What relaxed canonicalisation forgives, a relay may do.
                head, _, rest = msg.partition(b"\r\n\r\n")
                relayed = head + b"\r\n\r\n" + re.sub(
                    rb"[ \t]+\r\n", b"\r\n", rest) + b"\r\n\r\n"
                self.assertTrue(self.verify(relayed))
                self.assertFalse(self.verify(msg + b"tampered\r\n"))

    def test_header_only_message(self):
        data = b"From: s@sender.test\nTo: x@example.com\nSubject: none"
        _, msg, _ = self.dry("--raw", self.file("m.eml", data), "-t",
                             config=self.signing)
        self.assertTrue(self.verify(msg))

    def test_repeated_and_folded_fields(self):
        data = (b"From: s@sender.test\nTo: x@example.com\nTo: y@example.com,"
                b"\n  z@example.com\nSubject:   spaced\t out  \n"
                b"Content-Type: text/plain;\n charset=us-ascii\n\nbody\n")
        _, msg, _ = self.dry("--raw", self.file("m.eml", data), "-t",
                             config=self.signing)
        self.assertTrue(self.verify(msg))
        self.assertEqual(self.signature(msg)["h"],
                         "from:to:to:subject:content-type")
        # Changing either To breaks it: both instances are signed.
        self.assertFalse(self.verify(msg.replace(b"To: x@", b"To: w@")))
        self.assertFalse(self.verify(msg.replace(b"z@example", b"q@example")))

    def test_unsigned_without_dkim_group(self):
        code, out, err = self.run_aimx("-v", "send", "--dry-run", *COMPOSE,
                                       "--body", "x")
        self.assertEqual(code, 0, err)
        self.assertNotIn(b"DKIM-Signature", out)
        self.assertEqual(err.count("not signed"), 1, err)
        code, out, err = self.run_aimx("send", "--dry-run", *COMPOSE,
                                       "--body", "x")
        self.assertNotIn("not signed", err)

    def test_alignment(self):
        obj, msg, err = self.dry("--from", "a@other.test", "--to",
                                 "b@example.com", "--body", "x",
                                 config=self.signing)
        self.assertIn("From: domain other.test does not align", err)
        self.assertFalse(obj["dkim"]["aligned"])
        self.assertTrue(self.verify(msg))
        obj, _, err = self.dry("--from", "a@mail.sender.test", "--to",
                               "b@example.com", "--body", "x",
                               config=self.signing)
        self.assertNotIn("align", err)
        self.assertTrue(obj["dkim"]["aligned"])

    def test_key_problems(self):
        missing = os.path.join(self.dir, "absent.pem")
        conf = self.conf(f'dkim: {{ selector = "s1"; key_file = "{missing}"; '
                         '};\n', "missing.conf")
        code, out, err = self.run_aimx("send", "--dry-run", *COMPOSE,
                                       "--body", "x", config=conf)
        self.assertEqual(code, 78)
        self.assertIn(missing, err)
        self.assertIn("openssl genpkey", err)
        key = os.path.join(self.dir, "k.pem")
        shutil.copy(self.key, key)
        conf = self.conf(f'dkim: {{ selector = "s1"; key_file = "{key}"; }};\n',
                         "copy.conf")
        os.chmod(key, 0o640)
        self.dry(*COMPOSE, "--body", "x", config=conf)
        os.chmod(key, 0o644)
        code, out, err = self.run_aimx("send", "--dry-run", "--json", *COMPOSE,
                                       "--body", "x", config=conf)
        self.assertEqual(code, 78)
        obj = json.loads(out)
        self.assertEqual(obj["exit"], 78)
        self.assertIn(key, obj["message"])
        self.assertIn("readable by others", obj["message"])
        self.assertIn("chmod o-rwx " + key, err)

    def test_configuration_errors(self):
        for extra, needle in (
                ('dkim: { key_file = "/k"; };\n',
                 ":3: group 'dkim' needs 'selector'"),
                ('dkim: { selector = "s1"; };\n',
                 ":3: group 'dkim' needs 'key_file'"),
                ('dkim: { selector = "s 1"; key_file = "/k"; };\n',
                 "is not a valid selector"),
                ('dkim: { selector = "s1"; key_file = "k.pem"; };\n',
                 "'key_file' = \"k.pem\" is not an absolute path"),
                ('spool_dir = "relative";\n',
                 ":3: 'spool_dir' = \"relative\" is not an absolute path")):
            with self.subTest(extra=extra):
                path = os.path.join(self.dir, "bad.conf")
                with open(path, "w") as f:
                    f.write('domain = "sender.test";\n'
                            + ("" if "spool_dir" in extra else
                               f'spool_dir = "{self.spool}";\n')
                            + ("\n" if "spool_dir" in extra else "") + extra)
                code, _, err = self.run_aimx("send", "--dry-run", *COMPOSE,
                                             "--body", "x", config=path)
                self.assertEqual(code, 78, err)
                self.assertIn(needle, err)


class BadInput(Base):
    def test_table(self):
        long_line = self.file("long.eml", b"From: s@sender.test\n\nok\n"
                              + b"x" * 999 + b"\n")
        no_header = self.file("nohead.eml", b"\nbody only\n")
        no_from = self.file("nofrom.eml", b"Subject: x\n\nbody\n")
        local65 = "a" * 65 + "@example.com"
        cases = [
            (["--from", "a@sender.test", "--to",
              "b@example.com\r\nRCPT TO:<evil@example.com>", "--body", "x"],
             65, "b@example.com\\r\\nRCPT TO:<evil@example.com>"),
            (["--from", "a@sender.test\r\nX: y", "--to", "b@example.com"],
             65, "a@sender.test\\r\\nX: y"),
            (COMPOSE + ["--subject", "hi\r\nBcc: evil@example.com"],
             65, "--subject 'hi\\r\\nBcc: evil@example.com' contains a line "
                 "break"),
            (COMPOSE + ["--header", "X-A: 1\nBcc: evil@example.com"],
             65, "--header 'X-A: 1\\nBcc: evil@example.com' contains a line "
                 "break"),
            (COMPOSE + ["--to", "Name\r\n <c@example.com>"], 65, "line break"),
            (["--from", "a@sender.test", "--to", local65], 65,
             local65 + "' is 65 octets; at most 64"),
            (["--from", "a@sender.test", "--to",
              "a@" + "x" * 250 + ".example"], 65, "at most 255"),
            (["--from", "a@sender.test", "--to", "not-an-address"], 65,
             "'not-an-address' is not an address"),
            (["--raw", long_line, "--to", "b@example.com"], 65,
             long_line + ": line 4 is longer than 998 octets"),
            (["--raw", no_header, "--to", "b@example.com"], 65,
             "no header section"),
            (["--raw", no_from, "--to", "b@example.com"], 65,
             "no From: field"),
            (["--from", "a@sender.test", "--body", "x"], 64,
             "needs a recipient: --to"),
            (["--raw", no_from], 64, "needs a recipient: --to"),
            (["--to", "b@example.com", "--body", "x"], 64, "needs --from"),
            (["--raw", os.path.join(self.dir, "absent.eml"), "--to",
              "b@example.com"], 66, "absent.eml: No such file"),
            (["--raw", self.dir, "--to", "b@example.com"], 66,
             "is a directory"),
            (COMPOSE + ["--attach", os.path.join(self.dir, "gone.pdf")], 66,
             "gone.pdf: No such file"),
            (COMPOSE + ["--body-file", os.path.join(self.dir, "gone.txt")],
             66, "gone.txt: No such file"),
            (COMPOSE + ["--message-id", "no id"], 65,
             "'no id' is not a message ID"),
            (COMPOSE + ["--in-reply-to", "bad"], 65, "'bad' is not a message"),
            (COMPOSE + ["--header", "Subject: x"], 64, "use --subject"),
            (COMPOSE + ["--header", "Bcc: x@example.com"], 64, "--bcc"),
            (COMPOSE + ["--header", "no colon"], 64, "not 'Name: value'"),
            (COMPOSE + ["-t"], 64, "-t reads recipients"),
            (["--raw", no_from, "--subject", "x", "--to", "b@example.com"],
             64, "--subject composes a message"),
            (COMPOSE + ["--body", "a", "--body-file", no_from], 64,
             "exclude each other"),
            (COMPOSE + ["--subject", "a", "--subject", "b"], 64,
             "--subject is given twice"),
            (COMPOSE + ["extra"], 64, "takes no operands"),
            (COMPOSE + ["--bogus"], 64, "unknown option '--bogus'"),
        ]
        for args, code, needle in cases:
            with self.subTest(args=args):
                c, out, err = self.run_aimx("send", "--dry-run", *args,
                                            stdin=b"body")
                self.assertEqual(c, code, err)
                self.assertIn(needle, err)
                self.assertEqual(out, b"")
                c, out, err = self.run_aimx("send", "--dry-run", "--json",
                                            *args, stdin=b"body")
                self.assertEqual(c, code)
                obj = json.loads(out)
                self.assertEqual(obj["status"], "error")
                self.assertEqual(obj["exit"], code)
                self.assertIn(needle, obj["message"])

    def test_world_readable_key(self):
        key = os.path.join(self.dir, "k.pem")
        shutil.copy(self.key, key)
        os.chmod(key, 0o604)
        conf = self.conf(f'dkim: {{ selector = "s1"; key_file = "{key}"; }};\n',
                         "wr.conf")
        code, out, err = self.run_aimx("send", "--dry-run", *COMPOSE,
                                       "--body", "x", config=conf)
        self.assertEqual(code, 78)
        self.assertIn(f"the DKIM key_file {key} is readable by others "
                      "(mode 0604)", err)

    def test_body_not_utf8(self):
        path = self.file("latin1.txt", b"ok\ncaf\xe9\n")
        code, _, err = self.run_aimx("send", "--dry-run", *COMPOSE,
                                     "--body-file", path)
        self.assertEqual(code, 65)
        self.assertIn("is not UTF-8 text: line 2", err)

    def test_send_needs_its_plugins(self):
        # This config names plugins that do not exist: a real send needs
        # all three and says which is missing, before sending anything.
        code, out, err = self.run_aimx("send", *COMPOSE, "--body", "x")
        self.assertEqual(code, 78)
        self.assertIn("transport plugin", err)
        self.assertIn("not found", err)


class Spool(Base):
    def spool_fds(self, pid):
        found = []
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith(self.spool + "/"):
                    found.append(target)
                    # Readable by its owner only.
                    mode = os.stat(f"/proc/{pid}/fd/{fd}").st_mode
                    self.assertEqual(mode & 0o777, 0o600)
        except FileNotFoundError:
            pass
        return found

    def test_sigkill_leaves_nothing_behind(self):
        p = subprocess.Popen([AIMX, "--config", self.signing, "send",
                              "--dry-run", "--raw", "-", "-t"],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            p.stdin.write(b"From: s@sender.test\nTo: x@example.com\n\n")
            p.stdin.write(b"body line\n" * 100000)
            p.stdin.flush()
            deadline = time.monotonic() + 30
            fds = []
            while not fds and time.monotonic() < deadline:
                fds = self.spool_fds(p.pid)
                time.sleep(0.01)
            # The spool is an unnamed file in spool_dir, open and unlinked.
            self.assertTrue(fds)
            self.assertTrue(all(t.endswith("(deleted)") for t in fds), fds)
            self.assertEqual(os.listdir(self.spool), [])
        finally:
            p.kill()
            p.wait()
            p.stdin.close()
        self.assertEqual(p.returncode, -signal.SIGKILL)
        self.assertEqual(os.listdir(self.spool), [])

    def run_measured(self, argv):
        """Runs argv with stdout to /dev/null; returns (status, stderr,
        peak RSS in KB) of that child alone."""
        with open(os.devnull, "wb") as null, \
                tempfile.TemporaryFile() as err:
            p = subprocess.Popen(argv, stdout=null, stderr=err)
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            return p.returncode, err.read().decode(), usage.ru_maxrss

    @unittest.skipIf(SANITIZED, "peak memory is measured in the plain build")
    def test_200_mb_message_in_bounded_memory(self):
        big = os.path.join(self.dir, "big.eml")
        line = b"x" * 76 + b"\n"
        block = line * 13000
        with open(big, "wb") as f:
            f.write(b"From: s@sender.test\nTo: x@example.com\n"
                    b"Subject: big\n\n")
            for _ in range(200):
                f.write(block)
        size = os.path.getsize(big)
        self.assertGreater(size, 200_000_000)
        small = self.file("small.eml", b"From: s@sender.test\n"
                          b"To: x@example.com\n\nsmall\n")
        base = [AIMX, "--config", self.signing, "send", "--dry-run", "-t",
                "--raw"]
        code, err, small_rss = self.run_measured(base + [small])
        self.assertEqual(code, 0, err)
        code, err, big_rss = self.run_measured(base + [big])
        self.assertEqual(code, 0, err)
        m = re.search(r"SIZE=(\d+)", err)
        # Every LF became CRLF and the signature came first.
        self.assertGreater(int(m.group(1)), size + size // 77)
        self.assertLess(big_rss - small_rss, 8 * 1024,
                        f"{small_rss} KB for a small message, {big_rss} KB "
                        "for 200 MB")
        # And as JSON, where the message streams into the string.
        code, err, json_rss = self.run_measured(base + [big, "--json"])
        self.assertEqual(code, 0, err)
        self.assertLess(json_rss - small_rss, 8 * 1024)
        self.assertEqual(os.listdir(self.spool), [])


if __name__ == "__main__":
    unittest.main()
