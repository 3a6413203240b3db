#!/bin/bash
# The daemon's default bridge (docs/network.md, "The default bridge"): a
# daemon started with no configuration publishes a port with `run -p`; the
# bridge, its addresses and its nftables rules exist only while a container
# uses it.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
[ -e "$CONF" ] && { fail no_config "the test expects no configuration file: $CONF"; t_done; exit 1; }

hostns() { nsenter -t "$DAEMON_PID" -n -- "$@"; }
hostns ip link set lo up
bridge_gone() { ! hostns ip link show clbsd0 >/dev/null 2>&1; }
table_gone() { ! hostns nft list table inet clbsd >/dev/null 2>&1; }
no_address() { ! hostns ip -4 addr | grep -q '10\.88\.0\.'; }
tcp() { # ADDR PORT: what the server says first
	hostns python3 -c 'import socket,sys
s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3)
print(s.recv(100).decode().strip())' "$1" "$2" 2>&1
}
SERVE='printf "#!/bin/sh\necho hello-from-web\n" >/serve; chmod +x /serve; exec nc -ll -p 80 -e /serve'

# Listed before any use, made by none yet.
out=$(clbsd network ls)
echo "$out" | grep -q "^bridge .*clbsd0 .*10\.88\.0\.0/24 .*10\.88\.0\.1 .*default" &&
	ok listed_before_use || fail listed_before_use "$out"
bridge_gone && table_gone && ok nothing_made_before_use || fail nothing_made_before_use "$(hostns ip -br link; hostns nft list ruleset)"

# A container that asks for no network stays loopback-only and makes nothing.
clbsd run -d --name plain forge sleep 3600 >/dev/null
[ "$(field plain network.mode)" = none ] && bridge_gone && ok plain_container_loopback_only ||
	fail plain_container_loopback_only "mode $(field plain network.mode); $(hostns ip -br link)"

# -p HOST:CTR joins the default bridge, made on first use.
if clbsd run -d --name web -p 8080:80 forge sh -c "$SERVE" >/dev/null 2>"$TMP/err"; then
	ok run_publish_without_config
else
	fail run_publish_without_config "$(cat "$TMP/err")"
fi
wait_until 5 sh -c "nsenter -t $DAEMON_PID -n ss -ltn >/dev/null; true"
out=$(tcp 127.0.0.1 8080)
[ "$out" = hello-from-web ] && ok published_port_answers_on_loopback || fail published_port_answers_on_loopback "got '$out'"
hostns ip -4 addr show clbsd0 | grep -q '10\.88\.0\.1/24' && ok bridge_made_with_gateway ||
	fail bridge_made_with_gateway "$(hostns ip -4 addr)"
case "$(field web network.networks)" in
*"'default'"*"10.88.0."*) ok container_on_default ;;
*) fail container_on_default "$(field web network.networks)" ;;
esac
clbsd network ls | grep -q "^bridge .* 1 .*default" && ok ls_counts_user || fail ls_counts_user "$(clbsd network ls)"

# --network none stays available, and refuses what needs a network.
out=$(clbsd run --rm --network none forge cat /proc/net/dev 2>&1)
echo "$out" | grep -q 'eth0' && fail network_none_available "$out" || ok network_none_available
out=$(clbsd run --network none -p 8081:80 forge true 2>&1)
echo "$out" | grep -q "network is none" && ok network_none_refuses_publish || fail network_none_refuses_publish "$out"
out=$(clbsd network rm bridge 2>&1)
echo "$out" | grep -q "daemon's default" && ok default_not_removable || fail default_not_removable "$out"

# After the last user is removed: no bridge, no rules, no address.
clbsd rm -f web >/dev/null
wait_until 5 bridge_gone && ok bridge_removed_with_last_user || fail bridge_removed_with_last_user "$(hostns ip -br link)"
wait_until 5 table_gone && ok rules_removed_with_last_user || fail rules_removed_with_last_user "$(hostns nft list ruleset)"
no_address && ok address_removed_with_last_user || fail address_removed_with_last_user "$(hostns ip -4 addr)"

# Made again by the next user; a stopped user keeps it.
clbsd run -d --name web2 -p 8080:80 forge sh -c "$SERVE" >/dev/null
out=$(tcp 127.0.0.1 8080)
[ "$out" = hello-from-web ] && ok made_again_on_next_use || fail made_again_on_next_use "got '$out'"
clbsd stop -t 1 web2 >/dev/null
hostns ip link show clbsd0 >/dev/null 2>&1 && ok stopped_user_keeps_it || fail stopped_user_keeps_it "$(hostns ip -br link)"
clbsd rm -f web2 plain >/dev/null
wait_until 5 bridge_gone && wait_until 5 table_gone && no_address && ok cleaned_after_rm ||
	fail cleaned_after_rm "$(hostns ip -br link; hostns nft list ruleset)"
t_done
