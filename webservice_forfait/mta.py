"""Hand one message from an MTA to the inbox URL.

Postfix or Exim alias:

    update: "|forfait-mail-to-inbox https://erp/DB/inbound_email/inbox/ID"

The exit status 75 (temporary failure) makes the MTA keep the message
and try again, so nothing is lost while the ERP is unreachable; 65 (data
error) for an empty message makes it bounce to the sender.
"""
import sys
import urllib.error
import urllib.request

EX_OK, EX_USAGE, EX_DATAERR, EX_TEMPFAIL = 0, 64, 65, 75


def main(argv=None, stdin=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: forfait-mail-to-inbox INBOX_URL", file=sys.stderr)
        return EX_USAGE
    data = (stdin or sys.stdin.buffer).read()
    if not data.strip():
        # nothing to keep: the MTA bounces it to its sender with this
        print("empty message refused", file=sys.stderr)
        return EX_DATAERR
    request = urllib.request.Request(
        argv[0] + ('&' if '?' in argv[0] else '?') + 'type=raw',
        data=data, method='POST',
        headers={'Content-Type': 'message/rfc822'})
    try:
        with urllib.request.urlopen(request, timeout=60):
            return EX_OK
    except urllib.error.HTTPError as error:
        print("inbox refused the message: %s" % error, file=sys.stderr)
        # too large or unknown inbox: retrying will not help
        return 1 if error.code in {404, 413} else EX_TEMPFAIL
    except OSError as error:
        print("inbox unreachable: %s" % error, file=sys.stderr)
        return EX_TEMPFAIL


if __name__ == '__main__':
    sys.exit(main())
