#!/bin/sh
# man-clbsdd.sh CLBSDD: print the clbsdd(8) man page. Its options come from
# `clbsdd --help` (the daemon's own usage, so the page cannot disagree with
# the program); the sections around them are written here.
set -eu
bin=${1:?usage: man-clbsdd.sh path/to/clbsdd}
usage=$("$bin" --help)
version=$("$bin" --version 2>/dev/null | awk '{print $NF}')

# roff-safe text: backslashes, and a dash as \- (options, paths).
esc() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^[.']/\\\\\\&&/"; }

cat <<EOF
.\\" clbsdd(8), generated from \`clbsdd --help\` by scripts/man-clbsdd.sh.
.TH CLBSDD 8 "" "clbsd $version" "System Administration"
.SH NAME
clbsdd \\- the clbsd container daemon
.SH SYNOPSIS
\\fBclbsdd\\fR [\\fIOPTIONS\\fR]
.SH DESCRIPTION
EOF
# The paragraph between the Usage line and "Options:".
printf '%s\n' "$usage" | awk 'NR > 1 && /^Options:/ { exit } NR > 2 && NF' | esc
cat <<'EOF'
.PP
clbsdd owns the desired and the observed state: it reads the declarative
configuration, makes the host match it and keeps it so, runs native
containers through one clbsd\-shim each (containers keep running when the
daemon stops or restarts, and a starting daemon adopts them again), and
serves the HTTP/JSON API that \fBclbsd\fR(1) speaks.
.SH OPTIONS
EOF
# "  --root DIR          text" with continuation lines indented further.
printf '%s\n' "$usage" | awk '
	/^Options:/ { on = 1; next }
	!on { next }
	/^  -/ {
		line = substr($0, 3)
		n = match(line, /  +/)
		left = n ? substr(line, 1, n - 1) : line
		text = n ? substr(line, n + RLENGTH) : ""
		print ".TP"
		split(left, w, " ")
		out = ""
		for (i = 1; i in w; i++) {
			word = w[i]
			sub(/,$/, "", word)
			comma = (w[i] ~ /,$/) ? "," : ""
			if (word ~ /^-/) out = out (out ? " " : "") "\\fB" word "\\fR" comma
			else out = out " \\fI" word "\\fR" comma
		}
		print out
		print text
		next
	}
	/^   +/ { sub(/^ +/, ""); print; next }
' | sed -e 's/-/\\-/g' -e "s/^'/\\\\&'/"
cat <<'EOF'
.SH SIGNALS
.TP
.B SIGHUP
read the configuration again and converge (as \fBclbsd apply\fR); a
configuration with errors changes nothing and the last good one stays in force
.TP
.BR SIGTERM ", " SIGINT
stop serving and exit; the containers keep running
.SH ENVIRONMENT
.TP
.B CLBSD_INSECURE_REGISTRIES
registries (host[:port], comma\-separated) pulled from over plain http
besides loopback ones
.SH FILES
.TP
.I /etc/clbsd/clbsd.conf
the configuration (\fBclbsd.conf\fR(5)); \fI/etc/clbsd/conf.d/*.conf\fR are
read after it, and changes made through the API go to
\fIconf.d/90\-live.conf\fR
.TP
.I /var/lib/clbsd
images, containers, their logs and state (\fB\-\-root\fR)
.TP
.I /run/clbsd/clbsd.sock
the API socket, mode 0660, group clbsd: root\-equivalent
.SH EXIT STATUS
0 after a clean shutdown, and with \fB\-n\fR when the settings and the
configuration are good; 1 otherwise; 2 for a usage error.
.SH SEE ALSO
\fBclbsd\fR(1), \fBclbsd.conf\fR(5)
EOF
